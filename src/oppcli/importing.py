"""`oppcli import`: each row of a file becomes a create, an update, a skip or a failure.

Rows are read by transfer.py, matched to existing opportunities (by id, or by exact name),
then written one by one through the backend, which paces itself on Copper. A create whose
answer was lost (Copper may or may not have made it) is looked up by name before it is called
failed, so running the failed rows again never makes a deal twice.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from oppcli import errors as E
from oppcli.errors import OppcliError, PartialFailure, UsageError
from oppcli.query import Query
from oppcli.records import apply_changes, changed_fields, check_refs, refs_to_check
from oppcli.transfer import (
    InputFile,
    Row,
    atomic_write_bytes,
    csv_payload,
    detect_format,
    failed_rows_bytes,
    json_payload,
    read_input,
    terminate_cleanly,
)

Record = dict[str, Any]


@dataclass
class Result:
    row: Row
    action: str  # created, updated, unchanged, skipped, failed; "would ..." in a dry run
    id: int | None = None
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.action in ("failed", "would fail")

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"row": self.row.where, "action": self.action, "id": self.id}
        if self.failed:
            out["error"] = self.detail
        elif self.detail:
            out["detail"] = self.detail
        return out

    def line(self) -> str:
        what = self.action + (f" {self.id}" if self.id is not None else "")
        return f"{self.row.where}: {what}" + (f" ({self.detail})" if self.detail else "")


def run(data: bytes, name: str, *, fmt: str | None, match: str, on_conflict: str,
        dry_run: bool, failed_rows: Path | None, report: str, backend: Any) -> None:
    fmt = (fmt or detect_format(name, data)).strip().lower()
    source = read_input(data, fmt)
    if not source.rows:
        raise UsageError(f"{'stdin' if name == '-' else name} holds no rows to import")
    backend.check_writable()  # a read-only mirror: refused before any row
    importer = Importer(backend, match=match, on_conflict=on_conflict, dry_run=dry_run,
                        fmt=source.fmt)
    results: list[Result] = []
    started = time.time()
    with terminate_cleanly():
        for n, row in enumerate(source.rows):
            try:
                result = importer.one(row, started)
            except (E.ServiceError, E.ConfigError) as exc:
                # Copper is down or refuses the key: every other row would fail the same way.
                _stop(exc, source, source.rows[n:], results, name, failed_rows, dry_run)
            except BaseException:  # Ctrl-C, SIGTERM: keep what is not done for the next run
                if not dry_run:
                    _keep_undone(source, source.rows[n:], results, name, failed_rows)
                raise
            _report(result, report)
            results.append(result)
    if report == "json":
        sys.stdout.write(orjson.dumps([r.as_json() for r in results],
                                      option=orjson.OPT_INDENT_2).decode() + "\n")
    _finish(results, source, name, failed_rows, dry_run)


def _finish(results: list[Result], source: InputFile, name: str, failed_rows: Path | None,
            dry_run: bool) -> None:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.action] = counts.get(r.action, 0) + 1
    summary = ", ".join(f"{n} {action}" for action, n in counts.items())
    failed = [r.row for r in results if r.failed]
    prefix = "dry run, nothing changed: " if dry_run else ""
    if not failed:
        print(f"oppcli: {prefix}{len(results)} rows: {summary}", file=sys.stderr)
        return
    if dry_run:
        raise PartialFailure(f"{prefix}{len(failed)} of {len(results)} rows would fail "
                             f"({summary})", "fix them and run the dry run again")
    path = _save_failed(source, failed, name, failed_rows)
    raise PartialFailure(f"{len(failed)} of {len(results)} rows failed ({summary}); they are "
                         f"in {path}", f"fix them and run `oppcli import {path}`")


def _report(result: Result, report: str) -> None:
    if report == "text":
        print(f"oppcli: {result.line()}", file=sys.stderr)
    elif report == "jsonl":
        sys.stdout.write(orjson.dumps(result.as_json()).decode() + "\n")
        sys.stdout.flush()


def _keep_undone(source: InputFile, left: list[Row], results: list[Result], name: str,
                 failed_rows: Path | None) -> None:
    """Interrupted: the rows not done (and those that failed) go to the failed-rows file, so
    running it imports each row once."""
    failed = [r.row for r in results if r.failed] + left
    try:
        path = _save_failed(source, failed, name, failed_rows)
    except OppcliError:
        return
    print(f"oppcli: interrupted at {left[0].where}: the {len(failed)} rows not imported are in "
          f"{path}; run `oppcli import {path}` to go on", file=sys.stderr)


def _stop(exc: OppcliError, source: InputFile, left: list[Row], results: list[Result],
          name: str, failed_rows: Path | None, dry_run: bool) -> None:
    """End the import at a failure that is not the row's fault: keep every row not imported
    (and the rows that failed before) for the next run, and fail with the error's own code."""
    where = left[0].where
    failed = [r.row for r in results if r.failed] + left
    done = len(results) - sum(r.failed for r in results)
    if dry_run:
        raise type(exc)(f"{exc.message} (stopped at {where}; dry run, nothing changed)", exc.hint)
    path = _save_failed(source, failed, name, failed_rows)
    raise type(exc)(f"{exc.message}; stopped at {where} after {done} rows: the {len(failed)} "
                    f"rows not imported are in {path}", f"run `oppcli import {path}` when it "
                    "works again") from None


