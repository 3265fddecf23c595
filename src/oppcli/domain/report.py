"""Pipeline arithmetic, pure (no I/O): the groups of `report`, the months of `forecast` and
the idle time of `stale`.

A Tally is fed records one at a time (constant memory: one small accumulator per group) and
gives rows in the dimension's own order. The metrics of a group are those a sales team pivots:
count, value (monetary_value summed, null as 0), weighted (Won in full, Lost and Abandoned not
at all, Open at win_probability; see weighted_value), average (value / count) and win_rate
(Won / (Won + Lost + Abandoned); None when none is closed).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from oppcli.domain import fields as F
from oppcli.domain.lookups import Lookups
from oppcli.domain.values import stored_close_date
from oppcli.errors import UsageError

Record = dict[str, Any]
NONE = "none"  # the group of deals without a value for a dimension
METRICS = ("count", "value", "weighted", "average", "win_rate")
CF = "cf:"
DAY = 86400
# When a deal last saw activity: the latest of these it has (stale).
ACTIVITY = ("date_last_contacted", "date_stage_changed", "date_modified")


def weighted_value(rec: Record) -> float:
    """Expected value: Won deals count in full, Lost and Abandoned not at all, Open ones at
    their win probability (none: 0)."""
    value = rec.get("monetary_value")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return 0.0
    status = rec.get("status")
    if status == "Won":
        return float(value)
    if status in ("Lost", "Abandoned"):
        return 0.0
    prob = rec.get("win_probability")
    if not isinstance(prob, (int, float)) or isinstance(prob, bool):
        return 0.0
    return value * prob / 100


def _value(rec: Record) -> int | float:
    v = rec.get("monetary_value")
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else 0


# ---- dimensions -------------------------------------------------------------------------------
# name as typed -> (the row's key, the record field it reads, how its groups are ordered)
# Ordered "by rank": the dimension's own order (pipeline order, chronological, Open..Abandoned);
# "by value": the group holding the most value first (owners, sources, companies, tags).
_DIMS: dict[str, tuple[str, str, str]] = {
    "stage": ("stage", "pipeline_stage_id", "rank"),
    "pipeline": ("pipeline", "pipeline_id", "rank"),
    "assignee": ("assignee", "assignee_id", "value"),
    "status": ("status", "status", "rank"),
    "priority": ("priority", "priority", "rank"),
    "source": ("source", "customer_source_id", "value"),
    "loss-reason": ("loss_reason", "loss_reason_id", "value"),
    "company": ("company", "company_id", "value"),
    "tag": ("tag", "tags", "value"),
    "close-month": ("close_month", "close_date", "rank"),
    "close-quarter": ("close_quarter", "close_date", "rank"),
    "created-month": ("created_month", "date_created", "rank"),
}
DIMENSIONS: tuple[str, ...] = (*_DIMS, "cf:NAME")
_LOOKUP = {"pipeline_stage_id": "stages", "pipeline_id": "pipelines", "assignee_id": "users",
           "customer_source_id": "customer_sources", "loss_reason_id": "loss_reasons"}
_PRIORITY_RANK = {p: i for i, p in enumerate(reversed(F.PRIORITIES))}  # High first
_STATUS_RANK = {s: i for i, s in enumerate(F.STATUSES)}


@dataclass
class Dimension:
    """One --by: how a record's groups are found, named and ordered."""

    name: str  # as typed: stage, close-month, cf:Region
    key: str  # the row's key: stage, close_month, cf:Region
    has_id: bool  # whether rows carry `<key>_id`
    by_value: bool  # groups ordered by value (else by rank)
    keys: Callable[[Record], Any]  # the record's group key, or a tuple of them (tags, MultiSelect)
    many: bool = False  # keys() gives a tuple: the deal counts under each
    label: Callable[[Any, Record | None], str] = lambda k, r: str(k)
    rank: Callable[[Any], Any] = lambda k: k
    labels: dict[Any, str] = field(default_factory=dict)  # as first seen

    def name_of(self, key: Any, record: Record | None = None) -> str:
        if key is None:
            return NONE
        got = self.labels.get(key)
        if got is None:
            got = self.labels[key] = self.label(key, record)
        return got


