"""The oppcli command line: one thin function per command.

Each command parses its options, builds a Query or a payload, calls the backend and hands the
records to output.py. Errors are OppcliErrors, turned into one stderr line and an exit code in
OppcliGroup.main, the single place that does so.
"""

from __future__ import annotations

import inspect
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from oppcli import __version__
from oppcli import completion as C
from oppcli import errors as E
from oppcli import fields as F
from oppcli.errors import OppcliError, UsageError, ValidationError

if TYPE_CHECKING:
    from oppcli.backends.base import Backend
    from oppcli.config import Settings
    from oppcli.output import Context

PROG = "oppcli"
TABLE_CAP = 100  # rows a terminal table shows unless --all or --limit


def err(message: str) -> None:
    """A message for people: stderr, never stdout."""
    print(f"{PROG}: {message}", file=sys.stderr)


# ---- the one place errors become exit codes ------------------------------------------------
class OppcliGroup(TyperGroup):
    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        try:
            rv = super().main(args=args, prog_name=prog_name or PROG, complete_var=complete_var,
                              standalone_mode=False, windows_expand_args=windows_expand_args,
                              **extra)
        except OppcliError as exc:
            if STATE.debug:
                traceback.print_exc()
            err(f"error: {exc}")
            code = exc.exit_code
        except typer.Abort as exc:
            if isinstance(exc.__context__, KeyboardInterrupt):  # Ctrl-C at a prompt
                code = E.INTERRUPTED
            else:  # end of input at a prompt
                err("aborted")
                code = E.USAGE
        except (KeyboardInterrupt):
            code = E.INTERRUPTED
        except Exception as exc:
            # Click's usage errors: duck-typed, because Typer bundles its own Click.
            if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
                ctx = getattr(exc, "ctx", None)
                where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
                if exc.format_message():  # empty: help was shown for a bare group
                    err(f"error: {exc.format_message()}{where}")
                code = int(exc.exit_code)
            elif isinstance(exc, BrokenPipeError):
                _silence_stdout()
                code = E.OK
            else:
                if STATE.debug:
                    traceback.print_exc()
                    err(f"unexpected error: {type(exc).__name__}: {exc}")
                else:
                    err(f"unexpected error: {type(exc).__name__}: {exc} "
                        "(run with --debug for the traceback)")
                code = E.UNEXPECTED
        else:
            code = rv if isinstance(rv, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code

    def invoke(self, ctx: Any) -> Any:
        # `oppcli list | head -1`: the reader went away. Caught here because Typer's main turns
        # EPIPE into a silent exit 1 before main() above could see it; the flush makes a reader
        # that leaves during the last buffered write show up here too, not at interpreter exit.
        try:
            rv = super().invoke(ctx)
            sys.stdout.flush()
        except BrokenPipeError:
            _silence_stdout()
            raise typer.Exit(E.OK) from None
        return rv


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


# ---- global state (set by the callback) -------------------------------------------------------
@dataclass
class State:
    flags: dict[str, Any] = field(default_factory=dict)
    profile: str | None = None
    debug: bool = False
    _settings: Settings | None = None
    _backend: Backend | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            from oppcli.config import load_settings

            self._settings = load_settings(profile=self.profile, flags=self.flags)
        return self._settings

    def backend(self) -> Backend:
        if self._backend is None:
            from oppcli.backends.base import open_backend

            self._backend = open_backend(self.settings())
        return self._backend

    def output_context(self) -> Context:
        from oppcli.output import Context

        backend = self.backend()
        return Context(backend.lookups(), backend.date_order())

    def input_date_order(self) -> str:
        return self.settings().date_order


STATE = State()
C.use_fixed_scripts()


def _version(value: bool) -> None:
    if value:
        print(f"{PROG} {__version__}")
        raise typer.Exit()


app = typer.Typer(
    cls=OppcliGroup,
    name=PROG,
    help="Manage sales opportunities the way Copper CRM models them: locally or through the API."
    "\n\nData goes to stdout (a table on a terminal, JSON otherwise); messages go to stderr."
    "\n\nExample: oppcli init --sample && oppcli search --status open --min-value 50000",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode="rich",
)


@app.callback()
def main_callback(
    store: Annotated[Optional[Path], typer.Option(
        "--store", help="Local store directory (env OPPCLI_STORE).", metavar="PATH")] = None,
    backend: Annotated[Optional[str], typer.Option(
        "--backend", help="Where data lives: local (the JSON store) or copper (the API); "
        "env OPPCLI_BACKEND.", metavar="local|copper",
        autocompletion=C.choices(("local", "copper")))] = None,
    profile: Annotated[Optional[str], typer.Option(
        "--profile", help="Config profile to use or change (env OPPCLI_PROFILE; "
        "default: default).", metavar="NAME")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Manage sales opportunities the way Copper CRM models them.

    Data goes to stdout (a table on a terminal, JSON otherwise); messages go to stderr.

    Example: oppcli init --sample && oppcli search --status open --min-value 50000
    """
    STATE.flags = {"store": str(store) if store else None, "backend": backend}
    STATE.profile = profile
    STATE.debug = debug
    STATE._settings = None
    STATE._backend = None


# ---- shared options --------------------------------------------------------------------------
def _complete_formats(incomplete: str) -> list[str]:
    from oppcli.output import FORMATS

    return [f for f in FORMATS if f.startswith(incomplete)]


OutputOpt = Annotated[Optional[str], typer.Option(
    "-o", "--output", help="table, json, jsonl, csv or tsv. Default: table on a terminal, "
    "json when piped.", autocompletion=_complete_formats, metavar="FORMAT")]
FieldsOpt = Annotated[Optional[str], typer.Option(
    "--fields", help="Only these fields, comma-separated, in this order (every format). "
    "Fields: " + ", ".join(F.FIELD_NAMES) + ".",
    autocompletion=C.field_names, metavar="A,B,C")]
SmallOutputOpt = Annotated[Optional[str], typer.Option(
    "-o", "--output", help="table or json. Default: table on a terminal, json when piped.",
    autocompletion=C.choices(("table", "json")), metavar="FORMAT")]
RawOpt = Annotated[bool, typer.Option(
    "--raw", help="CSV: do not neutralise cells starting with = + - @.")]


def _format(output: str | None, allowed: tuple[str, ...] | None = None) -> str:
    from oppcli.output import FORMATS, default_format

    allowed = allowed or FORMATS
    if output is None:
        return default_format()
    fmt = output.strip().lower()
    if fmt not in allowed:
        raise ValidationError(f"unknown output format {output!r} for this command",
                              "valid: " + ", ".join(allowed))
    return fmt


def _fields(text: str | None) -> list[str] | None:
    return F.parse_field_list(text) if text is not None else None


def _emit_one(record: dict[str, Any], output: str | None, fields_: str | None, raw: bool) -> None:
    from oppcli.output import emit_one

    fmt, names = _format(output), _fields(fields_)
    emit_one(record, fmt, STATE.output_context(), names=names, raw=raw)


# ---- init -----------------------------------------------------------------------------------
@app.command(rich_help_panel="Setup")
def init(
    sample: Annotated[bool, typer.Option("--sample", help="Fill the new store with demo data.")] = False,
) -> None:
    """Create the local store (at --store, OPPCLI_STORE, the profile's store or the default).

    Running it again on an existing store changes nothing.

    Example: oppcli init --sample && oppcli list
    """
    from oppcli.backends.local import LocalStore
    from oppcli.sample import DEFAULT_LOOKUPS, SAMPLE_LOOKUPS, sample_records

    settings = STATE.settings()
    if settings.backend != "local":
        raise UsageError(f"init creates a local store, but the backend is {settings.backend} "
                         f"(from {settings.source('backend')})", "add --backend local")
    path = settings.store_path
    if LocalStore.exists(path):
        store = LocalStore.open(path)
        count = sum(1 for _ in store.scan())
        err(f"a store already exists at {path} ({count} opportunities); left unchanged")
        return
    records = sample_records(date_order=settings.date_order) if sample else []
    LocalStore.create_store(path, lookups=SAMPLE_LOOKUPS if sample else DEFAULT_LOOKUPS,
                            date_order=settings.date_order, records=records)
    what = f" with {len(records)} sample opportunities" if sample else ""
    err(f"created a store at {path}{what}")


# ---- list and search --------------------------------------------------------------------------
SortOpt = Annotated[Optional[str], typer.Option(
    "--sort", help="Field to sort by (default: date_modified, newest first): "
    + ", ".join(F.SORTABLE) + ".",
    autocompletion=lambda incomplete: [n for n in F.SORTABLE if n.startswith(incomplete)],
    metavar="FIELD")]
AscOpt = Annotated[Optional[bool], typer.Option(
    "--asc/--desc", help="Sort direction (default: ascending with --sort, else newest first).",
    show_default=False)]
LimitOpt = Annotated[Optional[int], typer.Option(
    "--limit", "-n", min=0, help="Return at most N opportunities in total.", metavar="N")]
AllOpt = Annotated[bool, typer.Option(
    "--all", help=f"Every match, also in a terminal table (which otherwise shows {TABLE_CAP}).")]


def _run_query(query: Any, output: str | None, fields_: str | None, raw: bool,
               sort: str | None, asc: bool | None, limit: int | None, all_: bool) -> None:
    from oppcli.criteria import sort_options
    from oppcli.output import emit_many

    fmt, names = _format(output), _fields(fields_)
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


@app.command("list", rich_help_panel="Read")
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


@app.command(rich_help_panel="Read")
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
        "Priority: None, Low, Medium, High.", "PRIORITY", C.choices(F.PRIORITIES))] = None,
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
    custom_field: Annotated[Optional[list[str]], typer.Option(
        help="Custom field by name or id: NAME=VALUE[,VALUE] (any of; Dropdown and "
        "MultiSelect take option names, Checkbox true/false, Date YYYY-MM-DD), NAME>=N or "
        "NAME<=N (numbers, dates), NAME= (empty). Repeatable; all must hold.",
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
        custom_field=custom_field or ())
    backend = STATE.backend()
    query = build_query(opts, backend.lookups(), STATE.input_date_order())
    _run_query(query, output, fields_, raw, sort, asc, limit, all_)


# ---- show -----------------------------------------------------------------------------------
def _find_id(text: str) -> int:
    """An id, or the id of the one opportunity with this exact name."""
    from oppcli.query import Query

    raw = text.strip()
    if raw.isdigit():
        return int(raw)
    hits = list(STATE.backend().search(Query(name=raw, sort_by="id", descending=False, limit=20)))
    if not hits:
        raise E.NotFoundError(f"no opportunity named {raw!r}", "use the id, or `oppcli search "
                              "--name-contains TEXT` to look")
    if len(hits) > 1:
        listed = ", ".join(str(h["id"]) for h in hits)
        raise E.ConflictError(f"{len(hits)} opportunities are named {raw!r} (ids {listed})",
                              "give the id")
    return int(hits[0]["id"])


@app.command(rich_help_panel="Read")
def show(
    opportunity: Annotated[str, typer.Argument(help="Id (or exact name) of the opportunity.",
                                               metavar="ID", autocompletion=C.ids)],
    output: OutputOpt = None, fields_: FieldsOpt = None, raw: RawOpt = False,
) -> None:
    """Show one opportunity: every field; custom fields by name in a table.

    Example: oppcli show 1001 -o json | jq .monetary_value
    """
    record = STATE.backend().get(_find_id(opportunity))
    _emit_one(record, output, fields_, raw)


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


@app.command(rich_help_panel="Write")
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
    from oppcli.models import changes_from_options, check_create, payload_from_json

    plain, aliases = _split_values(values)
    backend = STATE.backend()
    lookups = backend.lookups()
    order = STATE.input_date_order()
    # JSON is the API's shape: its close_date is in the store's order, as `show -o json` wrote it.
    base = (payload_from_json(_read_json_input(from_json), lookups, backend.date_order())
            if from_json else None)
    payload = changes_from_options(plain, aliases, lookups=lookups, date_order=order,
                                   tags=tag, custom=custom_field, base=base,
                                   store_order=backend.date_order())
    check_create(payload)
    _format(output), _fields(fields_)  # check before writing anything
    record = backend.create(payload)
    err(f"created opportunity {record['id']}")
    _emit_one(record, output, fields_, raw)


@app.command(rich_help_panel="Write")
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
        autocompletion=lambda incomplete: [f.name for f in F.WRITABLE
                                           if f.name.startswith(incomplete)])] = None,
    output: OutputOpt = None, fields_: FieldsOpt = None, raw: RawOpt = False,
    **values: Any,
) -> None:
    """Change only the given fields of an opportunity; prints the updated record.

    Example: oppcli update 1001 --stage Negotiation --add-tag hot --clear close_date
    """
    from oppcli.models import changes_from_options

    plain, aliases = _split_values(values)
    backend = STATE.backend()
    opp_id = _find_id(opportunity)
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
    _format(output), _fields(fields_)
    record = backend.update(opp_id, changes)
    err(f"updated opportunity {record['id']}")
    _emit_one(record, output, fields_, raw)


# ---- delete -----------------------------------------------------------------------------------
@app.command(rich_help_panel="Write")
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

    fmt = _format(output)
    backend = STATE.backend()
    ids = [_find_id(o) for o in opportunities]
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
    deleted = backend.delete([r["id"] for r in records])
    err(f"deleted {len(deleted)}: " + ", ".join(str(r["id"]) for r in deleted))
    results = ({"id": r["id"], "is_deleted": True} for r in deleted)
    if fmt == "table":
        return
    columns = ["id", "is_deleted"] if fmt in ("csv", "tsv") else None
    emit_many(results, fmt, ctx, names=columns)


# ---- lookups ----------------------------------------------------------------------------------
@app.command(rich_help_panel="Read")
def lookups(
    table: Annotated[Optional[str], typer.Argument(
        metavar="TABLE",
        help="pipelines, stages, users, customer_sources, loss_reasons, "
        "custom_field_definitions, companies or people; all when left out.",
        autocompletion=lambda incomplete: [t for t in (*F.LOOKUP_TABLES, "stages")
                                           if t.startswith(incomplete)])] = None,
    output: SmallOutputOpt = None,
) -> None:
    """Show the lookup tables that names resolve against (stages, users, sources, ...).

    Example: oppcli lookups stages
    """
    import orjson

    lk = STATE.backend().lookups()
    tables = (*F.LOOKUP_TABLES, "stages")
    if table is not None and table not in tables:
        raise ValidationError(f"unknown lookup table {table!r}", "valid: " + ", ".join(tables))
    fmt = _format(output, ("table", "json"))
    if fmt != "table":
        data: Any = lk.rows(table) if table else lk.to_dict()
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    for name in ([table] if table else ["pipelines", "stages", *F.LOOKUP_TABLES[1:]]):
        if name == "pipelines" and not table:
            continue
        rows = lk.rows(name)
        t = Table(title=name, title_justify="left")
        for col in ("id", "name", "detail"):
            t.add_column(col)
        for r in rows:
            detail = ""
            if name == "stages":
                detail = f"{r['pipeline_name']}, {r.get('win_probability')}%"
            elif name in ("users", "people") and r.get("email"):
                detail = str(r["email"])
            elif name == "custom_field_definitions":
                opts = ", ".join(o["name"] for o in r.get("options") or [])
                detail = r.get("data_type", "") + (f": {opts}" if opts else "")
            t.add_row(str(r["id"]), str(r.get("name")), detail)
        console.print(t)


# ---- config ----------------------------------------------------------------------------------
config_app = typer.Typer(help="Show and change settings (a TOML file; see `oppcli config path`)."
                         "\n\nExample: oppcli --profile work config set backend copper",
                         no_args_is_help=True)
app.add_typer(config_app, name="config", rich_help_panel="Setup")


KEY_HELP = ("Setting: backend, store, date_order (alias copper.date_order), copper.url, "
            "copper.api_key, copper.user_email.")


def _complete_keys(incomplete: str) -> list[str]:
    from oppcli.config import KEYS

    return [k for k in KEYS if k.startswith(incomplete)]


@config_app.command("show")
def config_show(output: SmallOutputOpt = None) -> None:
    """Every setting, its value and where it came from (the API key masked).

    Example: oppcli --profile work config show
    """
    import orjson

    from oppcli.config import KEYS, mask

    settings = STATE.settings()
    rows = [{"key": k, "value": (mask(settings.values[k]) if KEYS[k].secret and settings.values[k]
                                 else settings.values[k]),
             "source": settings.source(k)} for k in KEYS]
    fmt = _format(output, ("table", "json"))
    if fmt == "table":
        from rich.console import Console
        from rich.table import Table

        t = Table(title=f"profile {settings.profile} ({settings.config_file})", title_justify="left")
        for col in ("key", "value", "source"):
            t.add_column(col)
        for r in rows:
            t.add_row(r["key"], "" if r["value"] is None else str(r["value"]), r["source"])
        Console(highlight=False).print(t)
        return
    doc = {"profile": settings.profile, "config_file": str(settings.config_file),
           "settings": {r["key"]: r["value"] for r in rows},
           "sources": {r["key"]: r["source"] for r in rows}}
    sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")


@config_app.command("get")
def config_get(
    key: Annotated[str, typer.Argument(help=KEY_HELP, metavar="KEY",
                                       autocompletion=_complete_keys)],
    reveal: Annotated[bool, typer.Option("--reveal", help="Print a secret unmasked.")] = False,
) -> None:
    """Print one setting's effective value (empty line when unset).

    Example: oppcli config get store
    """
    from oppcli.config import KEYS, canonical_key, mask

    name = canonical_key(key)
    value = STATE.settings().values[name]
    if value is not None and KEYS[name].secret and not reveal:
        value = mask(value)
    print("" if value is None else value)


@config_app.command("set")
def config_set(
    key: Annotated[str, typer.Argument(help=KEY_HELP, metavar="KEY",
                                       autocompletion=_complete_keys)],
    value: Annotated[str, typer.Argument(
        help="New value: backend local|copper; date_order MDY|DMY; store a path; copper.url an "
        "https:// URL (http only for loopback).", metavar="VALUE")],
) -> None:
    """Set a key in the selected profile (--profile, OPPCLI_PROFILE, or default).

    Example: oppcli config set date_order DMY
    """
    import os

    from oppcli.config import DEFAULT_PROFILE, set_value

    profile = STATE.profile or os.environ.get("OPPCLI_PROFILE") or DEFAULT_PROFILE
    path = set_value(profile, key, value)
    err(f"set {key} in profile {profile!r} ({path})")


@config_app.command("unset")
def config_unset(
    key: Annotated[str, typer.Argument(help=KEY_HELP, metavar="KEY",
                                       autocompletion=_complete_keys)],
) -> None:
    """Remove a key from the selected profile, so its default applies again.

    Example: oppcli config unset store
    """
    import os

    from oppcli.config import DEFAULT_PROFILE, set_value

    profile = STATE.profile or os.environ.get("OPPCLI_PROFILE") or DEFAULT_PROFILE
    path = set_value(profile, key, None)
    err(f"unset {key} in profile {profile!r} ({path})")


@config_app.command("path")
def config_path_cmd() -> None:
    """Print the config file's path.

    Example: oppcli config path
    """
    from oppcli.config import config_path

    print(config_path())


def main() -> None:
    """Console-script entry point."""
    app()
