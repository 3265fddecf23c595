"""Turn what `search` was given (strings, names) into a Query (ids, Unix seconds)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from oppcli.domain import fields as F
from oppcli.domain.lookups import Lookups
from oppcli.domain.query import NONE_ID, CustomCriterion, Query
from oppcli.domain.values import (
    choice,
    date_to_seconds,
    parse_bool,
    parse_close_date,
    parse_filter_time,
    parse_int,
    parse_number,
    split_list,
)
from oppcli.errors import NotFoundError, ValidationError

NONE_WORDS = ("none", "-")  # --assignee none: deals with no owner (Copper's -2)
_CF = re.compile(r"^(?P<name>[^=<>]+?)\s*(?P<op>>=|<=|=)(?P<value>.*)$", re.S)


@dataclass
class SearchOptions:
    name: str | None = None
    name_contains: str | None = None
    ids: Sequence[str] = ()
    status: Sequence[str] = ()
    priority: Sequence[str] = ()
    assignee: Sequence[str] = ()
    pipeline: Sequence[str] = ()
    stage: Sequence[str] = ()
    company: Sequence[str] = ()
    primary_contact: Sequence[str] = ()
    source: Sequence[str] = ()
    loss_reason: Sequence[str] = ()
    tag: Sequence[str] = ()
    min_value: str | None = None
    max_value: str | None = None
    close_after: str | None = None
    close_before: str | None = None
    created_after: str | None = None
    created_before: str | None = None
    modified_after: str | None = None
    modified_before: str | None = None
    min_interactions: str | None = None
    max_interactions: str | None = None
    contacted_after: str | None = None
    contacted_before: str | None = None
    stage_changed_after: str | None = None
    stage_changed_before: str | None = None
    custom_field: Sequence[str] = ()


def _refs(lookups: Lookups, table: str, values: Sequence[str], *, allow_none: bool = False,
          pipeline_ids: Sequence[int] = ()) -> list[int]:
    out: list[int] = []
    for given in values:
        parts = split_list([given])
        if len(parts) > 1:  # "Acme, Inc." is one name when a name says so
            try:
                parts = [str(lookups.resolve(table, given, pipeline_ids=pipeline_ids))]
            except NotFoundError:
                pass
        for v in parts:
            if allow_none and v.casefold() in NONE_WORDS:
                ident = NONE_ID
            else:
                ident = lookups.resolve(table, v, pipeline_ids=pipeline_ids)
            if ident not in out:
                out.append(ident)
    return out


def custom_criterion(text: str, lookups: Lookups, date_order: str) -> CustomCriterion:
    """NAME=VALUE[,VALUE...], NAME>=NUMBER, NAME<=NUMBER, or NAME= (is empty)."""
    m = _CF.match(text)
    if not m:
        raise ValidationError(f"--custom-field needs NAME=VALUE, NAME>=X or NAME<=X, got {text!r}",
                              "for example --custom-field Region=EMEA")
    defn = lookups.custom_field(m["name"].strip())
    kind = defn.get("data_type", "String")
    op, raw = m["op"], m["value"].strip()
    what = f"custom field {defn['name']!r}"
    crit = CustomCriterion(definition_id=defn["id"], data_type=kind,
                           filterable=defn.get("is_filterable") is not False)
    if raw == "":
        if op != "=":
            raise ValidationError(f"{what}: {op} needs a value")
        crit.only_empty = True
        return crit
    if op in (">=", "<="):
        if kind in F.CF_NUMBER_TYPES:
            bound: float = parse_number(raw, what)
        elif kind == "Date":
            bound = date_to_seconds(parse_close_date(raw, date_order), lookups.tz)
        else:
            raise ValidationError(f"{what} is {kind}; >= and <= work on numbers and dates")
        if op == ">=":
            crit.minimum = bound
        else:
            crit.maximum = bound
        return crit
    if kind in ("Dropdown", "MultiSelect"):
        crit.values = [lookups.option_id(defn, part) for part in split_list([raw])]
    elif kind == "Checkbox":
        crit.values = [parse_bool(raw, what)]
    elif kind in F.CF_NUMBER_TYPES:
        number = parse_number(raw, what)
        crit.minimum = crit.maximum = number
    elif kind == "Date":
        start = parse_close_date(raw, date_order)
        day = date_to_seconds(start, lookups.tz)
        # to the next midnight in the zone (a day is 23 or 25 hours at a clock change)
        crit.minimum, crit.maximum = day, date_to_seconds(start + timedelta(days=1), lookups.tz) - 1
    else:
        crit.values = [raw]
    return crit


def build_query(opts: SearchOptions, lookups: Lookups, date_order: str) -> Query:
    q = Query()
    q.name = opts.name
    q.name_contains = opts.name_contains or None
    q.ids = [parse_int(v, "--id") for v in split_list(opts.ids)]
    q.statuses = [choice(v, F.STATUSES, "status") for v in split_list(opts.status)]
    q.priorities = [choice(v, F.PRIORITIES, "priority") for v in split_list(opts.priority)]
    q.assignee_ids = _refs(lookups, "users", opts.assignee, allow_none=True)
    q.pipeline_ids = _refs(lookups, "pipelines", opts.pipeline)
    q.stage_ids = _refs(lookups, "stages", opts.stage, pipeline_ids=q.pipeline_ids)
    q.company_ids = _refs(lookups, "companies", opts.company, allow_none=True)
    q.primary_contact_ids = _refs(lookups, "people", opts.primary_contact)
    q.source_ids = _refs(lookups, "customer_sources", opts.source, allow_none=True)
    q.loss_reason_ids = _refs(lookups, "loss_reasons", opts.loss_reason, allow_none=True)
    q.tags = split_list(opts.tag)
    if opts.min_value is not None:
        q.min_value = parse_number(opts.min_value, "--min-value")
    if opts.max_value is not None:
        q.max_value = parse_number(opts.max_value, "--max-value")
    if opts.close_after is not None:
        q.close_min = date_to_seconds(parse_close_date(opts.close_after, date_order))
    if opts.close_before is not None:
        q.close_max = date_to_seconds(parse_close_date(opts.close_before, date_order)) + 86399
    # Time filters: NAME_after from the start of its day, NAME_before to the end of its day.
    for name in ("created", "modified", "contacted", "stage_changed"):
        after, before = getattr(opts, f"{name}_after"), getattr(opts, f"{name}_before")
        if after is not None:
            setattr(q, f"{name}_min", parse_filter_time(after))
        if before is not None:
            setattr(q, f"{name}_max", parse_filter_time(before, end_of_day=True))
    if opts.min_interactions is not None:
        q.interactions_min = parse_int(opts.min_interactions, "--min-interactions")
    if opts.max_interactions is not None:
        q.interactions_max = parse_int(opts.max_interactions, "--max-interactions")
    for pair, lo, hi in (("value", q.min_value, q.max_value), ("close", q.close_min, q.close_max),
                         ("created", q.created_min, q.created_max),
                         ("modified", q.modified_min, q.modified_max),
                         ("interactions", q.interactions_min, q.interactions_max),
                         ("contacted", q.contacted_min, q.contacted_max),
                         ("stage-changed", q.stage_changed_min, q.stage_changed_max)):
        if lo is not None and hi is not None and lo > hi:
            raise ValidationError(f"the {pair} range is empty: its minimum is above its maximum",
                                  "swap the two bounds")
    q.custom = [custom_criterion(t, lookups, date_order) for t in opts.custom_field]
    return q


def sort_options(sort: str | None, ascending: bool | None) -> tuple[str, bool]:
    """(--sort field, descending). Default: date_modified, newest first; --sort alone: ascending."""
    if sort is None:
        return "date_modified", not ascending if ascending is not None else True
    name = sort.strip().replace("-", "_")
    if name not in F.SORTABLE:
        raise ValidationError(f"cannot sort by {sort!r}", "sortable fields: " + ", ".join(F.SORTABLE))
    return name, (not ascending) if ascending is not None else False
