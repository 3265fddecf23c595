"""The bulk forms of update and delete: which deals (ids, `-` for stdin, or --where-*
filters), the preview (--dry-run), the question (on the terminal, also when stdin is the pipe),
the run, and its report. The policy lives in the library (ops/bulk.py, via the Session)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from oppcli import errors as E
from oppcli.cli import completion as C
from oppcli.domain.options import Opt
from oppcli.errors import UsageError

if TYPE_CHECKING:
    from oppcli.cli.commands.common import Run
    from oppcli.ops.bulk import BulkResult, Plan, Selection

SELECT_PANEL = "Select: which deals (search's filters, as --where-*)"
BULK_FORMATS = ("table", "json", "jsonl")


def where_flag(opt: Opt) -> str:
    """A search filter as a bulk command spells it: --status -> --where-status."""
    return "--where-" + opt.flag.removeprefix("--")


def change_panel(opt: Opt) -> str:
    return f"Change: {(opt.panel or 'fields').lower()}"


YesOpt = Annotated[bool, typer.Option(
    "--yes", "-y", help="Do not ask; required without a terminal.")]
DryRunOpt = Annotated[bool, typer.Option(
    "--dry-run", help="Change nothing: show, per deal, each field as it is and as it would be.")]
NotDoneOpt = Annotated[Optional[Path], typer.Option(
    "--not-done", help="Where the ids of deals not changed go when some fail or a stop comes "
    "(one per line, for `... - < FILE`). Default: a new oppcli-OP-not-done-TIME.txt here.",
    metavar="FILE", dir_okay=False)]


SavedWhereOpt = Annotated[Optional[str], typer.Option(
    "--saved", help="Select the deals of a saved search (`oppcli saved list`); --where-* "
    "filters given too replace the saved ones of their kind, the others are ANDed.",
    metavar="NAME", autocompletion=C.saved_names, rich_help_panel=SELECT_PANEL)]


def is_bulk(ids: list[str], where: dict[str, Any]) -> bool:
    """The bulk forms: `-`, filters, or more than one id (one id keeps the single form)."""
    return "-" in ids or bool(where) or len(ids) > 1


def selection(run: Run, ids: list[str], where: dict[str, Any], *,
              stdin_taken: bool = False) -> Selection:
    from oppcli.ops.bulk import read_selection

    if "-" in ids:
        if len(ids) > 1:
            raise UsageError("- reads the deals from stdin: give no ids besides it")
        if where:
            raise UsageError("give - (stdin) or --where-* filters, not both",
                             "to narrow piped deals, filter them with `oppcli search` first")
        if stdin_taken:
            raise UsageError("stdin cannot carry both the deals (-) and --from-json -",
                             "give --from-json a file")
        return read_selection(run.streams.piped_stdin(
            "- reads the deals", "pipe them in: oppcli search ... -o jsonl | oppcli update - ..."))
    if not ids and not where:
        raise UsageError("which opportunities?", "give ids, - to read them from stdin, or "
                         "--where-* filters (see --help)")
    return run.session.select(ids, where=where)


def run_plan(run: Run, plan: Plan, fmt: str, *, dry_run: bool, yes: bool,
             not_done: Path | None) -> None:
    """Preview, ask, apply, report; raises the stop or PartialFailure (exit 7) at the end."""
    from oppcli.ops.bulk import BulkResult

    session = run.session
    if dry_run:
        preview = BulkResult(plan.op, changed=plan.previews, unchanged=plan.unchanged,
                             dry_run=True)
        _render_preview(run, plan, fmt)
        run.notice(f"{preview.summary()} (dry run: nothing changed)")
        return
    if not plan.items:
        run.notice(f"nothing to {plan.op}" + (f": {len(plan.unchanged):,} already had the "
                                               "values" if plan.unchanged else ""))
        if fmt != "table":
            _render(run, BulkResult(plan.op, unchanged=plan.unchanged), fmt)
        return
    if not yes:
        _confirm(run, plan)
    result = session.apply(plan, leftovers=not_done)
    _render(run, result, fmt)
    report(run, result)
    result.check()


def _render_preview(run: Run, plan: Plan, fmt: str) -> None:
    from oppcli.output.changes import write_change_rows, write_changes_table

    if fmt == "table":
        what = "would change" if plan.op == "update" else "would delete"
        write_changes_table(plan.previews, run.streams.stdout, run.output_context(),
                            title=f"{len(plan):,} deals {what}", limit=None,
                            style=run.streams.console_style())
        return
    write_change_rows((p.as_json(op=plan.op) for p in plan.previews), fmt,
                      run.streams.stdout_bytes)


def _render(run: Run, result: BulkResult, fmt: str) -> None:
    from oppcli.output.changes import write_change_rows

    if fmt != "table":
        write_change_rows(result.rows(), fmt, run.streams.stdout_bytes)


def _confirm(run: Run, plan: Plan) -> None:
    """The count, the first few deals and the changes, then y/N on the terminal (stdin may
    be the pipe); without a terminal: refuse (exit 2), nothing changed."""
    from oppcli.ops.bulk import SHOWN

    streams = run.streams
    count = f"{len(plan):,} opportunit{'y' if len(plan) == 1 else 'ies'}"
    if not streams.can_prompt_terminal:
        raise UsageError(f"refusing to {plan.op} {count} without confirmation",
                         f"add --yes to {plan.op} from a script (--dry-run shows what would "
                         "change)")
    from oppcli.output.changes import write_changes_table

    if plan.op == "update":
        streams.notice(f"{plan.op} {count}: " + "; ".join(plan.asked))
        if plan.unchanged:
            streams.notice(f"({len(plan.unchanged):,} more already have the values: left alone)")
    else:
        streams.notice(f"delete {count} permanently")
    write_changes_table(plan.previews, streams.stderr, run.output_context(),
                        title=f"the first {min(SHOWN, len(plan))} of {count}", limit=SHOWN,
                        style={**streams.console_style(), "force_terminal": streams.stderr_tty})
    if not streams.confirm(f"{plan.op.capitalize()} {count}?", terminal=True):
        raise E.Declined(f"nothing {plan.op}d")


def report(run: Run, result: BulkResult, *, summary: bool = True) -> None:
    """What happened, on stderr: the count and the batch to undo (unless the caller said it),
    what failed or was not done, and where their ids are."""
    if summary:
        message = result.summary()
        if result.batch:
            message += f"; `oppcli undo {result.batch}` takes it back"
        run.notice(message)
    for p in result.failed[:10]:
        run.notice(f"failed: {p.id} {p.name!r}: {p.error}")
    if len(result.failed) > 10:
        run.notice(f"... and {len(result.failed) - 10:,} more failed")
    if result.stopped is not None and result.not_done:
        shown = ", ".join(str(p.id) for p in result.not_done[:10])
        more = f" and {len(result.not_done) - 10:,} more" if len(result.not_done) > 10 else ""
        run.notice(f"stopped before {len(result.not_done):,}: {shown}{more}")
    if result.leftovers is not None:
        run.notice(result.hint())
