"""What create and update send: the changes that flags and JSON input ask for, checked.

changes_from_options() turns create/update flags (names resolved through the lookups, tags,
--custom-field NAME=VALUE, --clear) into field -> JSON value; payload_from_json() checks a
record sent as JSON; check_create() refuses a create without its required fields. TagEdit
carries --add-tag/--remove-tag to the backend. The values themselves are read by values.py.
They raise ValidationError (exit 2) with the problem and the fix.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from oppcli.domain import fields as F
from oppcli.domain.lookups import Lookups
from oppcli.domain.options import ALIASES
from oppcli.domain.values import (
    cf_check_json,
    cf_from_text,
    check_json_value,
    from_text,
    normalise_tags,
    split_list,
)
from oppcli.errors import ConflictError, ValidationError


@dataclass
class TagEdit:
    """--add-tag/--remove-tag on update: applied to the current tags by the backend."""

    add: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)

    def apply(self, current: Iterable[str]) -> list[str]:
        drop = {t.casefold() for t in self.remove}
        kept = [t for t in current if t.casefold() not in drop]
        return normalise_tags(kept + self.add)


# Fields that cannot be set to null but that real Copper records hold as null (priority,
# primary_contact_id, ...): a JSON null for one is passed on, and refused only where it would
# clear a value (records.apply_changes); a create leaves it out, so the default applies.
KEEP_NULL = frozenset({"priority", "primary_contact_id", "status", "pipeline_id",
                       "pipeline_stage_id", "tags", "win_probability"})


def without_nulls_kept(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A create's payload without the KEEP_NULL nulls (the defaults apply to those)."""
    return {k: v for k, v in payload.items() if not (v is None and k in KEEP_NULL)}


def payload_from_json(obj: Any, lookups: Lookups, date_order: str) -> dict[str, Any]:
    """A record sent as JSON (create --from-json): checked; backend-owned keys are dropped."""
    if not isinstance(obj, dict):
        kind = "an array" if isinstance(obj, list) else type(obj).__name__
        raise ValidationError(f"--from-json needs one JSON object, got {kind}",
                              "send a single opportunity object")
    out: dict[str, Any] = {}
    unknown = [k for k in obj if k not in F.BY_NAME and k not in F.PASSTHROUGH]
    if unknown:
        raise ValidationError(f"unknown field{'s' if len(unknown) > 1 else ''} "
                              f"{', '.join(map(str, unknown))} in JSON input",
                              "valid fields: " + ", ".join(F.FIELD_NAMES))
    for key, value in obj.items():
        if key in F.PASSTHROUGH or key in F.READ_ONLY:
            continue
        fld = F.BY_NAME[key]
        if value is None and key in KEEP_NULL:
            out[key] = None  # real records hold these null: an error only where it changes a value
            continue
        if fld.kind == F.CUSTOM:
            out[key] = custom_fields_from_json(value, lookups, date_order)
        else:
            out[key] = check_json_value(fld, value, date_order)
    return out


def custom_fields_from_json(value: Any, lookups: Lookups, date_order: str) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise ValidationError("custom_fields must be a list of "
                              "{custom_field_definition_id, value} objects")
    out = []
    for item in value:
        if not isinstance(item, dict) or "custom_field_definition_id" not in item:
            raise ValidationError("each custom_fields item needs custom_field_definition_id and value")
        defn = lookups.custom_field(str(item["custom_field_definition_id"]))
        out.append({"custom_field_definition_id": defn["id"],
                    "value": cf_check_json(defn, item.get("value"), lookups, date_order)})
    return out


def check_create(payload: Mapping[str, Any]) -> None:
    missing = [f for f in F.REQUIRED if payload.get(f) in (None, "")]
    if missing:
        how = {"name": "--name", "primary_contact_id": "--primary-contact NAME_OR_EMAIL "
               "(or --primary-contact-id ID)"}
        flags = " and ".join(how.get(m, F.BY_NAME[m].flag) for m in missing)
        raise ValidationError(f"missing required {' and '.join(missing)}", f"give {flags}")


# Name-taking aliases of create/update: flag name -> (field, lookup table).


