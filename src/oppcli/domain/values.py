"""Validation and normalisation of what users type and send: dates, time zones, numbers,
yes/no, choices, tags and custom-field values, as text (flags, CSV cells) or as JSON.

Pure functions over fields.py; they raise ValidationError (exit 2) with the problem and the fix.
Building a whole create or update from these values is changes.py's job.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from oppcli.domain import fields as F
from oppcli.domain.lookups import Lookups
from oppcli.errors import ValidationError

_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_SLASH_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
UTC = dt.UTC


# ---- dates ------------------------------------------------------------------------------
def check_date_order(order: str) -> str:
    up = order.strip().upper()
    aliases = {"MM/DD/YYYY": "MDY", "DD/MM/YYYY": "DMY", "MDY": "MDY", "DMY": "DMY"}
    if up not in aliases:
        raise ValidationError(f"unknown date order {order!r}", "use MDY (MM/DD/YYYY) or DMY (DD/MM/YYYY)")
    return aliases[up]


FIRST_YEAR = 1900  # close dates and Date custom fields: from 1900 to 9999 (README)


def _make_date(y: int, m: int, d: int, text: str) -> dt.date:
    if y < FIRST_YEAR:
        raise ValidationError(f"date {text!r} is before {FIRST_YEAR}",
                              f"dates run from {FIRST_YEAR}-01-01 to 9999-12-31; check the year")
    try:
        return dt.date(y, m, d)
    except ValueError:
        raise ValidationError(f"impossible date {text!r}", "check the day and month") from None


def parse_close_date(text: str, order: str = "MDY") -> dt.date:
    """A date a user typed: YYYY-MM-DD, or M/D/YYYY (order MDY) or D/M/YYYY (order DMY)."""
    raw = text.strip()
    m = _ISO_DATE.match(raw)
    if m:
        return _make_date(int(m[1]), int(m[2]), int(m[3]), raw)
    m = _SLASH_DATE.match(raw)
    if m:
        a, b, y = int(m[1]), int(m[2]), int(m[3])
        month, day = (a, b) if order == "MDY" else (b, a)
        return _make_date(y, month, day, raw)
    shape = "MM/DD/YYYY" if order == "MDY" else "DD/MM/YYYY"
    raise ValidationError(f"cannot read date {text!r}", f"write YYYY-MM-DD or {shape}")


def format_close_date(day: dt.date, order: str = "MDY") -> str:
    """The way Copper writes close_date: unpadded, in the account's date order."""
    if order == "DMY":
        return f"{day.day}/{day.month}/{day.year}"
    return f"{day.month}/{day.day}/{day.year}"


def stored_close_date(value: Any, order: str = "MDY") -> dt.date | None:
    """Read a stored close_date string; None when absent or unreadable (never raises)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_close_date(value, order)
    except ValidationError:
        return None


def parse_filter_time(text: str, *, end_of_day: bool = False) -> int:
    """Unix seconds for a date filter: YYYY-MM-DD (UTC day; its end when end_of_day) or ISO time."""
    raw = text.strip()
    m = _ISO_DATE.match(raw)
    if m:
        day = _make_date(int(m[1]), int(m[2]), int(m[3]), raw)
        start = int(dt.datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
        return start + 86399 if end_of_day else start
    try:
        when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(f"cannot read date {text!r}",
                              "write YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][+HH:MM] (UTC by default)"
                              ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp())


def date_to_seconds(day: dt.date, tz: dt.tzinfo = UTC) -> int:
    """Unix seconds of the midnight that starts DAY in the zone TZ (UTC by default): how
    Copper stores a Date custom field (midnight in the account's time zone)."""
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())


