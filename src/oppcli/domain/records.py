"""What an opportunity record becomes under Copper's rules: key order, defaults on create,
derived fields, the effect of an update, and reference checks. Pure: no I/O.

The local store applies these rules itself; the Copper backend uses them to check a change
and to send only the fields that really change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from oppcli.domain import fields as F
from oppcli.domain.changes import TagEdit
from oppcli.domain.lookups import Lookups
from oppcli.errors import NotFoundError, ValidationError

Record = dict[str, Any]
FIELD_ORDER = F.FIELD_NAMES
# Fields an update may change but never set to null.
UNCLEARABLE = tuple(f.name for f in F.WRITABLE if not f.nullable or f.required) + (
    "pipeline_id", "pipeline_stage_id")


_ORDER = list(FIELD_ORDER)
_FIELD_SET = frozenset(F.FIELD_NAMES)


def canonical(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """Keys in Copper's order, extras (passed-through read-only keys) after them: the record
    itself when they are (a stored record, and one updated from it), else a copy."""
    if list(record)[:len(_ORDER)] == _ORDER:
        return record
    out = {k: record.get(k) for k in FIELD_ORDER if k in record}
    for k, v in record.items():
        if k not in out:
            out[k] = v
    return out


def with_defaults(record: Record, lookups: Lookups) -> Record:
    """What Copper fills in on create."""
    record.setdefault("status", "Open")
    record.setdefault("priority", "None")
    record.setdefault("tags", [])
    if record.get("pipeline_stage_id") is not None and record.get("pipeline_id") is None:
        stage = lookups.get("stages", record["pipeline_stage_id"])
        if stage:
            record["pipeline_id"] = stage["pipeline_id"]
    if record.get("pipeline_id") is None:
        default = lookups.default_pipeline()
        if default:
            record["pipeline_id"] = default["id"]
    if record.get("pipeline_stage_id") is None and record.get("pipeline_id") is not None:
        first = lookups.first_stage(record["pipeline_id"])
        if first:
            record["pipeline_stage_id"] = first["id"]
    if record.get("win_probability") is None:
        stage = lookups.get("stages", record.get("pipeline_stage_id"))
        if stage and stage.get("win_probability") is not None:
            record["win_probability"] = stage["win_probability"]
    if record.get("company_id") is None:
        person = lookups.get("people", record.get("primary_contact_id"))
        if person and person.get("company_id") is not None:
            record["company_id"] = person["company_id"]
    record["custom_fields"] = merge_custom_fields([], record.get("custom_fields") or [],
                                                  lookups)
    return derive(record, lookups)

# Fields holding an id of a lookup table: field name -> table.
REF_TABLES = {f.name: f.lookup for f in F.FIELDS if f.kind == F.REF and f.lookup is not None}


def check_refs(record: Record, lookups: Lookups) -> None:
    """Referenced ids must exist in the lookup tables the store has."""
    for name, ident in record.items():
        table = REF_TABLES.get(name)
        if table is None or ident is None or not lookups.rows(table):
            continue
        if not lookups.has(table, ident):
            listed = ", ".join(f"{r['name']} ({r['id']})" for r in lookups.rows(table)[:12])
            raise NotFoundError(f"unknown {name} {ident}", f"known: {listed}")
    stage = lookups.get("stages", record.get("pipeline_stage_id"))
    if stage and record.get("pipeline_id") is not None and stage["pipeline_id"] != record["pipeline_id"]:
        names = ", ".join(s["name"] for s in lookups.stages
                          if s["pipeline_id"] == record["pipeline_id"])
        raise ValidationError(
            f"stage {stage['name']!r} belongs to pipeline {stage['pipeline_name']!r}, "
            f"not {lookups.name_of('pipelines', record['pipeline_id'])!r}",
            f"stages of that pipeline: {names}")


def derive(record: Record, lookups: Lookups) -> Record:
    """Fields Copper derives from others: company_name, pipeline_is_revenue, pipeline_type."""
    company = lookups.get("companies", record.get("company_id"))
    if company is not None:
        record["company_name"] = company["name"]
    elif record.get("company_id") is None:
        record["company_name"] = None
    else:
        record.setdefault("company_name", None)
    pipeline = lookups.get("pipelines", record.get("pipeline_id"))
    if pipeline is not None:
        record["pipeline_is_revenue"] = bool(pipeline.get("is_revenue", True))
        record["pipeline_type"] = pipeline.get("type") or "opportunity"
    else:
        record.setdefault("pipeline_is_revenue", None)
        record.setdefault("pipeline_type", None)
    if not record.keys() >= _FIELD_SET:  # (a stored record has every field)
        for name in F.FIELD_NAMES:
            record.setdefault(name, None)
    return record


def merge_custom_fields(current: list[Mapping[str, Any]], changes: list[Mapping[str, Any]],
                        lookups: Lookups) -> list[dict[str, Any]]:
    """Every opportunity definition appears once (null when unset); changes win by id; the
    record's own order is kept."""
    values: dict[int, Any] = {}
    for cf in current:
        values[cf["custom_field_definition_id"]] = cf.get("value")
    dates = {d["id"] for d in lookups.opportunity_fields() if d.get("data_type") == "Date"}
    for cf in changes:
        ident, value = cf["custom_field_definition_id"], cf.get("value")
        if ident in dates and _same_day(values.get(ident), value, lookups.tz):
            continue  # the day it already holds (maybe at another hour): left as it is
        values[ident] = value
    # The record's own order first (Copper keeps it per record), then any definition it lacks
    # in the definitions' order, then values for definitions no longer known.
    order = [cf["custom_field_definition_id"] for cf in current]
    order += [d["id"] for d in lookups.opportunity_fields() if d["id"] not in values
              or d["id"] not in order]
    order += [k for k in values if k not in order]
    return [{"custom_field_definition_id": k, "value": values.get(k)}
            for k in dict.fromkeys(order)]


