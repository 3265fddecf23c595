"""The Query that list and search build: filters, sort and limit. Pure, no I/O.

The local store evaluates it with `compile()`; the Copper backend translates the same object
with `to_copper_body()`. Every criterion mirrors one of Copper's search keys; those Copper
cannot search reliably are applied to the records after fetching (see split_for_copper).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from oppcli.domain import fields as F
from oppcli.domain.values import date_to_seconds, stored_close_date

NONE_ID = -2  # Copper's "no value" id for assignee, customer source and loss reason
# How a MultiSelect criterion's option list matches (Copper's `option`: ANY, ALL or NONE). Copper
# documents no default, so it is always sent; NAME=a,b means "has any of a, b" on both backends
# (ALL is repeating the criterion: --custom-field X=a --custom-field X=b).
MULTI_OPTION = "ANY"
Record = dict[str, Any]
Predicate = Callable[[Record], bool]

# Criteria Copper cannot search reliably are applied by the Copper backend to the fetched
# records (split_for_copper): there is no "name contains" key, the meaning of priority_ids is
# undocumented, and -2 ("none") is documented for assignee, source and loss reason ids only.


@dataclass
class CustomCriterion:
    """One custom-field criterion, in Copper's terms."""

    definition_id: int
    data_type: str
    values: list[Any] = field(default_factory=list)  # option ids, a bool, numbers or texts
    minimum: float | None = None
    maximum: float | None = None
    only_empty: bool = False  # NAME=: the field has no value
    filterable: bool = True  # the definition's is_filterable

    def on_server(self) -> bool:
        """Whether Copper's search body can express this criterion."""
        return self.filterable and not self.only_empty and self.data_type not in F.CF_TEXT_TYPES

    def matches(self, value: Any) -> bool:
        if self.only_empty:
            return value is None or value == [] or value == ""
        if value is None and self.data_type == "Checkbox" and self.values == [False]:
            return True  # an unset checkbox is unchecked
        if value is None or value == []:
            return False
        if self.minimum is not None or self.maximum is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return False
            if self.minimum is not None and value < self.minimum:
                return False
            return self.maximum is None or value <= self.maximum
        if not self.values:
            return True
        if isinstance(value, list):  # MultiSelect: any of the options (MULTI_OPTION)
            return any(v in self.values for v in value)
        if isinstance(value, str):
            wanted = {str(v).casefold() for v in self.values}
            return value.casefold() in wanted
        return value in self.values