def changes_from_options(
    values: Mapping[str, str | None],
    aliases: Mapping[str, str | None],
    *,
    lookups: Lookups,
    date_order: str,
    tags: list[str] | None = None,
    add_tags: list[str] | None = None,
    remove_tags: list[str] | None = None,
    custom: list[str] | None = None,
    clear: list[str] | None = None,
    base: Mapping[str, Any] | None = None,
    context_pipeline: int | None = None,
    store_order: str | None = None,
) -> dict[str, Any]:
    """What create/update flags ask for, as field -> JSON value (None clears).

    `base` is a record read with --from-json; flags override its keys. Dates typed in
    `date_order` are written in `store_order` (the backend's), when given.
    """
    changes: dict[str, Any] = dict(base or {})
    for name, text in values.items():
        if text is not None:
            changes[name] = from_text(F.BY_NAME[name], text, date_order, store_order)
    # Aliases: a name (or id) resolved through the lookups; pipeline first, to narrow stages.
    for alias in sorted(aliases, key=lambda a: a != "pipeline"):
        text = aliases[alias]
        if text is None:
            continue
        target, table = ALIASES[alias]
        if values.get(target) is not None:
            raise ValidationError(f"--{alias.replace('_', '-')} and {F.BY_NAME[target].flag} "
                                  "both given", "give only one of them")
        narrow: list[int] = []
        if table == "stages":
            pipe = changes.get("pipeline_id")
            narrow = [pipe] if isinstance(pipe, int) else []
        try:
            changes[target] = lookups.resolve(table, text, pipeline_ids=narrow)
        except ConflictError:
            if not (table == "stages" and context_pipeline and not narrow):
                raise
            changes[target] = lookups.resolve(table, text, pipeline_ids=[context_pipeline])
    if tags is not None and (add_tags or remove_tags):
        raise ValidationError("--tag replaces the tags; it cannot be combined with "
                              "--add-tag/--remove-tag", "use one or the other")
    if tags is not None:
        changes["tags"] = normalise_tags(split_list(tags))
    elif add_tags or remove_tags:
        changes["tags"] = TagEdit(add=split_list(add_tags), remove=split_list(remove_tags))
    if custom:
        cfs = [cf for cf in changes.get("custom_fields") or []]
        for item in custom:
            name, text = parse_cf_assignment(item)
            defn = lookups.custom_field(name)
            cfs = [cf for cf in cfs if cf["custom_field_definition_id"] != defn["id"]]
            cfs.append({"custom_field_definition_id": defn["id"],
                        "value": cf_from_text(defn, text, lookups, date_order)})
        changes["custom_fields"] = cfs
    for name in clear or ():
        fld = F.BY_NAME.get(name.strip().replace("-", "_"))
        if fld is None or not fld.writable:
            valid = ", ".join(f.name for f in F.WRITABLE
                              if (f.nullable and not f.required
                                  and f.name not in ("pipeline_id", "pipeline_stage_id"))
                              or f.kind in (F.TAGS, F.CUSTOM))
            raise ValidationError(f"cannot clear {name!r}", f"fields that can be cleared: {valid}")
        if fld.name in changes:
            raise ValidationError(f"{fld.name} is both set and cleared", "give only one of them")
        if fld.kind == F.TAGS:
            changes["tags"] = []
        elif fld.kind == F.CUSTOM:
            changes["custom_fields"] = [{"custom_field_definition_id": d["id"], "value": None}
                                        for d in lookups.opportunity_fields()]
        elif not fld.nullable or fld.required:
            raise ValidationError(f"{fld.name} cannot be cleared",
                                  f"set it to another value with {fld.flag}")
        elif fld.name in ("pipeline_id", "pipeline_stage_id"):
            raise ValidationError(f"{fld.name} cannot be cleared: every opportunity is in a "
                                  "pipeline stage", "move it with --stage or --pipeline")
        else:
            changes[fld.name] = None
    return changes


def parse_cf_assignment(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise ValidationError(f"--custom-field needs NAME=VALUE, got {text!r}",
                              "for example --custom-field Region=EMEA")
    return name.strip(), value

