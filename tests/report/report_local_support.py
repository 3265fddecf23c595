"""What the local report tests share: a varied store, the metrics of a group computed here by the
spec's rules (never by oppcli.domain.report), jq over the store's data file, and comparisons that
allow for the output's rounding (money to cents, win_rate to 4 places).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

from conftest import derived_records
from oppcli.backends.local import DATA
from oppcli.domain.sample import SAMPLE_LOOKUPS

DAY = 86400
METRICS = ["count", "value", "weighted", "average", "win_rate"]
CLOSED = ("Won", "Lost", "Abandoned")

PIPELINES = {p["id"]: p["name"] for p in SAMPLE_LOOKUPS["pipelines"]}
STAGE_ORDER = [s["id"] for p in SAMPLE_LOOKUPS["pipelines"] for s in p["stages"]]
STAGES = {s["id"]: f"{p['name']}/{s['name']}" for p in SAMPLE_LOOKUPS["pipelines"] for s in p["stages"]}
USERS = {u["id"]: u["name"] for u in SAMPLE_LOOKUPS["users"]}
SOURCES = {s["id"]: s["name"] for s in SAMPLE_LOOKUPS["customer_sources"]}
REASONS = {s["id"]: s["name"] for s in SAMPLE_LOOKUPS["loss_reasons"]}
CF_DEFS = {d["name"]: d for d in SAMPLE_LOOKUPS["custom_field_definitions"]}
REGION = {o["id"]: o["name"] for o in CF_DEFS["Region"]["options"]}
COMPETITORS = {o["id"]: o["name"] for o in CF_DEFS["Competitors"]["options"]}


# ---- the store ----------------------------------------------------------------------------------
def _cf(rec: dict[str, Any], ident: int) -> dict[str, Any] | None:
    return next((c for c in rec["custom_fields"] if c["custom_field_definition_id"] == ident), None)


def varied_records() -> list[dict[str, Any]]:
    """96 deals from the sample ones, with what real stores hold: no value, a value in cents, no
    win probability, no owner, no company, no tags or a tag twice, no close date, custom fields
    missing, empty or repeating, and creation dates over a year."""
    recs = derived_records(96, first_id=1)
    start = 1735689600  # 2025-01-01T00:00:00Z
    for i, r in enumerate(recs):
        if i % 14 == 9:
            r["status"] = "Abandoned"
        if i % 17 == 5:
            r["monetary_value"] = None
        if i % 13 == 2:
            r["monetary_value"] = (r["monetary_value"] or 0) + 0.335
        if i % 11 == 3:
            r["win_probability"] = None
        if i % 19 == 4:
            r["assignee_id"] = None
        if i % 31 == 10:
            r["company_id"] = r["company_name"] = None
        if i % 23 == 6:
            r["tags"] = []
        if i % 23 == 7:
            r["tags"] = ["hot", "hot", "vip"]
        if i % 29 == 8:
            r["close_date"] = None
        else:
            r["close_date"] = f"{1 + (i * 5) % 12}/{1 + i % 28}/{2025 + i % 3}"
        if i % 9 == 1:
            r["custom_fields"] = [c for c in r["custom_fields"] if c["custom_field_definition_id"] != 401]
        if i % 9 == 2:
            _cf(r, 401)["value"] = None  # type: ignore[index]
        if i % 10 == 3:
            _cf(r, 404)["value"] = [4041, 4041, 4043]  # type: ignore[index]
        if i % 10 == 4:
            _cf(r, 404)["value"] = []  # type: ignore[index]
        if i % 10 == 5:
            r["custom_fields"] = [c for c in r["custom_fields"] if c["custom_field_definition_id"] != 404]
        r["date_created"] = start + i * 4 * DAY + (i % 5) * 3600
    return recs


def data_records(store: Path) -> list[dict[str, Any]]:
    """The store's data file, read without oppcli."""
    return [orjson.loads(line) for line in (store / DATA).read_bytes().splitlines() if line.strip()]


# ---- the metrics, by the spec's rules -----------------------------------------------------------
def number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def value_of(rec: dict[str, Any]) -> float:
    return rec["monetary_value"] if number(rec.get("monetary_value")) else 0


