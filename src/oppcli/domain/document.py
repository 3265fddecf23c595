"""A deal as a document a person edits (`oppcli edit`): TOML, with names instead of ids.

    text = render(record, lookups, date_order)    # what the editor opens
    values = parse(text)                           # tomllib; DocumentError when unreadable
    found, problems = edits(parse(text), parse(edited_text), lookups)   # what was changed
    given, base = request(edit, lookups)           # one change as Session.changes() takes it

The keys are update's flag names: `stage` ("Pipeline/Stage"), `assignee`, `primary_contact`,
`company`, `source` and `loss_reason` by name (or id, a number, where no name is known or
the name is not unique), dates as YYYY-MM-DD, `tags` as a list, and a `[custom_fields]`
table keyed by the definitions' names. "" empties a field. The read-only fields are comments.
Strings are TOML's escaped ones, so any text (newlines, quotes, control characters) comes
back exactly as it went out. Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from oppcli.domain import fields as F
from oppcli.domain.lookups import Lookups, _norm, is_whole
from oppcli.domain.options import ALIASES
from oppcli.domain.values import (
    cf_check_json,
    cf_from_text,
    normalise_tags,
    seconds_to_day,
    split_list,
    stored_close_date,
    unique,
)
from oppcli.errors import ValidationError

Record = dict[str, Any]
CUSTOM = "custom_fields"
# The editable keys in the order the document lists them: a plain field (its name), or a
# name-taking alias of update (ALIASES: the field it sets and the lookup table).
KEYS: tuple[str, ...] = ("name", "status", "priority", "stage", "assignee", "primary_contact",
                         "company", "source", "loss_reason", "monetary_value",
                         "win_probability", "close_date", "tags", "details")
# Fields the document edits, so that the rest of a record goes into the read-only comments.
EDITED_FIELDS = frozenset({*(ALIASES[k][0] if k in ALIASES else k for k in KEYS), CUSTOM,
                           "pipeline_id"})
HINTS = {
    "status": ", ".join(F.STATUSES),
    "priority": ", ".join(F.PRIORITIES),
    "stage": "Pipeline/Stage; the pipeline follows the stage",
    "assignee": "the owner: a user's name or email",
    "primary_contact": "a person's name or email",
    "company": "a company's name",
    "source": "a customer source",
    "loss_reason": "why a Lost deal was lost",
    "win_probability": "0 to 100",
    "close_date": "YYYY-MM-DD",
}
HEADER = """\
# Change what you want and save: only what you change is written (an update, so `oppcli undo`
# takes it back). "" empties a field, [] the tags. Names stand for ids: the stage is
# "Pipeline/Stage"; owner, contact, company, source and loss reason go by name or email (or
# by id: a number). Dates are YYYY-MM-DD. A new stage brings its win probability unless you
# change win_probability too. In "..." strings a backslash starts an escape (\\n, \\", \\\\).
# Lines starting with # are comments. To cancel, empty the file and save."""
ERROR_MARK = "# !! "
MAX_LISTED = 12  # options listed in a hint
HINT_COLUMN = 34  # where the hints after values start, when the value leaves room


