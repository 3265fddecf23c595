"""Commands that write: create, update, delete."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from oppcli import completion as C
from oppcli import errors as E
from oppcli import fields as F
from oppcli.commands.common import (
    STATE,
    FieldsOpt,
    OutputOpt,
    RawOpt,
    emit_record,
    err,
    field_list,
    find_id,
    output_format,
)
from oppcli.errors import UsageError, ValidationError


# ---- create and update: one option per writable field, from fields.py ----------------------
def _field_parameters() -> list[inspect.Parameter]:
    from oppcli.models import ALIASES

    by_name = {target: alias for alias, (target, _) in ALIASES.items()}
    params = []
    for fld in F.SIMPLE_WRITABLE:
        extra = f" One of: {', '.join(fld.choices)}." if fld.choices else ""
        if fld.name in by_name:
            extra += f" An id; --{by_name[fld.name].replace('_', '-')} takes a name."
        params.append(inspect.Parameter(
            fld.name, inspect.Parameter.KEYWORD_ONLY, default=None,
            annotation=Annotated[Optional[str], typer.Option(
                fld.flag, help=fld.help + extra, rich_help_panel="Fields",
                metavar=fld.metavar,
                autocompletion=C.choices(fld.choices) if fld.choices else None)]))
    return params


ALIAS_TABLES = {"pipeline": "pipelines", "stage": "stages", "assignee": "users",
                "source": "customer_sources", "loss_reason": "loss_reasons",
                "company": "companies", "primary_contact": "people"}
ALIAS_HELP = {
    "pipeline": "Pipeline by name (or id).",
    "stage": "Stage by name (or id, or Pipeline/Stage).",
    "assignee": "Owner by user name or email (or id).",
    "source": "Customer source by name (or id).",
    "loss_reason": "Loss reason by name (or id).",
    "company": "Company by name (or id).",
    "primary_contact": "Primary contact by name or email (or id).",
}


def _alias_parameters() -> list[inspect.Parameter]:
    return [inspect.Parameter(
        alias, inspect.Parameter.KEYWORD_ONLY, default=None,
        annotation=Annotated[Optional[str], typer.Option(
            "--" + alias.replace("_", "-"), help=text, rich_help_panel="Fields by name",
            metavar="NAME", autocompletion=C.names(ALIAS_TABLES[alias]))])
        for alias, text in ALIAS_HELP.items()]


def _with_parameters(extra: list[inspect.Parameter]) -> Any:
    """Give a `**values` command the field and alias options, derived from fields.py."""
    def wrap(func: Any) -> Any:
        sig = inspect.signature(func, eval_str=True)
        own = [p for p in sig.parameters.values() if p.kind != inspect.Parameter.VAR_KEYWORD]
        # Help order: the command's arguments, the field options, then the command's own options.
        arguments = [p for p in own if "ArgumentInfo" in repr(p.annotation)]
        options = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own
                   if p not in arguments]
        params = arguments + extra + options
        func.__signature__ = sig.replace(parameters=params)
        func.__annotations__ = {p.name: p.annotation for p in params}
        return func
    return wrap


def _split_values(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    fields_ = {f.name: values.pop(f.name, None) for f in F.SIMPLE_WRITABLE}
    aliases = {a: values.pop(a, None) for a in ALIAS_HELP}
    return fields_, aliases


def _read_json_input(source: str) -> Any:
    import orjson

    if source == "-":
        if sys.stdin is None or sys.stdin.isatty():
            raise UsageError("--from-json - reads JSON from stdin, but stdin is a terminal",
                             "pipe the JSON in, or give a file name")
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
        where = "stdin"
    else:
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {source}: {exc.strerror}") from exc
        where = source
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"malformed JSON in {where}: {exc}", "check the input with jq .") from None


TagOpt = Annotated[Optional[list[str]], typer.Option(
    "--tag", help="Tag; repeatable or comma-separated. On update it replaces all tags.",
    rich_help_panel="Fields", metavar="TAG")]
CustomOpt = Annotated[Optional[list[str]], typer.Option(
    "--custom-field", help="NAME_OR_ID=VALUE; repeatable. Dropdown and MultiSelect take "
    "option names (MultiSelect comma-separated), Checkbox true/false, Date YYYY-MM-DD, "
    "numbers and text as they are; an empty VALUE clears it.",
    rich_help_panel="Fields", metavar="NAME=VALUE", autocompletion=C.custom_fields)]


@_with_parameters(_field_parameters() + _alias_parameters())
def create(
    tag: TagOpt = None,
    custom_field: CustomOpt = None,
    from_json: Annotated[Optional[str], typer.Option(
        "--from-json", help="Read the record as a JSON object from FILE, or - for stdin; "
        "flags override its fields.", metavar="FILE")] = None,
    output: OutputOpt = None, fields_: FieldsOpt = None, raw: RawOpt = False,
    **values: Any,
) -> None:
    """Create an opportunity; prints the stored record.

    --name and a primary contact are required. Unset fields get Copper's defaults: status
    Open, priority None, the default pipeline's first stage and its win probability, and the
    primary contact's company.

    Example: oppcli create --name "Acme - Pilot" --primary-contact "Nancy Davolio"
    --stage Sales/Qualified --monetary-value 12000
    """
    from oppcli.models import changes_from_options, check_create, payload_from_json, without_nulls_kept

    plain, aliases = _split_values(values)
    backend = STATE.backend()
    lookups = backend.lookups()
    order = STATE.input_date_order()
    # JSON is the API's shape: its close_date is in the store's order, as `show -o json` wrote it.
    base = (without_nulls_kept(payload_from_json(_read_json_input(from_json), lookups,
                                                 backend.date_order()))
            if from_json else None)
    payload = changes_from_options(plain, aliases, lookups=lookups, date_order=order,
                                   tags=tag, custom=custom_field, base=base,
                                   store_order=backend.date_order())
    check_create(payload)
    output_format(output), field_list(fields_)  # check before writing anything
    record = backend.create(payload)
    err(f"created opportunity {record['id']}")
    emit_record(record, output, fields_, raw)


@_with_parameters(_field_parameters() + _alias_parameters())
def update(
    opportunity: Annotated[str, typer.Argument(help="Id (or exact name) of the opportunity.",
                                               metavar="ID", autocompletion=C.ids)],
    tag: TagOpt = None,
    add_tag: Annotated[Optional[list[str]], typer.Option(
        "--add-tag", help="Add a tag, keeping the others; repeatable.", rich_help_panel="Fields",
        metavar="TAG")] = None,
    remove_tag: Annotated[Optional[list[str]], typer.Option(
        "--remove-tag", help="Remove a tag; repeatable.", rich_help_panel="Fields",
        metavar="TAG")] = None,
    custom_field: CustomOpt = None,
    clear: Annotated[Optional[list[str]], typer.Option(
        "--clear", help="Set FIELD to null (tags: empty; custom_fields: all empty); repeatable.",
        rich_help_panel="Fields", metavar="FIELD",
        autocompletion=C.choices(tuple(f.name for f in F.WRITABLE)))] = None,
    output: OutputOpt = None, fields_: FieldsOpt = None, raw: RawOpt = False,
    **values: Any,
) -> None:
    """Change only the given fields of an opportunity; prints the updated record.

    Example: oppcli update 1001 --stage Negotiation --add-tag hot --clear close_date
    """
    from oppcli.models import changes_from_options

    plain, aliases = _split_values(values)
    backend = STATE.backend()
    opp_id = find_id(opportunity)
    context_pipeline = None
    if aliases.get("stage") is not None and aliases.get("pipeline") is None:
        context_pipeline = backend.get(opp_id).get("pipeline_id")
    changes = changes_from_options(
        plain, aliases, lookups=backend.lookups(), date_order=STATE.input_date_order(),
        tags=tag, add_tags=add_tag, remove_tags=remove_tag, custom=custom_field, clear=clear,
        context_pipeline=context_pipeline, store_order=backend.date_order())
    if not changes:
        raise UsageError("nothing to change", "give at least one field option, e.g. --status Won; "
                         "see `oppcli update --help`")
    output_format(output), field_list(fields_)
    record = backend.update(opp_id, changes)
    err(f"updated opportunity {record['id']}")
    emit_record(record, output, fields_, raw)


# ---- delete -----------------------------------------------------------------------------------
def delete(
    opportunities: Annotated[list[str], typer.Argument(help="Ids of the opportunities.",
                                                       metavar="ID...", autocompletion=C.ids)],
    yes: Annotated[bool, typer.Option(
        "--yes", "-y", help="Do not ask; required without a terminal.")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Show what would be deleted; delete nothing.")] = False,
    output: OutputOpt = None,
) -> None:
    """Delete opportunities permanently (all or nothing: an unknown id deletes none).

    Asks first on a terminal; with no terminal it refuses (exit 2) unless --yes is given.
    Prints Copper's answer for each: {"id": N, "is_deleted": true}.

    Example: oppcli delete 1001 1002 --yes
    """
    from oppcli.output import emit_many

    fmt = output_format(output)
    backend = STATE.backend()
    ids = [find_id(o) for o in opportunities]
    records = [backend.get(i) for i in dict.fromkeys(ids)]  # unknown id: exit 4, nothing deleted
    listing = ", ".join(f"{r['id']} {r.get('name')!r}" for r in records)
    if dry_run:
        err(f"would delete {len(records)}: {listing} (dry run: nothing deleted)")
        emit_many(iter(records), fmt, STATE.output_context())
        return
    if not yes:
        if not (sys.stdin and sys.stdin.isatty() and sys.stderr.isatty()):
            raise UsageError(f"refusing to delete {len(records)} opportunit"
                             f"{'y' if len(records) == 1 else 'ies'} without confirmation",
                             "add --yes to delete from a script")
        if not typer.confirm(f"Delete {listing}?", default=False, err=True):
            err("nothing deleted")
            raise typer.Exit(E.USAGE)
    ctx = STATE.output_context()  # reads lookups.json: a corrupt store fails before deleting
    try:
        deleted = backend.delete([r["id"] for r in records])
    except E.PartialFailure as exc:  # say on stdout what was deleted, then fail with exit 7
        _deleted_results(exc.done, fmt, ctx)
        raise
    err(f"deleted {len(deleted)}: " + ", ".join(str(r["id"]) for r in deleted))
    _deleted_results(deleted, fmt, ctx)


def _deleted_results(deleted: list[dict[str, Any]], fmt: str, ctx: Any) -> None:
    from oppcli.output import emit_many

    if fmt == "table":
        return
    results = ({"id": r["id"], "is_deleted": True} for r in deleted)
    columns = ["id", "is_deleted"] if fmt in ("csv", "tsv") else None
    emit_many(results, fmt, ctx, names=columns)
