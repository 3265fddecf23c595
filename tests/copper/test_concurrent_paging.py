"""A long ascending date_modified fetch (export, sync) keeps several pages in flight.

Copper's keyset pages cannot be asked for ahead, so the bulk of the search is paged by number
over a frozen slice (modified before the newest time less a margin) and the answers' totals
must agree; whatever goes wrong (an edit or delete mid-fetch, ties served in another order)
falls back to keyset paging, and no record is ever lost or given twice, and the output stays in
date_modified order (records without one last).
"""

from __future__ import annotations

import random
import threading

import orjson
import pytest

from conftest import API_KEY, USER_EMAIL, copper_env, derived_records
from fakecopper import FakeCopper
from oppcli.domain.sample import SAMPLE_LOOKUPS

T0 = 1_700_000_000


def _records(count: int, same_time: int = 1) -> list[dict]:
    recs = derived_records(count)
    for i, r in enumerate(recs):
        r["date_modified"] = T0 + i // same_time  # groups of `same_time` share a time
        r["date_created"] = T0
    return recs


def _serve(monkeypatch, cls=FakeCopper, count=2000, same_time=1, latency=0.0, **env):
    srv = cls(lookups=SAMPLE_LOOKUPS, records=_records(count, same_time), api_key=API_KEY,
              user_email=USER_EMAIL, latency=latency)
    srv.start()
    for k, v in copper_env(srv.url, **env).items():
        monkeypatch.setenv(k, v)
    return srv


def _ids(out: str) -> list[int]:
    return [orjson.loads(x)["id"] for x in out.splitlines() if x.strip()]


def _searches(srv) -> list:
    return [r for r in srv.requests if r.path.endswith("/opportunities/search")]


def _max_in_flight(requests) -> int:
    events = sorted([(r.started, 1) for r in requests] + [(r.ended, -1) for r in requests],
                    key=lambda e: (e[0], e[1]))
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


def test_export_keeps_pages_in_flight_and_gives_every_record_once_in_order(run, monkeypatch):
    srv = _serve(monkeypatch, count=2000, latency=0.05)
    try:
        ids = _ids(run("--backend", "copper", "export", "-o", "jsonl", "--fields", "id").stdout)
        searches = _searches(srv)
    finally:
        srv.stop()
    assert ids == sorted(srv.records)  # date_modified order, which is id order here
    assert _max_in_flight(searches) >= 3, "pages were fetched one at a time"
    # 10 pages: the first, one small request for the newest time, the slice, the catch-up.
    assert len(searches) <= 10 + 3, [r.path for r in searches]


def test_concurrency_1_fetches_one_page_at_a_time(run, monkeypatch):
    srv = _serve(monkeypatch, count=1200, latency=0.02, OPPCLI_COPPER_CONCURRENCY="1")
    try:
        ids = _ids(run("--backend", "copper", "export", "-o", "jsonl", "--fields", "id").stdout)
        searches = _searches(srv)
    finally:
        srv.stop()
    assert ids == sorted(srv.records)
    assert _max_in_flight(searches) == 1


