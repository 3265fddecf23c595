"""`oppcli forecast` and `oppcli stale` on a local store, through the installed `oppcli`.

forecast: stores whose close dates are relative to today (UTC for a store without a zone, else
the store's zone), built again if the day turns during a test; overdue, each of the N months
from this one with zeros, none, only open deals, the deals after the window left out and counted
in the summary line, the `month` key, --months. stale: deals whose dates of activity are relative
to now; the latest of date_modified, date_stage_changed and date_last_contacted; only open deals;
the order (value descending, none last, then idle days descending); the records exactly as
`search` prints them; the "Idle days" column; a real `stale | update -` pipe. Expected rows are
computed here, never by oppcli.domain.report; the Session API gives the CLI's rows.
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import io
import os
import re
import shlex
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from report_local_support import (
    METRICS,
    assert_close,
    colour_codes,
    metrics,
    money,
    plain,
    value_of,
    varied_records,
)

import oppcli
from checks import one_error_line, snapshot, stored_records
from conftest import build_store, oppcli_exe
from oppcli.backends.local import LocalStore
from oppcli.domain.sample import SAMPLE_LOOKUPS
from ptyterm import on_a_terminal

DAY = 86400
BASE = varied_records()[0]


def deal(i: int, **fields: Any) -> dict[str, Any]:
    """A sample deal with this id and these fields."""
    rec = {**BASE, "id": i, "name": f"Deal {i}", "status": "Open", "tags": [], "monetary_value": 1000,
           "win_probability": 50, "assignee_id": 101}
    rec.update(fields)
    return rec


def json_of(proc: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return orjson.loads(proc.stdout)


# ---- forecast: dates relative to today -------------------------------------------------------
def zone_today(offset_hours: int = 0) -> dt.date:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=offset_hours)).date()


def month(today: dt.date, k: int) -> tuple[int, int]:
    """The year and month k months after today's."""
    n = today.year * 12 + today.month - 1 + k
    return n // 12, n % 12 + 1


def name(ym: tuple[int, int]) -> str:
    return f"{ym[0]}-{ym[1]:02d}"


def mdy(day: dt.date) -> str:
    return f"{day.month}/{day.day}/{day.year}"


def on(ym: tuple[int, int], day: int | None = None) -> str:
    """A close date in that month: `day`, or its last day."""
    last = calendar.monthrange(*ym)[1]
    return mdy(dt.date(ym[0], ym[1], min(day or last, last)))


def forecast_records(today: dt.date) -> list[dict[str, Any]]:
    """Open deals overdue, in this month and months 2 and 3 after it (month 1 empty), after a
    four-month window, and undated; closed deals inside the window, which forecast leaves out."""
    return [
        deal(1, close_date=mdy(today - dt.timedelta(days=1)), monetary_value=10000, win_probability=50),
        deal(2, close_date=mdy(today - dt.timedelta(days=400)), monetary_value=5000.5,
             win_probability=None, assignee_id=102),
        deal(3, close_date=mdy(today), monetary_value=20000, win_probability=25, assignee_id=102),
        deal(4, close_date=on(month(today, 0)), monetary_value=None, win_probability=60),
        deal(5, close_date=on(month(today, 2), 15), monetary_value=30000, win_probability=10),
        deal(6, close_date=on(month(today, 3)), monetary_value=12345.67, win_probability=33,
             assignee_id=103),
        deal(7, close_date=on(month(today, 4), 1), monetary_value=70000, win_probability=90),
        deal(8, close_date=on(month(today, 20), 1), monetary_value=1000, win_probability=10,
             assignee_id=102),
        deal(9, close_date=None, monetary_value=8000, win_probability=75, assignee_id=103),
        deal(10, status="Won", close_date=mdy(today), monetary_value=99000, win_probability=100),
        deal(11, status="Lost", close_date=on(month(today, 1), 10), monetary_value=44000,
             win_probability=0),
        deal(12, status="Abandoned", close_date=mdy(today - dt.timedelta(days=1)), monetary_value=3000,
             win_probability=0),
    ]


