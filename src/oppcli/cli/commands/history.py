"""history and undo: the audit log of changes made through oppcli, and taking one back
(the policy lives in the library: api.Session.history, ops/undo.py)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from oppcli.cli.commands.common import run_of


def history(
    ctx: typer.Context,
    opportunity: Annotated[Optional[int], typer.Argument(
        help="Only changes to this opportunity id.", metavar="ID")] = None,
    limit: Annotated[Optional[int], typer.Option(
        "--limit", "-n", min=1, help="At most N entries, newest first (default 20; with "
        "--batch, all of them).", metavar="N", show_default=False)] = None,
    everywhere: Annotated[bool, typer.Option(
        "--all-backends", help="Also changes made on other backends and stores.")] = False,
    batch: Annotated[Optional[str], typer.Option(
        "--batch", help="The deals of one bulk change (its audit id), one entry each.",
        metavar="AUDIT_ID")] = None,
    output: Annotated[Optional[str], typer.Option(
        "-o", "--output", help="table, json or jsonl (json: whole entries, with the records "
        "before and after). Default: table on a terminal, json when piped.",
        metavar="FORMAT")] = None,
) -> None:
    """Show the changes made through oppcli (the audit log), newest first.

    Every create, update, delete, import row and undo is recorded with when, the backend and
    profile, and the record before and after. A bulk change is one line (its deals in -o json,
    or with --batch AUDIT_ID). `oppcli undo AUDIT_ID` takes one back.

    Example: oppcli history 1001 -n 5
    """
    import orjson

    run = run_of(ctx)
    fmt = run.output_format(output, ("table", "json", "jsonl"))
    entries = run.session.history(opportunity, limit=limit, all_backends=everywhere, batch=batch)
    out = run.streams.stdout
    if fmt == "json":
        out.write(orjson.dumps(entries, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    if fmt == "jsonl":
        for e in entries:
            out.write(orjson.dumps(e).decode() + "\n")
        return
    from oppcli.output import write_history_table

    where = run.session.audit_log().where
    title = f"changes on {where}" if not everywhere else "changes"
    if batch is not None:
        title = f"batch {batch.strip()}: {len(entries)} deals" + (
            f" (the newest {limit})" if limit is not None and len(entries) == limit else "")
    write_history_table(entries, out, title, style=run.streams.console_style())


def undo(
    ctx: typer.Context,
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
    (with a new id, which is said); a create is undone by deleting it. A bulk change (its
    audit id from `oppcli history`) is undone as one, every deal of it, itself one batch.
    Refuses (exit 6) when the opportunity changed since (for a batch: naming the deals),
    unless --force.

    Example: oppcli undo            # the latest change
    """
    run = run_of(ctx)
    fmt = run.output_format(output, ("table", "json"))
    result = run.session.undo(audit_id, force=force, dry_run=dry_run, yes=yes)
    if result.bulk is not None:  # a batch: per deal, what was restored
        from oppcli.cli.commands.bulk import report
        from oppcli.output.changes import write_change_rows

        bulk = result.bulk
        note = " (dry run: nothing changed)" if bulk.dry_run else ""
        run.notice(f"undo of batch {result.entry['audit_id']}: {bulk.summary()}{note}"
                   + (f"; `oppcli undo {bulk.batch}` takes the undo back" if bulk.batch else ""))
        if fmt != "table":
            write_change_rows(bulk.rows(), "json", run.streams.stdout_bytes)
        report(run, bulk, summary=False)
        bulk.check()
        return
    if result.record is not None:
        run.emit_record(result.record, fmt, None, False)