class EditsMidSlice(FakeCopper):
    """While the numbered pages of the frozen slice are being served, a colleague edits one
    record on a later page and deletes another: every later page shifts."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.armed = True
        self.lock = threading.Lock()
        self.edited = self.deleted = None

    def _search(self, body):
        resp = super()._search(body)
        with self.lock:
            fire = (self.armed and body.get("maximum_modified_date") is not None
                    and body.get("page_number") == 3)
            if fire:
                self.armed = False
        if fire:
            ordered = sorted(self.records.values(), key=lambda r: (r["date_modified"], r["id"]))
            self.edited, self.deleted = ordered[1000]["id"], ordered[1500]["id"]
            self._update(self.edited, {"details": "edited during the export"})
            with self._lock:
                del self.records[self.deleted]
                self._version += 1
        return resp


def test_an_edit_and_a_delete_mid_slice_lose_nothing(run, monkeypatch):
    srv = _serve(monkeypatch, cls=EditsMidSlice, count=2000, latency=0.02)
    try:
        before = set(srv.records)
        ids = _ids(run("--backend", "copper", "export", "-o", "jsonl", "--fields", "id").stdout)
    finally:
        srv.stop()
    assert srv.edited is not None, "the edit never happened: the test tests nothing"
    missing = before - set(ids) - {srv.deleted}
    assert not missing, f"lost: {sorted(missing)[:10]}"
    counts = {i: ids.count(i) for i in set(ids)}
    twice = {i for i, c in counts.items() if c > 1}
    assert twice <= {srv.edited}, twice  # only the edited one may come again, newer
    assert not twice, twice  # not even that one: one search gives each deal once


class ShuffledTies(FakeCopper):
    """Records sharing a modification time come in a different order on every request."""

    def _order(self, recs, field, descending):
        rows = super()._order(recs, field, descending)
        if field != "date_modified":
            return rows
        rnd = random.Random()
        groups: dict = {}
        for r in rows:
            groups.setdefault(r.get("date_modified"), []).append(r)
        out = []
        for group in groups.values():
            rnd.shuffle(group)
            out.extend(group)
        return out


@pytest.mark.parametrize("attempt", range(3))
def test_ties_served_in_a_new_order_each_time_lose_nothing(run, monkeypatch, attempt):
    srv = _serve(monkeypatch, cls=ShuffledTies, count=1500, same_time=3)
    try:
        ids = _ids(run("--backend", "copper", "export", "-o", "jsonl", "--fields", "id").stdout)
    finally:
        srv.stop()
    assert sorted(ids) == sorted(srv.records)  # each exactly once


# ---- ties served in another order on another page, and records with no date_modified ----------
def _serve_records(monkeypatch, records, cls=FakeCopper, **env):
    srv = cls(lookups=SAMPLE_LOOKUPS, records=records, api_key=API_KEY, user_email=USER_EMAIL)
    srv.start()
    for k, v in copper_env(srv.url, **env).items():
        monkeypatch.setenv(k, v)
    return srv


def _rows(out: str) -> list[dict]:
    return [orjson.loads(x) for x in out.splitlines() if x.strip()]


class TiesFlipByPage(FakeCopper):
    """Records sharing a modification time come in id order on odd page numbers and in
    reverse id order on even ones (Copper documents no tie order; the concurrent pager says it
    copes with ties served in another order)."""

    _local = threading.local()

    def _search(self, body):
        self._local.flip = body.get("page_number", 1) % 2 == 0
        return super()._search(body)

    def _order(self, recs, field, descending):
        rows = super()._order(recs, field, descending)
        if field != "date_modified" or not getattr(self._local, "flip", False):
            return rows
        groups: dict = {}
        for r in rows:
            groups.setdefault(r.get("date_modified"), []).append(r)
        return [r for g in groups.values() for r in reversed(g)]


def test_export_stays_in_date_modified_order_when_ties_come_back_reordered(run, monkeypatch):
    """When a numbered page of the frozen slice repeats an id (ties served in another order),
    the records it skipped are read again by keyset; `export` still gives every record once and
    in date_modified order (documented: "on Copper, oldest modification first"), as it does
    with one page in flight (copper.concurrency=1)."""
    recs = derived_records(1500)
    for i, r in enumerate(recs):
        r["date_modified"] = T0 + i // 3  # groups of three share a time
    srv = _serve_records(monkeypatch, recs, cls=TiesFlipByPage)
    try:
        out = run("--backend", "copper", "export", "-o", "jsonl",
                  "--fields", "id,date_modified").stdout
    finally:
        srv.stop()
    rows = _rows(out)
    assert sorted(r["id"] for r in rows) == sorted(srv.records)  # nothing lost or repeated
    times = [r["date_modified"] for r in rows]
    backwards = [(i, a, b) for i, (a, b) in enumerate(zip(times, times[1:], strict=False)) if b < a]
    assert not backwards, f"date_modified goes backwards at {backwards[:3]}"


@pytest.mark.parametrize("dated", [0, 150], ids=["none-dated", "150-dated"])
def test_records_without_date_modified_are_not_exported_twice(run, monkeypatch, dated):
    """Records without a date_modified sort last. When the first page is full and its last
    record has none, the keyset cursor has no boundary to go on from: the fetch goes on by page
    number from page 2 (as with copper.concurrency=1), never from page 1 again, so the first 200
    records are given once. 450 records, the undated ones sorted last."""
    recs = derived_records(450)
    for i, r in enumerate(recs):
        r["date_modified"] = T0 + i if i < dated else None
    srv = _serve_records(monkeypatch, recs)
    try:
        out = run("--backend", "copper", "export", "-o", "jsonl", "--fields", "id").stdout
    finally:
        srv.stop()
    ids = [r["id"] for r in _rows(out)]
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} records given twice"
    assert set(ids) == set(srv.records)


def test_a_failing_page_in_flight_is_the_commands_error(run, monkeypatch, tmp_path):
    srv = _serve(monkeypatch, count=2000, latency=0.02, OPPCLI_COPPER_RETRIES="1")
    out = tmp_path / "deals.jsonl"
    try:
        srv.fail(r"/opportunities/search", times=4)  # four answers as usual...
        srv.fail(r"/opportunities/search", times=None, status=500)  # ...then only failures
        result = run("--backend", "copper", "export", "-o", "jsonl", "--output-file", str(out),
                     expect=5)
    finally:
        srv.stop()
    assert "500" in result.stderr and "search (page" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()  # nothing half-written
