"""`oppcli import`: each row of a file becomes a create, an update, a skip or a failure.

Rows are read by transfer.py, matched to existing opportunities (by id, or by exact name),
then written one by one through the backend, which paces itself on Copper. A create whose
answer was lost (Copper may or may not have made it) is looked up by name before it is called
failed, so running the failed rows again never makes a deal twice.
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from oppcli import errors as E
from oppcli import fields as F
from oppcli.errors import OppcliError, PartialFailure, UsageError
from oppcli.interrupts import Held, Stop, exit_code_of, ignored, output_closed
from oppcli.output import literal
from oppcli.query import Query
from oppcli.records import apply_changes, changed_fields, check_refs, refs_to_check
from oppcli.transfer import (
    STARTED,
    UNCONFIRMED,
    InputFile,
    Row,
    can_create_in,
    csv_payload,
    detect_format,
    json_payload,
    marked_rows_bytes,
    read_input,
    unknown_rows_bytes,
    write_new_file,
)

Record = dict[str, Any]


@dataclass
class Result:
    row: Row
    action: str  # created, updated, unchanged, skipped, failed, unknown; "would ..." in a dry run
    id: int | None = None
    detail: str = ""
    row_id: int | None = None  # the id the row gave, when it had one

    @property
    def failed(self) -> bool:
        return self.action in ("failed", "would fail")

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"row": self.row.where, "action": self.action, "id": self.id}
        if self.row_id is not None and self.row_id != self.id:
            out["row_id"] = self.row_id  # the row's own id, when the deal's differs
        if self.failed or self.action == "unknown":
            out["error"] = self.detail
        elif self.detail:
            out["detail"] = self.detail
        return out

    def line(self) -> str:
        what = self.action + (f" {self.id}" if self.id is not None else "")
        notes = []
        if self.row_id is not None and self.row_id != self.id:
            notes.append(f"row id {self.row_id}")
        if self.detail:
            notes.append(self.detail)
        return f"{self.row.where}: {what}" + (f" ({'; '.join(notes)})" if notes else "")


def run(data: bytes, name: str, *, fmt: str | None, match: str, on_conflict: str,
        dry_run: bool, failed_rows: Path | None, report: str, backend: Any,
        on_missing: str = "create", keep_ids: bool = False) -> None:
    fmt = (fmt or detect_format(name, data)).strip().lower()
    source = read_input(data, fmt)
    if not source.rows:
        raise UsageError(f"{'stdin' if name == '-' else name} holds no rows to import")
    backend.check_writable()  # a read-only mirror: refused before any row
    if keep_ids and getattr(backend, "next_id", None) is None:
        raise UsageError("--keep-ids works on the local store only: Copper gives every new "
                         "deal its own id", "drop --keep-ids; the report names each created "
                         "deal's new id beside its row id")
    started = time.time()
    leftovers = None if dry_run else Leftovers(source, name, failed_rows, started)  # exit 3 now
    importer = Importer(backend, match=match, on_conflict=on_conflict, dry_run=dry_run,
                        fmt=source.fmt, on_missing=on_missing, keep_ids=keep_ids)
    results: list[Result] = []
    rows = source.rows
    done_upto = 0  # rows[:done_upto] have a result
    stopped: BaseException | None = None
    with Held() as held:
        try:
            for n, row in enumerate(rows):
                importer.writing = False
                with held.unit():
                    try:
                        result = importer.one(row, started)
                    except BaseException as exc:
                        # Stopped inside the write (a signal pressed twice, a bug): it may have
                        # happened. An oppcli error from the backend means it did not.
                        if importer.writing and not isinstance(exc, OppcliError):
                            results.append(Result(row, "unknown", detail="interrupted while "
                                                  "being written"))
                            done_upto = n + 1
                        raise
                    results.append(result)
                    done_upto = n + 1
                _report(result, report)
                held.check()  # a signal held while the row was written: stop, now it is said
        except BaseException as exc:
            stopped = exc
        finally:
            importer.close()
    if stopped is not None:
        _stopped(stopped, results, rows[done_upto:], report, leftovers, dry_run)
    if report == "json":
        _print_json(results)
    _finish(results, leftovers, dry_run)


def _report(result: Result, report: str) -> None:
    """One row's line as it is done: on stderr (text) or stdout (jsonl). A closed stream
    raises, and the run stops there."""
    if report == "text":
        sys.stderr.write(f"oppcli: {literal(result.line())}\n")
        sys.stderr.flush()
    elif report == "jsonl":
        sys.stdout.write(orjson.dumps(result.as_json()).decode() + "\n")
        sys.stdout.flush()


def _print_json(results: list[Result], untried: list[Row] | None = None) -> None:
    out = [r.as_json() for r in results]
    out += [_not_tried(row) for row in untried or []]
    sys.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stdout.flush()


def _not_tried(row: Row) -> dict[str, Any]:
    """A row the run stopped before, as the json and jsonl reports give it."""
    return {"row": row.where, "action": "not tried", "id": None}


def _say(message: str) -> None:
    """A message on stderr that cannot stop the cleanup: a closed stderr drops it."""
    try:
        print(f"oppcli: {literal(message)}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _finish(results: list[Result], leftovers: Leftovers | None, dry_run: bool) -> None:
    summary = _summary(results)
    failed = [r.row for r in results if r.failed]
    unknown = [r.row for r in results if r.action == "unknown"]
    prefix = "dry run, nothing changed: " if dry_run else ""
    if not failed and not unknown:
        _say(f"{prefix}{len(results)} rows: {summary}")
        return
    if dry_run or leftovers is None:
        raise PartialFailure(f"{prefix}{len(failed)} of {len(results)} rows would fail "
                             f"({summary})", "fix them and run the dry run again")
    with ignored():  # a Ctrl-C now cannot lose the rows not imported
        saved = leftovers.save(failed, unknown)
    if not unknown:
        raise PartialFailure(f"{len(failed)} of {len(results)} rows failed ({summary}); they are "
                             f"in {leftovers.saved_failed}", leftovers.hint(True, False))
    raise PartialFailure(f"{len(failed)} of {len(results)} rows failed and {len(unknown)} may "
                         f"or may not have been written ({summary}); {saved}",
                         leftovers.hint(bool(failed), True))


def _summary(results: list[Result]) -> str:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.action] = counts.get(r.action, 0) + 1
    return ", ".join(f"{n} {action}" for action, n in counts.items()) or "none done"


def _stopped(exc: BaseException, results: list[Result], untried: list[Row], report: str,
             leftovers: Leftovers | None, dry_run: bool) -> None:
    """The run stopped before its end: a signal, a closed output, Copper failing, a full disk.
    Every row is reported once: done (in the results and the audit log), failed and not tried
    (the failed-rows file), or unknown (its own file, checked before it is created again)."""
    code = exit_code_of(exc)
    if code is None:  # a bug: still keep what was not done, then let it show
        code = E.UNEXPECTED
    where = untried[0].where if untried else (results[-1].row.where if results else "the start")
    if report == "json":
        with contextlib.suppress(OSError, ValueError):
            _print_json(results, untried)
    elif report == "jsonl":
        with contextlib.suppress(OSError, ValueError):
            for row in untried:
                sys.stdout.write(orjson.dumps(_not_tried(row)).decode() + "\n")
            sys.stdout.flush()
    if isinstance(exc, Stop | KeyboardInterrupt):
        why = "interrupted" if code == E.INTERRUPTED else "terminated"
    elif output_closed(exc):
        why = "the output was closed"
    elif isinstance(exc, OppcliError):
        why = exc.message
    else:
        why = f"unexpected error: {type(exc).__name__}: {exc}"
    done = sum(1 for r in results if not r.failed and r.action != "unknown")
    failed = [r.row for r in results if r.failed] + list(untried)
    unknown = [r.row for r in results if r.action == "unknown"]
    if dry_run or leftovers is None:
        message = f"{why} (stopped at {where}; dry run, nothing changed)"
        kept = ""
    elif not failed and not unknown:
        message = f"{why} after the last row: all {done} rows done"
        kept = ""
    else:
        try:
            with ignored():  # a second Ctrl-C now cannot lose the rows not done
                kept = leftovers.save(failed, unknown)
        except OppcliError as lost:  # the failed rows could not be saved: name them instead
            kept = f"{lost.message}; the rows not imported are {_where_list(failed + unknown)}"
        at = "stopped at" if isinstance(exc, OppcliError) else "at"
        message = f"{why}; {at} {where} after {done} rows done: {kept}"
        if isinstance(exc, Stop | KeyboardInterrupt):
            message = f"{why} at {where} after {done} rows done: {kept}"
    row_failed = any(r.failed for r in results)
    hint = leftovers.hint(row_failed, bool(unknown)) if kept and leftovers else None
    if isinstance(exc, OppcliError) and not output_closed(exc):
        raise type(exc)(message, hint or exc.hint) from None
    if output_closed(exc):
        raise E.OutputClosed(message, hint) from None
    _say(f"{message}" + (f"; {hint}" if hint else ""))
    if code == E.UNEXPECTED:
        raise exc
    raise SystemExit(code)


def _where_list(rows: list[Row]) -> str:
    shown = ", ".join(r.where for r in rows[:20])
    return shown + (f" and {len(rows) - 20} more" if len(rows) > 20 else "")


class Leftovers:
    """Where the rows not imported go: the failed-rows file (failed and not tried, to run again)
    and the unknown-rows file (rows whose write may or may not have happened). Decided and
    checked before the first row; never an existing file overwritten."""

    def __init__(self, source: InputFile, name: str, failed_rows: Path | None,
                 started: float) -> None:
        self.source = source
        self.started = started
        if failed_rows is not None:
            if failed_rows.exists():
                raise E.ConfigError(f"the failed-rows file {failed_rows} already exists",
                                    "oppcli never overwrites one: move it away or give "
                                    "another --failed-rows; nothing was done")
            self.failed_path = Path(failed_rows)
        else:
            self.failed_path = _failed_path(name, source.fmt)
        self.unknown_path = self.failed_path.with_name(
            self.failed_path.name.replace(".failed", "", 1) if ".failed" in
            self.failed_path.name else self.failed_path.name)
        self.unknown_path = self.unknown_path.with_name(
            f"{self.unknown_path.stem}.unknown{self.unknown_path.suffix}")
        can_create_in(self.failed_path, "failed-rows file")
        self.saved_failed: Path | None = None
        self.saved_unknown: Path | None = None

    def save(self, failed: list[Row], unknown: list[Row]) -> str:
        """Write the files (each a new file); returns what to tell the user."""
        parts = []
        try:
            if failed:
                self.saved_failed = write_new_file(self.failed_path, marked_rows_bytes(
                    self.source, failed, {STARTED: int(self.started)}))
                parts.append(f"the {len(failed)} rows not imported are in {self.saved_failed}")
            if unknown:
                self.saved_unknown = write_new_file(self.unknown_path,
                                                    unknown_rows_bytes(self.source, unknown,
                                                                       int(self.started)))
                parts.append(f"the {len(unknown)} rows that may or may not have been written "
                             f"are in {self.saved_unknown}")
        except OSError as exc:
            target = self.unknown_path if self.saved_failed else self.failed_path
            raise E.ConfigError(f"cannot write {target}: {exc.strerror or exc}") from exc
        return "; ".join(parts)

    def hint(self, failed: bool, unknown: bool) -> str:
        runs = [f"`oppcli import {p}`" for p in (self.saved_failed, self.saved_unknown) if p]
        if not runs:
            return "see the messages above"
        text = ("fix the failed rows and run " if failed else "run ") + " and ".join(runs)
        if not failed:
            text += " to go on"
        if unknown:
            text += " (an unknown row is looked up first, and created only if it was not made)"
        return text


def _failed_path(name: str, fmt: str) -> Path:
    if name == "-":
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        return Path(f"oppcli-import-failed-{stamp}.{fmt}")
    path = Path(name)
    return path.with_name(f"{path.stem}.failed{path.suffix or '.' + fmt}")


def _seconds(value: Any, what: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise E.ValidationError(f"{what} must be Unix seconds, got {value!r}") from None


def _made_since(record: Record, started: int, remote: bool) -> bool:
    """Whether a deal was created at or after `started` (by the import a row is left from).
    Copper stamps by its own clock: a minute's slack there."""
    made = record.get("date_created")
    if not isinstance(made, int | float) or isinstance(made, bool):
        return False
    return made >= started - (60 if remote else 0)