@dataclass
class Query:
    ids: list[int] = field(default_factory=list)
    name: str | None = None
    name_contains: str | None = None
    statuses: list[str] = field(default_factory=list)
    priorities: list[str] = field(default_factory=list)
    assignee_ids: list[int] = field(default_factory=list)
    pipeline_ids: list[int] = field(default_factory=list)
    stage_ids: list[int] = field(default_factory=list)
    company_ids: list[int] = field(default_factory=list)
    primary_contact_ids: list[int] = field(default_factory=list)
    source_ids: list[int] = field(default_factory=list)
    loss_reason_ids: list[int] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    min_value: float | None = None
    max_value: float | None = None
    close_min: int | None = None  # Unix seconds, inclusive
    close_max: int | None = None
    created_min: int | None = None
    created_max: int | None = None
    modified_min: int | None = None
    modified_max: int | None = None
    # Extras real records carry (read-only, F.PASSTHROUGH): Copper's search filters on them too.
    interactions_min: int | None = None  # interaction_count, inclusive
    interactions_max: int | None = None
    contacted_min: int | None = None  # date_last_contacted, Unix seconds, inclusive
    contacted_max: int | None = None
    stage_changed_min: int | None = None  # date_stage_changed, Unix seconds, inclusive
    stage_changed_max: int | None = None
    custom: list[CustomCriterion] = field(default_factory=list)
    sort_by: str = "date_modified"
    descending: bool = True
    limit: int | None = None
    # Whether a backend may fetch pages ahead of the reader (Copper: several requests in
    # flight, at the cost of a request or two to check the pages agree); False: one request
    # per page, in order (a report's one search).
    ahead: bool = True

    # ---- evaluation (local store) --------------------------------------------------------
    def has_filters(self) -> bool:
        return bool(self.predicates("MDY"))

    def predicates(self, date_order: str) -> list[Predicate]:
        """One cheap closure per criterion; the local store ANDs them."""
        preds: list[Predicate] = []

        def one_of(key: str, wanted: list[int]) -> None:
            if wanted:
                allowed = {None if w == NONE_ID else w for w in wanted}
                preds.append(lambda r: r.get(key) in allowed)

        if self.ids:
            ids = set(self.ids)
            preds.append(lambda r: r.get("id") in ids)
        if self.name is not None:
            exact = self.name.casefold()
            preds.append(lambda r: str(r.get("name") or "").casefold() == exact)
        if self.name_contains:
            part = self.name_contains.casefold()
            preds.append(lambda r: part in str(r.get("name") or "").casefold())
        if self.statuses:
            statuses = set(self.statuses)
            preds.append(lambda r: r.get("status") in statuses)
        if self.priorities:
            priorities = set(self.priorities)
            preds.append(lambda r: r.get("priority") in priorities)
        one_of("assignee_id", self.assignee_ids)
        one_of("pipeline_id", self.pipeline_ids)
        one_of("pipeline_stage_id", self.stage_ids)
        one_of("company_id", self.company_ids)
        one_of("primary_contact_id", self.primary_contact_ids)
        one_of("customer_source_id", self.source_ids)
        one_of("loss_reason_id", self.loss_reason_ids)
        if self.tags:
            tags = {t.casefold() for t in self.tags}

            def has_tag(r: Record) -> bool:
                for t in r.get("tags") or ():
                    if str(t).casefold() in tags:
                        return True
                return False
            preds.append(has_tag)
        if self.min_value is not None or self.max_value is not None:
            lo, hi = self.min_value, self.max_value

            def value_ok(r: Record) -> bool:
                v = r.get("monetary_value")
                if v is None or isinstance(v, bool) or not isinstance(v, (int, float)):
                    return False  # none, or text in a hand-edited store: matches no bound
                return (lo is None or v >= lo) and (hi is None or v <= hi)
            preds.append(value_ok)
        if self.close_min is not None or self.close_max is not None:
            cmin, cmax = self.close_min, self.close_max

            def close_ok(r: Record) -> bool:
                day = stored_close_date(r.get("close_date"), date_order)
                if day is None:
                    return False
                secs = date_to_seconds(day)
                return (cmin is None or secs >= cmin) and (cmax is None or secs <= cmax)
            preds.append(close_ok)
        for key, lo_t, hi_t in (("date_created", self.created_min, self.created_max),
                                ("date_modified", self.modified_min, self.modified_max),
                                ("interaction_count", self.interactions_min, self.interactions_max),
                                ("date_last_contacted", self.contacted_min, self.contacted_max),
                                ("date_stage_changed", self.stage_changed_min,
                                 self.stage_changed_max)):
            if lo_t is not None or hi_t is not None:
                preds.append(_between(key, lo_t, hi_t))
        for crit in self.custom:
            preds.append(_custom_pred(crit))
        return preds

    def compile(self, date_order: str = "MDY") -> Predicate:
        preds = self.predicates(date_order)
        if not preds:
            return lambda r: True
        if len(preds) == 1:
            return preds[0]

        def match(r: Record) -> bool:
            for p in preds:
                if not p(r):
                    return False
            return True
        return match

    def sort_value(self, date_order: str = "MDY") -> Callable[[Record], Any]:
        """The value a record sorts by (None when missing); see `order()`."""
        name = self.sort_by
        kind = F.BY_NAME[name].kind if name in F.BY_NAME else F.STR

        rank = {c: i for i, c in enumerate(F.BY_NAME[name].choices)} if kind == F.ENUM else {}

        def value(r: Record) -> Any:
            v = r.get(name)
            if rank:  # None < Low < Medium < High; Open < Won < Lost < Abandoned
                return rank.get(v, len(rank)) if v is not None else None
            if kind == F.DATE:
                day = stored_close_date(v, date_order)
                return None if day is None else day.toordinal()
            if isinstance(v, str):
                return v.casefold()
            if isinstance(v, bool):
                return int(v)
            return v
        return value

    def sort_key_as_stored(self) -> str | None:
        """The sort field's name when `sort_value` gives an integer value back unchanged (ids,
        timestamps, amounts; not an enum's rank, a date's day or a text's case-fold); else None.
        A backend may then sort by the stored integer itself."""
        name = self.sort_by
        field = F.BY_NAME.get(name)
        if field is None or field.kind in (F.ENUM, F.DATE, F.STR, F.TEXT, F.BOOL):
            return None
        return name

    # ---- translation (Copper) ------------------------------------------------------------
    def split_for_copper(self) -> tuple[Query, Query]:
        """(what Copper's search body carries, what the client checks on each fetched record).

        An exact name goes both ways: Copper documents the match but not its case rules. A sort
        Copper lacks is done by the client: the server then pages in date_modified order.
        """
        no_company = NONE_ID in self.company_ids  # -2 is documented for other keys only
        server = replace(self, name_contains=None, priorities=[],
                         company_ids=[] if no_company else list(self.company_ids),
                         custom=[c for c in self.custom if c.on_server()])
        if self.sort_by not in F.COPPER_SORT:
            server.sort_by, server.descending = "date_modified", False
        client = Query(name=self.name, name_contains=self.name_contains,
                       priorities=list(self.priorities),
                       company_ids=list(self.company_ids) if no_company else [],
                       custom=[c for c in self.custom if not c.on_server()])
        return server, client

    def to_copper_body(self, page_number: int, page_size: int = 200) -> dict[str, Any]:
        """Copper's search body for one page: the server part of split_for_copper() (what
        Copper cannot search is left out, for the client to apply)."""
        q = self.split_for_copper()[0]
        body: dict[str, Any] = {
            "page_number": page_number,
            "page_size": page_size,
            "sort_by": F.COPPER_SORT[q.sort_by],
            "sort_direction": "desc" if q.descending else "asc",
        }
        pairs: list[tuple[str, Any]] = [
            ("ids", q.ids), ("name", q.name),
            ("status_ids", [F.STATUS_IDS[s] for s in q.statuses]),
            ("assignee_ids", q.assignee_ids), ("pipeline_ids", q.pipeline_ids),
            ("pipeline_stage_ids", q.stage_ids), ("company_ids", q.company_ids),
            ("primary_contact_ids", q.primary_contact_ids),
            ("customer_source_ids", q.source_ids), ("loss_reason_ids", q.loss_reason_ids),
            ("tags", q.tags),
            ("minimum_monetary_value", q.min_value), ("maximum_monetary_value", q.max_value),
            ("minimum_close_date", q.close_min), ("maximum_close_date", q.close_max),
            ("minimum_created_date", q.created_min), ("maximum_created_date", q.created_max),
            ("minimum_modified_date", q.modified_min),
            ("maximum_modified_date", q.modified_max),
            ("minimum_interaction_count", q.interactions_min),
            ("maximum_interaction_count", q.interactions_max),
            ("minimum_interaction_date", q.contacted_min),
            ("maximum_interaction_date", q.contacted_max),
            ("minimum_stage_change_date", q.stage_changed_min),
            ("maximum_stage_change_date", q.stage_changed_max),
        ]
        for key, val in pairs:
            if val not in (None, []):
                body[key] = val
        server_custom = q.custom
        if server_custom:
            crits = []
            for c in server_custom:
                item: dict[str, Any] = {"custom_field_definition_id": c.definition_id}
                if c.minimum is not None:
                    item["minimum_value"] = c.minimum
                if c.maximum is not None:
                    item["maximum_value"] = c.maximum
                if c.values:
                    item["value"] = c.values[0] if c.data_type == "Checkbox" else c.values
                    if c.data_type == "MultiSelect":
                        item["option"] = MULTI_OPTION  # Copper documents no default
                if c.data_type == "Checkbox" and c.values == [False]:
                    item["allow_empty"] = True  # an unset checkbox counts as unchecked
                crits.append(item)
            body["custom_fields"] = crits
        return body