class DocumentError(ValidationError):
    """An edited document that cannot be applied: `problems` lists each (one line each)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Edit:
    """One value a person changed: `key` is a document key, or with `custom` (its definition)
    a key of the [custom_fields] table."""

    key: str
    value: Any
    custom: Mapping[str, Any] | None = None  # the custom field's definition

    @property
    def label(self) -> str:
        return f"{CUSTOM}.{self.key}" if self.custom is not None else self.key


# ---- writing ----------------------------------------------------------------------------
def render(record: Mapping[str, Any], lookups: Lookups, date_order: str) -> str:
    """The document for a record: the header, the read-only fields as comments, then the
    editable keys and the [custom_fields] table. `date_order`: how the record's close_date
    is written (the backend's)."""
    title = _comment_value("name", record.get("name"))
    lines = [f"# oppcli edit: opportunity {record.get('id')} {title}", *HEADER.splitlines(),
             "#", "# Read-only:"]
    for name, value in _read_only(record):
        lines.append(f"#   {name} = {_comment_value(name, value)}")
    lines.append("")
    for key in KEYS:
        value = _shown(key, record, lookups, date_order)
        lines.append(_line(key, value, HINTS.get(key)))
    lines += ["", f"[{CUSTOM}]"]
    values = {cf.get("custom_field_definition_id"): cf.get("value")
              for cf in record.get(CUSTOM) or [] if isinstance(cf, Mapping)}
    keys = custom_keys(lookups)
    for key, defn in keys.items():
        kind = defn.get("data_type")
        shown = _custom_shown(defn, values.get(defn["id"]), lookups)
        if shown is None:  # a type the document cannot edit: shown, kept as it is
            lines.append(f"# {_toml_key(key)} = {_comment_value(key, values.get(defn['id']))}"
                         f"  (a {kind} field: not editable here)")
            continue
        lines.append(_line(key, shown, _custom_hint(key, defn)))
    known = {d["id"] for d in keys.values()}
    for ident, value in values.items():
        if ident not in known:
            lines.append(f"# custom field {ident} (no such definition) = "
                         f"{_comment_value('', value)}")
    return "\n".join(_clean_comment(line) for line in lines) + "\n"


def _read_only(record: Mapping[str, Any]) -> list[tuple[str, Any]]:
    keys = [f.name for f in F.FIELDS if not f.writable]
    keys += [k for k in record if k not in EDITED_FIELDS and k not in keys]
    return [(k, record.get(k)) for k in keys if k in record]


def _shown(key: str, record: Mapping[str, Any], lookups: Lookups, date_order: str) -> Any:
    """A key's value in the document: "" for none, a name for an id where one is known."""
    if key in ALIASES:
        field, table = ALIASES[key]
        ident = record.get(field)
        if ident is None:
            return ""
        name = name_for(lookups, table, ident)
        if name is None and key == "company" and isinstance(record.get("company_name"), str) \
                and record["company_name"].strip() and not is_whole(record["company_name"].strip()):
            name = record["company_name"]  # Copper: companies are not in the lookup tables
        return ident if name is None else name
    value = record.get(key)
    if key == "tags":
        return [t for t in value if isinstance(t, str)] if isinstance(value, list) else []
    if value is None:
        return ""
    if key == "close_date":
        day = stored_close_date(value, date_order)
        return day.isoformat() if day else value
    return value


def name_for(lookups: Lookups, table: str, ident: Any) -> str | None:
    """The name that resolves back to exactly this id (stages: "Pipeline/Stage"), or None
    (unknown here, shared by two rows, or looking like an id)."""
    if table == "stages":
        stage = lookups.get("stages", ident) if isinstance(ident, int) else None
        if stage is None:
            return None
        text = f"{stage['pipeline_name']}/{stage['name']}"
        try:
            back = Lookups.resolve(lookups, "stages", text)  # the tables alone: no request
        except Exception:  # noqa: BLE001 -- ambiguous or odd: the id says it exactly
            return None
        return text if back == ident else None
    rows = lookups.rows(table) if isinstance(ident, int) else []
    row = next((r for r in rows if r.get("id") == ident), None)
    if row is None or not isinstance(row.get("name"), str):
        return None
    name = row["name"]
    want = _norm(name)
    same = [r for r in rows if _norm(str(r.get("name", ""))) == want
            or (r.get("email") and _norm(str(r["email"])) == want)]
    if len(same) != 1 or not want or is_whole(name.strip()):
        return None
    return str(name)


def custom_keys(lookups: Lookups) -> dict[str, dict[str, Any]]:
    """The [custom_fields] keys: each opportunity definition by its name, or by its id (as
    text) where another definition has the same name or the name looks like an id."""
    defs = lookups.opportunity_fields()
    counts: dict[str, int] = {}
    for d in defs:
        counts[_norm(d["name"])] = counts.get(_norm(d["name"]), 0) + 1
    out: dict[str, dict[str, Any]] = {}
    for d in defs:
        name = d["name"]
        plain = counts[_norm(name)] == 1 and name.strip() and not is_whole(name.strip())
        out[name if plain else str(d["id"])] = d
    return out


_EDITABLE_TYPES = (*F.CF_TEXT_TYPES, *F.CF_NUMBER_TYPES, "Checkbox", "Date", "Dropdown",
                   "MultiSelect")


def _custom_shown(defn: Mapping[str, Any], value: Any, lookups: Lookups) -> Any:
    """A custom field's value in the document; None for a type it does not edit."""
    kind = defn.get("data_type")
    if kind not in _EDITABLE_TYPES:
        return None
    if value is None:
        return ""
    if kind == "Dropdown":
        return _option_shown(defn, value)
    if kind == "MultiSelect":
        if not isinstance(value, list):
            return None
        return [_option_shown(defn, v) for v in value]
    if kind == "Date" and isinstance(value, (int, float)) and not isinstance(value, bool):
        day = seconds_to_day(value, lookups.tz)
        return day.isoformat() if day is not None else value
    if isinstance(value, (str, bool, int, float)):
        return value
    return None


def _option_shown(defn: Mapping[str, Any], ident: Any) -> Any:
    options = defn.get("options") or []
    names = [o["name"] for o in options if o.get("id") == ident]
    if len(names) != 1:
        return ident
    name = names[0]
    same = [o for o in options if _norm(o["name"]) == _norm(name)]
    if len(same) != 1 or is_whole(name.strip()):
        return ident
    return name


def _custom_hint(key: str, defn: Mapping[str, Any]) -> str | None:
    kind = defn.get("data_type")
    label = "" if key == defn["name"] else f"{defn['name']}: "
    if kind in ("Dropdown", "MultiSelect"):
        names = [str(o["name"]) for o in defn.get("options") or []]
        listed = ", ".join(names[:MAX_LISTED]) + (", ..." if len(names) > MAX_LISTED else "")
        one = "one of" if kind == "Dropdown" else "a list of"
        return f"{label}{one}: {listed}"
    hint = {"Date": "YYYY-MM-DD", "Checkbox": "true or false"}.get(str(kind))
    if hint is None:
        return label.rstrip(": ") or None
    return label + hint


def _line(key: str, value: Any, hint: str | None) -> str:
    text = f"{_toml_key(key)} = {_value_text(value)}"
    if not hint:
        return text
    return f"{text.ljust(HINT_COLUMN)}  # {_comment_text(_one_line(hint))}"


def _toml_key(key: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_-]+", key):
        return key
    return _value_text(key)


def _value_text(value: Any) -> str:
    """A value in TOML: what tomllib reads back as exactly this value. Text with newlines as
    a multi-line string (easier to edit), when that reads back the same."""
    import tomli_w

    if isinstance(value, list):  # on one line: tags = ["hot", "q3"]
        return "[" + ", ".join(_value_text(item) for item in value) + "]"
    for multiline in ((True, False) if isinstance(value, str) and "\n" in value else (False,)):
        text = tomli_w.dumps({"v": value}, multiline_strings=multiline)[len("v = "):].rstrip("\n")
        text = _escape_unseen(text)
        try:
            if _same(tomllib.loads(f"v = {text}\n")["v"], value):
                return text
        except tomllib.TOMLDecodeError:
            continue
    raise ValueError(f"cannot write {value!r} in TOML")  # not reached: tomli-w escapes it all


def _comment_value(name: str, value: Any) -> str:
    """A read-only value shown in a comment: as JSON; Unix seconds also as a UTC time."""
    import orjson

    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    fld = F.BY_NAME.get(name) or F.EXTRA_BY_NAME.get(name)
    if fld is not None and fld.kind == F.TIMESTAMP and isinstance(value, (int, float)) \
            and not isinstance(value, bool):
        try:
            text += "  (" + dt.datetime.fromtimestamp(value, dt.UTC).strftime(
                "%Y-%m-%d %H:%M UTC") + ")"
        except (OverflowError, OSError, ValueError):
            pass
    return text


def _one_line(text: str) -> str:
    return " ".join(text.split())


# Characters a person would not see in the editor (or that would move its cursor): inside a
# TOML string they are written as TOML's \uXXXX escapes, which read back as the same text.
# A newline stays itself (tomli-w writes one raw only in a multi-line string), and so do tab
# and space.
_UNSEEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _escape_unseen(text: str) -> str:
    if text.isprintable() and text.isascii():
        return text
    from unicodedata import category

    out = []
    for char in text:
        if char not in "\n\t " and (category(char) in _UNSEEN_CATEGORIES or char.isspace()):
            code = ord(char)
            out.append(f"\\u{code:04X}" if code <= 0xFFFF else f"\\U{code:08X}")
        else:
            out.append(char)
    return "".join(out)


def _comment_text(text: str) -> str:
    """Account data in a comment: a line break would end the comment and TOML refuses a
    control character there, so each is written as its escape."""
    from oppcli.output.text import visible

    return visible(text)


def _clean_comment(line: str) -> str:
    return _comment_text(line) if line.startswith("#") else line


def with_errors(text: str, problems: list[str]) -> str:
    """The edited text with these problems at the top as comments (replacing any shown
    before), for the editor to open again."""
    kept = strip_errors(text)
    head = [f"{ERROR_MARK}Not saved. Fix what is wrong and save again (or empty the file to "
            "cancel):"]
    head += [f"{ERROR_MARK}- {p}" for p in problems]
    return "\n".join(_clean_comment(line) for line in head) + "\n" + kept


def strip_errors(text: str) -> str:
    lines = text.splitlines(keepends=True)
    while lines and lines[0].startswith(ERROR_MARK.rstrip()):
        lines.pop(0)
    return "".join(lines)


# ---- reading ----------------------------------------------------------------------------
def is_blank(text: str) -> bool:
    """Nothing but comments and white space: the edit is cancelled."""
    return all(not line.strip() or line.lstrip().startswith("#") for line in text.splitlines())


def parse(text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DocumentError([f"not valid TOML: {exc}"]) from None


def edits(original: Mapping[str, Any], edited: Mapping[str, Any],
          lookups: Lookups) -> tuple[list[Edit], list[str]]:
    """What a person changed: the keys whose value differs from the document as written,
    and the problems with its shape (an unknown, read-only or missing key)."""
    problems: list[str] = []
    out: list[Edit] = []
    for key in edited:
        if key not in original:
            problems.append(_unknown(key))
    for key in original:
        if key == CUSTOM:
            continue
        if key not in edited:
            problems.append(f"{key} is missing: put it back (\"\" empties it)")
        elif not _same(original[key], edited[key]):
            out.append(Edit(key, edited[key]))
    cf_was, cf_now = original.get(CUSTOM, {}), edited.get(CUSTOM, {})
    if CUSTOM in edited and not isinstance(cf_now, dict):
        problems.append(f"{CUSTOM} must be a table: [{CUSTOM}] on a line of its own, then "
                        "NAME = VALUE lines")
        cf_now = {}
    elif CUSTOM not in edited and cf_was:
        problems.append(f"[{CUSTOM}] is missing: put it back")
        cf_now = cf_was
    defs = custom_keys(lookups)
    for key in cf_now:
        if key in defs and key not in cf_was:
            problems.append(f"{CUSTOM}.{_toml_key(key)} cannot be edited here (a "
                            f"{defs[key].get('data_type')} field)")
        elif key not in cf_was:
            listed = ", ".join(map(repr, cf_was)) or "none"
            problems.append(f"{CUSTOM}: no custom field {key!r} (the custom fields: {listed})")
    for key in cf_was:
        if key not in cf_now:
            problems.append(f"{CUSTOM}.{_toml_key(key)} is missing: put it back "
                            "(\"\" empties it)")
        elif not _same(cf_was[key], cf_now[key]):
            out.append(Edit(key, cf_now[key], defs[key]))
    return out, problems


def _unknown(key: str) -> str:
    if key in F.READ_ONLY or key in F.PASSTHROUGH:
        return f"{key} is read-only: oppcli sets it (it is shown as a comment)"
    alias = next((a for a, (target, _) in ALIASES.items() if target == key), None)
    if alias in KEYS:
        return f"unknown field {key!r}: write {alias} = NAME (or its id) instead"
    if key == "pipeline_id" or key == "pipeline":
        return f"unknown field {key!r}: the stage (Pipeline/Stage) sets the pipeline"
    return f"unknown field {key!r} (the fields: {', '.join(KEYS)}, [{CUSTOM}])"


def _same(a: Any, b: Any) -> bool:
    """Equal as TOML values: true is not 1, "2026-01-01" is not the date 2026-01-01, 5 is 5.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or (isinstance(a, float) and isinstance(b, float)
                          and math.isnan(a) and math.isnan(b))
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


# ---- an edit as update takes it ---------------------------------------------------------
def request(edit: Edit, lookups: Lookups, date_order: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """One edit as (given, base) for Session.changes(): `given` the flags update would get
    (names resolved and values read there, the same way), `base` values already in the API's
    shape (tags, custom fields). ValidationError when the value has the wrong type."""
    if edit.custom is not None:
        return {}, {CUSTOM: [{"custom_field_definition_id": edit.custom["id"],
                              "value": custom_value(edit.custom, edit.value, lookups,
                                                    date_order)}]}
    key, value = edit.key, edit.value
    if key == "tags":
        if value == "":
            return {}, {"tags": []}
        if isinstance(value, str):
            return {}, {"tags": normalise_tags(split_list([value]))}
        if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
            raise ValidationError("tags must be a list of strings, e.g. [\"hot\", \"q3\"]")
        return {}, {"tags": normalise_tags(value)}
    field = field_of(key)
    if value == "":
        if not _clearable(key, field):
            raise _not_clearable(key)
        return {"clear": [field]}, {}
    return {key: _text(key, value)}, {}


def field_of(key: str) -> str:
    """The record field a document key sets (stage: pipeline_stage_id)."""
    return ALIASES[key][0] if key in ALIASES else key


def _clearable(key: str, field: str) -> bool:
    fld = F.BY_NAME[field]
    return fld.nullable and not fld.required and key != "stage"


def _not_clearable(key: str) -> ValidationError:
    how = {"name": "give it a name", "status": "one of " + ", ".join(F.STATUSES),
           "priority": "one of " + ", ".join(F.PRIORITIES),
           "stage": "every deal is in a pipeline stage: give one as Pipeline/Stage",
           "primary_contact": "every deal has one: give a person's name, email or id"}
    return ValidationError(f"{key} cannot be empty", how.get(key))


def _text(key: str, value: Any) -> str:
    """A document value as the text its flag would carry."""
    if isinstance(value, str):
        return value
    if key in ALIASES and isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # an id
    if key in ("monetary_value", "win_probability") and isinstance(value, (int, float)) \
            and not isinstance(value, bool):
        return repr(value) if isinstance(value, float) else str(value)
    if key == "close_date" and isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    want = {"monetary_value": "a number", "win_probability": "a whole number from 0 to 100",
            "close_date": "a date as \"YYYY-MM-DD\""}.get(key, "text in quotes")
    if key in ALIASES:
        want = "a name in quotes, or an id"
    raise ValidationError(f"{key} must be {want}, not {_toml_type(value)}")


def custom_value(defn: Mapping[str, Any], value: Any, lookups: Lookups, date_order: str) -> Any:
    """A [custom_fields] value as the JSON value Copper stores (as --custom-field reads it)."""
    kind = defn.get("data_type")
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime) and kind == "Date":
        value = value.isoformat()
    if isinstance(value, str):
        return cf_from_text(defn, value, lookups, date_order)
    if kind == "MultiSelect" and isinstance(value, list):
        ids = []
        for item in value:
            if isinstance(item, bool) or not isinstance(item, (str, int)):
                raise ValidationError(f"{defn['name']!r} takes a list of option names, not "
                                      f"one holding {_toml_type(item)}")
            ids.append(lookups.option_id(dict(defn), str(item)))
        return unique(ids)
    if kind == "Date" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return cf_check_json(defn, value, lookups, date_order)  # Unix seconds, as shown when odd
    if kind == "Dropdown" and isinstance(value, int) and not isinstance(value, bool):
        return cf_check_json(defn, value, lookups, date_order)  # an option id
    if kind in F.CF_NUMBER_TYPES or kind == "Checkbox":
        return cf_check_json(defn, value, lookups, date_order)
    want = {"MultiSelect": "a list of option names", "Dropdown": "an option name in quotes",
            "Date": "a date as \"YYYY-MM-DD\""}.get(str(kind), "text in quotes")
    raise ValidationError(f"{defn['name']!r} takes {want}, not {_toml_type(value)}")


def _toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return f"{'true' if value else 'false'} (true/false)"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, (dt.date, dt.time)):
        return f"the TOML date/time {value.isoformat()} (write it in quotes)"
    return type(value).__name__