def _holds(record: Record, payload: Record) -> bool:
    """Whether a record carries every plain value the row asked for."""
    for key, value in payload.items():
        if key in ("custom_fields", "tags") or value is None:
            continue
        if record.get(key) != value:
            return False
    return True


class Importer:
    """Decides and makes each row's change. A row's id matches only a deal that existed before
    the import started: never one this run created for another row (rows sharing an id are one
    deal: the first creates it, the later ones update it), and on the local store never an id
    the store had not issued when the run started."""

    def __init__(self, backend: Any, *, match: str, on_conflict: str, dry_run: bool,
                 fmt: str, on_missing: str = "create", keep_ids: bool = False) -> None:
        self.backend = backend
        self.lookups = backend.lookups()
        self.date_order = backend.date_order()
        self.match = match
        self.on_conflict = on_conflict
        self.on_missing = on_missing
        self.keep_ids = keep_ids
        self.dry_run = dry_run
        self.fmt = fmt
        self.created_ids: set[int] = set()  # made by this run: never "confirm" a row with them
        self.by_row_id: dict[int, int | None] = {}  # a row id -> the deal this run made for it
        next_id = getattr(backend, "next_id", None)
        self.first_new_id: int | None = next_id() if next_id is not None else None
        self.writing = False  # inside a backend write: an interruption leaves it unknown
        self.row_started: int | None = None  # the row's STARTED mark, from a failed-rows file
        exclusive = getattr(backend, "exclusive", None)
        self._exclusive = exclusive if exclusive is not None else contextlib.nullcontext

    def close(self) -> None:
        self.by_row_id.clear()

    def one(self, row: Row, started: float) -> Result:
        fail = "would fail" if self.dry_run else "failed"
        if row.values is None:
            return Result(row, fail, detail=row.error or "unreadable")
        row_id: int | None = None
        try:
            row_id, payload, unconfirmed = self._payload(row.values)
            with self._exclusive():  # local store: find and write under one lock
                return self._one(row, row_id, payload, unconfirmed, started)
        except E.UncertainWrite as exc:
            return Result(row, fail, row_id=row_id, detail=str(exc))
        except (E.ServiceError, E.ConfigError):
            raise  # not this row's fault: the import stops
        except OppcliError as exc:
            return Result(row, fail, row_id=row_id, detail=str(exc))

    def _one(self, row: Row, row_id: int | None, payload: Record, unconfirmed: int | None,
             started: float) -> Result:
        existing = self._find(row_id, payload)
        if existing is None and row_id is not None and row_id in self.by_row_id:
            made = self.by_row_id[row_id]  # an earlier row of this file has this id
            if made is None:  # a dry run: it would have been created
                return Result(row, "would update", None, row_id=row_id,
                              detail=f"the deal an earlier row with id {row_id} would create")
            existing = self.backend.get(made)
        if existing is None and unconfirmed is not None:
            confirmed = self._confirm_unknown(row, payload, unconfirmed)
            if isinstance(confirmed, Result):
                return confirmed
            if confirmed is not None:
                self._made(confirmed, row_id)
                return Result(row, "created", confirmed["id"], row_id=row_id,
                              detail="made by an earlier, interrupted run; confirmed now")
        if existing is None:
            return self._missing(row, row_id, payload, started)
        return self._conflict(row, existing, payload, row_id)

    def _payload(self, values: dict[str, Any]) -> tuple[int | None, Record, int | None]:
        values = dict(values)
        self.row_started = _seconds(values.pop(STARTED, None), STARTED)
        mark = values.pop(UNCONFIRMED, None)
        unconfirmed = None
        if mark not in (None, ""):
            try:
                unconfirmed = int(mark)
            except (TypeError, ValueError):
                raise E.ValidationError(f"{UNCONFIRMED} must be Unix seconds, got {mark!r}") from None
        if self.fmt in ("csv", "tsv"):
            opp_id, payload = csv_payload(values, self.lookups, self.date_order,
                                          neutralised=self.fmt == "csv")
        else:
            opp_id, payload = json_payload(values, self.lookups, self.date_order)
        return opp_id, payload, unconfirmed

    def _find(self, opp_id: int | None, payload: Record) -> Record | None:
        if self.match == "id":
            if opp_id is None or opp_id in self.created_ids or opp_id in self.by_row_id:
                return None  # made by this run for another row, or for an earlier one
            if self.first_new_id is not None and opp_id >= self.first_new_id:
                return None  # the store had not issued it when the import started
            try:
                found: Record = self.backend.get(opp_id)
            except E.NotFoundError:
                return None  # an id from another store: created anew
            if self.row_started is not None and _made_since(found, self.row_started,
                                                            self.first_new_id is None):
                return None  # made by the run this row is left from, or later: not this row's
            return found
        name = payload.get("name")
        if not name:
            raise E.ValidationError("--match name needs a name in every row")
        hits = list(self.backend.search(Query(name=str(name), sort_by="id", descending=False,
                                              limit=3)))
        if len(hits) > 1:
            ids = ", ".join(str(h["id"]) for h in hits)
            raise E.ConflictError(f"{len(hits)} opportunities are named {name!r} (ids {ids})",
                                  "give ids in the file and use --match id")
        return hits[0] if hits else None

    def _missing(self, row: Row, row_id: int | None, payload: Record, started: float) -> Result:
        """A row that matches no deal: created, skipped or failed, as --on-missing says."""
        if row_id is not None and self.match == "id" and row_id not in self.by_row_id:
            if self.on_missing == "skip":
                return Result(row, "would skip" if self.dry_run else "skipped", None,
                              row_id=row_id, detail=f"no opportunity {row_id} to update")
            if self.on_missing == "error":
                raise E.NotFoundError(f"no opportunity {row_id} to update",
                                      "use --on-missing create to create it")
        return self._create(row, payload, started, row_id)

    def _keep(self, row_id: int | None) -> int | None:
        """The row's own id, when --keep-ids may keep it: the store had never issued it."""
        if not self.keep_ids or row_id is None or self.first_new_id is None:
            return None
        if row_id < self.first_new_id or row_id in self.created_ids or row_id in self.by_row_id:
            return None
        return row_id

    def _create(self, row: Row, payload: Record, started: float, row_id: int | None) -> Result:
        from oppcli.models import check_create, without_nulls_kept

        payload = without_nulls_kept(payload)
        if self.first_new_id is not None and row.values:  # the local store keeps the row's
            payload.update({k: v for k, v in row.values.items()  # read-only extras (Copper
                            if k in F.PASSTHROUGH})             # makes its own)
        check_create(payload)
        keep = self._keep(row_id)
        if self.dry_run:
            check_refs({k: v for k, v in payload.items() if v is not None}, self.lookups)
            if row_id is not None:
                self.by_row_id[row_id] = None
            return Result(row, "would create", keep, row_id=row_id)
        try:
            self.writing = True
            if keep is not None:
                record = self.backend.create(payload, keep_id=keep)
            else:
                record = self.backend.create(payload)
            self.writing = False
        except E.UncertainWrite as exc:
            self.writing = False
            found = self._made_anyway(payload, started)
            if not isinstance(found, dict):
                return Result(row, "unknown", row_id=row_id, detail=f"{exc.message}; {found}")
            self._made(found, row_id)
            self.backend.record_confirmed_create(found)  # into the audit log, like any create
            return Result(row, "created", found["id"], row_id=row_id,
                          detail="confirmed after a lost answer")
        self._made(record, row_id)
        return Result(row, "created", record["id"], row_id=row_id)

    def _made(self, record: Record, row_id: int | None) -> None:
        self.created_ids.add(record["id"])
        if row_id is not None:
            self.by_row_id[row_id] = record["id"]

    def _like(self, payload: Record, since: int) -> list[Record]:
        """Deals created since `since` (Unix seconds) that hold the row's values and that this
        run did not make for another row: what a create whose outcome is unknown left."""
        query = Query(name=str(payload.get("name") or ""), created_min=since, sort_by="id",
                      descending=False)
        return [h for h in self.backend.search(query)
                if h["id"] not in self.created_ids and _holds(h, payload)]

    def _made_anyway(self, payload: Record, since: float) -> Record | str:
        """After a create whose answer was lost: the deal, if it was made since `since`; else
        why that is not known."""
        try:
            hits = self._like(payload, int(since) - 5)
        except OppcliError as exc:
            return f"the search to find out whether it was made failed too ({exc.message})"
        if len(hits) == 1:
            return hits[0]
        if not hits:
            return "no such deal shows in a search yet"
        return f"{len(hits)} deals like it were made since ({', '.join(str(h['id']) for h in hits)})"

    def _confirm_unknown(self, row: Row, payload: Record, since: int) -> Record | Result | None:
        """A row an earlier run left unknown: the deal it made, or None when it made none (the
        row is then created), or an unknown Result when that cannot be told."""
        if self.dry_run:
            return None
        try:
            hits = self._like(payload, since)
        except OppcliError as exc:
            if isinstance(exc, E.ServiceError | E.ConfigError):
                raise
            hits = []
        if len(hits) > 1:
            return Result(row, "unknown", None, detail=f"{len(hits)} deals like it were made "
                          f"since then ({', '.join(str(h['id']) for h in hits)}): check them "
                          "and remove the row, or its " + UNCONFIRMED)
        if not hits:
            return None
        found = hits[0]
        self.backend.record_confirmed_create(found)
        return found

    def _conflict(self, row: Row, existing: Record, payload: Record,
                  row_id: int | None = None) -> Result:
        opp_id = existing["id"]
        if self.on_conflict == "skip":
            return Result(row, "would skip" if self.dry_run else "skipped", opp_id,
                          row_id=row_id, detail=f"matches {opp_id} by {self.match}")
        if self.on_conflict == "error":
            raise E.ConflictError(f"matches opportunity {opp_id} by {self.match}",
                                  "use --on-conflict update or skip")
        changes = {k: v for k, v in payload.items()
                   if not (self.fmt in ("csv", "tsv") and v is None and existing.get(k) == "")}
        # (an empty cell is null, and also what a "" was exported as: "" stays "")
        if "custom_fields" in changes and self.fmt in ("csv", "tsv"):
            held = {c.get("custom_field_definition_id"): c.get("value")
                    for c in existing.get("custom_fields") or []}
            changes["custom_fields"] = [c for c in changes["custom_fields"] if not (
                c["value"] is None and held.get(c["custom_field_definition_id"]) == "")]
        new = apply_changes(existing, changes, self.lookups)
        diff = changed_fields(existing, new)
        if not diff:
            return Result(row, "unchanged", opp_id, row_id=row_id)
        fields = ", ".join(diff)
        if self.dry_run:
            check_refs(refs_to_check(diff, new), self.lookups)
            return Result(row, "would update", opp_id, row_id=row_id, detail=fields)
        self.writing = True
        self.backend.update(opp_id, changes, current=existing)
        self.writing = False
        return Result(row, "updated", opp_id, row_id=row_id, detail=fields)
