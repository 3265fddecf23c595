"""Taking back a bulk change as one: every deal of the batch restored field by field (an
update), brought back (a delete) or deleted again (a create), itself as one batch. Deals
changed since are refused by name unless forced; the check and the write hold the backend's
lock together (the local store), as a single undo does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from oppcli import errors as E
from oppcli.backends.base import Change
from oppcli.ops.bulk import BulkResult, Plan, Preview, apply, stoppable
from oppcli.ops.undo import UndoResult, drift, now_known_as, restorable, restoring

if TYPE_CHECKING:
    from oppcli.io import Streams
    from oppcli.ops.audit import Audited

Entry = dict[str, Any]


def undo_batch(backend: Audited, batch: str, members: list[Entry], mine: list[Entry], *,
               force: bool, dry_run: bool, yes: bool, streams: Streams) -> UndoResult:
    from oppcli.ops.audit import by_batch

    if not members:
        raise E.ConflictError(f"batch {batch} was already undone", "--force undoes it again")
    line = by_batch(members[::-1])[0]
    ops = {e.get("op") for e in members}
    if len(ops) != 1 or not ops <= {"update", "delete", "create"}:
        raise E.UsageError(f"batch {batch} mixes {', '.join(sorted(map(str, ops)))}: undo its "
                           "entries one by one", f"`oppcli history --batch {batch}` lists them")
    op = ops.pop()
    with backend.exclusive():
        if op == "update":
            result = _restore(backend, batch, members, mine, force, dry_run, streams)
        elif op == "delete":
            result = _bring_back(backend, batch, members, force, dry_run, streams)
        else:
            result = _delete_again(backend, batch, members, mine, force, dry_run, yes, streams)
    return UndoResult(line, str(op), None, not dry_run, result)


def _conflicts(batch: str, changed: list[str], force: bool, what: str) -> None:
    if changed and not force:
        shown = "; ".join(changed[:5]) + (f"; and {len(changed) - 5} more" if len(changed) > 5
                                          else "")
        raise E.ConflictError(f"{len(changed)} of batch {batch}'s deals changed since: {shown}",
                              f"nothing was undone; --force {what}")


def _restore(backend: Audited, batch: str, members: list[Entry], mine: list[Entry],
             force: bool, dry_run: bool, streams: Streams) -> BulkResult:
    from oppcli.domain.records import apply_changes, diff

    lookups = backend.lookups()
    ids = {e["audit_id"]: now_known_as(mine, int(e["id"])) for e in members}
    current = backend.get_many(list(dict.fromkeys(ids.values())))
    plan = Plan("update", [], [], [], [])
    changed: list[str] = []
    gone: list[Preview] = []
    undo_of: dict[int, str] = {}
    for e in members:
        opp_id = ids[e["audit_id"]]
        name = (e.get("after") or {}).get("name")
        now = current.get(opp_id)
        if now is None:
            changed.append(f"{opp_id} {name!r} (deleted)")
            gone.append(Preview(opp_id, name, error="deleted since the batch"))
            continue
        moved = drift(e, now)
        if moved:
            changed.append(f"{opp_id} {now.get('name')!r} ({', '.join(moved)})")
        changes = restoring(e)
        after = apply_changes(now, changes, lookups)
        preview = Preview(opp_id, now.get("name"), diff(now, after))
        if not preview.changes:
            plan.unchanged.append(preview)
            continue
        plan.items.append(Change(opp_id, changes, now))
        plan.previews.append(preview)
        undo_of[opp_id] = e["audit_id"]
    _conflicts(batch, changed, force, "restores the old values anyway (later changes to those "
               "fields are lost)")
    if dry_run:
        return BulkResult("update", changed=plan.previews, unchanged=plan.unchanged,
                          failed=gone, dry_run=True)
    result = apply(backend, streams, plan, undo_of=undo_of)
    result.failed[:0] = gone
    return result


def _bring_back(backend: Audited, batch: str, members: list[Entry], force: bool,
                dry_run: bool, streams: Streams) -> BulkResult:
    """Create every deleted deal again (the backend gives each its next id)."""
    broken = [e["audit_id"] for e in members if not (e.get("before") or {}).get("name")]
    if broken:
        raise E.ConflictError(f"batch {batch} has entries without the deleted record "
                              f"({', '.join(broken[:5])})", "they cannot be restored from the log")
    old_ids = [int(e["id"]) for e in members]
    there = backend.get_many(old_ids)
    _conflicts(batch, [f"{i} exists: it is not deleted here" for i in old_ids if i in there],
               force, "makes copies anyway")
    result = BulkResult("create", dry_run=dry_run)
    todo = [Preview(int(e["id"]), e["before"].get("name")) for e in members]
    if dry_run:
        result.changed = todo
        return result
    try:
        with stoppable(streams, result) as held, backend.batch() as open_batch:
            result.batch = open_batch.id
            for e, preview in zip(members, todo, strict=True):
                with held.unit():
                    backend.undo_of = e["audit_id"]
                    try:
                        record = backend.create(restorable(e))
                    except E.OppcliError as exc:
                        if E.ends_the_run(exc):
                            raise
                        preview.error = exc.message
                        result.failed.append(preview)
                    else:
                        preview.changes = {"id": [preview.id, record["id"]]}
                        result.changed.append(preview)
                held.check()
    finally:
        backend.undo_of = None
    handled = {id(p) for p in (*result.changed, *result.failed)}
    result.not_done = [p for p in todo if id(p) not in handled]
    return result


def _delete_again(backend: Audited, batch: str, members: list[Entry], mine: list[Entry],
                  force: bool, dry_run: bool, yes: bool, streams: Streams) -> BulkResult:
    """A batch of creates (an undone bulk delete) taken back: its deals deleted again."""
    from oppcli.ops.audit import changed_keys

    ids = {e["audit_id"]: now_known_as(mine, int(e["id"])) for e in members}
    current = backend.get_many(list(ids.values()))
    plan = Plan("delete", [], [], [], [])
    changed: list[str] = []
    undo_of: dict[int, str] = {}
    for e in members:
        opp_id = ids[e["audit_id"]]
        now = current.get(opp_id)
        if now is None:
            continue  # deleted already
        moved = changed_keys(e.get("after"), now)
        if moved:
            changed.append(f"{opp_id} {now.get('name')!r} ({', '.join(moved)})")
        plan.items.append(Change(opp_id, current=now))
        plan.previews.append(Preview(opp_id, now.get("name")))
        undo_of[opp_id] = e["audit_id"]
    _conflicts(batch, changed, force, "deletes them anyway")
    if dry_run:
        return BulkResult("delete", changed=plan.previews, dry_run=True)
    if not yes:
        if not streams.can_prompt:
            raise E.UsageError(f"undoing batch {batch} deletes {len(plan)} opportunities",
                               "add --yes to do it from a script")
        if not streams.confirm(f"Delete {len(plan)} opportunities again?"):
            raise E.Declined("nothing undone")
    return apply(backend, streams, plan, undo_of=undo_of)