def _same_day(a: Any, b: Any, tz: Any) -> bool:
    """Two Date custom field values on one calendar day in the zone (a Date is a day: Copper
    keeps midnight in the account's zone, and some records hold other hours)."""
    from oppcli.domain.values import seconds_to_day

    if a is None or b is None:
        return False
    day = seconds_to_day(a, tz)
    return day is not None and day == seconds_to_day(b, tz)


def apply_changes(current: Mapping[str, Any], changes: Mapping[str, Any], lookups: Lookups) -> Record:
    """The record after an update: only given keys change; None clears."""
    for key in UNCLEARABLE:
        if key in changes and changes[key] is None and current.get(key) is not None:
            raise ValidationError(f"{key} cannot be cleared",
                                  "every opportunity has a name, a primary contact, a status, a "
                                  "priority and a pipeline stage: give another value")
    record = dict(current)
    for key, value in changes.items():
        if key == "tags" and isinstance(value, TagEdit):
            record["tags"] = value.apply(record.get("tags") or [])
        elif key == "custom_fields":
            record["custom_fields"] = merge_custom_fields(record.get("custom_fields") or [],
                                                          value, lookups)
        else:
            record[key] = value
    if "pipeline_id" in changes and "pipeline_stage_id" not in changes:
        stage = lookups.get("stages", record.get("pipeline_stage_id"))
        if record.get("pipeline_id") is not None and (stage is None or
                                                      stage["pipeline_id"] != record["pipeline_id"]):
            first = lookups.first_stage(record["pipeline_id"])
            record["pipeline_stage_id"] = first["id"] if first else None
    if "pipeline_stage_id" in changes and "pipeline_id" not in changes:
        stage = lookups.get("stages", record.get("pipeline_stage_id"))
        if stage:
            record["pipeline_id"] = stage["pipeline_id"]
    if (record.get("pipeline_stage_id") != current.get("pipeline_stage_id")
            and "win_probability" not in changes):
        # A deal moved to another stage takes that stage's probability, as in Copper's app.
        stage = lookups.get("stages", record.get("pipeline_stage_id"))
        if stage and stage.get("win_probability") is not None:
            record["win_probability"] = stage["win_probability"]
    return derive(record, lookups)


