"""A mass edit in the CRM gives hundreds of deals one date_modified second. Copper promises no
order within such a tie (here: a new random order on every request) and its X-PW-TOTAL is only
an upper bound (here: over-reported). Paging through a tie larger than a page must still give
every deal exactly once (export, list --all, sync pull), or fail naming the problem: never
skip quietly. All through real HTTP to tests/fakecopper.py on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess

import orjson
import pytest

from conftest import API_KEY, USER_EMAIL, copper_env, derived_records, oppcli_exe
from fakecopper import FakeCopper
from oppcli.domain.sample import SAMPLE_LOOKUPS

T0 = 1_700_000_000
COUNT, TIED = 1500, 450
SEARCH = "/opportunities/search"


def _records(count: int = COUNT, tied: int = TIED) -> list[dict]:
    """`count` records one second apart, except `tied` in the middle sharing one second."""
    recs = derived_records(count)
    start = (count - tied) // 2
    for i, r in enumerate(recs):
        r["date_modified"] = T0 + (i if i < start else start if i < start + tied else i - tied + 1)
        r["date_created"] = T0
    return recs


def _serve(monkeypatch, cls=FakeCopper, records=None, **env) -> FakeCopper:
    srv = cls(lookups=SAMPLE_LOOKUPS, records=records if records is not None else _records(),
              api_key=API_KEY, user_email=USER_EMAIL, shuffle_ties=True, total_slack=137)
    srv.start()
    for k, v in copper_env(srv.url, **env).items():
        monkeypatch.setenv(k, v)
    return srv


def _ids(out: str | bytes) -> list[int]:
    return [orjson.loads(x)["id"] for x in (out.encode() if isinstance(out, str) else out)
            .splitlines() if x.strip()]


def _once_each(ids: list[int], srv: FakeCopper) -> None:
    missing = set(srv.records) - set(ids)
    twice = sorted({i for i in ids if ids.count(i) > 1})
    assert not missing and not twice, (f"{len(ids)} of {len(srv.records)}; missing "
                                       f"{sorted(missing)[:10]}, twice {twice[:10]}")
    assert len(ids) == len(srv.records)


def test_the_test_server_shuffles_ties_and_over_reports_the_total(monkeypatch):
    """The knobs do what the tests below rely on (else they test nothing)."""
    import requests

    srv = _serve(monkeypatch)
    try:
        headers = {"X-PW-AccessToken": API_KEY, "X-PW-Application": "developer_api",
                   "X-PW-UserEmail": USER_EMAIL, "Content-Type": "application/json"}
        tie = T0 + (COUNT - TIED) // 2
        body = {"sort_by": "date_modified", "page_size": 200, "page_number": 1,
                "minimum_modified_date": tie, "maximum_modified_date": tie}
        answers = [requests.post(srv.url + SEARCH, json=body, headers=headers, timeout=10)
                   for _ in range(2)]
    finally:
        srv.stop()
    first, second = ([r["id"] for r in a.json()] for a in answers)
    assert len(first) == len(second) == 200 and first != second
    assert int(answers[0].headers["X-PW-TOTAL"]) == TIED + 137


@pytest.mark.parametrize("concurrency", ["1", "4"])
def test_export_gives_every_tied_deal_exactly_once(run, monkeypatch, concurrency):
    srv = _serve(monkeypatch, OPPCLI_COPPER_CONCURRENCY=concurrency)
    try:
        result = run("--backend", "copper", "export", "-o", "jsonl", "--fields", "id,date_modified")
    finally:
        srv.stop()
    ids = _ids(result.stdout)
    _once_each(ids, srv)
    stamps = [orjson.loads(x)["date_modified"] for x in result.stdout.splitlines()]
    assert stamps == sorted(stamps)  # still oldest change first


def test_the_installed_export_writes_every_tied_deal_once_to_its_file(monkeypatch, tmp_path):
    srv = _serve(monkeypatch)
    out = tmp_path / "deals.jsonl"
    try:
        proc = subprocess.run([oppcli_exe(), "export", "--output-file", str(out)],
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=120,
                              env=dict(os.environ))
    finally:
        srv.stop()
    assert proc.returncode == 0, proc.stderr
    _once_each(_ids(out.read_bytes()), srv)


def test_list_all_gives_every_tied_deal_exactly_once(run, monkeypatch):
    srv = _serve(monkeypatch)
    try:
        result = run("--backend", "copper", "list", "--all", "-o", "jsonl", "--fields", "id")
    finally:
        srv.stop()
    _once_each(_ids(result.stdout), srv)


def test_sync_pull_mirrors_every_tied_deal(run, monkeypatch, tmp_path):
    srv = _serve(monkeypatch)
    mirror = tmp_path / "mirror"
    try:
        run("--store", str(mirror), "sync", "pull")
        first = _ids((mirror / "opportunities.jsonl").read_bytes())
        run("--store", str(mirror), "sync", "pull", "--full")
        full = _ids((mirror / "opportunities.jsonl").read_bytes())
    finally:
        srv.stop()
    _once_each(first, srv)
    _once_each(full, srv)


class HidesOneTiedDeal(FakeCopper):
    """Serves one deal of the tie on no page: in its place, another of the tie again. No
    number of reads can find it."""

    def _search(self, body):
        resp = super()._search(body)
        rows = orjson.loads(resp.body)
        hidden = T0 + (COUNT - TIED) // 2
        tied = [r for r in rows if r["date_modified"] == hidden]
        if tied:
            victim = min(r["id"] for r in self.records.values() if r["date_modified"] == hidden)
            stand_in = next((r for r in tied if r["id"] != victim), None)
            rows = [stand_in if r["id"] == victim else r for r in rows]
            resp.body = orjson.dumps(rows)
        return resp


def test_a_tie_that_cannot_be_read_whole_is_an_error_not_a_quiet_gap(run, monkeypatch, tmp_path):
    srv = _serve(monkeypatch, cls=HidesOneTiedDeal, OPPCLI_COPPER_CONCURRENCY="1")
    out = tmp_path / "deals.jsonl"
    try:
        result = run("--backend", "copper", "export", "--output-file", str(out), expect=5)
    finally:
        srv.stop()
    assert "share the modification time" in result.stderr, result.stderr
    assert not out.exists()


def test_a_tie_past_coppers_window_is_an_error(run, monkeypatch, tmp_path):
    """Copper serves only the first N matches of a search: a tie larger than that cannot be
    paged at all (the window is made small here)."""
    monkeypatch.setattr("oppcli.backends.copper.paging.SEARCH_WINDOW", 400)
    srv = FakeCopper(lookups=SAMPLE_LOOKUPS, records=_records(), api_key=API_KEY,
                     user_email=USER_EMAIL, window=400)
    srv.start()
    for k, v in copper_env(srv.url).items():
        monkeypatch.setenv(k, v)
    try:
        result = run("--backend", "copper", "export", "-o", "jsonl", "--fields", "id", expect=5)
    finally:
        srv.stop()
    assert "more than 400 opportunities share the modification time" in result.stderr