def order(items: list[tuple[Any, int, Any]], descending: bool) -> list[tuple[Any, int, Any]]:
    """Sort (value, id, payload) triples: by value then id, missing values last either way."""
    present = [t for t in items if t[0] is not None]
    missing = [t for t in items if t[0] is None]
    try:
        # The triples themselves: ids are unique, so the payload is never compared, and no
        # key function runs a million times.
        present.sort(reverse=descending)
    except TypeError:  # mixed types in a hand-edited store, or a repeated id
        try:
            present.sort(key=lambda t: (t[0], t[1]), reverse=descending)
        except TypeError:  # mixed types: compare as text
            present.sort(key=lambda t: (str(t[0]), t[1]), reverse=descending)
    missing.sort(key=lambda t: t[1], reverse=descending)
    return present + missing


def _between(key: str, lo: int | None, hi: int | None) -> Predicate:
    """The record's number under key lies in [lo, hi]; a record without one (missing, null, or
    not a number in a hand-edited store) matches no bound, as on Copper."""
    def ok(r: Record) -> bool:
        v = r.get(key)
        if v is None or isinstance(v, bool) or not isinstance(v, (int, float)):
            return False
        return (lo is None or v >= lo) and (hi is None or v <= hi)
    return ok


def _custom_pred(crit: CustomCriterion) -> Predicate:
    def ok(r: Record) -> bool:
        for cf in r.get("custom_fields") or ():
            if cf.get("custom_field_definition_id") == crit.definition_id:
                return crit.matches(cf.get("value"))
        return crit.matches(None)
    return ok