def changed_fields(current: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The PUT body: writable fields whose value changes (None clears); custom fields by id."""
    body: dict[str, Any] = {}
    for fld in F.WRITABLE:
        name = fld.name
        if name == "custom_fields":
            if new.get(name) == current.get(name):
                continue
            before = {cf.get("custom_field_definition_id"): cf.get("value")
                      for cf in current.get("custom_fields") or []}
            # A definition the record has no entry for holds null: sent only if it gets a value.
            changed = [cf for cf in new.get("custom_fields") or []
                       if not _same_value(before.get(cf.get("custom_field_definition_id")),
                                          cf.get("value"))]
            if changed:
                body[name] = changed
        elif new.get(name) != current.get(name):
            body[name] = new.get(name)
    return body


def _same_value(a: Any, b: Any) -> bool:
    """Custom field values compare equal when both are empty (null and [], an unset
    MultiSelect, are one empty cell in CSV), and MultiSelect lists in any order."""
    if a in (None, []) and b in (None, []):
        return True
    if isinstance(a, list) and isinstance(b, list):  # MultiSelect: a set of option ids
        try:
            return sorted(a) == sorted(b)
        except TypeError:
            return a == b
    return bool(a == b)


def refs_to_check(sent: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a change whose ids check_refs must look at: those sent, with the pipeline
    and stage checked as a pair when either changes."""
    out = dict(sent)
    if "pipeline_id" in sent or "pipeline_stage_id" in sent:
        out.update(pipeline_id=new.get("pipeline_id"), pipeline_stage_id=new.get("pipeline_stage_id"))
    return out


class ZoneCheck:
    """Notices when the Date custom fields of records read from Copper are midnights in
    another zone than copper.timezone (every value the same hours off midnight there), and
    says once which offset they imply. Looks at the first few hundred values only."""

    LOOK_AT = 200

    def __init__(self, lookups: Lookups) -> None:
        self.lookups = lookups
        self.offsets: dict[int, int] = {}
        self.seen = 0
        self.said = False

    def look(self, record: Mapping[str, Any]) -> str | None:
        """A warning to show (once), or None."""
        if self.said or self.seen >= self.LOOK_AT:
            return None
        import datetime as dt

        from oppcli.domain.values import date_to_seconds, seconds_to_day

        dates = {d["id"] for d in self.lookups.opportunity_fields() if d.get("data_type") == "Date"}
        if not dates:
            self.seen = self.LOOK_AT
            return None
        tz = self.lookups.tz
        for cf in record.get("custom_fields") or []:
            value = cf.get("value")
            if cf.get("custom_field_definition_id") not in dates or isinstance(value, bool) \
                    or not isinstance(value, (int, float)):
                continue
            day = seconds_to_day(value, tz)
            if day is None:
                continue
            off = int(value) - date_to_seconds(day, tz)
            self.offsets[off] = self.offsets.get(off, 0) + 1
            self.seen += 1
        if self.seen < 5 or len(self.offsets) != 1:
            return None
        (off,) = self.offsets
        if off == 0 or off % 900:
            return None
        self.said = True
        # midnight elsewhere = midnight here + off: that zone is `off` seconds behind this one
        here = dt.datetime.now(tz).utcoffset() or dt.timedelta(0)
        implied = here - dt.timedelta(seconds=off if off < 43200 else off - 86400)
        sign = "-" if implied < dt.timedelta(0) else "+"
        minutes = abs(int(implied.total_seconds())) // 60
        spelled = f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
        return (f"Date custom fields read look like midnights at UTC{spelled}, not in "
                f"copper.timezone ({tz}): days may show one off; set copper.timezone to the "
                f"account's zone (e.g. `oppcli config set copper.timezone {spelled}`, or its "
                "IANA name)")


# ---- what a change did, per field --------------------------------------------------------------
# Kept beside the changed fields: who the deal is, when it changed, and the win probability
# (undoing a stage change restores it as it was, rather than the old stage's).
KEPT_IN_TRIM = ("id", "name", "date_modified", "win_probability")


def diff(before: Mapping[str, Any], after: Mapping[str, Any],
         body: Mapping[str, Any] | None = None) -> dict[str, list[Any]]:
    """The writable fields a change gives another value: field -> [before, after]. Custom
    fields under "custom_fields", as the lists of the definitions that change (in the API's
    shape), so a script reads them as it would the records. `body`: changed_fields(before,
    after) when the caller has it."""
    out: dict[str, list[Any]] = {}
    for name, value in (changed_fields(before, after) if body is None else body).items():
        if name == "custom_fields":
            ids = {cf.get("custom_field_definition_id") for cf in value}
            was = {cf.get("custom_field_definition_id"): cf.get("value")
                   for cf in before.get("custom_fields") or []}
            out[name] = [[{"custom_field_definition_id": i, "value": was.get(i)} for i in ids_in(value)],
                         [dict(cf) for cf in value if cf.get("custom_field_definition_id") in ids]]
        else:
            out[name] = [before.get(name), value]
    return out


def ids_in(custom: list[Mapping[str, Any]]) -> list[Any]:
    return [cf.get("custom_field_definition_id") for cf in custom]


def trimmed(before: Mapping[str, Any], after: Mapping[str, Any],
            body: Mapping[str, Any] | None = None) -> tuple[Record, Record]:
    """(before, after) cut to the fields the change touched, plus KEPT_IN_TRIM:
    what a bulk change keeps per deal (the audit log, undo and reports need no more, and
    100,000 whole records would not fit the memory budget)."""
    b: Record = {k: before[k] for k in KEPT_IN_TRIM if k in before}
    a: Record = {k: after[k] for k in KEPT_IN_TRIM if k in after}
    if body is None or "custom_fields" in body:
        for name, (was, now) in diff(before, after, body).items():
            b[name], a[name] = was, now
    else:  # plain fields: the body holds the new values
        for name, now in body.items():
            b[name], a[name] = before.get(name), now
    return b, a
