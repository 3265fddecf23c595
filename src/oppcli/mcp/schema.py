"""The tools' input schemas, made from the option declarations the CLI and the library use
(domain/options.py, options.schema()), and the check of a call's arguments against them.

Search's filters go by their CLI names with underscores (status, stage, min_value, ...), a
repeatable one taking a list; create's and update's fields as options.schema() names them
(stage, add_tags, close_date, ...). No account data: stage, user and other names are the
`lookups` tool's answer, never allowed values here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from oppcli.domain import fields as F
from oppcli.domain import options as O
from oppcli.errors import UsageError

CAP = 100  # deals a search or stale returns unless `limit` or `all` says otherwise


def by_cli_name(opts: tuple[O.Opt, ...]) -> dict[str, Any]:
    """options.schema()'s properties under the declarations' own names (status, not its
    plural statuses): a repeatable filter takes a list of values, any of which matches."""
    declared = O.schema(opts)["properties"]
    return {o.name: declared[(o.plural or o.name) if o.many else o.name] for o in opts}


def obj(properties: Mapping[str, Any], required: tuple[str, ...] = (),
        description: str | None = None) -> dict[str, Any]:
    """An object schema: these properties, those required, no others."""
    out: dict[str, Any] = {"type": "object"}
    if description:
        out["description"] = description
    out["properties"] = dict(properties)
    if required:
        out["required"] = list(required)
    out["additionalProperties"] = False
    return out


SAVED = {"type": "string", "description": "Start from a saved search (its filters and sort): a "
         "filter given too replaces the saved one of its kind, the others are ANDed."}
DRY_RUN = {"type": "boolean", "default": True, "description": "true (the default): change "
           "nothing, return what would change. false: write, and return the audit_id that "
           "undo takes."}
ID = {"type": "integer", "description": "The opportunity's id."}
LIMIT = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1,  # as the CLI's --limit
         "description": "At most N deals."}
IDS = {"type": "array", "items": {"type": "integer"}, "description": "Opportunity ids."}


def _filters(opts: tuple[O.Opt, ...], what: str) -> dict[str, Any]:
    return obj({**by_cli_name(opts), "saved": SAVED}, description=(
        f"Which deals: {what} (ANDed; a list: any of its values). Names work wherever ids do "
        "(the lookups tool lists them)."))


FILTERS = _filters(O.FILTERS, "search's filters")
OPEN_FILTERS = _filters(O.OPEN_FILTERS, "search's filters but status (open deals only)")
CHANGES = O.schema(O.UPDATE_OPTS)["properties"]
SEARCH_EXTRA = {
    "limit": LIMIT,
    "all": {"type": "boolean", "description": f"Every match (without limit or all: at most "
            f"{CAP})."},
    "sort": {"type": "string", "enum": list(F.SORTABLE), "description": "The field to sort by "
             "(default: date_modified, newest first)."},
    "asc": {"type": "boolean", "description": "Sort direction: true ascending, false descending "
            "(default: ascending with sort, else newest first)."},
    "fields": {"type": "array", "items": {"type": "string", "enum": list(F.FIELD_NAMES)},
               "description": "Only these fields of each record, in this order."},
    "saved": SAVED,
}


# ---- checking a call's arguments against its schema ---------------------------------------------
def check(where: str, schema: Mapping[str, Any], value: Any) -> Any:
    """`value` checked against the subset of JSON schema the tools use (object, array,
    string, integer, number, boolean, minimum/maximum, minItems/maxItems, required, no
    additional properties); returns it with nulls dropped, a lone value where a list is
    wanted made a list, and whole numbers written as text made numbers. A UsageError (exit
    2) names the argument. Names and values are checked further by the library."""
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            raise UsageError(f"{where} must be a JSON object, not {_shown(value)}")
        props = schema.get("properties", {})
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key not in props:
                raise UsageError(f"{where} takes no {key!r}", "valid: " + ", ".join(props))
            if item is not None:
                out[key] = check(f"{where}: {key}", props[key], item)
        missing = [k for k in schema.get("required", ()) if k not in out]
        if missing:
            raise UsageError(f"{where} needs {', '.join(missing)}")
        return out
    if kind == "array":
        items = value if isinstance(value, list) else [value]
        least, most = schema.get("minItems", 0), schema.get("maxItems")
        if len(items) < least or (most is not None and len(items) > most):
            span = f"{least} to {most}" if most is not None else f"at least {least}"
            raise UsageError(f"{where} takes {span} values, not {len(items)}")
        return [check(where, schema.get("items", {}), v) for v in items]
    if kind == "integer":
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"{where} must be a whole number, not {_shown(value)}")
        low, high = schema.get("minimum"), schema.get("maximum")
        if (low is not None and value < low) or (high is not None and value > high):
            span = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise UsageError(f"{where} must be {span}, not {value}")
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise UsageError(f"{where} must be a number, not {_shown(value)}")
        return value  # text such as "50000" is read by the library, as a flag's would be
    if kind == "boolean":
        if not isinstance(value, bool):
            raise UsageError(f"{where} must be true or false, not {_shown(value)}")
        return value
    if kind == "string":
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise UsageError(f"{where} must be text, not {_shown(value)}")
        return value if isinstance(value, str) else str(value)
    return value


def _shown(value: Any) -> str:
    try:
        text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # a number JSON cannot hold in 64 bits
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
