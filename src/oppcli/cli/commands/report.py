"""Commands that sum up: report, forecast, stale (ops/report.py does the work)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Optional

import typer

from oppcli.cli import completion as C
from oppcli.cli.commands.common import (
    TABLE_CAP,
    ExcelOpt,
    FieldsOpt,
    OutputOpt,
    RawOpt,
    Run,
    SavedOpt,
    excel_format,
    field_list,
    run_of,
)
from oppcli.cli.typer_glue import given, takes
from oppcli.domain import options as O
from oppcli.domain.report import Forecast, Report
from oppcli.errors import UsageError

ColumnsOpt = Annotated[Optional[str], typer.Option(
    "--fields", help="Only these columns, comma-separated, in this order (every format): the "
    "dimensions' keys (stage, stage_id, close_month, ...), count, value, weighted, average, "
    "win_rate.", metavar="A,B,C")]


def _columns(text: str | None, valid: list[str]) -> list[str] | None:
    """--fields for rows that are not records: names from `valid`, in the order given."""
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    wrong = [n for n in names if n not in valid]
    if not names or wrong:
        what = f"unknown column {wrong[0]!r}" if wrong else "--fields names no column"
        raise UsageError(what, "valid here: " + ", ".join(valid))
    return names


# forecast and stale look at open deals only: a --status there is handed to the library, which
# refuses it in words (ops/report.py), not Click as an unknown option.
NoStatusOpt = Annotated[Optional[list[str]], typer.Option("--status", hidden=True)]


def _emit(run: Run, result: Report | Forecast, fmt: str, fields_: str | None, raw: bool,
          excel: bool = False) -> None:
    """A report or forecast: the table (output/report.py) or one row per group."""
    names = _columns(fields_, result.columns())
    if fmt == "table":
        from oppcli.output.report import write_forecast_table, write_report_table

        style = run.streams.console_style()
        if isinstance(result, Report):
            write_report_table(result, run.streams.stdout, names, style=style)
        else:
            write_forecast_table(result, run.streams.stdout, names, style=style)
        return
    from oppcli.output.formats import _bin, write_rows

    rows, columns = result.records(), names or result.columns()
    _bin(run.streams, lambda out: write_rows(rows, columns, fmt, out, raw=raw, bom=excel))


@takes(O.FILTERS, "filters", complete=C.for_opt)
def report(
    ctx: typer.Context,
    by: Annotated[list[str], typer.Option(
        "--by", help="Group by: stage (in pipeline order, every stage shown), pipeline, "
        "assignee, status, priority, source, loss-reason, company, tag (a deal counts under "
        "each of its tags), close-month, close-quarter, created-month (UTC), or a Dropdown or "
        "MultiSelect custom field as cf:NAME. Once or twice (groups within groups).",
        metavar="DIM", autocompletion=C.dimensions)],
    output: OutputOpt = None, fields_: ColumnsOpt = None, raw: RawOpt = False,
    excel: ExcelOpt = False, saved: SavedOpt = None,
) -> None:
    """Sum up the matching deals by stage, owner, month, ...: count, value, weighted, win rate.

    Per group: count, value (monetary_value summed, none as 0), weighted (Open deals at their
    win probability, Won in full, Lost and Abandoned at 0), average (value / count) and
    win_rate (Won / closed; empty when none closed). The table adds a bar (solid: weighted;
    light: the rest of the value) and a total counting each deal once; -o json|jsonl|csv|tsv
    prints one row per group (no total), `<dim>_id` beside each name that has an id.

    Example: oppcli report --by stage --by assignee --status open -o csv
    """
    run = run_of(ctx)
    fmt = excel_format(run, output, excel)
    _emit(run, run.session.report(by, saved=saved, **given(ctx, "filters")), fmt, fields_, raw,
          excel)


@takes(O.OPEN_FILTERS, "filters", complete=C.for_opt)
def forecast(
    ctx: typer.Context,
    months: Annotated[int, typer.Option(
        "--months", min=1, max=120, help="Months to show, starting with the current one.",
        metavar="N")] = 6,
    output: OutputOpt = None, fields_: ColumnsOpt = None, raw: RawOpt = False,
    saved: SavedOpt = None, status: NoStatusOpt = None,
) -> None:
    """Forecast open deals by expected close month, weighted and unweighted.

    Rows: overdue (an open deal whose close date is before today, in the account's time
    zone), each of the N months from the current one (zeros included), and none (no close
    date). Deals closing after the N months are left out and counted in the summary line.
    -o json|jsonl|csv|tsv: one row per month, keyed `month` (YYYY-MM, overdue or none).

    Example: oppcli forecast --months 3 --assignee "Ada Park"
    """
    run = run_of(ctx)
    fmt = run.output_format(output)
    _emit(run, run.session.forecast(months=months, saved=saved, status=status,
                                    **given(ctx, "filters")), fmt, fields_, raw)


@takes(O.OPEN_FILTERS, "filters", complete=C.for_opt)
def stale(
    ctx: typer.Context,
    days: Annotated[int, typer.Option(
        "--days", min=0, max=100_000, help="Idle for at least this many days.",
        metavar="N")] = 30,
    limit: Annotated[Optional[int], typer.Option(
        "--limit", "-n", min=0, max=2**63 - 1, help="At most N deals.", metavar="N")] = None,
    all_: Annotated[bool, typer.Option(
        "--all", help=f"Every match, also in a terminal table (which otherwise shows "
        f"{TABLE_CAP}).")] = False,
    output: OutputOpt = None, fields_: FieldsOpt = None, raw: RawOpt = False,
    saved: SavedOpt = None, status: NoStatusOpt = None,
) -> None:
    """List open deals with no activity for N days, the most valuable and longest idle first.

    Activity is the latest of date_last_contacted, date_stage_changed and date_modified that
    a deal has. Prints deals as search does (every format; pipe JSON into `oppcli update -`);
    the table adds each deal's idle days.

    Example: oppcli stale --days 45 --assignee "Ada Park" -o jsonl | oppcli update - --add-tag stale
    """
    from oppcli.domain.report import idle_days
    from oppcli.output import emit_many

    run = run_of(ctx)
    fmt, names = run.output_format(output), field_list(fields_)
    capped = fmt == "table" and limit is None and not all_
    result = run.session.stale(days=days, limit=TABLE_CAP if capped else limit, saved=saved,
                               status=status, **given(ctx, "filters"))
    extra: tuple[tuple[str, Callable[[dict[str, Any]], str]], ...] = ()
    if fmt == "table":
        def idle(rec: dict[str, Any]) -> str:
            got = idle_days(rec, result.now)
            return "" if got is None else f"{got:,}"
        extra = (("Idle days", idle),)
    emit_many(iter(result.deals), fmt, run.output_context(), run.streams, names=names, raw=raw,
              more=capped and result.more, extra=extra, omit=("status",))
