"""Commands that read: list, search, show, lookups."""

from __future__ import annotations

import sys
from typing import Annotated, Any, Optional

import typer

from oppcli import completion as C
from oppcli import fields as F
from oppcli.commands.common import (
    STATE,
    TABLE_CAP,
    FieldsOpt,
    OutputOpt,
    RawOpt,
    SmallOutputOpt,
    emit_record,
    field_list,
    find_id,
    output_format,
)
from oppcli.errors import ValidationError

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


def _run_query(query: Any, output: str | None, fields_: str | None, raw: bool,
               sort: str | None, asc: bool | None, limit: int | None, all_: bool) -> None:
    from oppcli.criteria import sort_options
    from oppcli.output import emit_many

    fmt, names = output_format(output), field_list(fields_)
    query.sort_by, query.descending = sort_options(sort, asc)
    query.limit = limit
    backend = STATE.backend()
    ctx = STATE.output_context()
    more = False
    if fmt == "table" and limit is None and not all_:
        query.limit = TABLE_CAP + 1
        rows = list(backend.search(query))
        more = len(rows) > TABLE_CAP
        emit_many(iter(rows[:TABLE_CAP]), fmt, ctx, names=names, raw=raw, more=more)
        return
    search_raw = getattr(backend, "search_raw", None)
    if fmt in ("json", "jsonl") and names is None and search_raw is not None:
        # Fast path: records go out as the backend holds them, unparsed.
        emit_many(search_raw(query), fmt, ctx)
        return
    emit_many(backend.search(query), fmt, ctx, names=names, raw=raw)


def list_(
    sort: SortOpt = None, asc: AscOpt = None, limit: LimitOpt = None, all_: AllOpt = False,
    output: OutputOpt = None, fields_: FieldsOpt = None, raw: RawOpt = False,
) -> None:
    """List opportunities, most recently modified first.

    Example: oppcli list --sort monetary_value --desc --limit 10
    """
    from oppcli.query import Query

    _run_query(Query(), output, fields_, raw, sort, asc, limit, all_)


def _multi(help_: str, metavar: str = "VALUE", complete: Any = None) -> Any:
    return typer.Option(help=help_ + " Repeatable or comma-separated; any of them matches.",
                        metavar=metavar, rich_help_panel="Filters", autocompletion=complete)


def _one(help_: str, metavar: str = "VALUE") -> Any:
    return typer.Option(help=help_, metavar=metavar, rich_help_panel="Filters")