def _save_failed(source: InputFile, rows: list[Row], name: str, failed_rows: Path | None) -> Path:
    """Write rows to run again, in the input's own format; returns where."""
    path = failed_rows or _failed_path(name, source.fmt)
    atomic_write_bytes(path, failed_rows_bytes(source, rows))
    return path


def _failed_path(name: str, fmt: str) -> Path:
    if name == "-":
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        return Path(f"oppcli-import-failed-{stamp}.{fmt}")
    path = Path(name)
    return path.with_name(f"{path.stem}.failed{path.suffix or '.' + fmt}")


def _holds(record: Record, payload: Record) -> bool:
    """Whether a record carries every plain value the row asked for."""
    for key, value in payload.items():
        if key in ("custom_fields", "tags") or value is None:
            continue
        if record.get(key) != value:
            return False
    return True


class Importer:
    def __init__(self, backend: Any, *, match: str, on_conflict: str, dry_run: bool,
                 fmt: str) -> None:
        self.backend = backend
        self.lookups = backend.lookups()
        self.date_order = backend.date_order()
        self.match = match
        self.on_conflict = on_conflict
        self.dry_run = dry_run
        self.fmt = fmt
        self.created_ids: set[int] = set()  # made by this run: never "confirm" a row with them

    def one(self, row: Row, started: float) -> Result:
        fail = "would fail" if self.dry_run else "failed"
        if row.values is None:
            return Result(row, fail, detail=row.error or "unreadable")
        try:
            opp_id, payload = self._payload(row.values)
            existing = self._find(opp_id, payload)
            if existing is None:
                return self._create(row, payload, started)
            return self._conflict(row, existing, payload)
        except E.UncertainWrite as exc:
            return Result(row, fail, detail=str(exc))
        except (E.ServiceError, E.ConfigError):
            raise  # not this row's fault: the import stops
        except OppcliError as exc:
            return Result(row, fail, detail=str(exc))

    def _payload(self, values: dict[str, Any]) -> tuple[int | None, Record]:
        if self.fmt == "csv":
            return csv_payload(values, self.lookups, self.date_order)
        return json_payload(values, self.lookups, self.date_order)

    def _find(self, opp_id: int | None, payload: Record) -> Record | None:
        if self.match == "id":
            if opp_id is None:
                return None
            try:
                return self.backend.get(opp_id)  # type: ignore[no-any-return]
            except E.NotFoundError:
                return None  # an id from another store: created anew
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

    def _create(self, row: Row, payload: Record, started: float) -> Result:
        from oppcli.models import check_create

        check_create(payload)
        if self.dry_run:
            check_refs({k: v for k, v in payload.items() if v is not None}, self.lookups)
            return Result(row, "would create")
        try:
            record = self.backend.create(payload)
        except E.UncertainWrite:
            found = self._made_anyway(payload, started)
            if found is None:
                raise
            self.created_ids.add(found["id"])
            confirm = getattr(self.backend, "record_confirmed_create", None)
            if confirm is not None:
                confirm(found)  # into the audit log, like any create
            return Result(row, "created", found["id"], "confirmed after a lost answer")
        self.created_ids.add(record["id"])
        return Result(row, "created", record["id"])

    def _made_anyway(self, payload: Record, started: float) -> Record | None:
        """After a create whose answer was lost: the deal, if Copper made it during this run."""
        try:
            hits = [h for h in self.backend.search(Query(name=str(payload["name"]),
                                                         created_min=int(started) - 5,
                                                         sort_by="id", descending=False))
                    if h["id"] not in self.created_ids and _holds(h, payload)]
        except OppcliError:
            return None
        return hits[0] if len(hits) == 1 else None

    def _conflict(self, row: Row, existing: Record, payload: Record) -> Result:
        opp_id = existing["id"]
        if self.on_conflict == "skip":
            return Result(row, "would skip" if self.dry_run else "skipped", opp_id,
                          f"matches {opp_id} by {self.match}")
        if self.on_conflict == "error":
            raise E.ConflictError(f"matches opportunity {opp_id} by {self.match}",
                                  "use --on-conflict update or skip")
        changes = {k: v for k, v in payload.items()}
        new = apply_changes(existing, changes, self.lookups)
        diff = changed_fields(existing, new)
        if not diff:
            return Result(row, "unchanged", opp_id)
        fields = ", ".join(diff)
        if self.dry_run:
            check_refs(refs_to_check(diff, new), self.lookups)
            return Result(row, "would update", opp_id, fields)
        self.backend.update(opp_id, changes, current=existing)
        return Result(row, "updated", opp_id, fields)