def seconds_to_day(value: Any, tz: dt.tzinfo = UTC) -> dt.date | None:
    """The calendar day, in TZ, of Unix seconds; None for what is not a day from 1 to 9999
    (a bad value in a record must never stop a listing or an export)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return dt.datetime.fromtimestamp(value, tz).date()
    except (OverflowError, OSError, ValueError):
        return None


_OFFSET = re.compile(r"^(?:UTC)?([+-])(\d{1,2}):?(\d{2})$", re.I)


def parse_timezone(text: str, what: str = "copper.timezone") -> dt.tzinfo:
    """An IANA zone name (America/Los_Angeles), a fixed offset (+05:30, -08:00) or UTC."""
    raw = text.strip()
    if raw.upper() in ("UTC", "Z", "GMT", ""):
        return UTC
    m = _OFFSET.match(raw)
    if m:
        hours, minutes = int(m[2]), int(m[3])
        if hours > 18 or minutes > 59:
            raise ValidationError(f"{what} {text!r} is not an offset", "write e.g. +05:30")
        delta = dt.timedelta(hours=hours, minutes=minutes)
        return dt.timezone(-delta if m[1] == "-" else delta)
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(raw)
    except (ValueError, KeyError, OSError):
        # (zoneinfo raises ZoneInfoNotFoundError, a KeyError, for an unknown name)
        raise ValidationError(f"unknown time zone {text!r} for {what}",
                              "give an IANA name such as America/Los_Angeles or Europe/Paris, "
                              "or an offset such as +05:30, or UTC") from None


# ---- scalar values ------------------------------------------------------------------------
def choice(value: str, choices: Iterable[str], what: str) -> str:
    options = tuple(choices)
    for c in options:
        if c.casefold() == value.strip().casefold():
            return c
    raise ValidationError(f"unknown {what} {value!r}", "valid: " + ", ".join(options))


def parse_int(text: str, what: str) -> int:
    raw = text.strip()
    if not re.fullmatch(r"[+-]?\d+", raw):
        raise ValidationError(f"{what} must be a whole number, got {text!r}")
    number = int(raw)
    if abs(number) > 2**63 - 1:
        raise ValidationError(f"{what} {raw} is too large", "ids and numbers fit in 64 bits")
    return number


def parse_number(text: str, what: str) -> int | float:
    raw = text.strip().replace("_", "")
    if re.fullmatch(r"[+-]?[0-9]+", raw):  # a whole number stays exact, whatever its size
        number_int = int(raw)
        if abs(number_int) > MAX_EXACT:
            raise ValidationError(f"{what} {raw} is too large", f"numbers up to {MAX_EXACT:,}")
        return number_int
    try:
        number = float(raw)
    except ValueError:
        raise ValidationError(f"{what} must be a number, got {text!r}") from None
    if not math.isfinite(number):
        raise ValidationError(f"{what} must be a finite number, got {text!r}")
    return int(number) if number.is_integer() and "e" not in raw.lower() and abs(number) < 2**53 else number


MAX_EXACT = 2**63 - 1  # the largest whole number JSON tools (orjson, jq 1.7) keep exactly


def parse_bool(text: str, what: str) -> bool:
    low = text.strip().casefold()
    if low in ("true", "yes", "y", "1", "on", "checked"):
        return True
    if low in ("false", "no", "n", "0", "off", "unchecked"):
        return False
    raise ValidationError(f"{what} must be true or false, got {text!r}")


def check_percent(value: int | float, what: str = "win_probability") -> int:
    if isinstance(value, float) and not value.is_integer():
        raise ValidationError(f"{what} must be a whole number from 0 to 100, got {value}")
    number = int(value)
    if not 0 <= number <= 100:
        raise ValidationError(f"{what} must be from 0 to 100, got {number}")
    return number


def from_text(fld: F.Field, text: str, date_order: str, store_order: str | None = None) -> Any:
    """A CLI flag's string as the field's JSON value.

    close_date is read in the configured order and written in the store's (`store_order`):
    a DMY user's 3/4/2026 is "4/3/2026" in an MDY store, not 4 March."""
    what = fld.name
    if fld.kind in (F.INT, F.REF, F.TIMESTAMP):
        return parse_int(text, what)
    if fld.kind == F.MONEY:
        return parse_number(text, what)
    if fld.kind == F.PERCENT:
        return check_percent(parse_number(text, what))
    if fld.kind == F.ENUM:
        return choice(text, fld.choices, what.replace("_", " "))
    if fld.kind == F.DATE:
        return format_close_date(parse_close_date(text, date_order), store_order or date_order)
    if fld.kind == F.BOOL:
        return parse_bool(text, what)
    if fld.kind == F.STR:
        if not text.strip():
            raise ValidationError(f"{what} cannot be empty")
        return text
    return text


