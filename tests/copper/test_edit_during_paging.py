"""A deal edited while an export (or a sync pull) is paging moves to the end of the
date_modified order and Copper serves it again, newer. One search gives each id once: the file
has one line per deal, and the next incremental run (--state-file, or the next pull) carries
the newer version. With one page in flight and with four. The records shifted one place left
by the edit are all fetched too: none is skipped at a page boundary."""

from __future__ import annotations

import threading
import time

import orjson
import pytest

from conftest import API_KEY, USER_EMAIL, copper_env, derived_records
from fakecopper import FakeCopper
from oppcli.domain.sample import SAMPLE_LOOKUPS

T0 = 1_700_000_000
EDITED = "edited by a colleague during the export"


def _records(count: int = 1500) -> list[dict]:
    recs = derived_records(count)
    for i, r in enumerate(recs):
        r["date_modified"] = T0 + i
        r["date_created"] = T0
    return recs


class EditsAGivenDeal(FakeCopper):
    """Once a search answer has served deal 1, a colleague edits it (it moves to the end of
    the order); with `later`, someone also touches the last deal, stamped an hour ahead."""

    def __init__(self, *a, later: bool = False, **kw):
        super().__init__(*a, **kw)
        self.later = later
        self.armed = False
        self.edited_at: int | None = None
        self.lock = threading.Lock()

    def _search(self, body):
        resp = super()._search(body)
        served = {r["id"] for r in orjson.loads(resp.body)}
        with self.lock:
            fire = self.armed and 1 in served
            if fire:
                self.armed = False
        if fire:
            self.edited_at = self._update(1, {"details": EDITED})["date_modified"]
            if self.later:
                last = max(self.records)
                with self._lock:
                    self.records[last] = dict(self.records[last],
                                              date_modified=int(time.time()) + 3600,
                                              details="touched an hour ahead")
                    self._version += 1
        return resp


def _serve(monkeypatch, concurrency: str, later: bool = False) -> EditsAGivenDeal:
    srv = EditsAGivenDeal(lookups=SAMPLE_LOOKUPS, records=_records(), api_key=API_KEY,
                          user_email=USER_EMAIL, later=later)
    srv.start()
    for k, v in copper_env(srv.url, OPPCLI_COPPER_CONCURRENCY=concurrency).items():
        monkeypatch.setenv(k, v)
    return srv


def _rows(data: bytes) -> list[dict]:
    return [orjson.loads(x) for x in data.splitlines() if x.strip()]


@pytest.mark.parametrize("concurrency", ["1", "4"])
def test_a_deal_edited_during_an_export_is_written_once_and_next_time_newer(
        run, monkeypatch, tmp_path, concurrency):
    srv = _serve(monkeypatch, concurrency)
    out, state = tmp_path / "deals.jsonl", tmp_path / "deals.state"
    try:
        srv.armed = True
        run("--backend", "copper", "export", "--output-file", str(out), "--state-file", str(state))
        assert srv.edited_at is not None, "the edit never happened: the test tests nothing"
        first = _rows(out.read_bytes())
        run("--backend", "copper", "export", "--output-file", str(out), "--state-file", str(state))
        second = _rows(out.read_bytes())
    finally:
        srv.stop()
    ids = [r["id"] for r in first]
    assert sorted(ids) == sorted(srv.records), "each deal exactly once"
    assert [r["details"] for r in first if r["id"] == 1] == ["original 1"]  # as first read
    newer = [r for r in second if r["id"] == 1]
    assert [(r["details"], r["date_modified"]) for r in newer] == [(EDITED, srv.edited_at)]
    assert len(second) == len({r["id"] for r in second})