def dimension(name: str, lookups: Lookups, date_order: str) -> Dimension:
    """The Dimension for a --by value; UsageError naming the valid ones otherwise."""
    raw = name.strip()
    if raw.casefold().startswith(CF):
        return _custom_dimension(raw[len(CF):].strip(), lookups)
    spelled = raw.casefold().replace("_", "-")
    if spelled not in _DIMS:
        raise UsageError(f"cannot group by {name!r}",
                         "valid: " + ", ".join(DIMENSIONS) + " (a Dropdown or MultiSelect custom "
                         "field)")
    key, source, order = _DIMS[spelled]
    dim = Dimension(spelled, key, has_id=source.endswith("_id"), by_value=order == "value",
                    keys=_getter(source))
    if source in _LOOKUP:
        table = _LOOKUP[source]
        dim.label = _lookup_label(lookups, table)
        if table == "stages":
            index = {s["id"]: i for i, s in enumerate(lookups.stages)}
            dim.rank = lambda k: (index.get(k, len(index)), k)
        elif table == "pipelines":
            index = {p["id"]: i for i, p in enumerate(lookups.data["pipelines"])}
            dim.rank = lambda k: (index.get(k, len(index)), k)
    elif source == "company_id":
        dim.label = lambda k, r: str((r or {}).get("company_name") or k)
    elif source == "status":
        dim.rank = lambda k: (_STATUS_RANK.get(k, len(_STATUS_RANK)), str(k))
    elif source == "priority":
        dim.rank = lambda k: (_PRIORITY_RANK.get(k, len(_PRIORITY_RANK)), str(k))
    elif source == "tags":
        dim.keys, dim.many = _tags, True
    elif source == "close_date":
        dim.keys = _close_period(date_order, quarter=spelled == "close-quarter")
    elif source == "date_created":
        dim.keys = _created_month
    return dim


def _getter(source: str) -> Callable[[Record], Any]:
    def get(rec: Record) -> Any:
        v = rec.get(source)
        return v if type(v) is not list and type(v) is not dict else None
    return get


def _lookup_label(lookups: Lookups, table: str) -> Callable[[Any, Record | None], str]:
    def label(key: Any, _rec: Record | None) -> str:
        row = lookups.get(table, key) if isinstance(key, int) else None
        if row is None:
            return str(key)
        if table == "stages":
            return f"{row['pipeline_name']}/{row['name']}"
        return str(row.get("name"))
    return label


def _tags(rec: Record) -> tuple[Any, ...]:
    tags = rec.get("tags")
    if not isinstance(tags, list) or not tags:
        return (None,)
    seen: list[Any] = []
    for t in tags:
        if isinstance(t, str) and t and t not in seen:
            seen.append(t)
    return tuple(seen) or (None,)


def _close_period(date_order: str, *, quarter: bool) -> Callable[[Record], Any]:
    cache: dict[str, str | None] = {}

    def period(rec: Record) -> Any:
        text = rec.get("close_date")
        if type(text) is not str:
            return None
        got = cache.get(text, "")
        if got == "":
            day = stored_close_date(text, date_order)
            got = None if day is None else (f"{day.year}-Q{(day.month - 1) // 3 + 1}" if quarter
                                            else f"{day.year}-{day.month:02d}")
            if len(cache) < 100_000:
                cache[text] = got
        return got
    return period


