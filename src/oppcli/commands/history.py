"""history and undo: the audit log of changes made through oppcli, and taking one back."""

from __future__ import annotations

import contextlib
import sys
from typing import Annotated, Any, Optional

import typer

from oppcli import errors as E
from oppcli.commands.common import STATE, emit_record, err, output_format
from oppcli.errors import UsageError

Entry = dict[str, Any]


def _log() -> Any:
    """The audit log, labelled with the selected backend (its entries are filtered to it);
    reading it opens no backend, so history needs no key and no network."""
    return STATE.audit_log()


def _mine(entry: Entry, log: Any) -> bool:
    return bool(entry.get("backend") == log.backend and entry.get("where") == log.where)


def history(
    opportunity: Annotated[Optional[int], typer.Argument(
        help="Only changes to this opportunity id.", metavar="ID")] = None,
    limit: Annotated[int, typer.Option(
        "--limit", "-n", min=1, help="At most N entries, newest first.", metavar="N")] = 20,
    everywhere: Annotated[bool, typer.Option(
        "--all-backends", help="Also changes made on other backends and stores.")] = False,
    output: Annotated[Optional[str], typer.Option(
        "-o", "--output", help="table, json or jsonl (json: whole entries, with the records "
        "before and after). Default: table on a terminal, json when piped.",
        metavar="FORMAT")] = None,
) -> None:
    """Show the changes made through oppcli (the audit log), newest first.

    Every create, update, delete, import row and undo is recorded with when, the backend and
    profile, and the record before and after. `oppcli undo AUDIT_ID` takes one back.

    Example: oppcli history 1001 -n 5
    """
    import orjson

    fmt = output_format(output, ("table", "json", "jsonl"))
    log = _log()
    entries = [e for e in log.entries() if (everywhere or _mine(e, log))
               and (opportunity is None or e.get("id") == opportunity)]
    entries = entries[::-1][:limit]
    if fmt == "json":
        sys.stdout.write(orjson.dumps(entries, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    if fmt == "jsonl":
        for e in entries:
            sys.stdout.write(orjson.dumps(e).decode() + "\n")
        return
    from oppcli.output import write_history_table

    write_history_table(entries, sys.stdout,
                        f"changes on {log.where}" if not everywhere else "changes")


def undo(
    audit_id: Annotated[Optional[str], typer.Argument(
        help="The change to take back (from `oppcli history`); default: the latest change on "
        "this backend that was not undone yet.", metavar="AUDIT_ID")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Undo even though the opportunity changed since (those later "
        "changes to the same fields are lost).")] = False,
    yes: Annotated[bool, typer.Option(
        "--yes", "-y", help="Do not ask before an undo that deletes (undoing a create); "
        "required without a terminal.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be done.")] = False,
    output: Annotated[Optional[str], typer.Option(
        "-o", "--output", help="table or json: the opportunity as restored.",
        metavar="FORMAT")] = None,
) -> None:
    """Take back a change: restore an updated or deleted opportunity, or delete a created one.

    An update is reverted field by field; a deleted opportunity comes back through create
    (with a new id, which is said); a create is undone by deleting it. Refuses (exit 6) when
    the opportunity changed since, unless --force.

    Example: oppcli undo            # the latest change
    """
    fmt = output_format(output, ("table", "json"))
    backend: Any = STATE.backend()  # the Audited backend
    log = backend.log
    entries = list(log.entries())
    undone = {e.get("undo_of") for e in entries if e.get("undo_of")}
    mine = [e for e in entries if _mine(e, log)]
    if audit_id is None:
        candidates = [e for e in mine if e["audit_id"] not in undone and not e.get("undo_of")]
        if not candidates:
            raise E.NotFoundError(f"nothing to undo on {log.where}",
                                  "`oppcli history` lists the changes")
        entry = candidates[-1]
    else:
        found = [e for e in entries if e.get("audit_id") == audit_id.strip()]
        if not found:
            raise E.NotFoundError(f"no change {audit_id!r} in the audit log",
                                  "`oppcli history` lists the changes and their audit ids")
        entry = found[-1]
        if not _mine(entry, log):
            raise UsageError(f"change {audit_id} was made on {entry.get('where')}, not "
                             f"{log.where}", "select that backend or store (--backend, "
                             "--store, --profile) and undo again")
        if entry["audit_id"] in undone and not force:
            raise E.ConflictError(f"change {audit_id} was already undone",
                                  "--force undoes it again")
    op = entry["op"]
    if op not in ("update", "delete", "create"):
        raise UsageError(f"cannot undo a {op!r} entry")
    if op != "delete":  # a deal deleted and restored (under a new id) since: undo it there
        entry = dict(entry, id=_now_known_as(mine, int(entry["id"])))
    backend.undo_of = entry["audit_id"]
    if op == "create" and not dry_run and not yes:
        _confirm_delete(backend, entry, force)  # asked before the lock: no one waits on a person
    # The check ("changed since?", "undone already?") and the write under one hold of the
    # store's lock, so that no other writer slips in between.
    with _exclusive(backend):
        if not dry_run and not force and _undone_since(log, entry):
            raise E.ConflictError(f"change {entry['audit_id']} was undone meanwhile (by another "
                                  "oppcli)", "`oppcli history` shows it; --force undoes it again")
        if op == "update":
            record = _undo_update(backend, entry, force, dry_run)
        elif op == "delete":
            record = _undo_delete(backend, entry, force, dry_run)
        else:
            _undo_create(backend, entry, force, dry_run)
            return
    if record is not None:
        emit_record(record, fmt, None, False)


def _now_known_as(entries: list[Entry], opp_id: int) -> int:
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


def _exclusive(backend: Any) -> Any:
    """The backend's lock over a check and its write: the local store's exclusive() (reached
    through the Audited wrapper). Copper has none (its API offers no lock or conditional
    write): there the check and the write stay two requests, and a change made in between by
    someone else is not seen."""
    hold = getattr(backend, "exclusive", None)
    return hold() if callable(hold) else contextlib.nullcontext()


def _undone_since(log: Any, entry: Entry) -> bool:
    return any(e.get("undo_of") == entry["audit_id"] for e in log.entries())


def _undo_update(backend: Any, entry: Entry, force: bool, dry_run: bool) -> Any:
    from oppcli.audit import changed_keys
    from oppcli.lookups import is_whole

    opp_id = int(entry["id"])
    before, after = entry.get("before") or {}, entry.get("after") or {}
    keys = changed_keys(before, after)
    current = backend.get(opp_id)
    drift = [k for k in keys if _value(current, k) != _value(after, k)]
    if drift and not force:
        raise E.ConflictError(f"opportunity {opp_id} changed since {entry['audit_id']} "
                              f"({', '.join(drift)})", "--force restores the old values anyway")
    changes: dict[str, Any] = {}
    custom = []
    for k in keys:
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
    if dry_run:
        err(f"would restore {', '.join(keys)} of opportunity {opp_id} (dry run: nothing changed)")
        return None
    record = backend.update(opp_id, changes)
    err(f"undid {entry['audit_id']}: restored {', '.join(keys)} of opportunity {opp_id}")
    return record


def _undo_delete(backend: Any, entry: Entry, force: bool, dry_run: bool) -> Any:
    from oppcli import fields as F

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
    payload = {k: v for k, v in before.items() if k in F.BY_NAME and k not in F.READ_ONLY}
    if dry_run:
        err(f"would create opportunity {old_id} {before.get('name')!r} again; the backend gives "
            "it its next id (dry run: nothing changed)")
        return None
    record = backend.create(payload)
    note = "" if record["id"] == old_id else f" as {record['id']} (a new id: the backend " \
        "assigns ids)"
    err(f"undid {entry['audit_id']}: restored deleted opportunity {old_id}{note}")
    return record


def _created_unchanged(backend: Any, entry: Entry, force: bool) -> Any:
    """The created opportunity as it is now; ConflictError when it changed since (unless
    force)."""
    from oppcli.audit import changed_keys

    opp_id = int(entry["id"])
    current = backend.get(opp_id)
    drift = changed_keys(entry.get("after"), current)
    if drift and not force:
        raise E.ConflictError(f"opportunity {opp_id} changed since it was created "
                              f"({', '.join(drift)})", "--force deletes it anyway")
    return current


def _confirm_delete(backend: Any, entry: Entry, force: bool) -> None:
    """Ask before an undo that deletes (without the lock: checked again under it)."""
    opp_id = int(entry["id"])
    current = _created_unchanged(backend, entry, force)
    if not (sys.stdin and sys.stdin.isatty() and sys.stderr.isatty()):
        raise UsageError(f"undoing {entry['audit_id']} deletes opportunity {opp_id}",
                         "add --yes to do it from a script")
    if not typer.confirm(f"Delete opportunity {opp_id} {current.get('name')!r}?",
                         default=False, err=True):
        err("nothing undone")
        raise typer.Exit(E.USAGE)


def _undo_create(backend: Any, entry: Entry, force: bool, dry_run: bool) -> None:
    opp_id = int(entry["id"])
    current = _created_unchanged(backend, entry, force)
    if dry_run:
        err(f"would delete opportunity {opp_id} {current.get('name')!r} (dry run)")
        return
    backend.delete([opp_id])
    err(f"undid {entry['audit_id']}: deleted opportunity {opp_id}")


def _value(record: Any, key: str) -> Any:
    if key.startswith("cf:"):
        for cf in (record or {}).get("custom_fields") or []:
            if str(cf.get("custom_field_definition_id")) == key[3:]:
                return cf.get("value")
        return None
    return (record or {}).get(key)
