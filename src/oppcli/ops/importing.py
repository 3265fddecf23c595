"""`oppcli import`: each row of a file becomes a create, an update, a skip or a failure.

Rows are read by rows.py, matched to existing opportunities (by id, or by exact name),
then written one by one through the backend, which paces itself on Copper. A create whose
answer was lost (Copper may or may not have made it) is looked up by name before it is called
failed, so running the failed rows again never makes a deal twice.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from oppcli import errors as E
from oppcli.errors import OppcliError, PartialFailure, UsageError
from oppcli.io import Streams
from oppcli.ops.importer import Importer, Result
from oppcli.ops.rows import (
    STARTED,
    InputFile,
    Row,
    detect_format,
    marked_rows_bytes,
    read_input,
    unknown_rows_bytes,
)
from oppcli.util.files import can_create_in, write_new_file
from oppcli.util.interrupts import Held, Stop, exit_code_of, ignored, output_closed

if TYPE_CHECKING:
    from oppcli.backends.base import Backend

Record = dict[str, Any]


def check_options(match: str, on_conflict: str, on_missing: str) -> None:
    if match not in ("id", "name"):
        raise UsageError(f"cannot match on {match!r}", "valid: id, name")
    if on_conflict not in ("update", "skip", "error"):
        raise UsageError(f"unknown --on-conflict {on_conflict!r}", "valid: update, skip, error")
    if on_missing not in ("create", "skip", "error"):
        raise UsageError(f"unknown --on-missing {on_missing!r}", "valid: create, skip, error")


def run(data: bytes, name: str, *, fmt: str | None, match: str, on_conflict: str,
        dry_run: bool, failed_rows: Path | None, report: str, backend: Backend,
        on_missing: str = "create", keep_ids: bool = False,
        streams: Streams | None = None) -> list[Result]:
    """Import every row; returns the results (raises PartialFailure, exit 7, when a row
    failed). `report`: text (a line per row through streams.notice), json or jsonl (on
    streams.stdout)."""
    streams = streams if streams is not None else Streams.system()
    fmt = (fmt or detect_format(name, data)).strip().lower()
    source = read_input(data, fmt)
    if not source.rows:
        raise UsageError(f"{'stdin' if name == '-' else name} holds no rows to import")
    backend.check_writable()  # a read-only mirror: refused before any row
    if keep_ids and backend.next_id() is None:
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
    with Held(_on_terminal(streams)) as held:
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
                _report(result, report, streams)
                held.check()  # a signal held while the row was written: stop, now it is said
        except BaseException as exc:
            stopped = exc
        finally:
            importer.close()
    if stopped is not None:
        _stopped(stopped, results, rows[done_upto:], report, leftovers, dry_run, streams)
    if report == "json":
        _print_json(results, streams)
    _finish(results, leftovers, dry_run, streams)
    return results


def _on_terminal(streams: Streams) -> Callable[[str], None] | None:
    """Writes straight to stderr when it is a terminal (a person pressed Ctrl-C), else None."""
    if not streams.stderr_tty:
        return None

    def write(text: str) -> None:
        streams.stderr.write(text)
        streams.stderr.flush()
    return write


def _report(result: Result, report: str, streams: Streams) -> None:
    """One row's line as it is done: on stderr (text) or stdout (jsonl). A closed stream
    raises, and the run stops there."""
    if report == "text":
        streams.notice(result.line())
        streams.stderr.flush()
    elif report == "jsonl":
        streams.stdout.write(orjson.dumps(result.as_json()).decode() + "\n")
        streams.stdout.flush()


def _print_json(results: list[Result], streams: Streams, untried: list[Row] | None = None) -> None:
    out = [r.as_json() for r in results]
    out += [_not_tried(row) for row in untried or []]
    streams.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode() + "\n")
    streams.stdout.flush()


def _not_tried(row: Row) -> dict[str, Any]:
    """A row the run stopped before, as the json and jsonl reports give it."""
    return {"row": row.where, "action": "not tried", "id": None}


def _say(message: str, streams: Streams) -> None:
    """A message on stderr that cannot stop the cleanup: a closed stderr drops it."""
    try:
        streams.notice(message)
        streams.stderr.flush()
    except (OSError, ValueError):
        pass


def _finish(results: list[Result], leftovers: Leftovers | None, dry_run: bool,
            streams: Streams) -> None:
    summary = _summary(results)
    failed = [r.row for r in results if r.failed]
    unknown = [r.row for r in results if r.action == "unknown"]
    prefix = "dry run, nothing changed: " if dry_run else ""
    if not failed and not unknown:
        _say(f"{prefix}{len(results)} rows: {summary}", streams)
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
             leftovers: Leftovers | None, dry_run: bool, streams: Streams) -> None:
    """The run stopped before its end: a signal, a closed output, Copper failing, a full disk.
    Every row is reported once: done (in the results and the audit log), failed and not tried
    (the failed-rows file), or unknown (its own file, checked before it is created again)."""
    code = exit_code_of(exc)
    if code is None:  # a bug: still keep what was not done, then let it show
        code = E.UNEXPECTED
    where = untried[0].where if untried else (results[-1].row.where if results else "the start")
    if report == "json":
        with contextlib.suppress(OSError, ValueError):
            _print_json(results, streams, untried)
    elif report == "jsonl":
        with contextlib.suppress(OSError, ValueError):
            for row in untried:
                streams.stdout.write(orjson.dumps(_not_tried(row)).decode() + "\n")
            streams.stdout.flush()
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
    _say(f"{message}" + (f"; {hint}" if hint else ""), streams)
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
