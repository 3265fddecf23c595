"""Bulk commands: export (cron-safe, incremental), import, and sync pull (an offline mirror)."""

from __future__ import annotations

import inspect
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from oppcli import completion as C
from oppcli import errors as E
from oppcli.commands.common import STATE, FieldsOpt, RawOpt, err, field_list
from oppcli.errors import UsageError

EXPORT_FORMATS = ("jsonl", "json", "csv", "tsv")


def _filter_parameters() -> list[inspect.Parameter]:
    """search's filter options, so export takes exactly the same filters."""
    from oppcli.commands.read import search

    sig = inspect.signature(search, eval_str=True)
    return [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in sig.parameters.values()
            if any(getattr(m, "rich_help_panel", None) == "Filters"
                   for m in getattr(p.annotation, "__metadata__", ()))]


def _with_filters(func: Any) -> Any:
    sig = inspect.signature(func, eval_str=True)
    own = [p for p in sig.parameters.values() if p.kind != inspect.Parameter.VAR_KEYWORD]
    params = _filter_parameters() + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
    func.__signature__ = sig.replace(parameters=params)
    func.__annotations__ = {p.name: p.annotation for p in params}
    return func


class _Progress:
    """A one-line count on stderr, only when stderr is a terminal (never in cron or a pipe)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.count = 0
        self.on = bool(sys.stderr and sys.stderr.isatty())
        self._next = 0.0

    def wrap(self, records: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for r in records:
            self.count += 1
            if self.on and time.monotonic() >= self._next:
                self._next = time.monotonic() + 0.2
                sys.stderr.write(f"\r{self.what}: {self.count:,} opportunities")
                sys.stderr.flush()
            yield r

    def done(self) -> None:
        if self.on:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


@_with_filters
def export(
    output: Annotated[Optional[str], typer.Option(
        "-o", "--output", help="jsonl (default), json, csv or tsv.", metavar="FORMAT",
        autocompletion=C.choices(EXPORT_FORMATS))] = None,
    output_file: Annotated[Optional[Path], typer.Option(
        "--output-file", help="Write to FILE atomically (a temporary file renamed over it): a "
        "failed or killed run leaves the previous FILE as it was. Default: stdout.",
        metavar="FILE")] = None,
    since: Annotated[Optional[str], typer.Option(
        "--since", help="Only opportunities modified since DATE (YYYY-MM-DD, ISO time) or for "
        "DURATION in s, min, h, d or w (24h, 7d, 90min, 2w; no months: 30d). With "
        "--state-file, only for the first run.",
        metavar="DATE|DURATION")] = None,
    state_file: Annotated[Optional[Path], typer.Option(
        "--state-file", help="Remember how far this export got (the highest date_modified) "
        "and export only what changed since, on the next run. Updated only after a "
        "successful export.", metavar="FILE")] = None,
    overlap: Annotated[int, typer.Option(
        "--overlap", min=0, max=315_360_000, help="Seconds before the remembered point to read again, so "
        "records sharing a timestamp (or committed late) are never missed; records already "
        "exported and unchanged are not written twice.", metavar="SECONDS")] = 60,
    fail_empty: Annotated[bool, typer.Option(
        "--fail-empty", help="Exit 4, leaving FILE and the state as they were, when nothing "
        "is exported.")] = False,
    fields_: FieldsOpt = None, raw: RawOpt = False,
    **filters: Any,
) -> None:
    """Export opportunities for other tools: streamed, atomic, incremental; quiet in cron.

    Takes search's filters. Records stream in the backend's order (the local store's id order;
    on Copper, oldest modification first). CSV has a fixed column order (the fields, custom
    fields as one cf:NAME column each), tags joined by ";".

    Example: oppcli export --state-file ~/.deals.state -o csv --output-file deals.csv
    """
    from oppcli.criteria import build_query
    from oppcli.transfer import parse_since

    started = int(time.time())
    fmt = (output or "jsonl").strip().lower()
    if fmt not in EXPORT_FORMATS:
        raise UsageError(f"unknown export format {output!r}", "valid: " + ", ".join(EXPORT_FORMATS))
    names = field_list(fields_)
    since_ts = parse_since(since) if since is not None else None
    opts = _search_options(filters)
    backend = STATE.backend()
    query = build_query(opts, backend.lookups(), STATE.input_date_order())
    source = backend.describe()
    lock = _lock_state(state_file) if state_file is not None else None
    try:
        _export_locked(backend, query, source, since_ts, state_file, overlap, fmt, names, raw,
                       output_file, fail_empty, started)
    finally:
        if lock is not None:
            import os

            os.close(lock)


def _export_locked(backend: Any, query: Any, source: str, since_ts: int | None,
                   state_file: Path | None, overlap: int, fmt: str, names: Any, raw: bool,
                   output_file: Path | None, fail_empty: bool, started: int) -> None:
    from oppcli.output import write_many
    from oppcli.transfer import ExportState, atomic_output, terminate_cleanly

    state = ExportState.load(state_file, source, overlap) if state_file else None
    if state is not None and state.high_water is not None:
        since_ts = state.since()  # the state decides after the first run
    if since_ts is not None:
        query.modified_min = max(since_ts, query.modified_min or since_ts)
    query.sort_by, query.descending = getattr(backend, "stream_order", ("date_modified", False))
    ctx = STATE.output_context()
    progress = _Progress("exporting")
    search_raw = getattr(backend, "search_raw", None)

    def records() -> Iterator[Any]:
        if state is None and names is None and fmt in ("json", "jsonl") and search_raw:
            yield from search_raw(query)  # the stored bytes, unparsed
            return
        for r in backend.search(query):
            if state is not None:
                if state.seen(r):
                    continue
                state.advance(r)
            yield r

    empty = E.NotFoundError("nothing to export (--fail-empty)",
                            f"{output_file or 'the output'} and the state file are unchanged")
    with terminate_cleanly():
        try:
            if output_file is None:
                from oppcli.output import emit_many

                try:
                    count = emit_many(progress.wrap(records()), fmt, ctx, names=names, raw=raw)
                    sys.stdout.flush()
                except BrokenPipeError:
                    raise E.OutputClosed(
                        "the output was closed before the export finished",
                        "the state file is unchanged" if state_file else
                        "what the reader got is incomplete") from None
            else:
                with atomic_output(output_file) as out:  # raising inside keeps the old file
                    count = write_many(progress.wrap(records()), fmt, out, ctx, names=names,
                                       raw=raw)
                    if count == 0 and fail_empty:
                        raise empty
        finally:
            progress.done()
    if count == 0 and fail_empty:
        raise empty
    if state is not None and state_file is not None:
        state.save(state_file, started)
    if sys.stderr and sys.stderr.isatty():
        where = f" to {output_file}" if output_file else ""
        err(f"exported {count:,} opportunit{'y' if count == 1 else 'ies'}{where}")


def _lock_state(path: Path) -> int:
    """One export per state file at a time: two would each save a state for their own output
    file, and the one renamed last may be the older."""
    import fcntl
    import os

    lock = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise E.ConfigError(f"cannot lock {lock}: {exc.strerror}",
                            "check the state file's directory") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise E.ServiceError(f"another export is running with the state file {path}",
                             "let it finish (cron: do not overlap the runs)") from None
    return fd


def _search_options(filters: dict[str, Any]) -> Any:
    """SearchOptions from search's filter parameters (repeatable ones arrive as None or lists)."""
    from oppcli.criteria import SearchOptions

    values = dict(filters)
    values["ids"] = values.pop("id_", None)
    return SearchOptions(**{k: (() if v is None and k in _REPEATABLE else v)  # type: ignore[arg-type]
                            for k, v in values.items()})


