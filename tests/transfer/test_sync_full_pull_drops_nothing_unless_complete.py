"""`sync pull --full` drops from the mirror the deals it did not see: only a pass that is
provably complete may do that. When paging stops early or cannot be trusted, no live deal is
ever dropped: the pull fails (a tie Copper cannot page), or keeps every record, warns on
stderr and says so in its result."""

from __future__ import annotations

import threading

import orjson

from conftest import API_KEY, USER_EMAIL, copper_env, derived_records
from fakecopper import FakeCopper
from oppcli.domain.sample import SAMPLE_LOOKUPS

T0 = 1_700_000_000


def _mirrored(mirror) -> list[int]:
    return [orjson.loads(x)["id"] for x in (mirror / "opportunities.jsonl").read_bytes()
            .splitlines() if x.strip()]


def _start(monkeypatch, srv: FakeCopper, **env) -> FakeCopper:
    srv.start()
    for k, v in copper_env(srv.url, **env).items():
        monkeypatch.setenv(k, v)
    return srv


def test_a_full_pull_that_cannot_page_a_tie_fails_and_drops_nothing(run, monkeypatch, tmp_path):
    """450 deals modified in one second, past Copper's window of results (made 400 here):
    paging cannot go on past the window, so the full pull fails rather than stop with a
    warning and drop the rest."""
    monkeypatch.setattr("oppcli.backends.copper.paging.SEARCH_WINDOW", 400)
    recs = derived_records(1500)
    for i, r in enumerate(recs):
        r["date_modified"] = T0 + i
    srv = _start(monkeypatch, FakeCopper(lookups=SAMPLE_LOOKUPS, records=recs, api_key=API_KEY,
                                         user_email=USER_EMAIL, window=400))
    mirror = tmp_path / "mirror"
    try:
        run("--store", str(mirror), "sync", "pull")
        assert sorted(_mirrored(mirror)) == sorted(srv.records)
        with srv._lock:  # a mass edit: 450 deals now share one second
            for rid in range(500, 950):
                srv.records[rid] = dict(srv.records[rid], date_modified=T0 + 2000)
        srv.invalidate()
        result = run("--store", str(mirror), "sync", "pull", "--full", expect=5)
    finally:
        srv.stop()
    assert "share the modification time" in result.stderr
    assert sorted(_mirrored(mirror)) == sorted(srv.records)


class DeletesDuringPaging(FakeCopper):
    """After serving the first page of an unbounded search, a colleague deletes a deal on it:
    the records after it shift one place, and page 2 by number misses one."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.armed = False
        self.deleted: int | None = None
        self.lock = threading.Lock()

    def _search(self, body):
        resp = super()._search(body)
        with self.lock:
            fire = (self.armed and body.get("page_number", 1) == 1 and body.get("page_size") == 200
                    and body.get("minimum_modified_date") is None)
            if fire:
                self.armed = False
        if fire:
            self.deleted = orjson.loads(resp.body)[0]["id"]
            self._delete(self.deleted)
        return resp


def _undated_records() -> list[dict]:
    """150 deals with a date_modified, then 300 without one (sorted last, by id)."""
    recs = derived_records(450)
    for i, r in enumerate(recs):
        r["date_modified"] = T0 + i if i < 150 else None
    return recs


def _pull_full_in_process(srv: FakeCopper, mirror):
    from oppcli.backends.copper import CopperBackend, HttpClient, Pacer
    from oppcli.ops.sync import pull

    client = HttpClient(srv.url, API_KEY, USER_EMAIL, backoff=0.01, pacer=Pacer(100_000, 60.0))
    return pull(CopperBackend(client, concurrency=1), mirror, date_order="MDY", full=True)


def test_a_full_pull_paged_by_number_keeps_every_record_and_says_so(run, monkeypatch, tmp_path):
    srv = _start(monkeypatch, DeletesDuringPaging(lookups=SAMPLE_LOOKUPS, records=_undated_records(),
                                                  api_key=API_KEY, user_email=USER_EMAIL))
    mirror = tmp_path / "mirror"
    try:
        run("--store", str(mirror), "sync", "pull")
        before = _mirrored(mirror)
        assert sorted(before) == sorted(srv.records)
        srv.armed = True
        result = run("--store", str(mirror), "sync", "pull", "--full", "-v")
        assert srv.deleted is not None, "the delete never happened: the test tests nothing"
        after = _mirrored(mirror)
        live = set(srv.records)
    finally:
        srv.stop()
    assert live <= set(after), f"live deals dropped: {sorted(live - set(after))}"
    assert sorted(after) == sorted(before)  # nothing removed: the pass was not provably complete
    assert "nothing was removed" in result.stderr, result.stderr


def test_the_pull_result_says_the_pass_was_incomplete(tmp_path, capsys):
    srv = DeletesDuringPaging(lookups=SAMPLE_LOOKUPS, records=_undated_records(), api_key=API_KEY,
                              user_email=USER_EMAIL)
    mirror = tmp_path / "mirror"
    with srv:
        _pull_full_in_process(srv, mirror)
        capsys.readouterr()
        srv.armed = True
        result = _pull_full_in_process(srv, mirror)
        assert srv.deleted is not None
        live = set(srv.records)
    assert not result.complete and result.removed == 0
    assert live <= set(_mirrored(mirror))
    assert "nothing was removed" in capsys.readouterr().err


def test_a_complete_full_pull_still_drops_what_copper_deleted(tmp_path, capsys):
    recs = derived_records(450)
    for i, r in enumerate(recs):
        r["date_modified"] = T0 + i
    srv = FakeCopper(lookups=SAMPLE_LOOKUPS, records=recs, api_key=API_KEY, user_email=USER_EMAIL)
    mirror = tmp_path / "mirror"
    with srv:
        _pull_full_in_process(srv, mirror)
        srv._delete(7)
        result = _pull_full_in_process(srv, mirror)
    assert result.complete and result.removed == 1
    assert sorted(_mirrored(mirror)) == sorted(srv.records)
    assert "warning" not in capsys.readouterr().err