def search(
    name: Annotated[Optional[str], _one("Exact name (case-insensitive).", "TEXT")] = None,
    name_contains: Annotated[Optional[str], _one(
        "Name contains TEXT (case-insensitive; on Copper applied after fetching).", "TEXT")] = None,
    id_: Annotated[Optional[list[str]], typer.Option(
        "--id", help="Opportunity id. Repeatable or comma-separated.", metavar="ID",
        rich_help_panel="Filters")] = None,
    status: Annotated[Optional[list[str]], _multi(
        "Status: Open, Won, Lost, Abandoned.", "STATUS", C.choices(F.STATUSES))] = None,
    priority: Annotated[Optional[list[str]], _multi(
        "Priority: None, Low, Medium, High (on Copper applied after fetching).", "PRIORITY",
        C.choices(F.PRIORITIES))] = None,
    assignee: Annotated[Optional[list[str]], _multi(
        "Owner: user name, email or id; 'none' for no owner.", "USER", C.names("users"))] = None,
    pipeline: Annotated[Optional[list[str]], _multi("Pipeline name or id.", "PIPELINE",
                                                             C.names("pipelines"))] = None,
    stage: Annotated[Optional[list[str]], _multi(
        "Stage name or id, or Pipeline/Stage.", "STAGE", C.names("stages"))] = None,
    company: Annotated[Optional[list[str]], _multi("Company name or id.", "COMPANY",
                                                           C.names("companies"))] = None,
    primary_contact: Annotated[Optional[list[str]], _multi(
        "Primary contact: person name, email or id.", "PERSON", C.names("people"))] = None,
    source: Annotated[Optional[list[str]], _multi(
        "Customer source name or id; 'none' for no source.", "SOURCE",
        C.names("customer_sources"))] = None,
    loss_reason: Annotated[Optional[list[str]], _multi(
        "Loss reason name or id; 'none' for no reason.", "REASON", C.names("loss_reasons"))] = None,
    tag: Annotated[Optional[list[str]], _multi("Tag.", "TAG")] = None,
    min_value: Annotated[Optional[str], _one("Monetary value at least N (a number).", "N")] = None,
    max_value: Annotated[Optional[str], _one("Monetary value at most N (a number).", "N")] = None,
    close_after: Annotated[Optional[str], _one(
        "Close date on or after DATE (YYYY-MM-DD, or MM/DD/YYYY in the configured order).",
        "DATE")] = None,
    close_before: Annotated[Optional[str], _one(
        "Close date on or before DATE (YYYY-MM-DD, or MM/DD/YYYY in the configured order).",
        "DATE")] = None,
    created_after: Annotated[Optional[str], _one(
        "Created on or after DATE (YYYY-MM-DD, UTC, or an ISO date-time).", "DATE")] = None,
    created_before: Annotated[Optional[str], _one(
        "Created on or before DATE (YYYY-MM-DD, UTC, or an ISO date-time).", "DATE")] = None,
    modified_after: Annotated[Optional[str], _one(
        "Modified on or after DATE (YYYY-MM-DD, UTC, or an ISO date-time).", "DATE")] = None,
    modified_before: Annotated[Optional[str], _one(
        "Modified on or before DATE (YYYY-MM-DD, UTC, or an ISO date-time).", "DATE")] = None,
    min_interactions: Annotated[Optional[str], _one(
        "Interaction count at least N (Copper's interaction_count; a deal without one does not "
        "match).", "N")] = None,
    max_interactions: Annotated[Optional[str], _one(
        "Interaction count at most N (a deal without one does not match).", "N")] = None,
    contacted_after: Annotated[Optional[str], _one(
        "Last contacted (date_last_contacted) on or after DATE (YYYY-MM-DD, UTC, or an ISO "
        "date-time); a deal never contacted does not match.", "DATE")] = None,
    contacted_before: Annotated[Optional[str], _one(
        "Last contacted on or before DATE (YYYY-MM-DD, UTC, or an ISO date-time); a deal never "
        "contacted does not match.", "DATE")] = None,
    stage_changed_after: Annotated[Optional[str], _one(
        "Stage last changed (date_stage_changed) on or after DATE (YYYY-MM-DD, UTC, or an ISO "
        "date-time); a deal without that date does not match.", "DATE")] = None,
    stage_changed_before: Annotated[Optional[str], _one(
        "Stage last changed on or before DATE (YYYY-MM-DD, UTC, or an ISO date-time); a deal "
        "without that date does not match.", "DATE")] = None,
    custom_field: Annotated[Optional[list[str]], typer.Option(
        help="Custom field by name or id: NAME=VALUE[,VALUE] (any of them; a MultiSelect "
        "holding all: repeat --custom-field; Dropdown and MultiSelect take option names, "
        "Checkbox true/false, Date YYYY-MM-DD), NAME>=N or NAME<=N (numbers, dates), NAME= "
        "(empty). Repeatable; all must hold. On Copper, text fields and NAME= are applied after "
        "fetching.",
        metavar="NAME=VALUE", rich_help_panel="Filters",
        autocompletion=C.custom_fields)] = None,
    sort: SortOpt = None, asc: AscOpt = None, limit: LimitOpt = None, all_: AllOpt = False,
    output: OutputOpt = None, fields_: FieldsOpt = None, raw: RawOpt = False,
) -> None:
    """Find opportunities matching every filter given (filters are ANDed).

    Names are accepted wherever Copper takes ids; DATE is YYYY-MM-DD.

    Example: oppcli search --status open --stage Negotiation --min-value 50000 -o json
    """
    from oppcli.criteria import SearchOptions, build_query

    opts = SearchOptions(
        name=name, name_contains=name_contains, ids=id_ or (), status=status or (),
        priority=priority or (), assignee=assignee or (), pipeline=pipeline or (),
        stage=stage or (), company=company or (), primary_contact=primary_contact or (),
        source=source or (), loss_reason=loss_reason or (), tag=tag or (),
        min_value=min_value, max_value=max_value, close_after=close_after,
        close_before=close_before, created_after=created_after, created_before=created_before,
        modified_after=modified_after, modified_before=modified_before,
        min_interactions=min_interactions, max_interactions=max_interactions,
        contacted_after=contacted_after, contacted_before=contacted_before,
        stage_changed_after=stage_changed_after, stage_changed_before=stage_changed_before,
        custom_field=custom_field or ())
    backend = STATE.backend()
    query = build_query(opts, backend.lookups(), STATE.input_date_order())
    _run_query(query, output, fields_, raw, sort, asc, limit, all_)


# ---- show -----------------------------------------------------------------------------------
def show(
    opportunity: Annotated[str, typer.Argument(help="Id (or exact name) of the opportunity.",
                                               metavar="ID", autocompletion=C.ids)],
    output: OutputOpt = None, fields_: FieldsOpt = None, raw: RawOpt = False,
) -> None:
    """Show one opportunity: every field; custom fields by name in a table.

    Example: oppcli show 1001 -o json | jq .monetary_value
    """
    record = STATE.backend().get(find_id(opportunity))
    emit_record(record, output, fields_, raw)


# ---- lookups ----------------------------------------------------------------------------------
def lookups(
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

    if refresh:
        STATE.refresh = True
        STATE._backend = None
    lk = STATE.backend().lookups()
    tables = (*F.LOOKUP_TABLES, "stages")
    if table is not None and table not in tables:
        raise ValidationError(f"unknown lookup table {table!r}", "valid: " + ", ".join(tables))
    fmt = output_format(output, ("table", "json"))
    if fmt != "table":
        data: Any = lk.rows(table) if table else lk.to_dict()
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    from oppcli.output import write_lookup_tables

    names = [table] if table else ["stages", *F.LOOKUP_TABLES[1:]]
    write_lookup_tables(lk, names, sys.stdout)