_REPEATABLE = ("ids", "status", "priority", "assignee", "pipeline", "stage", "company",
               "primary_contact", "source", "loss_reason", "tag", "custom_field")


# ---- import --------------------------------------------------------------------------------------
def import_(
    file: Annotated[str, typer.Argument(
        help="JSON Lines, JSON, CSV or TSV (as export writes them); - for stdin.", metavar="FILE")],
    input_format: Annotated[Optional[str], typer.Option(
        "--format", help="jsonl, json, csv or tsv (default: from the file name, else the "
        "content).", metavar="FORMAT",
        autocompletion=C.choices(("jsonl", "json", "csv", "tsv")))] = None,
    match: Annotated[str, typer.Option(
        "--match", help="How a row finds the opportunity it is: id (default) or name (exact, "
        "case-insensitive). A row that matches none is created.", metavar="id|name",
        autocompletion=C.choices(("id", "name")))] = "id",
    on_conflict: Annotated[str, typer.Option(
        "--on-conflict", help="When a row matches an opportunity: update it (default), skip "
        "the row, or error (the row fails).", metavar="update|skip|error",
        autocompletion=C.choices(("update", "skip", "error")))] = "update",
    on_missing: Annotated[str, typer.Option(
        "--on-missing", help="When a row's id matches no opportunity that existed before the "
        "import started: create it (default; the report gives the new id beside the row's), "
        "skip the row, or error (the row fails).", metavar="create|skip|error",
        autocompletion=C.choices(("create", "skip", "error")))] = "create",
    keep_ids: Annotated[bool, typer.Option(
        "--keep-ids", help="Local store: a created deal keeps the row's id when the store had "
        "never issued it (at or past its next id when the import started); restores an export "
        "with its ids. Refused on Copper, which gives every deal its own id.")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Check every row and say what would happen; change nothing.")] = False,
    failed_rows: Annotated[Optional[Path], typer.Option(
        "--failed-rows", help="Where rows that fail or are not tried are written, in the "
        "input's format, to run again (default: FILE.failed.EXT beside the input; for stdin, in "
        "the current directory). Checked before the first row; an existing file is never "
        "overwritten. Rows that may or may not have been written go beside it, in "
        "NAME.unknown.EXT.", metavar="PATH")] = None,
    output: Annotated[Optional[str], typer.Option(
        "-o", "--output", help="text (default: one line per row on stderr), json or jsonl "
        "(the results on stdout).", metavar="FORMAT",
        autocompletion=C.choices(("text", "json", "jsonl")))] = None,
) -> None:
    """Create or update opportunities from a file, row by row, reporting each row.

    Rows with an id (or, with --match name, a known name) update that opportunity; others are
    created. Failed rows go to a file to run again; exit 7 when any row fails.

    Example: oppcli import deals.csv --match name --on-conflict skip --dry-run
    """
    from oppcli import importing

    report = (output or "text").strip().lower()
    if report not in ("text", "json", "jsonl"):
        raise UsageError(f"unknown report format {output!r}", "valid: text, json, jsonl")
    if match not in ("id", "name"):
        raise UsageError(f"cannot match on {match!r}", "valid: id, name")
    if on_conflict not in ("update", "skip", "error"):
        raise UsageError(f"unknown --on-conflict {on_conflict!r}", "valid: update, skip, error")
    if on_missing not in ("create", "skip", "error"):
        raise UsageError(f"unknown --on-missing {on_missing!r}", "valid: create, skip, error")
    data, name = _read_input(file)
    importing.run(data, name, fmt=input_format, match=match, on_conflict=on_conflict,
                  dry_run=dry_run, failed_rows=failed_rows, report=report,
                  backend=STATE.backend(), on_missing=on_missing, keep_ids=keep_ids)


def _read_input(file: str) -> tuple[bytes, str]:
    if file == "-":
        if sys.stdin is None or sys.stdin.isatty():
            raise UsageError("import - reads from stdin, but stdin is a terminal",
                             "pipe the rows in, or give a file name")
        stream = getattr(sys.stdin, "buffer", None)
        return (stream.read() if stream is not None else sys.stdin.read().encode()), "-"
    try:
        return Path(file).read_bytes(), file
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror}") from exc