@pytest.mark.parametrize("concurrency", ["1", "4"])
def test_a_deal_edited_during_a_pull_is_pulled_newer_next_time(run, monkeypatch, tmp_path,
                                                               concurrency):
    """The pull keeps the version it read first; its high-water mark must not pass the newer
    one, though a deal touched later in the same pull is stamped an hour ahead."""
    srv = _serve(monkeypatch, concurrency, later=True)
    mirror = tmp_path / "mirror"
    try:
        srv.armed = True
        run("--store", str(mirror), "sync", "pull")
        assert srv.edited_at is not None, "the edit never happened: the test tests nothing"
        first = _rows((mirror / "opportunities.jsonl").read_bytes())
        run("--store", str(mirror), "sync", "pull")
        second = _rows((mirror / "opportunities.jsonl").read_bytes())
    finally:
        srv.stop()
    assert sorted(r["id"] for r in first) == sorted(srv.records)
    assert sorted(r["id"] for r in second) == sorted(srv.records)
    assert [r["details"] for r in second if r["id"] == 1] == [EDITED]


# Paging by page number, an edit to a record already served moves it to the end of the order and
# shifts every later record one place left: the record at the next page boundary must still be
# fetched, or the state file's (or the mirror's) high-water mark moves past it for good.
class EditsDuringPaging(FakeCopper):
    """After serving page 1 of a search, someone edits the first record of that page."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.armed = True

    def _search(self, body):
        resp = super()._search(body)
        if self.armed and body.get("page_number", 1) == 1 and body.get("page_size") == 200:
            self.armed = False
            first = orjson.loads(resp.body)[0]["id"]
            self._update(first, {"details": "edited by a colleague during the export"})
        return resp


def _serve_an_edit_on_page_one(monkeypatch) -> EditsDuringPaging:
    srv = EditsDuringPaging(lookups=SAMPLE_LOOKUPS, records=_records(450), api_key=API_KEY,
                            user_email=USER_EMAIL)
    srv.start()
    for k, v in copper_env(srv.url).items():
        monkeypatch.setenv(k, v)
    return srv


def test_an_edit_during_an_export_skips_no_record_at_the_page_boundary(run, monkeypatch,
                                                                         tmp_path):
    srv = _serve_an_edit_on_page_one(monkeypatch)
    try:
        state = tmp_path / "deals.state"
        out = run("--backend", "copper", "export", "--state-file", str(state)).stdout
        got = {orjson.loads(x)["id"] for x in out.splitlines() if x.strip()}
        # record 201 was at position 200 (first row of page 2) and shifted into page 1
        missing = set(srv.records) - got
        # the next incremental run cannot make up for a skip: the record is older than
        # high_water - overlap
        out2 = run("--backend", "copper", "export", "--state-file", str(state)).stdout
        got2 = {orjson.loads(x)["id"] for x in out2.splitlines() if x.strip()}
        assert missing - got2 == set(), f"never exported, state moved past them: {missing - got2}"
    finally:
        srv.stop()


def test_an_edit_during_a_pull_skips_no_record_at_the_page_boundary(run, monkeypatch, tmp_path):
    srv = _serve_an_edit_on_page_one(monkeypatch)
    try:
        mirror = tmp_path / "mirror"
        run("--store", str(mirror), "sync", "pull")
        run("--store", str(mirror), "sync", "pull")  # incremental: cannot make up for a skip
        ids = {orjson.loads(x)["id"] for x in
               (mirror / "opportunities.jsonl").read_bytes().splitlines()}
        assert set(srv.records) - ids == set(), "records missing from the mirror"
    finally:
        srv.stop()


def test_the_given_ids_set_tells_repeats_past_its_merges(monkeypatch):
    """The search's record of ids given keeps older ids in a compact sorted array."""
    import random

    from oppcli.backends.copper import _GivenIds

    monkeypatch.setattr(_GivenIds, "FLUSH", 64)
    ids = list(range(10**9, 10**9 + 5000, 3))
    random.Random(7).shuffle(ids)
    given = _GivenIds()
    for n, ident in enumerate(ids):
        assert ident not in given
        given.add(ident)
        if n % 97 == 0:
            assert all(i in given for i in ids[:n + 1:13])
    assert all(i in given for i in ids)
    assert not any(i in given for i in (10**9 + 1, 5, -1, 2**70, "1", None))
    given.add(None)
    given.add(2**70)
    assert None in given and 2**70 in given
