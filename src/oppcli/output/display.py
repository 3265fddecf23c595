"""How a record's values are shown to people: Context turns ids into names, money into
thousands, dates and timestamps into ISO days, custom fields into their option names, and the
read-only extras into short text. Tables draw these strings; CSV uses custom_value() for its
cf: columns.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from oppcli.domain import fields as F
from oppcli.domain.lookups import Lookups
from oppcli.domain.values import seconds_to_day, stored_close_date

# How several values share one cell: tags and multi-select options in CSV and in tables.
TAG_SEPARATOR = ";"
Record = dict[str, Any]


class Context:
    """What formatters need besides the records: lookups for names, the date order."""

    def __init__(self, lookups: Lookups | None, date_order: str = "MDY") -> None:
        self.lookups = lookups or Lookups()
        self.date_order = date_order

    def today(self) -> dt.date:
        """Today in the account's (the store's) zone: what a close date is overdue against."""
        return dt.datetime.now(self.lookups.tz).date()

    # ---- human-readable cells ------------------------------------------------------------
    def display(self, name: str, value: Any, *, with_id: bool = False) -> str:
        if value is None:
            return ""
        fld = F.BY_NAME.get(name) or F.EXTRA_BY_NAME.get(name)
        kind = fld.kind if fld else F.STR
        if kind == F.REF and fld and fld.lookup:
            label = self.lookups.name_of(fld.lookup, value)
            if label is None:
                return str(value)
            if with_id and fld.lookup == "stages" and \
                    label.casefold() in self._shared_stage_names():
                stage = self.lookups.get("stages", value) or {}
                label = f"{stage.get('pipeline_name')}/{label}"  # two pipelines' "Negotiation"
            return f"{label} ({value})" if with_id else label
        if kind == F.DATE:
            day = stored_close_date(value, self.date_order)
            return day.isoformat() if day else str(value)
        if kind == F.TIMESTAMP and _number(value):
            when = _utc(value)
            return when.strftime("%Y-%m-%d %H:%M UTC") if when else str(value)
        if kind == F.MONEY_TEXT and isinstance(value, str):
            return _money_text(value)
        if kind == F.LEAD_CONVERSIONS and isinstance(value, list):
            return ", ".join(_lead_conversion(item) for item in value)
        if kind == F.MONEY and isinstance(value, (int, float)):
            if isinstance(value, float) and not value.is_integer():
                return f"{value:,.2f}"
            return f"{int(value):,}"
        if kind == F.TAGS and isinstance(value, list):
            return ", ".join(map(str, value))
        if kind == F.CUSTOM and isinstance(value, list):
            return "; ".join(f"{n}={v}" for n, v in self.custom_cells(value) if v != "")
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, (list, dict)):
            return _json_text(value)  # an unknown extra's list or object: JSON, not a repr
        return str(value)

    def _shared_stage_names(self) -> set[str]:
        """Stage names that more than one pipeline has: shown as Pipeline/Stage."""
        shared = getattr(self, "_shared", None)
        if shared is None:
            seen: dict[str, set[Any]] = {}
            for stage in self.lookups.stages:
                seen.setdefault(str(stage["name"]).casefold(), set()).add(stage["pipeline_id"])
            shared = self._shared = {n for n, pipes in seen.items() if len(pipes) > 1}
        return shared

    def custom_cells(self, values: list[Any]) -> list[tuple[str, str]]:
        """(definition name, readable value) for each custom field of a record."""
        out = []
        for cf in values:
            ident = cf.get("custom_field_definition_id")
            defn = next((d for d in self.lookups.data["custom_field_definitions"]
                         if d["id"] == ident), None)
            name = defn["name"] if defn else str(ident)
            out.append((name, self.custom_value(defn, cf.get("value"))))
        return out

    def custom_value(self, defn: dict[str, Any] | None, value: Any) -> str:
        if value is None:
            return ""
        kind = defn.get("data_type") if defn else None
        if defn and kind == "Dropdown":
            return self.lookups.option_name(defn, value)
        if defn and kind == "MultiSelect" and isinstance(value, list):
            return TAG_SEPARATOR.join(self.lookups.option_name(defn, v) for v in value)
        if kind == "Date" and isinstance(value, (int, float)) and not isinstance(value, bool):
            day = seconds_to_day(value, self.lookups.tz)  # in the account's (store's) zone
            return day.isoformat() if day is not None else str(value)  # never a crash
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, list):
            return TAG_SEPARATOR.join(map(str, value))
        return str(value)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _utc(seconds: float) -> dt.datetime | None:
    """Unix seconds as a UTC date-time; None when out of range (a hand-edited record)."""
    try:
        return dt.datetime.fromtimestamp(seconds, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _money_text(text: str) -> str:
    """A decimal number written as a string ("250000.0"), shown as money is: 250,000."""
    from decimal import Decimal, InvalidOperation

    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        return text
    if not amount.is_finite():
        return text
    if amount == amount.to_integral_value():
        return f"{int(amount):,}"
    return f"{amount:,.2f}"


def _lead_conversion(item: Any) -> str:
    """One entry of leads_converted_from: "lead 9 on 2023-07-22" (the date in UTC)."""
    if not isinstance(item, dict) or "lead_id" not in item:
        return _json_text(item)
    text = f"lead {_json_text(item['lead_id'])}"
    stamp = item.get("converted_timestamp")
    when = _utc(stamp) if isinstance(stamp, (int, float)) and not isinstance(stamp, bool) else None
    if when is not None:
        return f"{text} on {when.date().isoformat()}"
    return text if stamp is None else f"{text} on {_json_text(stamp)}"


def _json_text(value: Any) -> str:
    """A value as JSON text (a string stays itself); str() when JSON cannot hold it."""
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return str(value)