def _created_month(rec: Record) -> Any:
    """The UTC month a deal was created in (as the created filters read dates)."""
    stamp = rec.get("date_created")
    if isinstance(stamp, bool) or not isinstance(stamp, (int, float)):
        return None
    try:
        when = dt.datetime.fromtimestamp(stamp, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return f"{when.year}-{when.month:02d}"


def _custom_dimension(text: str, lookups: Lookups) -> Dimension:
    defn = lookups.custom_field(text)
    kind = defn.get("data_type")
    if kind not in ("Dropdown", "MultiSelect"):
        raise UsageError(f"cannot group by custom field {defn['name']!r}: it is {kind}",
                         "group by a Dropdown or MultiSelect custom field")
    ident = defn["id"]
    index = {o["id"]: i for i, o in enumerate(defn.get("options") or [])}
    many = kind == "MultiSelect"

    def value(rec: Record) -> Any:
        for cf in rec.get("custom_fields") or ():
            if isinstance(cf, dict) and cf.get("custom_field_definition_id") == ident:
                v = cf.get("value")
                if many:
                    if not isinstance(v, list) or not v:
                        return (None,)
                    return tuple(dict.fromkeys(x for x in v if isinstance(x, int))) or (None,)
                return v if isinstance(v, int) and not isinstance(v, bool) else None
        return (None,) if many else None

    return Dimension(CF + text, CF + str(defn["name"]), has_id=True, by_value=False,
                     keys=value, many=many,
                     label=lambda k, r: lookups.option_name(defn, k),
                     rank=lambda k: (index.get(k, len(index)), k))


# ---- metrics ----------------------------------------------------------------------------------
class Totals:
    """The running metrics of one group."""

    __slots__ = ("closed", "count", "value", "weighted", "won")

    def __init__(self) -> None:
        self.count = 0
        self.value: int | float = 0
        self.weighted = 0.0
        self.won = 0
        self.closed = 0

    def add(self, value: int | float, weighted: float, status: Any) -> None:
        self.count += 1
        self.value += value
        self.weighted += weighted
        if status == "Won":
            self.won += 1
            self.closed += 1
        elif status == "Lost" or status == "Abandoned":
            self.closed += 1

    def merge(self, acc: Sequence[Any]) -> None:
        """Add an accumulator of Tally.add_all: [count, value, weighted, won, closed]."""
        self.count += acc[0]
        self.value += acc[1]
        self.weighted += acc[2]
        self.won += acc[3]
        self.closed += acc[4]

    def metrics(self) -> dict[str, Any]:
        """count, value, weighted, average (cents) and win_rate (4 places; None: none closed)."""
        value = _cents(self.value)
        return {"count": self.count, "value": value, "weighted": _cents(self.weighted),
                "average": _cents(self.value / self.count) if self.count else 0,
                "win_rate": round(self.won / self.closed, 4) if self.closed else None}


def _cents(x: int | float) -> int | float:
    """A money amount as a plain number: whole amounts as integers, else rounded to cents."""
    r = round(x, 2)
    return int(r) if float(r).is_integer() else r


# ---- report -----------------------------------------------------------------------------------
@dataclass
class Row:
    """One group: its (key, display name) per dimension, and its metrics."""

    groups: tuple[tuple[Any, str], ...]
    metrics: dict[str, Any]


@dataclass
class Report:
    dimensions: list[Dimension]
    rows: list[Row]
    total: dict[str, Any]  # every deal once
    won: int = 0  # of every deal (the total's win rate: won / closed)
    closed: int = 0

    def records(self) -> list[dict[str, Any]]:
        """One dict per row for the machine formats: each dimension's name (and id), then
        the metrics. No total row."""
        return [self.record(row) for row in self.rows]

    def record(self, row: Row) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for dim, (key, name) in zip(self.dimensions, row.groups, strict=True):
            out[dim.key] = name if not (key is None and name == "") else None
            if dim.has_id:
                out[dim.key + "_id"] = key
        out.update(row.metrics)
        return out

    def columns(self) -> list[str]:
        """The keys of records(), in order: what --fields chooses from."""
        keys: list[str] = []
        for dim in self.dimensions:
            keys.append(dim.key)
            if dim.has_id:
                keys.append(dim.key + "_id")
        return [*keys, *METRICS]


class Tally:
    """Records in, groups out: by one or two dimensions, each deal counted once per group it
    is in (a deal with two tags is in two tag groups) and once in the total."""

    def __init__(self, dims: Sequence[Dimension]) -> None:
        if not 1 <= len(dims) <= 2:
            raise UsageError("give one or two --by dimensions",
                             "e.g. --by stage, or --by stage --by assignee")
        if len(dims) == 2 and dims[0].key == dims[1].key:
            raise UsageError(f"--by {dims[0].name} is given twice", "give two different dimensions")
        self.dims = list(dims)
        self.total = Totals()
        self.outer: dict[Any, Totals] = {}  # by the first dimension (the order of outer groups)
        self.groups: dict[Any, Totals] = {}  # by (first, second) or the first alone
        self.count = 0

    def add_all(self, records: Iterable[Record]) -> None:
        """Fold the records in. The loop keeps one accumulator per distinct (key, key) the
        records have, as found (a deal's tags are one key: the tuple of them), so each deal is
        added once; the groups, the outer groups and the total are sums of those afterwards.
        An accumulator: [count, value, weighted, won, closed]."""
        first = self.dims[0]
        second = self.dims[1] if len(self.dims) == 2 else None
        k1 = first.keys
        k2 = second.keys if second is not None else None
        fine: dict[Any, list[Any]] = {}
        for rec in records:
            value = rec.get("monetary_value")
            if type(value) is not int and type(value) is not float:
                value = 0
            status = rec.get("status")
            won = closed = 0
            if status == "Won":
                weighted: float = value
                won = closed = 1
            elif status == "Lost" or status == "Abandoned":
                weighted = 0.0
                closed = 1
            else:
                p = rec.get("win_probability")
                weighted = value * p / 100 if value and (type(p) is int or type(p) is float) \
                    else 0.0
            key = k1(rec) if k2 is None else (k1(rec), k2(rec))
            acc = fine.get(key)
            if acc is None:
                acc = fine[key] = [0, 0, 0.0, 0, 0]
                self._name(key, rec)
            acc[0] += 1
            acc[1] += value
            acc[2] += weighted
            acc[3] += won
            acc[4] += closed
        many1 = first.many
        many2 = second.many if second is not None else False
        for key, acc in fine.items():
            self.total.merge(acc)
            a: Any = key if k2 is None else key[0]
            b: Any = None if k2 is None else key[1]
            for x in (a if many1 else (a,)):
                t = self.outer.get(x)
                if t is None:
                    t = self.outer[x] = Totals()
                t.merge(acc)
                if k2 is None:
                    continue
                for y in (b if many2 else (b,)):
                    g = self.groups.get((x, y))
                    if g is None:
                        g = self.groups[(x, y)] = Totals()
                    g.merge(acc)
        self.count = self.total.count

    def _name(self, key: Any, rec: Record) -> None:
        """Note the display names of a new key's groups, from the record that has it (a
        company's name is the record's company_name)."""
        parts = (key,) if len(self.dims) == 1 else key
        for dim, part in zip(self.dims, parts, strict=True):
            for k in (part if dim.many else (part,)):
                if k is not None and k not in dim.labels:
                    dim.name_of(k, rec)

    def report(self, zero_stages: Iterable[int] = ()) -> Report:
        """The rows: outer groups in the first dimension's order, inner ones in the second's
        within each. `zero_stages`: stage ids shown with zeros when the first dimension is
        stage and they have no deals (the funnel reads whole)."""
        first = self.dims[0]
        second = self.dims[1] if len(self.dims) == 2 else None
        outer = dict(self.outer)
        if first.key == "stage":
            for sid in zero_stages:
                outer.setdefault(sid, Totals())
        rows: list[Row] = []
        for x in _ordered(first, outer):
            gx = (x, first.name_of(x))
            if second is None:
                rows.append(Row((gx,), outer[x].metrics()))
                continue
            inner = {y: t for (a, y), t in self.groups.items() if a == x}
            if not inner:  # a stage shown with zeros: no second group
                rows.append(Row((gx, (None, "")), outer[x].metrics()))
                continue
            for y in _ordered(second, inner):
                rows.append(Row((gx, (y, second.name_of(y))), inner[y].metrics()))
        return Report(self.dims, rows, self.total.metrics(), self.total.won, self.total.closed)


def _ordered(dim: Dimension, groups: dict[Any, Totals]) -> list[Any]:
    """Group keys in the dimension's order, `none` last."""
    keys = [k for k in groups if k is not None]
    if dim.by_value:
        keys.sort(key=lambda k: (-groups[k].value, -groups[k].count, dim.name_of(k).casefold(),
                                 str(k)))
    else:
        try:
            keys.sort(key=dim.rank)
        except TypeError:  # mixed kinds of value in a hand-edited store
            keys.sort(key=lambda k: str(dim.rank(k)))
    return keys + ([None] if None in groups else [])


def stages_in_scope(lookups: Lookups, pipeline_ids: Sequence[int],
                    stage_ids: Sequence[int]) -> list[int]:
    """The stages a `--by stage` report shows even without deals: those the search names, else
    those of the pipelines it names, else every stage."""
    if stage_ids:
        return [s for s in stage_ids if lookups.has("stages", s)]
    return [s["id"] for s in lookups.stages if not pipeline_ids or s["pipeline_id"] in pipeline_ids]


# ---- forecast ---------------------------------------------------------------------------------
OVERDUE = "overdue"


@dataclass
class Forecast:
    """Open deals by expected close month: `rows` holds (month, metrics) for overdue, each of
    the months (YYYY-MM, zeros included) and none; `later` the deals closing after them."""

    today: dt.date
    months: list[str]
    rows: list[tuple[str, dict[str, Any]]]
    later: dict[str, Any]
    total: dict[str, Any]  # the rows' deals, each once (not `later`)

    def records(self) -> list[dict[str, Any]]:
        return [{"month": month, **metrics} for month, metrics in self.rows]

    @staticmethod
    def columns() -> list[str]:
        return ["month", *METRICS]


def month_list(today: dt.date, count: int) -> list[str]:
    out = []
    y, m = today.year, today.month
    for _ in range(count):
        out.append(f"{y}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def forecast(records: Iterable[Record], *, today: dt.date, months: int,
             date_order: str) -> Forecast:
    """Bucket open deals (the caller's search gives only open ones) by close month."""
    if months < 1:
        raise UsageError(f"--months must be at least 1, not {months}", "e.g. --months 6")
    names = month_list(today, months)
    wanted = set(names)
    buckets: dict[str, Totals] = {OVERDUE: Totals(), **{n: Totals() for n in names},
                                  NONE: Totals()}
    later, total = Totals(), Totals()
    cache: dict[str, dt.date | None] = {}
    for rec in records:
        value = _value(rec)
        weighted = weighted_value(rec)
        status = rec.get("status")
        text = rec.get("close_date")
        day: dt.date | None = None
        if type(text) is str:
            if text in cache:
                day = cache[text]
            else:
                day = cache[text] = stored_close_date(text, date_order)
        if day is None:
            name = NONE
        elif day < today:
            name = OVERDUE
        else:
            name = f"{day.year}-{day.month:02d}"
            if name not in wanted:
                later.add(value, weighted, status)
                continue
        buckets[name].add(value, weighted, status)
        total.add(value, weighted, status)
    rows = [(n, buckets[n].metrics()) for n in (OVERDUE, *names, NONE)]
    return Forecast(today, names, rows, later.metrics(), total.metrics())


# ---- stale ------------------------------------------------------------------------------------
def last_activity(rec: Record) -> int | float | None:
    """The latest of date_last_contacted, date_stage_changed and date_modified the record has."""
    latest = None
    for key in ACTIVITY:
        v = rec.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and (latest is None or v > latest):
            latest = v
    return latest


def idle_days(rec: Record, now: float) -> int | None:
    """Whole days since the deal's last activity; None when it has no date of activity."""
    at = last_activity(rec)
    return None if at is None else max(0, int((now - at) // DAY))


def stale_order(rec: Record, now: float) -> tuple[Any, ...]:
    """Sort key: value descending (none last), then idle days descending, then id."""
    v = rec.get("monetary_value")
    value = v if isinstance(v, (int, float)) and not isinstance(v, bool) else None
    idle = idle_days(rec, now)
    ident = rec.get("id")
    return (value is None, -(value or 0), idle is not None, -(idle or 0),
            ident if isinstance(ident, int) else 0)