def on_a_stable_day(root: Path, run: Callable[[Path, dt.date], Any], offset_hours: int = 0,
                    timezone: str | None = None) -> tuple[Any, dt.date, dict[int, dict[str, Any]]]:
    """Build a forecast store for today (in the zone `offset_hours` from UTC) and run; again
    with a new store if the day changed meanwhile (midnight). Returns what run gave, the day
    and the records by id."""
    for attempt in range(2):
        today = zone_today(offset_hours)
        path = root / f"forecast-store-{attempt}"
        records = forecast_records(today)
        LocalStore.create_store(path, lookups=SAMPLE_LOOKUPS, records=records,
                                extra={"timezone": timezone} if timezone else None)
        got = run(path, today)
        if zone_today(offset_hours) == today:
            return got, today, {r["id"]: r for r in records}
    pytest.fail("the day changed twice during the test")


def expected_forecast(by_id: dict[int, dict[str, Any]], today: dt.date,
                      months: int, **buckets: list[int]) -> list[tuple[str, dict[str, Any]]]:
    """The rows (month, metrics), computed from the ids each row should hold."""
    names = ["overdue", *(name(month(today, k)) for k in range(months)), "none"]
    return [(n, metrics(by_id[i] for i in buckets.get(n, []))) for n in names]


def buckets_of(today: dt.date, months: int, ids: list[int]) -> dict[str, list[int]]:
    """Where forecast_records' open deals fall, by hand (not by reading their dates)."""
    where = {1: "overdue", 2: "overdue", 3: name(month(today, 0)), 4: name(month(today, 0)),
             5: name(month(today, 2)), 6: name(month(today, 3)), 7: name(month(today, 4)),
             8: name(month(today, 20)), 9: "none"}
    window = {"overdue", "none", *(name(month(today, k)) for k in range(months))}
    out: dict[str, list[int]] = {}
    for i in ids:
        if where[i] in window:
            out.setdefault(where[i], []).append(i)
    return out


def assert_forecast(got: list[dict[str, Any]], want: list[tuple[str, dict[str, Any]]]) -> None:
    assert [r["month"] for r in got] == [n for n, _ in want]
    for row, (n, m) in zip(got, want, strict=True):
        assert list(row) == ["month", *METRICS], row
        assert_close(row, m, n)


def test_forecast_has_overdue_each_month_from_this_one_with_zeros_and_none(sh, tmp_path):
    def run(path: Path, today: dt.date) -> list[dict[str, Any]]:
        return json_of(sh("forecast", "--months", "4", "-o", "json", env={"OPPCLI_STORE": str(path)}))
    got, today, by_id = on_a_stable_day(tmp_path, run)
    want = expected_forecast(by_id, today, 4, **buckets_of(today, 4, list(range(1, 10))))
    assert_forecast(got, want)
    assert got[2]["month"] == name(month(today, 1)) and got[2]["count"] == 0  # the empty month shows
    assert got[0]["count"] == 2 and got[-1]["count"] == 1 and got[1]["count"] == 2
    # Only open deals: the won, lost and abandoned ones inside the window count nowhere.
    assert sum(r["count"] for r in got) == 7


def test_forecast_defaults_to_six_months_and_takes_one_to_120(sh, tmp_path):
    def run(path: Path, today: dt.date) -> dict[str, list[dict[str, Any]]]:
        env = {"OPPCLI_STORE": str(path)}
        return {n: json_of(sh("forecast", *(["--months", n] if n else []), "-o", "json", env=env))
                for n in ("", "1", "120")}
    got, today, by_id = on_a_stable_day(tmp_path, run)
    assert_forecast(got[""], expected_forecast(by_id, today, 6, **buckets_of(today, 6, list(range(1, 10)))))
    assert got[""][5]["count"] == 1  # the fifth month holds deal 7, outside a four-month window
    assert_forecast(got["1"], expected_forecast(by_id, today, 1, **buckets_of(today, 1, list(range(1, 10)))))
    assert len(got["120"]) == 122 and got["120"][-2]["month"] == name(month(today, 119))
    assert_forecast(got["120"], expected_forecast(by_id, today, 120,
                                                  **buckets_of(today, 120, list(range(1, 10)))))


