"""Commands that read: list, search, show, lookups."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Optional

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
    SmallOutputOpt,
    excel_format,
    field_list,
    run_of,
)
from oppcli.cli.typer_glue import given, takes
from oppcli.domain import fields as F
from oppcli.domain import options as O
from oppcli.errors import ValidationError

if TYPE_CHECKING:
    from oppcli.domain.query import Query

# ---- list and search --------------------------------------------------------------------------
SortOpt = Annotated[Optional[str], typer.Option(
    "--sort", help="Field to sort by (default: date_modified, newest first): "
    + ", ".join(F.SORTABLE) + ". On Copper, " + ", ".join(F.CLIENT_SORTED)
    + " are sorted after fetching every match.",
    autocompletion=C.choices(F.SORTABLE),
    metavar="FIELD")]
AscOpt = Annotated[Optional[bool], typer.Option(
    "--asc/--desc", help="Sort direction (default: ascending with --sort, else newest first).",
    show_default=False)]
LimitOpt = Annotated[Optional[int], typer.Option(
    "--limit", "-n", min=0, max=2**63 - 1, help="Return at most N opportunities in total.",
    metavar="N")]
AllOpt = Annotated[bool, typer.Option(
    "--all", help=f"Every match, also in a terminal table (which otherwise shows {TABLE_CAP}).")]


def _run_query(run: Run, query: Query, output: str | None, fields_: str | None, raw: bool,
               limit: int | None, all_: bool, excel: bool = False) -> None:
    from oppcli.output import emit_many

    fmt, names = excel_format(run, output, excel), field_list(fields_)
    backend = run.session.backend
    ctx = run.output_context()
    if fmt == "table" and limit is None and not all_:
        query.limit = TABLE_CAP + 1
        rows = list(backend.search(query))
        more = len(rows) > TABLE_CAP
        emit_many(iter(rows[:TABLE_CAP]), fmt, ctx, run.streams, names=names, raw=raw,
                  more=more)
        return
    if fmt in ("json", "jsonl") and names is None:
        # Fast path: records go out as the backend holds them, unparsed.
        emit_many(backend.search_raw(query), fmt, ctx, run.streams)  # type: ignore[arg-type]
        return
    emit_many(backend.search(query), fmt, ctx, run.streams, names=names, raw=raw, bom=excel)


def list_(
    ctx: typer.Context,
    sort: SortOpt = None, asc: AscOpt = None, limit: LimitOpt = None, all_: AllOpt = False,
    output: OutputOpt = None, fields_: FieldsOpt = None, raw: RawOpt = False,
    excel: ExcelOpt = False, saved: SavedOpt = None,
) -> None:
    """List opportunities, most recently modified first.

    With --saved NAME: the deals of a saved search.

    Example: oppcli list --sort monetary_value --desc --limit 10
    """
    run = run_of(ctx)
    excel_format(run, output, excel), field_list(fields_)  # checked before anything is opened
    _run_query(run, run.session.query(sort=sort, asc=asc, limit=limit, saved=saved), output,
               fields_, raw, limit, all_, excel)


@takes(O.FILTERS, "filters", complete=C.for_opt)
def search(
    ctx: typer.Context,
    sort: SortOpt = None, asc: AscOpt = None, limit: LimitOpt = None, all_: AllOpt = False,
    output: OutputOpt = None, fields_: FieldsOpt = None, raw: RawOpt = False,
    excel: ExcelOpt = False, saved: SavedOpt = None,
    save: Annotated[Optional[str], typer.Option(
        "--save", help="Also keep these filters (and --sort/--asc) in the profile as NAME, for "
        "--saved NAME on search, list, export, report, forecast, stale and bulk update/delete.",
        metavar="NAME", rich_help_panel="Filters")] = None,
) -> None:
    """Find opportunities matching every filter given (filters are ANDed).

    Names are accepted wherever Copper takes ids; DATE is YYYY-MM-DD. --save NAME keeps the
    filters for later (`oppcli saved list`); --saved NAME starts from them.

    Example: oppcli search --status open --stage Negotiation --min-value 50000 -o json
    """
    run = run_of(ctx)
    filters = given(ctx, "filters")
    # Every option checked before --save keeps anything: a refused command changes nothing.
    excel_format(run, output, excel), field_list(fields_)
    query = run.session.query(sort=sort, asc=asc, limit=limit, saved=saved, **filters)
    if save is not None:
        run.session.save_search(save, sort=sort, asc=asc, saved=saved, **filters)
        run.notice(f"saved the search as {save.strip()!r}: `oppcli search --saved "
                   f"{save.strip()}` runs it")
    _run_query(run, query, output, fields_, raw, limit, all_, excel)


# ---- show -----------------------------------------------------------------------------------
def show(
    ctx: typer.Context,
    opportunity: Annotated[str, typer.Argument(help="Id (or exact name) of the opportunity.",
                                               metavar="ID", autocompletion=C.ids)],
    output: OutputOpt = None, fields_: FieldsOpt = None, raw: RawOpt = False,
) -> None:
    """Show one opportunity: every field; custom fields by name in a table.

    Example: oppcli show 1001 -o json | jq .monetary_value
    """
    run = run_of(ctx)
    run.emit_record(run.session.get(opportunity), output, fields_, raw)


# ---- lookups ----------------------------------------------------------------------------------
def lookups(
    ctx: typer.Context,
    table: Annotated[Optional[str], typer.Argument(
        metavar="TABLE",
        help="pipelines, stages, users, customer_sources, loss_reasons, "
        "custom_field_definitions, companies or people; all when left out.",
        autocompletion=C.choices((*F.LOOKUP_TABLES, "stages")))] = None,
    output: SmallOutputOpt = None,
    refresh: Annotated[bool, typer.Option(
        "--refresh", help="Copper: fetch the tables again instead of using the cached copy.")] = False,
) -> None:
    """Show the lookup tables that names resolve against (stages, users, sources, ...).

    On Copper they are cached for copper.cache_ttl seconds; companies and people are not
    listed there, but searched by name when a command names one.

    Example: oppcli lookups stages
    """
    import orjson

    run = run_of(ctx)
    if refresh:
        run.session.reopen(refresh=True)
    lk = run.session.lookups()
    tables = (*F.LOOKUP_TABLES, "stages")
    if table is not None and table not in tables:
        raise ValidationError(f"unknown lookup table {table!r}", "valid: " + ", ".join(tables))
    fmt = run.output_format(output, ("table", "json"))
    out = run.streams.stdout
    if fmt != "table":
        data: Any = lk.rows(table) if table else lk.to_dict()
        out.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    from oppcli.output import write_lookup_tables

    names = [table] if table else ["stages", *F.LOOKUP_TABLES[1:]]
    write_lookup_tables(lk, names, out, style=run.streams.console_style())