def weighted_of(rec: dict[str, Any]) -> float:
    if rec["status"] == "Won":
        return value_of(rec)
    if rec["status"] in ("Lost", "Abandoned"):
        return 0
    prob = rec.get("win_probability")
    return value_of(rec) * prob / 100 if number(prob) else 0


def metrics(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    recs = list(records)
    count = len(recs)
    value = sum(value_of(r) for r in recs)
    won = sum(1 for r in recs if r["status"] == "Won")
    closed = sum(1 for r in recs if r["status"] in CLOSED)
    return {"count": count, "value": value, "weighted": sum(weighted_of(r) for r in recs),
            "average": value / count if count else 0, "win_rate": won / closed if closed else None}


ZERO = {"count": 0, "value": 0, "weighted": 0, "average": 0, "win_rate": None}


def assert_close(got: dict[str, Any], want: dict[str, Any], where: Any = "") -> None:
    """The row's metrics are the expected ones as printed: money within half a cent and never
    more than 2 decimals (a whole amount an int), win_rate within 4 places, counts exact."""
    assert got["count"] == want["count"], (where, got, want)
    assert type(got["count"]) is int, (where, got)
    for k in ("value", "weighted", "average"):
        assert number(got[k]), (where, k, got)
        assert abs(got[k] - want[k]) <= 0.005 + 1e-6, (where, k, got, want)
        assert abs(got[k] - round(got[k], 2)) < 1e-9, (where, k, got)
        if float(got[k]).is_integer():
            assert type(got[k]) is int, (where, k, got)
    if want["win_rate"] is None:
        assert got["win_rate"] is None, (where, got)
    else:
        assert number(got["win_rate"]), (where, got)
        assert abs(got["win_rate"] - want["win_rate"]) <= 0.00005 + 1e-9, (where, got, want)
        assert abs(got["win_rate"] - round(got["win_rate"], 4)) < 1e-12, (where, got)


# ---- each dimension, computed here: a deal's groups as (id or None, display name) ------------
def _named(table: dict[int, str], key: Any) -> list[tuple[Any, str]]:
    return [(None, "none")] if key is None else [(key, table[key])]


def _month(text: Any, quarter: bool = False) -> list[tuple[Any, str]]:
    if not text:
        return [(None, "none")]
    m, _d, y = (int(x) for x in text.split("/"))
    return [(None, f"{y}-Q{(m - 1) // 3 + 1}" if quarter else f"{y}-{m:02d}")]


def _created(stamp: Any) -> list[tuple[Any, str]]:
    import time

    t = time.gmtime(stamp)
    return [(None, f"{t.tm_year}-{t.tm_mon:02d}")]


def _tags(rec: dict[str, Any]) -> list[tuple[Any, str]]:
    tags = list(dict.fromkeys(t for t in rec.get("tags") or [] if isinstance(t, str) and t))
    return [(None, t) for t in tags] or [(None, "none")]


def _region(rec: dict[str, Any]) -> list[tuple[Any, str]]:
    c = _cf(rec, 401)
    return _named(REGION, c["value"] if c else None)


def _competitors(rec: dict[str, Any]) -> list[tuple[Any, str]]:
    c = _cf(rec, 404)
    ids = list(dict.fromkeys(c["value"] or [])) if c else []
    return [(i, COMPETITORS[i]) for i in ids] or [(None, "none")]


def _plain(name: str) -> Callable[[dict[str, Any]], list[tuple[Any, str]]]:
    return lambda r: [(None, "none")] if r.get(name) is None else [(None, r[name])]


# --by value -> (the row's key, whether it has `<key>_id`, a deal's groups)
DIMS: dict[str, tuple[str, bool, Callable[[dict[str, Any]], list[tuple[Any, str]]]]] = {
    "stage": ("stage", True, lambda r: _named(STAGES, r["pipeline_stage_id"])),
    "pipeline": ("pipeline", True, lambda r: _named(PIPELINES, r["pipeline_id"])),
    "assignee": ("assignee", True, lambda r: _named(USERS, r["assignee_id"])),
    "status": ("status", False, _plain("status")),
    "priority": ("priority", False, _plain("priority")),
    "source": ("source", True, lambda r: _named(SOURCES, r["customer_source_id"])),
    "loss-reason": ("loss_reason", True, lambda r: _named(REASONS, r["loss_reason_id"])),
    "company": ("company", True, lambda r: [(None, "none")] if r["company_id"] is None
                else [(r["company_id"], r["company_name"])]),
    "tag": ("tag", False, _tags),
    "cf:Region": ("cf:Region", True, _region),
    "cf:Competitors": ("cf:Competitors", True, _competitors),
    "close-month": ("close_month", False, lambda r: _month(r["close_date"])),
    "close-quarter": ("close_quarter", False, lambda r: _month(r["close_date"], quarter=True)),
    "created-month": ("created_month", False, lambda r: _created(r["date_created"])),
}


def expected_groups(records: list[dict[str, Any]], *dims: str) -> dict[tuple, dict[str, Any]]:
    """{((id, name), ...): metrics} for one or two dimensions; a deal in each of its groups."""
    members: dict[tuple, list[dict[str, Any]]] = {}
    for rec in records:
        combos: list[tuple] = [()]
        for d in dims:
            combos = [(*c, g) for c in combos for g in DIMS[d][2](rec)]
        for c in combos:
            members.setdefault(c, []).append(rec)
    return {k: metrics(v) for k, v in members.items()}


def row_groups(row: dict[str, Any], *dims: str) -> tuple:
    """A printed row's groups as expected_groups keys them."""
    out = []
    for d in dims:
        key, has_id, _ = DIMS[d]
        out.append((row[key + "_id"] if has_id else None, row[key]))
    return tuple(out)


# ---- jq -----------------------------------------------------------------------------------------
JQ_METRICS = r"""
def v: if (.monetary_value | type) == "number" then .monetary_value else 0 end;
def w: if .status == "Won" then v
       elif .status == "Lost" or .status == "Abandoned" then 0
       elif (.win_probability | type) == "number" then v * .win_probability / 100
       else 0 end;
def metrics: (map(v) | add // 0) as $value
  | (map(select(.status == "Won")) | length) as $won
  | (map(select(.status == "Won" or .status == "Lost" or .status == "Abandoned")) | length) as $closed
  | {count: length, value: $value, weighted: (map(w) | add // 0),
     average: (if length > 0 then $value / length else 0 end),
     win_rate: (if $closed > 0 then $won / $closed else null end)};
"""


def jq_groups(store: Path, keys: str) -> dict[Any, dict[str, Any]]:
    """jq -s over the store's data file: `keys` gives each deal's group keys (a stream: a deal
    under each); {key: metrics}, a list key as a tuple."""
    program = JQ_METRICS + (f"[.[] | . as $r | ({keys}) | {{k: ., r: $r}}] | group_by(.k) "
                            "| map({k: .[0].k, m: (map(.r) | metrics)})")
    proc = subprocess.run(["jq", "-s", "-c", program, str(store / DATA)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return {tuple(g["k"]) if isinstance(g["k"], list) else g["k"]: g["m"]
            for g in orjson.loads(proc.stdout)}


# ---- output -------------------------------------------------------------------------------------
def rows(text: str) -> list[dict[str, Any]]:
    """JSON Lines or one JSON array as a list of objects."""
    text = text.strip()
    if text.startswith("["):
        return orjson.loads(text)
    return [orjson.loads(line) for line in text.splitlines()]


_SGR = re.compile(r"\x1b\[([0-9;]*)m")


def colour_codes(text: str) -> list[str]:
    """The SGR escapes in text that set a colour (foreground or background), not bold or dim."""
    found = []
    for params in _SGR.findall(text):
        nums = [int(p) for p in params.split(";") if p]
        if any(30 <= n <= 38 or 40 <= n <= 48 or 90 <= n <= 97 or 100 <= n <= 107 for n in nums):
            found.append(params)
    return found


def plain(text: str) -> str:
    """Terminal output without escapes and carriage returns."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r", "")


def money(x: float) -> str:
    """A money cell as the table shows it: whole units with thousands separators."""
    return f"{x:,.0f}"