def test_forecast_filters_combine_with_open_deals_only(sh, tmp_path):
    def run(path: Path, today: dt.date) -> list[dict[str, Any]]:
        return json_of(sh("forecast", "--months", "3", "--assignee", "Ben Okafor", "--min-value", "1000",
                          "-o", "json", env={"OPPCLI_STORE": str(path)}))
    got, today, by_id = on_a_stable_day(tmp_path, run)
    # Ben's open deals: 2 (overdue), 3 (this month), 8 (later); his none: none.
    assert_forecast(got, expected_forecast(by_id, today, 3, **buckets_of(today, 3, [2, 3, 8])))


def test_forecast_machine_formats_key_rows_by_month(sh, tmp_path):
    def run(path: Path, today: dt.date) -> dict[str, str]:
        env = {"OPPCLI_STORE": str(path)}
        out = {fmt: sh("forecast", "--months", "2", "-o", fmt, env=env).stdout
               for fmt in ("json", "jsonl", "csv", "tsv")}
        out["fields"] = sh("forecast", "--months", "2", "--fields", "weighted,month", "-o", "csv",
                           env=env).stdout
        return out
    got, today, _ = on_a_stable_day(tmp_path, run)
    rows = orjson.loads(got["json"])
    assert [r["month"] for r in rows] == ["overdue", name(month(today, 0)), name(month(today, 1)), "none"]
    assert [orjson.loads(line) for line in got["jsonl"].splitlines()] == rows
    for fmt, sep in (("csv", ","), ("tsv", "\t")):
        table = list(csv.reader(io.StringIO(got[fmt], newline=""), delimiter=sep))
        assert table[0] == ["month", *METRICS]
        assert [t[0] for t in table[1:]] == [r["month"] for r in rows]  # no total row
        assert [t[1] for t in table[1:]] == [str(r["count"]) for r in rows]
    picked = list(csv.reader(io.StringIO(got["fields"], newline="")))
    assert picked == [["weighted", "month"], *([str(r["weighted"]), r["month"]] for r in rows)]


def test_forecast_table_shows_rows_total_and_the_later_deals_in_the_summary(sh, tmp_path, monkeypatch):
    def run(path: Path, today: dt.date) -> tuple[str, str]:
        env = {"OPPCLI_STORE": str(path)}
        table = sh("forecast", "--months", "4", "-o", "table", env=env).stdout
        monkeypatch.setenv("OPPCLI_STORE", str(path))  # on_a_terminal passes the environment on
        code, term = on_a_terminal(["forecast", "--months", "4"], columns=120)
        assert code == 0, term
        return table, term
    (table, term), today, by_id = on_a_stable_day(tmp_path, run)
    text = plain(table)
    shown = [by_id[i] for i in (1, 2, 3, 4, 5, 6, 9)]
    total = metrics(shown)
    for label in ("overdue", *(name(month(today, k)) for k in range(4)), "none"):
        assert re.search(rf"^\s*{label}\s+\d", text, re.M), (label, text)
    assert re.search(rf"^\s*{name(month(today, 1))}\s+0\s+0\s+0\b", text, re.M), text
    assert re.search(rf"^\s*total\s+7\s+{re.escape(money(total['value']))}\s+"
                     rf"{re.escape(money(total['weighted']))}", text, re.M), text
    summary = [line for line in text.splitlines() if line.strip()][-1]
    later = by_id[7]["monetary_value"] + by_id[8]["monetary_value"]
    assert re.search(rf"\b2 clos\w* later \(value {re.escape(money(later))}\)", summary), summary
    assert re.search(r"\b2 overdue\b", summary), summary
    assert re.search(r"\b1 (undated|without a close date)\b", summary), summary
    assert "█" in term or "░" in term
    assert "overdue" in plain(term) and "total" in plain(term)


