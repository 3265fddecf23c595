"""Commands that write: create, update, delete."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from oppcli import errors as E
from oppcli.cli import completion as C
from oppcli.cli.commands import bulk as B
from oppcli.cli.commands.common import FieldsOpt, OutputOpt, RawOpt, Run, field_list, run_of
from oppcli.cli.typer_glue import given, takes
from oppcli.domain import options as O
from oppcli.errors import UsageError, ValidationError

if TYPE_CHECKING:
    from oppcli.io import Streams


# ---- create and update: the field flags are declared once, in domain/options.py ----------
def _read_json_input(source: str, streams: Streams) -> Any:
    import orjson

    if source == "-":
        data = streams.piped_stdin("--from-json - reads JSON", "pipe the JSON in, or give a "
                                   "file name")
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


@takes(O.CREATE_OPTS, "fields", complete=C.for_opt)
def create(
    ctx: typer.Context,
    from_json: Annotated[Optional[str], typer.Option(
        "--from-json", help="Read the record as a JSON object from FILE, or - for stdin; "
        "flags override its fields.", metavar="FILE")] = None,
    output: OutputOpt = None, fields_: FieldsOpt = None, raw: RawOpt = False,
) -> None:
    """Create an opportunity; prints the stored record.

    --name and a primary contact are required. Unset fields get Copper's defaults: status
    Open, priority None, the default pipeline's first stage and its win probability, and the
    primary contact's company.

    Example: oppcli create --name "Acme - Pilot" --primary-contact "Nancy Davolio"
    --stage Sales/Qualified --monetary-value 12000
    """
    run = run_of(ctx)
    run.output_format(output), field_list(fields_)  # checked before anything is written
    base = _read_json_input(from_json, run.streams) if from_json else None
    record = run.session.create(from_json=base, **given(ctx, "fields"))
    run.notice(f"created opportunity {record['id']}")
    run.emit_record(record, output, fields_, raw)


@takes(O.FILTERS, "where", spelling=B.where_flag, complete=C.for_opt,
       panel=lambda _: B.SELECT_PANEL)
@takes(O.UPDATE_OPTS, "fields", complete=C.for_opt, panel=B.change_panel)
def update(
    ctx: typer.Context,
    opportunities: Annotated[Optional[list[str]], typer.Argument(
        help="Ids (or exact names) of the opportunities; - reads them from stdin (JSON records "
        "as search prints them, or one id per line).", metavar="[ID...|-]",
        autocompletion=C.ids, show_default=False)] = None,
    from_json: Annotated[Optional[str], typer.Option(
        "--from-json", help="Change the fields of this JSON object (part of a record, in the "
        "API's shape) from FILE, or - for stdin; flags override its fields.",
        metavar="FILE", rich_help_panel="Change: fields")] = None,
    dry_run: B.DryRunOpt = False, yes: B.YesOpt = False, not_done: B.NotDoneOpt = None,
    output: OutputOpt = None, fields_: FieldsOpt = None, raw: RawOpt = False,
    saved: B.SavedWhereOpt = None,
) -> None:
    """Change only the given fields of one opportunity, or of many at once.

    One id: prints the updated record. Many (several ids, - for stdin, or --where-*
    filters): shows the count and the first deals and asks on the terminal (--yes in
    scripts), writes every deal that changes (one pass on the local store), prints per deal
    {"id", "name", "result", "changes": {field: [before, after]}} with -o json/jsonl, and
    records one batch: `oppcli undo BATCH` takes it all back. The --where-* options select
    deals; every other field option changes them.

    Example: oppcli update 1001 --stage Negotiation --add-tag hot --clear close_date

    \b
    Many at once:
      oppcli update --where-assignee Ada --where-status Open --assignee Ben
      oppcli search --tag webinar -o jsonl | oppcli update - --add-tag nurture
    """
    run = run_of(ctx)
    ids = opportunities or []
    where = {k: v for k, v in given(ctx, "where").items() if v is not None}
    if saved is not None:
        where["saved"] = saved
    changes = given(ctx, "fields")
    if not B.is_bulk(ids, where) and ids and not dry_run:
        run.output_format(output), field_list(fields_)
        base = _read_json_input(from_json, run.streams) if from_json else None
        record = run.session.update(ids[0], from_json=base, **changes)
        run.notice(f"updated opportunity {record['id']}")
        run.emit_record(record, output, fields_, raw)
        return
    fmt = run.output_format(output, B.BULK_FORMATS)
    if fields_ is not None or raw:
        raise UsageError("--fields and --raw shape a record; a bulk update prints the changes",
                         "leave them out, or pipe the output into jq")
    chosen = B.selection(run, ids, where, stdin_taken=from_json == "-")
    base = _read_json_input(from_json, run.streams) if from_json else None
    plan = run.session.plan_update(chosen, from_json=base, **changes)
    B.run_plan(run, plan, fmt, dry_run=dry_run, yes=yes, not_done=not_done)


# ---- delete -----------------------------------------------------------------------------------
@takes(O.FILTERS, "where", spelling=B.where_flag, complete=C.for_opt,
       panel=lambda _: B.SELECT_PANEL)
def delete(
    ctx: typer.Context,
    opportunities: Annotated[Optional[list[str]], typer.Argument(
        help="Ids of the opportunities; - reads them from stdin (JSON records as search "
        "prints them, or one id per line).", metavar="[ID...|-]", autocompletion=C.ids,
        show_default=False)] = None,
    yes: Annotated[bool, typer.Option(
        "--yes", "-y", help="Do not ask; required without a terminal.")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Show what would be deleted; delete nothing.")] = False,
    not_done: B.NotDoneOpt = None,
    output: OutputOpt = None, saved: B.SavedWhereOpt = None,
) -> None:
    """Delete opportunities permanently (all or nothing: an unknown id deletes none).

    Asks first on a terminal; with no terminal it refuses (exit 2) unless --yes is given.
    Prints Copper's answer for each: {"id": N, "is_deleted": true}. With - or --where-*
    filters: deletes every deal selected, as one batch (`oppcli undo BATCH` brings them all
    back).

    Example: oppcli delete 1001 1002 --yes
    """
    run = run_of(ctx)
    ids = opportunities or []
    where = {k: v for k, v in given(ctx, "where").items() if v is not None}
    if saved is not None:
        where["saved"] = saved
    if "-" in ids or where:
        fmt = run.output_format(output, B.BULK_FORMATS)
        plan = run.session.plan_delete(B.selection(run, ids, where))
        B.run_plan(run, plan, fmt, dry_run=dry_run, yes=yes, not_done=not_done)
        return
    if not ids:
        raise UsageError("which opportunities?", "give ids, - to read them from stdin, or "
                         "--where-* filters (see --help)")
    _delete_ids(run, ids, yes=yes, dry_run=dry_run, output=output)


def _delete_ids(run: Run, ids: list[str], *, yes: bool, dry_run: bool,
                output: str | None) -> None:
    from oppcli.output import emit_many

    fmt = run.output_format(output)
    session = run.session
    records = session.to_delete(*ids)  # unknown id: exit 4, nothing deleted
    listing = ", ".join(f"{r['id']} {r.get('name')!r}" for r in records)
    if dry_run:
        run.notice(f"would delete {len(records)}: {listing} (dry run: nothing deleted)")
        emit_many(iter(records), fmt, run.output_context(), run.streams)
        return
    if not yes:
        if not run.streams.can_prompt:
            raise UsageError(f"refusing to delete {len(records)} opportunit"
                             f"{'y' if len(records) == 1 else 'ies'} without confirmation",
                             "add --yes to delete from a script")
        if not run.streams.confirm(f"Delete {listing}?"):
            raise E.Declined("nothing deleted")
    out = run.output_context()  # reads lookups.json: a corrupt store fails before deleting
    backend = session.backend
    try:
        with backend.batch() if len(records) > 1 else contextlib.nullcontext() as batch:
            deleted = backend.delete([r["id"] for r in records])
    except E.PartialFailure as exc:  # say on stdout what was deleted, then fail with exit 7
        _deleted_results(exc.done, fmt, out, run.streams)
        raise
    undo = f"; `oppcli undo {batch.id}` brings them back" if batch is not None else ""
    run.notice(f"deleted {len(deleted)}: " + ", ".join(str(r["id"]) for r in deleted) + undo)
    _deleted_results(deleted, fmt, out, run.streams)


def _deleted_results(deleted: list[dict[str, Any]], fmt: str, ctx: Any, streams: Streams) -> None:
    from oppcli.output import emit_many

    if fmt == "table":
        return
    results = ({"id": r["id"], "is_deleted": True} for r in deleted)
    columns = ["id", "is_deleted"] if fmt in ("csv", "tsv") else None
    emit_many(results, fmt, ctx, streams, names=columns)
