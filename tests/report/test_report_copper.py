"""report, forecast and stale on Copper, through the installed `oppcli` against the test Copper
server (tests/fakecopper.py): the same JSON as the local store over the same records (several
pages of them), one search paged at 200 with the filters sent in its body (requests = pages,
no GET of a single deal), a failing Copper ending in its exit code and one line, and the
progress line that only a person at a terminal sees.

The records are the sample's, derived to 600, with every date made relative to the moment the
module's data is built (forecast and stale read today and now): distinct modification times
spread over about 90 days, last contacts and stage changes on some, close dates from four
months back to nine ahead (none on some). The same list is served by FakeCopper (records=...,
so no create rewrites a date) and written to a local store with build_store.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from checks import one_error_line
from conftest import API_KEY, USER_EMAIL, build_store, copper_env, derived_records, oppcli_exe
from fakecopper import FakeCopper
from oppcli.domain.sample import SAMPLE_LOOKUPS
from oppcli.domain.values import format_close_date
from ptyterm import run_to_the_end, terminal_env

DAY = 86400
COUNT = 600  # three full pages of 200
ADA, BEN = 101, 102
SEARCH = r"/opportunities/search$"


# ---- the data -------------------------------------------------------------------------------
def away_from_a_day_boundary(seconds: int) -> int:
    """Seconds ago, moved off a whole number of days: a run a few seconds later than the data
    was built must put every deal on the same side of `now - N days` as the other backend."""
    if min(seconds % DAY, DAY - seconds % DAY) < 1800:
        seconds += 3600
    return seconds


def deals(now: int, count: int = COUNT) -> list[dict[str, Any]]:
    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    records = derived_records(count)
    for i, rec in enumerate(records):
        modified = now - away_from_a_day_boundary(1800 + i * 13001)  # distinct, up to ~90 days
        rec["date_modified"] = modified
        rec["date_created"] = modified - (i % 13) * 7 * DAY - 3600 * (i % 5)
        if i % 5 == 0:  # contacted after the last edit: activity later than date_modified
            rec["date_last_contacted"] = now - ((i * 7) % 50) * DAY - 5000
        if i % 7 == 3:
            rec["date_stage_changed"] = modified - 3 * DAY
        rec["close_date"] = None if i % 17 == 0 else format_close_date(
            today + dt.timedelta(days=(i * 13) % 400 - 120), "MDY")
    return records


@dataclass
class World:
    """The same records in a local store and on a test Copper server."""

    records: list[dict[str, Any]]
    now: int
    store: Path
    server: FakeCopper

    @property
    def local(self) -> dict[str, str]:
        return {"OPPCLI_BACKEND": "local", "OPPCLI_STORE": str(self.store)}

    @property
    def copper(self) -> dict[str, str]:
        return copper_env(self.server.url, OPPCLI_COPPER_RETRIES="2")

    def searches(self, since: int) -> list[Any]:
        return [r for r in self.server.requests[since:]
                if r.method == "POST" and re.search(SEARCH, r.path.split("?", 1)[0])]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    now = int(time.time())
    records = deals(now)
    store = tmp_path_factory.mktemp("report-copper") / "store"
    build_store(store, records)
    server = FakeCopper(lookups=SAMPLE_LOOKUPS, records=records, api_key=API_KEY,
                        user_email=USER_EMAIL)
    with server:
        yield World(records, now, store, server)


def a_server(world: World, **options: Any) -> FakeCopper:
    """A server of its own (faults, latency) over the same records; start it with `with`."""
    return FakeCopper(lookups=SAMPLE_LOOKUPS, records=world.records, api_key=API_KEY,
                      user_email=USER_EMAIL, **options)


# ---- running oppcli ---------------------------------------------------------------------------
def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    full = dict(os.environ)
    full.update(env)
    return subprocess.Popen([oppcli_exe(), *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=full)


def finish(proc: subprocess.Popen[str]) -> tuple[str, str, int]:
    out, err = proc.communicate(timeout=60)
    return out, err, proc.returncode


def oppcli(args: list[str], env: dict[str, str], expect: int | None = 0) -> tuple[str, str]:
    out, err, code = finish(start(args, env))
    if expect is not None:
        assert code == expect, f"oppcli {' '.join(args)} exited {code}\n{out}\n{err}"
    return out, err


def both(world: World, args: list[str]) -> tuple[str, str]:
    """stdout of the local store and of Copper, run side by side; both must succeed quietly."""
    procs = [start(args, world.local), start(args, world.copper)]
    outs = []
    for proc, side in zip(procs, ("local", "copper"), strict=True):
        out, err, code = finish(proc)
        assert code == 0, f"{side}: oppcli {' '.join(args)} exited {code}\n{err}"
        assert err == "", f"{side}: oppcli {' '.join(args)} wrote to stderr: {err!r}"
        outs.append(out)
    return outs[0], outs[1]


# ---- parity -----------------------------------------------------------------------------------
DIMENSIONS = ["stage", "pipeline", "assignee", "status", "priority", "source", "loss-reason",
              "company", "tag", "cf:Region", "cf:Competitors", "close-month", "close-quarter",
              "created-month"]
TWO = [("stage", "assignee"), ("close-quarter", "status"), ("tag", "cf:Competitors"),
       ("company", "loss-reason")]
FILTERED = [
    ["--by", "stage", "--status", "open"],
    ["--by", "assignee", "--assignee", "Ada Park,Ben Okafor"],
    ["--by", "assignee", "--priority", "high"],  # applied by the client on Copper
    ["--by", "close-month", "--name-contains", "licence"],  # applied by the client on Copper
    ["--by", "stage", "--pipeline", "Renewals", "--tag", "renewal"],
    ["--by", "source", "--custom-field", "Region=EMEA"],
    ["--by", "tag", "--company", "none"],  # applied by the client on Copper
    ["--by", "stage", "--by", "status", "--stage", "Sales/Negotiation", "--status", "open,won"],
    ["--by", "priority", "--status", "open", "--priority", "high,medium", "--min-value", "20000",
     "--max-value", "100000"],
]
FORECASTS = [
    [],
    ["--months", "3"],
    ["--months", "12", "--assignee", "Ada Park"],
    ["--priority", "high,medium", "--months", "9"],
]
STALES = [
    ["-o", "jsonl"],
    ["--days", "14", "-o", "jsonl"],
    ["--days", "45", "--min-value", "30000", "--max-value", "90000", "-o", "json"],
    ["--days", "7", "-n", "5", "-o", "jsonl"],
    ["--days", "20", "--priority", "high", "--assignee", "Ada Park", "-o", "jsonl"],
]


@pytest.mark.parametrize("dim", DIMENSIONS)
def test_report_by_each_dimension_gives_the_same_json_on_both_backends(world, dim):
    local, remote = both(world, ["report", "--by", dim, "-o", "json"])
    assert remote == local
    rows = orjson.loads(local)
    assert len(rows) > 1, local
    if dim not in ("tag", "cf:Competitors"):  # a deal counts once: every deal is in the rows
        assert sum(r["count"] for r in rows) == COUNT


@pytest.mark.parametrize("dims", TWO, ids="+".join)
def test_report_by_two_dimensions_gives_the_same_json_on_both_backends(world, dims):
    args = ["report", "--by", dims[0], "--by", dims[1], "-o", "json"]
    local, remote = both(world, args)
    assert remote == local
    assert len(orjson.loads(local)) > 4


@pytest.mark.parametrize("filters", FILTERED, ids=" ".join)
def test_filtered_reports_give_the_same_json_on_both_backends(world, filters):
    local, remote = both(world, ["report", *filters, "-o", "json"])
    assert remote == local
    rows = orjson.loads(local)
    assert any(r["count"] for r in rows), "a report that finds nothing compares nothing"


@pytest.mark.parametrize("args", FORECASTS, ids=lambda a: " ".join(a) or "default")
def test_forecast_gives_the_same_json_on_both_backends(world, args):
    local, remote = both(world, ["forecast", *args, "-o", "json"])
    assert remote == local
    rows = orjson.loads(local)
    months = int(args[args.index("--months") + 1]) if "--months" in args else 6
    assert [r["month"] for r in rows][0] == "overdue" and rows[-1]["month"] == "none"
    assert len(rows) == months + 2
    assert sum(r["count"] for r in rows) > 0


@pytest.mark.parametrize("args", STALES, ids=" ".join)
def test_stale_gives_the_same_deals_on_both_backends(world, args):
    local, remote = both(world, ["stale", *args])
    assert remote == local
    assert local.strip(), "a stale sweep that finds nothing compares nothing"


def test_stale_deals_are_the_open_ones_idle_for_the_days_most_valuable_first(world):
    now = int(time.time())  # every activity is far from a whole number of days ago
    out, _ = oppcli(["stale", "--days", "30", "-o", "jsonl"], world.copper)
    got = [orjson.loads(line) for line in out.splitlines()]
    cutoff = now - 30 * DAY

    def last_activity(r: dict[str, Any]) -> int:
        return max(r.get(k) or 0 for k in ("date_last_contacted", "date_stage_changed",
                                           "date_modified"))
    want = [r for r in world.records if r["status"] == "Open" and last_activity(r) <= cutoff]
    # value descending (none last), then whole idle days descending, then id
    want.sort(key=lambda r: (r["monetary_value"] is None, -(r["monetary_value"] or 0),
                             -((now - last_activity(r)) // DAY), r["id"]))
    assert [r["id"] for r in got] == [r["id"] for r in want]
    assert len(got) > 20 and all(r["status"] == "Open" for r in got)
    # contacted recently though not edited for long: not stale
    assert any(r["status"] == "Open" and r["date_modified"] <= cutoff
               and last_activity(r) > cutoff for r in world.records)


# ---- requests = pages -------------------------------------------------------------------------
def matching(world: World, test: Callable[[dict[str, Any]], bool]) -> int:
    return sum(1 for r in world.records if test(r))


def pages_for(count: int) -> int:
    """Pages of 200 a search over `count` deals reads: a full last page is followed by one
    more request, which comes back short. (Copper's paging is by keyset: each page after the
    first begins with the record the one before ended on, read again and skipped, so a page
    brings 199 new deals. The counts here are ones where that costs no extra request; at 399
    deals it does: 3 requests where the pages of 200 are 2.)"""
    return math.ceil((count + 1) / 200)


def is_open(r: dict[str, Any]) -> bool:
    return r["status"] == "Open"


def check_pages(world: World, args: list[str], criteria: dict[str, Any], absent: tuple[str, ...],
                count: int) -> list[Any]:
    """Run `args` on Copper: one search paged at 200, oldest change first, `criteria` in every page's
    body, none of `absent`; as many requests as pages over `count` matches; no GET of a deal."""
    before = len(world.server.requests)
    oppcli(args, world.copper)
    new = world.server.requests[before:]
    assert not [r for r in new if re.search(r"/opportunities/\d+", r.path)], \
        "a report read a deal by itself"
    assert not [r for r in new if "/opportunities" in r.path and not re.search(SEARCH, r.path)]
    searches = world.searches(before)
    assert len(searches) == pages_for(count), (count, [r.body for r in searches])
    stamps = []
    for r in searches:
        body = r.body
        assert body["page_size"] == 200 and body["page_number"] == 1, body
        assert (body["sort_by"], body["sort_direction"]) == ("date_modified", "asc"), body
        assert {k: body.get(k) for k in criteria} == criteria, body
        assert not set(absent) & set(body), body
        stamps.append(body.get("minimum_modified_date"))
    # keyset paging: each page goes on from the newest modification time the one before ended on
    assert all(s is not None for s in stamps[1:])
    assert stamps[1:] == sorted(stamps[1:])
    return searches


def test_a_report_over_every_deal_reads_three_full_pages_and_one_more(world):
    searches = check_pages(world, ["report", "--by", "stage", "-o", "json"], {}, ("status_ids",),
                           COUNT)
    assert len(searches) == 4
    assert "minimum_modified_date" not in searches[0].body


def test_a_reports_filters_are_sent_in_the_search_body(world):
    count = matching(world, lambda r: is_open(r) and r["assignee_id"] in (ADA, BEN)
                     and (r["monetary_value"] or 0) >= 20000)
    check_pages(world, ["report", "--by", "stage", "--status", "open", "--assignee", "Ada Park,Ben Okafor",
                        "--min-value", "20000", "-o", "json"],
                {"status_ids": [0], "assignee_ids": [ADA, BEN], "minimum_monetary_value": 20000},
                ("name", "priority"), count)


def test_stage_pipeline_and_tag_filters_are_sent_in_the_search_body(world):
    count = matching(world, lambda r: r["pipeline_stage_id"] in (14, 15) and "enterprise" in r["tags"])
    check_pages(world, ["report", "--by", "assignee", "--stage", "Sales/Contract Sent,Sales/Negotiation",
                        "--tag", "enterprise", "-o", "json"],
                {"pipeline_stage_ids": [14, 15], "tags": ["enterprise"]}, ("status_ids",), count)
    count = matching(world, lambda r: r["pipeline_id"] == 2)
    check_pages(world, ["report", "--by", "stage", "--pipeline", "Renewals", "-o", "json"],
                {"pipeline_ids": [2]}, (), count)


def test_a_custom_field_filter_is_sent_and_no_company_is_checked_after_fetching(world):
    # Copper documents -2 ("none") for other keys than company_ids: the client checks that one
    count = matching(world, lambda r: r["custom_fields"][0]["value"] == 4011)
    check_pages(world, ["report", "--by", "source", "--custom-field", "Region=EMEA", "--company", "none",
                        "-o", "json"],
                {"custom_fields": [{"custom_field_definition_id": 401, "value": [4011]}]},
                ("company_ids",), count)


def test_priority_and_name_contains_are_applied_after_fetching_every_page(world):
    # the server matches every deal; the client keeps the high ones named "licence"
    searches = check_pages(world, ["report", "--by", "assignee", "--priority", "high",
                                   "--name-contains", "licence", "-o", "json"],
                           {}, ("name", "priority", "status_ids"), COUNT)
    assert len(searches) == 4
    out, _ = oppcli(["report", "--by", "status", "--priority", "high", "--name-contains", "licence",
                     "-o", "json"], world.copper)
    want = matching(world, lambda r: r["priority"] == "High" and "licence" in r["name"].lower())
    assert want and sum(r["count"] for r in orjson.loads(out)) == want


def test_forecast_searches_open_deals_only(world):
    check_pages(world, ["forecast", "-o", "json"], {"status_ids": [0]}, (), matching(world, is_open))
    count = matching(world, lambda r: is_open(r) and r["assignee_id"] == ADA)
    check_pages(world, ["forecast", "--months", "3", "--assignee", "Ada Park", "-o", "json"],
                {"status_ids": [0], "assignee_ids": [ADA]}, (), count)


@pytest.mark.parametrize("days", [30, 3])
def test_stale_sends_open_and_the_cutoff_and_reads_only_what_was_not_modified_since(world, days):
    before = len(world.server.requests)
    started = time.time()
    args = ["stale", "--days", str(days), "-o", "jsonl"]
    cutoff_lo = int(started - days * DAY)
    count = matching(world, lambda r: is_open(r) and r["date_modified"] <= cutoff_lo)
    searches = check_pages(world, args, {"status_ids": [0]}, (), count)
    cutoff_hi = int(time.time() - days * DAY)
    first = searches[0].body["maximum_modified_date"]
    assert cutoff_lo <= first <= cutoff_hi
    assert all(r.body["maximum_modified_date"] <= first for r in searches)
    assert len(world.searches(before)) == len(searches)


# ---- a failing Copper -------------------------------------------------------------------------
REPORT = ["report", "--by", "stage", "-o", "json"]
FORECAST = ["forecast", "-o", "json"]
STALE = ["stale", "--days", "0", "-o", "jsonl"]
COMMANDS = [REPORT, FORECAST, STALE]
FAULTS = {
    "500 on every search": (dict(status=500), 5),
    "429 on every search": (dict(status=429), 5),
    "401 on the search": (dict(status=401, body='{"success":false,"status":401,'
                               '"message":"API Key and/or Email are invalid"}'), 3),
    "dropped connections": (dict(drop=True), 5),
}
FAULT_CASES = [("500 on every search", REPORT), ("500 on every search", FORECAST),
               ("500 on every search", STALE), ("429 on every search", REPORT),
               ("401 on the search", STALE), ("dropped connections", FORECAST)]


@pytest.mark.parametrize(("fault", "args"), FAULT_CASES, ids=lambda x: x if isinstance(x, str) else x[0])
def test_a_failing_search_ends_in_its_exit_code_and_one_line(world, fault, args):
    options, code = FAULTS[fault]
    with a_server(world) as server:
        server.fail(SEARCH, "POST", times=None, **options)
        proc = subprocess.run([oppcli_exe(), *args], stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=60,
                              env={**os.environ, **copper_env(server.url, OPPCLI_COPPER_RETRIES="2")})
        line = one_error_line(proc, code)
        tries = len(server.calls(SEARCH, "POST"))
    assert tries == (1 if code == 3 else 3), tries  # 401: never retried
    assert ("credentials" if code == 3 else "search") in line, line


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_a_search_failing_after_its_first_page_prints_nothing_and_names_the_page(world, args):
    with a_server(world) as server:
        server.fail(SEARCH, "POST", times=1)  # the first page passes
        server.fail(SEARCH, "POST", times=None, status=503)
        proc = subprocess.run([oppcli_exe(), *args], stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=60,
                              env={**os.environ, **copper_env(server.url, OPPCLI_COPPER_RETRIES="1")})
        line = one_error_line(proc, 5)
        assert len(server.calls(SEARCH, "POST")) == 3
    assert "page 2" in line and "503" in line, line


# ---- the progress line ------------------------------------------------------------------------
def stderr_on_a_terminal(args: list[str], env: dict[str, str], stdout: Path) -> tuple[int, str]:
    """oppcli with stderr on a pty (its terminal) and stdout into a file; what the terminal
    showed."""
    master, slave = os.openpty()
    with stdout.open("wb") as out:
        proc = subprocess.Popen([oppcli_exe(), *args], stdin=subprocess.DEVNULL, stdout=out,
                                stderr=slave, env=terminal_env(env))
    os.close(slave)
    code, shown = run_to_the_end(master, proc)
    return code, shown.decode(errors="replace")


PROGRESS = re.compile(r"reading: ([\d,]+) of ([\d,]+) \(\d+%\)(?:, about \d+:\d\d left)?")


def test_a_slow_report_counts_pages_on_the_terminal_out_of_coppers_total(world, tmp_path):
    args = ["report", "--by", "stage", "-o", "json"]
    piped, _ = oppcli(args, world.copper)
    # X-PW-TOTAL is an upper bound: the line says what Copper said, 7 more than there are
    with a_server(world, total_slack=7) as server:
        env = copper_env(server.url)
        oppcli(["lookups", "users"], env)  # the lookups cached: only the searches are slow
        server.fail(SEARCH, "POST", times=None, latency=0.4)
        started = time.monotonic()
        code, shown = stderr_on_a_terminal(args, env, tmp_path / "out.json")
        took = time.monotonic() - started
    assert code == 0, shown
    assert took > 1.5
    counts = PROGRESS.findall(shown)
    assert counts, f"no progress line on the terminal: {shown!r}"
    assert {total for _, total in counts} == {f"{COUNT + 7:,}"}
    assert all(0 < int(n.replace(",", "")) <= COUNT for n, _ in counts)
    assert shown.startswith("\r") and shown.endswith("\r\x1b[K"), repr(shown)  # the line is wiped
    assert PROGRESS.sub("", shown).replace("\r", "").replace("\x1b[K", "") == "", repr(shown)
    assert (tmp_path / "out.json").read_text() == piped


def test_a_quick_report_draws_no_progress_even_on_a_terminal(world, tmp_path):
    args = ["forecast", "--assignee", "Ada Park", "-o", "json"]  # one page
    env = world.copper
    oppcli(["lookups", "users"], env)
    code, shown = stderr_on_a_terminal(args, env, tmp_path / "out.json")
    assert code == 0 and shown == "", repr(shown)
    assert orjson.loads((tmp_path / "out.json").read_bytes())


def test_without_a_terminal_a_slow_report_writes_nothing_to_stderr(world):
    args = ["stale", "--days", "0", "-o", "jsonl"]
    with a_server(world) as server:
        env = copper_env(server.url)
        server.fail(SEARCH, "POST", times=None, latency=0.4)
        started = time.monotonic()
        out, err = oppcli(args, env)
        assert time.monotonic() - started > 0.8  # two pages: a terminal would have had a line
        assert len(server.calls(SEARCH, "POST")) >= 2
    assert err == ""
    assert len(out.splitlines()) == matching(world, is_open)