def test_forecast_today_is_the_stores_time_zone(sh, tmp_path):
    """A store 14 hours ahead of UTC, and one 12 behind: overdue is before today there."""
    for offset, zone in ((14, "+14:00"), (-12, "-12:00")):
        def run(path: Path, today: dt.date) -> list[dict[str, Any]]:
            return json_of(sh("forecast", "--months", "4", "-o", "json", env={"OPPCLI_STORE": str(path)}))
        got, today, by_id = on_a_stable_day(tmp_path / zone, run, offset_hours=offset, timezone=zone)
        assert_forecast(got, expected_forecast(by_id, today, 4, **buckets_of(today, 4, list(range(1, 10)))))


@pytest.mark.parametrize("args, said", [
    (["--months", "0"], "--months"), (["--months", "121"], "--months"), (["--months", "-2"], "--months"),
    (["--months", "x"], "--months"), (["--status", "open"], "--status"),
    (["--fields", "month,stage"], "unknown column 'stage'"),
])
def test_a_bad_forecast_request_is_exit_2_with_one_error_line(sh, store_path, args, said):
    build_store(store_path, forecast_records(zone_today()))
    line = one_error_line(sh("forecast", *args, "-o", "json", expect=None), 2)
    assert said in line, line


# ---- stale: activity relative to now ---------------------------------------------------------
def ago(now: float, days: int, hours: float = 1) -> int:
    """Unix seconds `days` days and `hours` more before now (the hour keeps whole idle days
    whole while the command starts)."""
    return int(now - days * DAY - hours * 3600)


def stale_records(now: float) -> list[dict[str, Any]]:
    def d(i: int, value: Any, modified: int, *, stage: int | None = None, contacted: Any = "-",
          **more: Any) -> dict[str, Any]:
        rec = deal(i, monetary_value=value, date_modified=modified, date_created=modified - 10 * DAY,
                   **more)
        if stage is not None:
            rec["date_stage_changed"] = stage
        if contacted != "-":
            rec["date_last_contacted"] = contacted
        return rec
    return [
        d(1, 50000, ago(now, 45), stage=ago(now, 60), contacted=ago(now, 50), interaction_count=4,
          monetary_unit="USD", converted_value="50000.0", converted_unit="USD",
          leads_converted_from=[{"lead_id": 77, "converted_timestamp": ago(now, 90)}]),
        d(2, 50000, ago(now, 100)),  # no extras at all: date_modified is its activity
        d(3, 90000, ago(now, 40), stage=ago(now, 40), contacted=ago(now, 5)),  # contacted lately
        d(4, 90000, ago(now, 40), stage=ago(now, 10), contacted=None),  # stage changed lately
        d(5, 90000, ago(now, 2), stage=ago(now, 80), contacted=ago(now, 80)),  # modified lately
        d(6, None, ago(now, 300), interaction_count=0, assignee_id=102),
        d(7, 80000, ago(now, 200), status="Won"),
        d(8, 80000, ago(now, 200), status="Lost"),
        d(9, 80000, ago(now, 200), status="Abandoned"),
        d(10, 70000, ago(now, 31), stage=ago(now, 35), contacted=None, assignee_id=102),
        d(11, 70000, ago(now, 29), tags=["keep"]),  # 29 idle days: stale at --days 29, not 30
        d(12, 0, ago(now, 60), tags=["x"], assignee_id=103),
        d(13, 120000, ago(now, 30), stage=ago(now, 31)),  # exactly 30 idle days
        d(14, 120000, ago(now, 29, hours=23), interaction_count=9),  # 29 days and 23 hours
    ]


def latest_activity(rec: dict[str, Any]) -> int:
    return max(rec.get(k) or 0 for k in ("date_modified", "date_stage_changed", "date_last_contacted"))


