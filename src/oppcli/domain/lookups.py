"""Lookup tables (pipelines with stages, users, sources, ...) and name <-> id resolution.

The tables have the shapes Copper's lookup endpoints return, so the local store and the
Copper backend resolve names the same way. Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Any

from oppcli.domain.fields import LOOKUP_TABLES
from oppcli.errors import ConflictError, NotFoundError, ValidationError


def is_whole(text: str) -> bool:
    """ASCII digits with an optional minus: what int() reads and a user means as a number
    (str.isdigit also accepts ² and ①, which int() refuses)."""
    return re.fullmatch(r"-?[0-9]+", text) is not None

# How a table is named in messages.
LABELS = {
    "pipelines": "pipeline",
    "stages": "stage",
    "users": "user",
    "customer_sources": "customer source",
    "loss_reasons": "loss reason",
    "custom_field_definitions": "custom field",
    "companies": "company",
    "people": "person",
}

MAX_CANDIDATES = 12


def lookups_problem(data: Any) -> str | None:
    """What is wrong with the shape of lookup tables read from a file, or None."""
    if not isinstance(data, dict):
        return "not a JSON object"
    for table in LOOKUP_TABLES:
        rows = data.get(table) or []
        if not isinstance(rows, list):
            return f"{table} is not a list"
        nested = [s for p in rows if isinstance(p, dict) for s in (p.get("stages") or [])] \
            if table == "pipelines" else []
        if table == "pipelines" and any(isinstance(p, dict) and not isinstance(p.get("stages", []), list)
                                        for p in rows):
            return "a pipeline's stages is not a list"
        for row in [*rows, *nested]:
            if not isinstance(row, dict):
                return f"an entry of {table} is not an object"
            if not isinstance(row.get("id"), int) or isinstance(row.get("id"), bool):
                return f"an entry of {table} has no integer id"
            if not isinstance(row.get("name"), str):
                return f"{table} entry {row.get('id')} has no name"
            options = row.get("options") or [] if table == "custom_field_definitions" else []
            if not isinstance(options, list) or not all(
                    isinstance(o, dict) and isinstance(o.get("id"), int)
                    and isinstance(o.get("name"), str) for o in options):
                return f"custom field {row.get('id')} has an option without an integer id and a name"
    return None


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


class Lookups:
    """Read-only view of the lookup tables with name resolution."""

    def __init__(self, data: Mapping[str, Any] | None = None,
                 tz: dt.tzinfo = dt.UTC) -> None:
        # The zone Date custom fields are midnights in (copper.timezone; a local store's own).
        self.tz = tz
        data = data or {}
        self.data: dict[str, list[dict[str, Any]]] = {
            t: list(data.get(t) or []) for t in LOOKUP_TABLES
        }
        self.stages: list[dict[str, Any]] = []
        for p in self.data["pipelines"]:
            for s in p.get("stages") or []:
                self.stages.append({**s, "pipeline_id": p["id"], "pipeline_name": p["name"]})
        self._by_id: dict[str, dict[int, dict[str, Any]]] = {
            t: {r["id"]: r for r in rows} for t, rows in self.data.items()
        }
        self._by_id["stages"] = {s["id"]: s for s in self.stages}

    def to_dict(self) -> dict[str, list[dict[str, Any]]]:
        return {t: list(rows) for t, rows in self.data.items()}

    # ---- ids -> records and names -------------------------------------------------------
    def rows(self, table: str) -> list[dict[str, Any]]:
        return self.stages if table == "stages" else self.data[table]

    def get(self, table: str, ident: int | None) -> dict[str, Any] | None:
        if ident is None:
            return None
        return self._by_id[table].get(ident)

    def has(self, table: str, ident: int) -> bool:
        return ident in self._by_id[table]

    def name_of(self, table: str, ident: int | None) -> str | None:
        row = self.get(table, ident)
        return None if row is None else str(row.get("name"))

    def default_pipeline(self) -> dict[str, Any] | None:
        pipelines = self.data["pipelines"]
        for p in pipelines:
            if p.get("is_default"):
                return p
        return pipelines[0] if pipelines else None

    def first_stage(self, pipeline_id: int) -> dict[str, Any] | None:
        for s in self.stages:
            if s["pipeline_id"] == pipeline_id:
                return s
        return None

    def opportunity_fields(self) -> list[dict[str, Any]]:
        """Custom field definitions that apply to opportunities, in definition order."""
        return [d for d in self.data["custom_field_definitions"]
                if "opportunity" in (d.get("available_on") or ["opportunity"])]

    # ---- names -> ids ------------------------------------------------------------------
    def _describe(self, table: str, row: dict[str, Any]) -> str:
        if table == "stages":
            return f"{row['pipeline_name']}/{row['name']} (id {row['id']})"
        extra = f", {row['email']}" if row.get("email") else ""
        return f"{row['name']} (id {row['id']}{extra})"

    def resolve(self, table: str, text: str | int, *, pipeline_ids: Iterable[int] = ()) -> int:
        """One id for a name, email or id. Unknown: NotFoundError (4); ambiguous: ConflictError (6).

        Ids are taken as given (the backend checks they exist). Names compare case-insensitively;
        stages may be written "Pipeline/Stage", and `pipeline_ids` narrows which stages count.
        """
        if isinstance(text, int):
            return text
        raw = text.strip()
        if not raw:
            raise ValidationError(f"empty {LABELS[table]} name", "give a name or an id")
        if is_whole(raw):
            return int(raw)
        rows = self.rows(table)
        pipes = set(pipeline_ids)
        want = _norm(raw)
        if table == "stages" and pipes:
            rows = [s for s in rows if s["pipeline_id"] in pipes]
        matches = [r for r in rows if _norm(str(r.get("name", ""))) == want
                   or (r.get("email") and _norm(str(r["email"])) == want)]
        if table == "stages" and not matches and "/" in raw:
            # "Pipeline/Stage"; either name may itself hold a "/", so try every split.
            for i, ch in enumerate(raw):
                if ch == "/":
                    pname, sname = _norm(raw[:i]), _norm(raw[i + 1:])
                    matches += [s for s in rows if _norm(s["pipeline_name"]) == pname
                                and _norm(s["name"]) == sname]
            if not matches:  # candidates: the stages of a pipeline the text names, if any
                named = {_norm(raw[:i]) for i, ch in enumerate(raw) if ch == "/"}
                in_named = [s for s in rows if _norm(s["pipeline_name"]) in named]
                rows = in_named or rows
                want = "" if in_named else _norm(raw.rpartition("/")[2])
        if len(matches) == 1:
            return int(matches[0]["id"])
        label = LABELS[table]
        if matches:
            listed = "; ".join(self._describe(table, r) for r in matches[:MAX_CANDIDATES])
            hint = ("give the id" + (" or Pipeline/Stage" if table == "stages" else "")
                    + " to choose")
            raise ConflictError(f"{label} {raw!r} is ambiguous: {listed}", hint)
        similar = [r for r in rows if want in _norm(str(r.get("name", "")))] or rows
        if not similar and table == "stages":
            # Narrowing (an unknown pipeline in Pipeline/Stage, or a stage of another pipeline)
            # left nothing: list the stages the name could have meant, not "no stages".
            similar = [s for s in self.stages if not pipes or s["pipeline_id"] in pipes] or self.stages
        if not similar:
            plural = {"company": "companies", "person": "people"}.get(label, f"{label}s")
            raise NotFoundError(f"no {label} named {raw!r}", f"this backend has no {plural}")
        listed = "; ".join(self._describe(table, r) for r in similar[:MAX_CANDIDATES])
        more = f" and {len(similar) - MAX_CANDIDATES} more" if len(similar) > MAX_CANDIDATES else ""
        raise NotFoundError(f"no {label} named {raw!r}", f"candidates: {listed}{more}")

    def resolve_many(self, table: str, values: Iterable[str], *,
                     pipeline_ids: Iterable[int] = ()) -> list[int]:
        pipes = list(pipeline_ids)
        out: list[int] = []
        for v in values:
            ident = self.resolve(table, v, pipeline_ids=pipes)
            if ident not in out:
                out.append(ident)
        return out

    def custom_field(self, text: str) -> dict[str, Any]:
        """The opportunity custom field definition for a name or id."""
        defs = self.opportunity_fields()
        raw = text.strip()
        if is_whole(raw):
            for d in defs:
                if d["id"] == int(raw):
                    return d
            matches: list[dict[str, Any]] = []
        else:
            matches = [d for d in defs if _norm(d["name"]) == _norm(raw)]
            if len(matches) == 1:
                return matches[0]
        if matches:
            listed = "; ".join(f"{d['name']} (id {d['id']})" for d in matches)
            raise ConflictError(f"custom field {raw!r} is ambiguous: {listed}", "give the id")
        listed = ", ".join(f"{d['name']} ({d['data_type']})" for d in defs) or "none defined"
        raise NotFoundError(f"no custom field named {raw!r}", f"custom fields: {listed}")

    def option_id(self, definition: dict[str, Any], text: str) -> int:
        options = definition.get("options") or []
        raw = text.strip()
        for o in options:
            if _norm(o["name"]) == _norm(raw) or (is_whole(raw) and o["id"] == int(raw)):
                return int(o["id"])
        listed = ", ".join(o["name"] for o in options)
        raise ValidationError(
            f"{raw!r} is not an option of custom field {definition['name']!r}",
            f"options: {listed}")

    def option_name(self, definition: dict[str, Any], ident: Any) -> str:
        for o in definition.get("options") or []:
            if o["id"] == ident:
                return str(o["name"])
        return str(ident)
