"""Taking a change back: an update reverted field by field, a delete undone by creating the
deal again, a create undone by deleting it. The check ("changed since?", "undone already?")
and the write hold the backend's lock together, so no other writer slips in between.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from oppcli import errors as E
from oppcli.errors import UsageError

if TYPE_CHECKING:
    from oppcli.io import Streams
    from oppcli.ops.audit import Audited, AuditLog
    from oppcli.ops.bulk import BulkResult

Entry = dict[str, Any]
Record = dict[str, Any]


@dataclass
class UndoResult:
    entry: Entry  # the audit entry taken back (a batch: its history line, ops.audit.by_batch)
    op: str  # what was undone: update, delete or create
    record: Record | None  # the deal as restored (None: a create undone, a dry run, a batch)
    done: bool  # False for a dry run
    bulk: BulkResult | None = None  # a batch undone: what happened to each deal


def undo(backend: Audited, audit_id: str | None, *, force: bool, dry_run: bool, yes: bool,
         streams: Streams) -> UndoResult:
    log = backend.log
    entries = list(log.entries())
    undone = {e.get("undo_of") for e in entries if e.get("undo_of")}
    mine = [e for e in entries if log.holds(e)]
    entry = _chosen(log, entries, mine, undone, audit_id, force)
    if entry.get("batch") and (audit_id is None or audit_id.strip() == entry["batch"]):
        from oppcli.ops.batch_undo import undo_batch

        members = [e for e in mine if e.get("batch") == entry["batch"]
                   and (force or e["audit_id"] not in undone)]
        return undo_batch(backend, entry["batch"], members, mine, force=force, dry_run=dry_run,
                          yes=yes, streams=streams)
    op = entry["op"]
    if op not in ("update", "delete", "create"):
        raise UsageError(f"cannot undo a {op!r} entry")
    if op != "delete":  # a deal deleted and restored (under a new id) since: undo it there
        entry = dict(entry, id=now_known_as(mine, int(entry["id"])))
    backend.undo_of = entry["audit_id"]
    if op == "create" and not dry_run and not yes:
        _confirm_delete(backend, entry, force, streams)  # before the lock: no one waits on a person
    with backend.exclusive():
        if not dry_run and not force and _undone_since(log, entry):
            raise E.ConflictError(f"change {entry['audit_id']} was undone meanwhile (by another "
                                  "oppcli)", "`oppcli history` shows it; --force undoes it again")
        record: Record | None = None
        if op == "update":
            record = _undo_update(backend, entry, force, dry_run, streams)
        elif op == "delete":
            record = _undo_delete(backend, entry, force, dry_run, streams)
        else:
            _undo_create(backend, entry, force, dry_run, streams)
    return UndoResult(entry, op, record, not dry_run)


def _chosen(log: AuditLog, entries: list[Entry], mine: list[Entry], undone: set[Any],
            audit_id: str | None, force: bool) -> Entry:
    if audit_id is None:
        candidates = [e for e in mine if e["audit_id"] not in undone and not e.get("undo_of")]
        if not candidates:
            raise E.NotFoundError(f"nothing to undo on {log.where}",
                                  "`oppcli history` lists the changes")
        return candidates[-1]
    found = [e for e in entries if e.get("audit_id") == audit_id.strip()]
    if not found:  # a batch, by its id: its newest entry stands for it
        found = [e for e in entries if e.get("batch") == audit_id.strip()]
        if found and not force and all(e["audit_id"] in undone for e in found):
            raise E.ConflictError(f"batch {audit_id} was already undone",
                                  "--force undoes it again")
        found = [e for e in found if force or e["audit_id"] not in undone] or found
    if not found:
        raise E.NotFoundError(f"no change {audit_id!r} in the audit log",
                              "`oppcli history` lists the changes and their audit ids")
    entry = found[-1]
    if not log.holds(entry):
        raise UsageError(f"change {audit_id} was made on {entry.get('where')}, not "
                         f"{log.where}", "select that backend or store (--backend, "
                         "--store, --profile) and undo again")
    if entry["audit_id"] in undone and not force:
        raise E.ConflictError(f"change {audit_id} was already undone",
                              "--force undoes it again")
    return entry


def now_known_as(entries: list[Entry], opp_id: int) -> int:
    """The id an opportunity has now: an undone delete brought it back through create, under
    the id the backend gave it (followed through several such restores)."""
    deleted = {e["audit_id"]: e.get("id") for e in entries if e.get("op") == "delete"}
    moved = {deleted[e["undo_of"]]: e.get("id") for e in entries
             if e.get("op") == "create" and e.get("undo_of") in deleted}
    seen = {opp_id}
    while True:
        later = moved.get(opp_id)
        if not isinstance(later, int) or later in seen:
            return opp_id
        opp_id = later
        seen.add(opp_id)


def _undone_since(log: AuditLog, entry: Entry) -> bool:
    return any(e.get("undo_of") == entry["audit_id"] for e in log.entries())


def _undo_update(backend: Audited, entry: Entry, force: bool, dry_run: bool,
                 streams: Streams) -> Record | None:
    from oppcli.ops.audit import changed_keys

    opp_id = int(entry["id"])
    keys = changed_keys(entry.get("before"), entry.get("after"))
    moved = drift(entry, backend.get(opp_id))
    if moved and not force:
        raise E.ConflictError(f"opportunity {opp_id} changed since {entry['audit_id']} "
                              f"({', '.join(moved)})", "--force restores the old values anyway")
    changes = restoring(entry)
    if dry_run:
        streams.notice(f"would restore {', '.join(keys)} of opportunity {opp_id} (dry run: "
                       "nothing changed)")
        return None
    record = backend.update(opp_id, changes)
    streams.notice(f"undid {entry['audit_id']}: restored {', '.join(keys)} of opportunity {opp_id}")
    return record


def restoring(entry: Entry) -> dict[str, Any]:
    """The changes that put back, field by field, what an update entry changed."""
    from oppcli.domain.lookups import is_whole
    from oppcli.ops.audit import changed_keys

    before, after = entry.get("before") or {}, entry.get("after") or {}
    changes: dict[str, Any] = {}
    custom = []
    for k in changed_keys(before, after):
        if k.startswith("cf:"):
            ident = int(k[3:]) if is_whole(k[3:]) else k[3:]
            custom.append({"custom_field_definition_id": ident, "value": _value(before, k)})
        else:
            changes[k] = before.get(k)
    if custom:
        changes["custom_fields"] = custom
    if ("pipeline_stage_id" in changes or "pipeline_id" in changes) and \
            "win_probability" not in changes and "win_probability" in before:
        # A stage change takes the stage's probability unless one is given: restore the old one
        changes["win_probability"] = before.get("win_probability")
    return changes


def drift(entry: Entry, current: Record) -> list[str]:
    """The fields an update entry changed that have other values now."""
    from oppcli.ops.audit import changed_keys

    after = entry.get("after") or {}
    return [k for k in changed_keys(entry.get("before"), after)
            if _value(current, k) != _value(after, k)]


def restorable(entry: Entry) -> dict[str, Any]:
    """A deleted deal's fields as create takes them (from a delete entry's record)."""
    from oppcli.domain import fields as F

    before = entry.get("before") or {}
    return {k: v for k, v in before.items() if k in F.BY_NAME and k not in F.READ_ONLY}


def _undo_delete(backend: Audited, entry: Entry, force: bool, dry_run: bool,
                 streams: Streams) -> Record | None:
    before = dict(entry.get("before") or {})
    old_id = before.get("id")
    if not before.get("name"):
        raise E.ConflictError(f"change {entry['audit_id']} does not hold the deleted record",
                              "it cannot be restored from the log")
    if isinstance(old_id, int) and not force:
        try:
            backend.get(old_id)
        except E.NotFoundError:
            pass
        else:
            raise E.ConflictError(f"opportunity {old_id} exists: it is not deleted here",
                                  "check --store/--backend; --force makes a copy anyway")
    payload = restorable(entry)
    if dry_run:
        streams.notice(f"would create opportunity {old_id} {before.get('name')!r} again; the "
                       "backend gives it its next id (dry run: nothing changed)")
        return None
    record = backend.create(payload)
    note = "" if record["id"] == old_id else f" as {record['id']} (a new id: the backend " \
        "assigns ids)"
    streams.notice(f"undid {entry['audit_id']}: restored deleted opportunity {old_id}{note}")
    return record


def _created_unchanged(backend: Audited, entry: Entry, force: bool) -> Record:
    """The created opportunity as it is now; ConflictError when it changed since (unless
    force)."""
    from oppcli.ops.audit import changed_keys

    opp_id = int(entry["id"])
    current = backend.get(opp_id)
    drift = changed_keys(entry.get("after"), current)
    if drift and not force:
        raise E.ConflictError(f"opportunity {opp_id} changed since it was created "
                              f"({', '.join(drift)})", "--force deletes it anyway")
    return current


def _confirm_delete(backend: Audited, entry: Entry, force: bool, streams: Streams) -> None:
    """Ask before an undo that deletes (without the lock: checked again under it)."""
    opp_id = int(entry["id"])
    current = _created_unchanged(backend, entry, force)
    if not streams.can_prompt:
        raise UsageError(f"undoing {entry['audit_id']} deletes opportunity {opp_id}",
                         "add --yes to do it from a script")
    if not streams.confirm(f"Delete opportunity {opp_id} {current.get('name')!r}?"):
        raise E.Declined("nothing undone")


def _undo_create(backend: Audited, entry: Entry, force: bool, dry_run: bool,
                 streams: Streams) -> None:
    opp_id = int(entry["id"])
    current = _created_unchanged(backend, entry, force)
    if dry_run:
        streams.notice(f"would delete opportunity {opp_id} {current.get('name')!r} (dry run)")
        return
    backend.delete([opp_id])
    streams.notice(f"undid {entry['audit_id']}: deleted opportunity {opp_id}")


def _value(record: Any, key: str) -> Any:
    if key.startswith("cf:"):
        for cf in (record or {}).get("custom_fields") or []:
            if str(cf.get("custom_field_definition_id")) == key[3:]:
                return cf.get("value")
        return None
    return (record or {}).get(key)