def idle(rec: dict[str, Any], now: float) -> int:
    return int((now - latest_activity(rec)) // DAY)


def expected_stale(records: list[dict[str, Any]], now: float, days: int,
                   keep: Callable[[dict[str, Any]], bool] = lambda r: True) -> list[int]:
    hits = [r for r in records if r["status"] == "Open" and idle(r, now) >= days and keep(r)]
    hits.sort(key=lambda r: (r["monetary_value"] is None, -(r["monetary_value"] or 0), -idle(r, now),
                             r["id"]))
    return [r["id"] for r in hits]


@pytest.fixture
def stale_store(store_path: Path) -> tuple[Path, float, list[dict[str, Any]]]:
    now = time.time()
    records = stale_records(now)
    build_store(store_path, records)
    return store_path, now, records


def test_stale_lists_open_deals_idle_for_n_days_by_value_then_idle_days(sh, stale_store):
    _, now, records = stale_store
    got = json_of(sh("stale", "-o", "json"))
    assert [r["id"] for r in got] == expected_stale(records, now, 30) == [13, 10, 2, 1, 12, 6]
    assert [r["id"] for r in json_of(sh("stale", "--days", "29", "-o", "json"))] == \
        expected_stale(records, now, 29) == [13, 14, 10, 11, 2, 1, 12, 6]
    assert [r["id"] for r in json_of(sh("stale", "--days", "46", "-o", "json"))] == [2, 12, 6]
    assert [r["id"] for r in json_of(sh("stale", "--days", "0", "-o", "json"))] == \
        expected_stale(records, now, 0)
    assert json_of(sh("stale", "--days", "1000", "-o", "json")) == []


def test_stale_activity_is_the_latest_of_modified_stage_changed_and_contacted(sh, stale_store):
    ids = [r["id"] for r in json_of(sh("stale", "--days", "30", "-o", "json"))]
    assert 3 not in ids  # contacted 5 days ago
    assert 4 not in ids  # stage changed 10 days ago
    assert 5 not in ids  # modified 2 days ago
    assert 1 in ids and 10 in ids  # every date old (10 never contacted)
    assert not {7, 8, 9} & set(ids)  # closed deals, however idle


def test_stale_filters_combine(sh, stale_store):
    _, now, records = stale_store
    got = json_of(sh("stale", "--assignee", "Ben Okafor", "-o", "json"))
    assert [r["id"] for r in got] == expected_stale(records, now, 30, lambda r: r["assignee_id"] == 102)
    assert [r["id"] for r in got] == [10, 6]
    got = json_of(sh("stale", "--days", "29", "--tag", "keep,x", "--min-value", "0", "-o", "json"))
    assert [r["id"] for r in got] == [11, 12]
    assert [r["id"] for r in json_of(sh("stale", "--limit", "2", "-o", "json"))] == [13, 10]


def test_stale_prints_the_records_exactly_as_search_does(sh, stale_store):
    store, _, _ = stale_store
    stored = stored_records(store)
    got = json_of(sh("stale", "-o", "json"))
    assert got == [stored[r["id"]] for r in got]  # every field kept, extras too
    assert got[3]["id"] == 1 and got[3]["interaction_count"] == 4
    assert got[3]["leads_converted_from"] == stored[1]["leads_converted_from"]
    ids = ",".join(str(r["id"]) for r in got)
    searched = {r["id"]: r for r in json_of(sh("search", "--id", ids, "-o", "json"))}
    assert got == [searched[r["id"]] for r in got]
    assert [orjson.loads(x) for x in sh("stale", "-o", "jsonl").stdout.splitlines()] == got
    for fmt in ("csv", "tsv"):
        stale_lines = sh("stale", "-o", fmt).stdout.splitlines()
        search_lines = sh("search", "--id", ids, "-o", fmt).stdout.splitlines()
        assert stale_lines[0] == search_lines[0]
        assert sorted(stale_lines[1:]) == sorted(search_lines[1:])
    picked = json_of(sh("stale", "--fields", "name,id", "-o", "json"))
    assert picked == [{"name": r["name"], "id": r["id"]} for r in got]


def test_stale_table_has_an_idle_days_column(sh, stale_store):
    _, now, records = stale_store
    by_id = {r["id"]: r for r in records}
    text = plain(sh("stale", "-o", "table").stdout)
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines[0].split()[-2:] == ["Idle", "days"], lines[0]
    for i in expected_stale(records, now, 30):
        row = next(line for line in lines if re.match(rf"\s*{i}\s", line))
        assert row.split()[-1] == f"{idle(by_id[i], now):,}", row
        assert f"Deal {i}" in row
    code, out = on_a_terminal(["stale"], columns=160)
    assert code == 0, out
    assert "Idle days" in plain(out) and "Deal 13" in plain(out)


def test_stale_jsonl_piped_into_update_tags_exactly_the_stale_deals(stale_store):
    store, now, records = stale_store
    before = stored_records(store)
    exe = shlex.quote(oppcli_exe())
    proc = subprocess.run(["bash", "-c", f"set -o pipefail; {exe} stale -o jsonl | {exe} update - "
                           "--add-tag stale --yes"], capture_output=True, text=True,
                          env=dict(os.environ), timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    after = stored_records(store)
    tagged = set(expected_stale(records, now, 30))
    assert sorted(after) == sorted(before)
    for i, old in before.items():
        if i in tagged:
            assert after[i]["tags"] == [*old["tags"], "stale"], i
        else:
            assert after[i] == old, i
    # Tagged just now: no longer idle.
    again = subprocess.run([oppcli_exe(), "stale", "-o", "json"], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=60)
    assert again.returncode == 0 and orjson.loads(again.stdout) == []


@pytest.mark.parametrize("args, said", [
    (["--status", "open"], "--status"), (["--status", "won"], "--status"),
    (["--days", "-1"], "--days"), (["--days", "x"], "--days"),
    (["--fields", "id,nope"], "nope"),
])
def test_a_bad_stale_request_is_exit_2_with_one_error_line(sh, stale_store, args, said):
    files = snapshot(stale_store[0])
    line = one_error_line(sh("stale", *args, "-o", "json", expect=None), 2)
    assert said in line, line
    assert snapshot(stale_store[0]) == files


def test_no_colour_in_the_stale_and_forecast_tables_with_NO_COLOR(stale_store, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    for argv in (["stale"], ["--color", "always", "forecast"]):
        code, out = on_a_terminal(argv, columns=140)
        assert code == 0, out
        assert colour_codes(out) == [], (argv, repr(out[:300]))


# ---- the library ------------------------------------------------------------------------------
def test_the_session_api_gives_the_forecast_and_stale_rows_the_cli_prints(sh, stale_store, tmp_path):
    store, now, records = stale_store
    cli = json_of(sh("stale", "--days", "30", "-o", "json"))
    with oppcli.connect(store=store) as s:
        result = s.stale(days=30)
        assert result.deals == cli
        assert [result.idle(r) for r in result.deals] == [idle(r, now) for r in cli]
        assert s.stale(days=30, assignee="Ben Okafor").deals == json_of(
            sh("stale", "--assignee", "Ben Okafor", "-o", "json"))

    def run(path: Path, today: dt.date) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        cli = json_of(sh("forecast", "--months", "3", "-o", "json", env={"OPPCLI_STORE": str(path)}))
        with oppcli.connect(store=path) as s:
            return cli, s.forecast(months=3).records()
    (cli_fc, api_fc), today, by_id = on_a_stable_day(tmp_path, run)
    assert api_fc == cli_fc
    assert [r["month"] for r in api_fc] == ["overdue", *(name(month(today, k)) for k in range(3)), "none"]
    assert api_fc[0]["value"] == value_of(by_id[1]) + value_of(by_id[2])