def check_json_value(fld: F.Field, value: Any, date_order: str) -> Any:
    """A JSON value sent for a field, checked and normalised."""
    what = fld.name
    if value is None:
        if not fld.nullable:
            raise ValidationError(f"{what} cannot be null")
        return None
    kind = fld.kind
    if kind in (F.INT, F.REF, F.TIMESTAMP):
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, str):
                return parse_int(value, what)
            raise ValidationError(f"{what} must be an integer, got {value!r}")
        return value
    if kind == F.MONEY:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if isinstance(value, str):
                return parse_number(value, what)
            raise ValidationError(f"{what} must be a number, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValidationError(f"{what} must be a finite number")
        if isinstance(value, int) and abs(value) > MAX_EXACT:
            raise ValidationError(f"{what} {value} is too large", f"numbers up to {MAX_EXACT:,}")
        return value
    if kind == F.PERCENT:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValidationError(f"{what} must be a number from 0 to 100, got {value!r}")
        return check_percent(parse_number(value, what) if isinstance(value, str) else value)
    if kind == F.ENUM:
        if not isinstance(value, str):
            raise ValidationError(f"{what} must be one of {', '.join(fld.choices)}")
        return choice(value, fld.choices, what.replace("_", " "))
    if kind == F.DATE:
        if not isinstance(value, str):
            raise ValidationError(f"{what} must be a date string such as 2026-03-31")
        return format_close_date(parse_close_date(value, date_order), date_order)
    if kind == F.BOOL:
        if not isinstance(value, bool):
            raise ValidationError(f"{what} must be true or false")
        return value
    if kind in (F.STR, F.TEXT):
        if not isinstance(value, str):
            raise ValidationError(f"{what} must be a string, got {value!r}")
        if kind == F.STR and fld.required and not value.strip():
            raise ValidationError(f"{what} cannot be empty")
        return value
    if kind == F.TAGS:
        if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
            raise ValidationError(f"{what} must be a list of strings")
        return normalise_tags(value)
    raise ValidationError(f"{what} cannot be set this way")


def normalise_tags(tags: Iterable[str]) -> list[str]:
    """Trim, drop empties and case-insensitive duplicates, keep first spelling and order."""
    out: list[str] = []
    seen: set[str] = set()
    for tag in tags:
        t = tag.strip()
        if t and t.casefold() not in seen:
            seen.add(t.casefold())
            out.append(t)
    return out


def split_list(values: Iterable[str] | None) -> list[str]:
    """Repeatable and comma-separated values, flattened: ["a,b", "c"] -> [a, b, c]."""
    out: list[str] = []
    for v in values or ():
        out.extend(p.strip() for p in v.split(",") if p.strip())
    return out


# ---- custom fields ----------------------------------------------------------------------
def cf_from_text(defn: Mapping[str, Any], text: str, lookups: Lookups, date_order: str) -> Any:
    """A custom field value typed as text, as the JSON value Copper stores (empty: null)."""
    kind = defn.get("data_type", "String")
    what = f"custom field {defn['name']!r}"
    if text.strip() == "":
        return None
    if kind in F.CF_NUMBER_TYPES:
        return parse_number(text, what)
    if kind == "Checkbox":
        return parse_bool(text, what)
    if kind == "Date":  # midnight in the account's (or store's) zone, as Copper keeps them
        return date_to_seconds(parse_close_date(text, date_order), lookups.tz)
    if kind == "Dropdown":
        return lookups.option_id(dict(defn), text)
    if kind == "MultiSelect":
        return unique([lookups.option_id(dict(defn), part) for part in split_list([text])])
    return text


def unique(ids: Iterable[int]) -> list[int]:
    """Option ids once each, in first-seen order (Globex and globex are one option)."""
    return list(dict.fromkeys(ids))


# Date custom fields: Unix seconds from 1900-01-01 to 9999-12-31 (what can be shown as a day).
CF_DATE_MIN = -2208988800
CF_DATE_MAX = 253402300799


def check_cf_date(value: int | float, what: str) -> int:
    if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
        raise ValidationError(f"{what} takes Unix seconds (a whole number), got {value!r}")
    if not CF_DATE_MIN <= value <= CF_DATE_MAX:
        raise ValidationError(f"{what} {value!r} is not a date from 1900 to 9999",
                              "give Unix seconds or a date such as 2026-03-31")
    return int(value)


def cf_check_json(defn: Mapping[str, Any], value: Any, lookups: Lookups, date_order: str) -> Any:
    kind = defn.get("data_type", "String")
    what = f"custom field {defn['name']!r}"
    if value is None:
        return None
    if isinstance(value, str) and kind not in F.CF_TEXT_TYPES:
        return cf_from_text(defn, value, lookups, date_order)
    if kind in F.CF_TEXT_TYPES:
        if not isinstance(value, str):
            raise ValidationError(f"{what} takes text, got {value!r}")
        return value
    if kind in F.CF_NUMBER_TYPES or kind == "Date":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError(f"{what} takes a number, got {value!r}")
        if kind == "Date":
            return check_cf_date(value, what)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValidationError(f"{what} must be a finite number")
        return value
    if kind == "Checkbox":
        if not isinstance(value, bool):
            raise ValidationError(f"{what} takes true or false, got {value!r}")
        return value
    if kind == "Dropdown":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(f"{what} takes an option id, got {value!r}")
        return lookups.option_id(dict(defn), str(value))
    if kind == "MultiSelect":
        if not isinstance(value, list):
            raise ValidationError(f"{what} takes a list of option ids, got {value!r}")
        return unique(lookups.option_id(dict(defn), str(v)) for v in value)
    return value
