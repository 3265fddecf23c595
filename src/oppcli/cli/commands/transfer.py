"""Bulk commands: export (cron-safe, incremental), import, and sync pull (an offline mirror)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from oppcli.cli import completion as C
from oppcli.cli.commands.common import ExcelOpt, FieldsOpt, RawOpt, SavedOpt, field_list, run_of
from oppcli.cli.typer_glue import given, takes
from oppcli.domain import options as O
from oppcli.errors import UsageError
from oppcli.ops.export import EXPORT_FORMATS


@takes(O.FILTERS, "filters", complete=C.for_opt)
def export(
    ctx: typer.Context,
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
    fields_: FieldsOpt = None, raw: RawOpt = False, excel: ExcelOpt = False,
    saved: SavedOpt = None,
) -> None:
    """Export opportunities for other tools: streamed, atomic, incremental; quiet in cron.

    Takes search's filters. Records stream in the backend's order (the local store's id order;
    on Copper, oldest modification first). CSV has a fixed column order (the fields, custom
    fields as one cf:NAME column each), tags joined by ";".

    Example: oppcli export --state-file ~/.deals.state -o csv --output-file deals.csv
    """
    run = run_of(ctx)
    fmt = output or ("csv" if excel else "jsonl")
    run.session.export(output_file, format=fmt, fields=field_list(fields_), raw=raw, since=since,
                       state_file=state_file, overlap=overlap, fail_empty=fail_empty,
                       excel=excel, saved=saved, **given(ctx, "filters"))


# ---- import --------------------------------------------------------------------------------------
def import_(
    ctx: typer.Context,
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
    from oppcli.ops.importing import check_options

    run = run_of(ctx)
    report = (output or "text").strip().lower()
    if report not in ("text", "json", "jsonl"):
        raise UsageError(f"unknown report format {output!r}", "valid: text, json, jsonl")
    check_options(match, on_conflict, on_missing)
    data = None
    if file == "-":
        data = run.streams.piped_stdin("import - reads", "pipe the rows in, or give a file name")
    run.session.import_file(file, data=data, format=input_format, match=match,
                            on_conflict=on_conflict, on_missing=on_missing, keep_ids=keep_ids,
                            dry_run=dry_run, failed_rows=failed_rows, report=report)


# ---- sync ----------------------------------------------------------------------------------------
sync_app = typer.Typer(help="Keep a local store as an offline mirror of a Copper account."
                       "\n\nExample: oppcli --store ~/deals-mirror sync pull",
                       no_args_is_help=True)


@sync_app.command("pull")
def sync_pull(
    ctx: typer.Context,
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
    run = run_of(ctx)
    result = run.session.pull(full=full)
    if not verbose and not run.streams.stderr_tty:
        return  # silent on success in cron
    what = "first pull" if result.first else ("full pull" if full else "pull")
    run.notice(f"{what} into {result.path}: {result.pulled:,} fetched, {result.added:,} new, "
               f"{result.changed:,} changed" + (f", {result.removed:,} removed" if full else "")
               + f" ({result.requests} requests)")