# ---- sync ----------------------------------------------------------------------------------------
sync_app = typer.Typer(help="Keep a local store as an offline mirror of a Copper account."
                       "\n\nExample: oppcli --store ~/deals-mirror sync pull",
                       no_args_is_help=True)


@sync_app.command("pull")
def sync_pull(
    full: Annotated[bool, typer.Option(
        "--full", help="Pull every opportunity again and drop those deleted in Copper "
        "(a normal pull fetches only what changed, and cannot see deletions).")] = False,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Say what was pulled also when stderr is not a terminal "
        "(by default a pull is silent in cron unless it fails).")] = False,
) -> None:
    """Copy a Copper account into the local store (--store), incrementally after the first run.

    Uses the profile's Copper settings whichever backend is selected. Query the mirror with
    --backend local: the same search gives the same JSON as on Copper. The mirror is
    read-only: change deals in Copper and pull again.

    Example: oppcli --store ~/deals-mirror sync pull && oppcli --backend local --store
    ~/deals-mirror search --status open
    """
    from oppcli.backends.copper import CopperBackend
    from oppcli.sync import pull

    settings = STATE.settings()
    copper = CopperBackend.from_settings(settings, debug=STATE.debug)
    with _terminate():
        result = pull(copper, settings.store_path, date_order=settings.date_order, full=full)
    if not verbose and not (sys.stderr and sys.stderr.isatty()):
        return  # silent on success in cron
    what = "first pull" if result.first else ("full pull" if full else "pull")
    err(f"{what} into {result.path}: {result.pulled:,} fetched, {result.added:,} new, "
        f"{result.changed:,} changed" + (f", {result.removed:,} removed" if full else "")
        + f" ({result.requests} requests)")


def _terminate() -> Any:
    from oppcli.transfer import terminate_cleanly

    return terminate_cleanly()
