"""The search filters and the field flags, declared once, as data.

Every front end reads these declarations: the CLI turns them into options (cli/typer_glue.py)
for each command that takes them (search, export, and the commands to come, also under
another spelling), the library API checks its keywords against them (api.py), and a JSON
schema can be generated from them (schema()). A declaration's `name` is the keyword (the flag
without dashes, with underscores); a repeatable flag also takes its `plural` as a list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from oppcli.domain import fields as F


@dataclass(frozen=True)
class Opt:
    name: str  # the keyword: the flag's name with underscores (status, min_value, add_tag)
    flag: str  # --status
    help: str
    metavar: str = "VALUE"
    many: bool = False  # repeatable (and comma-separated where the help says so)
    plural: str | None = None  # the keyword taking a list (statuses, add_tags)
    kind: str = "string"  # for a schema: string, number, integer, date
    choices: tuple[str, ...] = ()
    complete: str | None = None  # completion: a lookup table, "custom_fields", "ids", "choices"
    panel: str | None = None  # the help panel it is listed under

    def keywords(self) -> tuple[str, ...]:
        return (self.name, self.plural) if self.plural else (self.name,)


def _many(name: str, help_: str, metavar: str, plural: str, complete: str | None = None,
          choices: tuple[str, ...] = ()) -> Opt:
    return Opt(name, "--" + name.replace("_", "-"),
               help_ + " Repeatable or comma-separated; any of them matches.", metavar,
               many=True, plural=plural, complete=complete or ("choices" if choices else None),
               choices=choices, panel="Filters")


def _one(name: str, help_: str, metavar: str = "VALUE", kind: str = "string") -> Opt:
    return Opt(name, "--" + name.replace("_", "-"), help_, metavar, kind=kind, panel="Filters")


_UTC_DATE = "(YYYY-MM-DD, UTC, or an ISO date-time)"
_CLOSE_DATE = "(YYYY-MM-DD, or MM/DD/YYYY in the configured order)."

# search's filters, in the order its help lists them.
FILTERS: tuple[Opt, ...] = (
    _one("name", "Exact name (case-insensitive).", "TEXT"),
    _one("name_contains", "Name contains TEXT (case-insensitive; on Copper applied after "
         "fetching).", "TEXT"),
    Opt("id", "--id", "Opportunity id. Repeatable or comma-separated.", "ID", many=True,
        plural="ids", kind="integer", panel="Filters"),
    _many("status", "Status: Open, Won, Lost, Abandoned.", "STATUS", "statuses",
          choices=F.STATUSES),
    _many("priority", "Priority: None, Low, Medium, High (on Copper applied after fetching).",
          "PRIORITY", "priorities", choices=F.PRIORITIES),
    _many("assignee", "Owner: user name, email or id; 'none' for no owner.", "USER", "assignees",
          "users"),
    _many("pipeline", "Pipeline name or id.", "PIPELINE", "pipelines", "pipelines"),
    _many("stage", "Stage name or id, or Pipeline/Stage.", "STAGE", "stages", "stages"),
    _many("company", "Company name or id.", "COMPANY", "companies", "companies"),
    _many("primary_contact", "Primary contact: person name, email or id.", "PERSON",
          "primary_contacts", "people"),
    _many("source", "Customer source name or id; 'none' for no source.", "SOURCE", "sources",
          "customer_sources"),
    _many("loss_reason", "Loss reason name or id; 'none' for no reason.", "REASON",
          "loss_reasons", "loss_reasons"),
    _many("tag", "Tag.", "TAG", "tags"),
    _one("min_value", "Monetary value at least N (a number).", "N", "number"),
    _one("max_value", "Monetary value at most N (a number).", "N", "number"),
    _one("close_after", f"Close date on or after DATE {_CLOSE_DATE}", "DATE", "date"),
    _one("close_before", f"Close date on or before DATE {_CLOSE_DATE}", "DATE", "date"),
    _one("created_after", f"Created on or after DATE {_UTC_DATE}.", "DATE", "date"),
    _one("created_before", f"Created on or before DATE {_UTC_DATE}.", "DATE", "date"),
    _one("modified_after", f"Modified on or after DATE {_UTC_DATE}.", "DATE", "date"),
    _one("modified_before", f"Modified on or before DATE {_UTC_DATE}.", "DATE", "date"),
    _one("min_interactions", "Interaction count at least N (Copper's interaction_count; a deal "
         "without one does not match).", "N", "integer"),
    _one("max_interactions", "Interaction count at most N (a deal without one does not match).",
         "N", "integer"),
    _one("contacted_after", f"Last contacted (date_last_contacted) on or after DATE {_UTC_DATE}; "
         "a deal never contacted does not match.", "DATE", "date"),
    _one("contacted_before", f"Last contacted on or before DATE {_UTC_DATE}; a deal never "
         "contacted does not match.", "DATE", "date"),
    _one("stage_changed_after", "Stage last changed (date_stage_changed) on or after DATE "
         f"{_UTC_DATE}; a deal without that date does not match.", "DATE", "date"),
    _one("stage_changed_before", f"Stage last changed on or before DATE {_UTC_DATE}; a deal "
         "without that date does not match.", "DATE", "date"),
    Opt("custom_field", "--custom-field",
        "Custom field by name or id: NAME=VALUE[,VALUE] (any of them; a MultiSelect holding "
        "all: repeat --custom-field; Dropdown and MultiSelect take option names, Checkbox "
        "true/false, Date YYYY-MM-DD), NAME>=N or NAME<=N (numbers, dates), NAME= (empty). "
        "Repeatable; all must hold. On Copper, text fields and NAME= are applied after fetching.",
        "NAME=VALUE", many=True, plural="custom_fields", complete="custom_fields",
        panel="Filters"),
)

# forecast and stale look at open deals only: search's filters less the status.
OPEN_FILTERS: tuple[Opt, ...] = tuple(o for o in FILTERS if o.name != "status")

# ---- the field flags of create and update ------------------------------------------------------
# A field that holds an id has a flag taking the id (--assignee-id) and one taking a name
# (--assignee): ALIASES maps the name flag to its field and the lookup table names resolve in.
ALIASES: dict[str, tuple[str, str]] = {
    "pipeline": ("pipeline_id", "pipelines"),
    "stage": ("pipeline_stage_id", "stages"),
    "assignee": ("assignee_id", "users"),
    "source": ("customer_source_id", "customer_sources"),
    "loss_reason": ("loss_reason_id", "loss_reasons"),
    "company": ("company_id", "companies"),
    "primary_contact": ("primary_contact_id", "people"),
}
ALIAS_HELP = {
    "pipeline": "Pipeline by name (or id).",
    "stage": "Stage by name (or id, or Pipeline/Stage).",
    "assignee": "Owner by user name or email (or id).",
    "source": "Customer source by name (or id).",
    "loss_reason": "Loss reason by name (or id).",
    "company": "Company by name (or id).",
    "primary_contact": "Primary contact by name or email (or id).",
}


def _field_opts() -> tuple[Opt, ...]:
    by_field = {target: alias for alias, (target, _) in ALIASES.items()}
    out = []
    for fld in F.SIMPLE_WRITABLE:
        extra = f" One of: {', '.join(fld.choices)}." if fld.choices else ""
        if fld.name in by_field:
            extra += f" An id; --{by_field[fld.name].replace('_', '-')} takes a name."
        kind = {F.INT: "integer", F.REF: "integer", F.MONEY: "number", F.PERCENT: "number",
                F.DATE: "date"}.get(fld.kind, "string")
        out.append(Opt(fld.name, fld.flag, fld.help + extra, fld.metavar or "VALUE", kind=kind,
                       choices=tuple(fld.choices or ()),
                       complete="choices" if fld.choices else None, panel="Fields"))
    return tuple(out)


FIELD_OPTS: tuple[Opt, ...] = _field_opts()
NAME_OPTS: tuple[Opt, ...] = tuple(
    Opt(alias, "--" + alias.replace("_", "-"), text, "NAME", complete=ALIASES[alias][1],
        panel="Fields by name") for alias, text in ALIAS_HELP.items())

TAG = Opt("tag", "--tag", "Tag; repeatable or comma-separated. On update it replaces all tags.",
          "TAG", many=True, plural="tags", panel="Fields")
ADD_TAG = Opt("add_tag", "--add-tag", "Add a tag, keeping the others; repeatable.", "TAG",
              many=True, plural="add_tags", panel="Fields")
REMOVE_TAG = Opt("remove_tag", "--remove-tag", "Remove a tag; repeatable.", "TAG", many=True,
                 plural="remove_tags", panel="Fields")
CUSTOM_FIELD = Opt(
    "custom_field", "--custom-field", "NAME_OR_ID=VALUE; repeatable. Dropdown and MultiSelect "
    "take option names (MultiSelect comma-separated), Checkbox true/false, Date YYYY-MM-DD, "
    "numbers and text as they are; an empty VALUE clears it.", "NAME=VALUE", many=True,
    plural="custom_fields", complete="custom_fields", panel="Fields")
CLEAR = Opt("clear", "--clear", "Set FIELD to null (tags: empty; custom_fields: all empty); "
            "repeatable.", "FIELD", many=True, plural="clears",
            choices=tuple(f.name for f in F.WRITABLE), complete="choices", panel="Fields")

# What create and update take, as the library's keywords (the CLI's flags).
CREATE_OPTS: tuple[Opt, ...] = (*FIELD_OPTS, *NAME_OPTS, TAG, CUSTOM_FIELD)
UPDATE_OPTS: tuple[Opt, ...] = (*FIELD_OPTS, *NAME_OPTS, TAG, ADD_TAG, REMOVE_TAG, CUSTOM_FIELD,
                                CLEAR)


def gather(opts: Iterable[Opt], given: dict[str, Any], what: str) -> dict[str, Any]:
    """Keyword arguments -> {declaration name: value}, a list for a repeatable one.

    A repeatable option takes its singular (a value or a list) or its plural (a list), not
    both; an unknown keyword is a UsageError naming the valid ones.
    """
    from oppcli.errors import UsageError

    by_keyword = {k: o for o in opts for k in o.keywords()}
    out: dict[str, Any] = {}
    for key, value in given.items():
        opt = by_keyword.get(key)
        if opt is None:
            raise UsageError(f"{what} takes no {key!r}", "valid: " + ", ".join(by_keyword))
        if value is None:
            continue
        if opt.name in out:
            raise UsageError(f"{what}: give {opt.name} or {opt.plural}, not both")
        if opt.many:
            values = [value] if isinstance(value, (str, int, float)) else list(value)
            value = [_text(v) for v in values]
        else:
            value = _text(value)
        out[opt.name] = value
    return out


def _text(value: Any) -> Any:
    """A Python value as the text a flag would carry (12000 -> "12000", True -> "true")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    return value


def schema(opts: Iterable[Opt]) -> dict[str, Any]:
    """A JSON schema (an object's properties) for these options: for an MCP tool or any
    client that builds calls from declarations. No account data: names come from lookups."""
    properties: dict[str, Any] = {}
    for o in opts:
        one: dict[str, Any] = {"type": o.kind if o.kind in ("number", "integer") else "string",
                               "description": o.help}
        if o.kind == "date":
            one["format"] = "date"
        if o.choices:
            one["enum"] = list(o.choices)
        if o.many:
            properties[o.plural or o.name] = {"type": "array", "items": one,
                                              "description": o.help}
        else:
            properties[o.name] = one
    return {"type": "object", "properties": properties, "additionalProperties": False}
