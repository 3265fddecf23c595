"""A bulk change on Copper that does not go through whole, through the installed `oppcli` against the
test Copper server (tests/fakecopper.py): some deals refused (422) or gone (404) -> exit 7 and the
others done, the ids not done in a file that runs them again; Copper failing after its retries
-> exit 5; SIGINT / SIGTERM -> 130 / 143, no new request, every deal changed recorded; and in each
case the batch so far undone exactly.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
from copper_bulk_support import (
    ONE,
    SIGNALS,
    batch_entries,
    batch_named,
    ids_of,
    jsonl_ids,
    latest_batch,
    not_done_ids,
    one_deal,
    pipe,
    results,
    rows,
    run,
    start_and_signal,
)

from fakecopper import validation_body
from oppcli.domain.sample import sample_records

ORIGINAL = {r["id"]: r for r in sample_records()}
OPEN = sorted(i for i, r in ORIGINAL.items() if r["status"] == "Open")
TAG = "q4-push"


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    d = tmp_path / "work"
    d.mkdir()
    return d


@pytest.fixture
def fast_retries(monkeypatch):
    monkeypatch.setenv("OPPCLI_COPPER_RETRIES", "1")
    monkeypatch.setenv("OPPCLI_COPPER_BACKOFF", "0.01")


def tagged(srv, ids) -> dict[int, bool]:
    return {i: TAG in srv.records[i]["tags"] for i in ids}


def open_records(cwd: Path) -> str:
    out = run(cwd, "search", "--status", "Open", "-o", "jsonl").stdout
    assert sorted(jsonl_ids(out)) == OPEN
    return out


# ---- some deals fail: exit 7, the others done --------------------------------------------------
def test_a_422_on_some_puts_exits_7_with_exactly_those_ids_not_done(copper, cwd, fast_retries):
    refused = [OPEN[3], OPEN[11]]
    for i in refused:
        copper.fail(rf"/opportunities/{i}$", "PUT", status=422, times=None,
                    body=validation_body("Name: can't be blank"))
    p = pipe(cwd, ["search", "--status", "Open", "-o", "jsonl"],
             ["update", "-", "--add-tag", TAG, "--yes", "-o", "json", "--not-done", "again.txt"], expect=7)
    assert sorted(not_done_ids(cwd / "again.txt")) == refused
    got = rows(p)
    assert {i: r["result"] for i, r in got.items()} == {
        i: "failed" if i in refused else "changed" for i in OPEN}
    for i in refused:
        assert "Name: can't be blank" in got[i]["error"]
        assert f"failed: {i} {ORIGINAL[i]['name']!r}" in p.stderr
        assert len([r for r in one_deal(copper, "PUT") if ids_of([r]) == [i]]) == 1, "a 422 was retried"
    assert all("error" not in got[i] for i in OPEN if i not in refused)
    assert f"updated {len(OPEN) - 2} opportunities, 2 failed" in p.stderr
    assert "again.txt" in p.stderr
    assert tagged(copper, OPEN) == {i: i not in refused for i in OPEN}
    assert one_deal(copper, "GET") == []
    batch = batch_named(p.stderr)
    assert sorted(e["id"] for e in batch_entries(cwd, batch)) == sorted(set(OPEN) - set(refused))


def test_the_not_done_file_runs_the_rest_again_once_the_faults_are_gone(copper, cwd, fast_retries):
    refused = [OPEN[0], OPEN[7], OPEN[20]]
    for i in refused:
        copper.fail(rf"/opportunities/{i}$", "PUT", status=422, times=None,
                    body=validation_body("Close date: is invalid"))
    command = ["update", "-", "--add-tag", TAG, "--yes", "-o", "json"]
    pipe(cwd, ["search", "--status", "Open", "-o", "jsonl"], [*command, "--not-done", "again.txt"], expect=7)
    copper.clear_faults()
    puts = len(one_deal(copper, "PUT"))

    again = run(cwd, *command, input=(cwd / "again.txt").read_text())
    assert results(again) == dict.fromkeys(refused, "changed")
    assert sorted(ids_of(one_deal(copper, "GET"))) == refused  # bare ids: read first
    assert sorted(ids_of(one_deal(copper, "PUT")[puts:])) == refused
    assert tagged(copper, OPEN) == dict.fromkeys(OPEN, True)
    # and the first command once more: nothing left to do
    last = pipe(cwd, ["search", "--status", "Open", "-o", "jsonl"], command)
    assert results(last) == dict.fromkeys(OPEN, "unchanged")
    assert len(one_deal(copper, "PUT")) == puts + len(refused)


def test_a_deal_deleted_meanwhile_fails_alone(copper, cwd, fast_retries):
    records = open_records(cwd)
    gone = OPEN[5]
    del copper.records[gone]  # deleted in Copper's app between the search and the update
    copper.invalidate()
    p = run(cwd, "update", "-", "--add-tag", TAG, "--yes", "-o", "json", "--not-done", "nd.txt",
            input=records, expect=7)
    assert results(p) == {i: "failed" if i == gone else "changed" for i in OPEN}
    assert "deleted meanwhile" in rows(p)[gone]["error"]
    assert not_done_ids(cwd / "nd.txt") == [gone]
    assert tagged(copper, [i for i in OPEN if i != gone]) == {i: True for i in OPEN if i != gone}


def test_the_not_done_file_defaults_to_a_new_file_in_the_working_directory(copper, cwd, fast_retries):
    refused = OPEN[2]
    copper.fail(rf"/opportunities/{refused}$", "PUT", status=422, times=None,
                body=validation_body("Monetary value: is invalid"))
    records = open_records(cwd)
    first = run(cwd, "update", "-", "--add-tag", TAG, "--yes", "-o", "json", input=records, expect=7)
    made = sorted(cwd.iterdir())
    assert len(made) == 1 and re.fullmatch(r"oppcli-update-not-done-\d{8}T\d{6}\.txt", made[0].name), made
    assert not_done_ids(made[0]) == [refused]
    assert made[0].name in first.stderr
    # a second failing run with the same file named: the first is kept, a new one made
    (cwd / "nd.txt").write_text("keep me\n")
    second = run(cwd, "update", "-", "--add-tag", TAG, "--yes", "-o", "json", "--not-done", "nd.txt",
                 input=f"{refused}\n", expect=7)
    assert (cwd / "nd.txt").read_text() == "keep me\n"
    assert not_done_ids(cwd / "nd-2.txt") == [refused]
    assert "nd-2.txt" in second.stderr


# ---- Copper failing after its retries: exit 5, the batch so far undone -------------------------
def test_copper_failing_after_its_retries_stops_with_exit_5_and_the_batch_so_far_undoes(
        copper, cwd, fast_retries):
    records = open_records(cwd)
    copper.fail(ONE, "PUT", times=5)  # the first 5 PUTs go through
    copper.fail(ONE, "PUT", status=500, times=None)  # then Copper fails every one
    p = run(cwd, "update", "-", "--add-tag", TAG, "--yes", "-o", "json", "--not-done", "nd.txt",
            input=records, expect=5)
    changed = sorted(ids_of(one_deal(copper, "PUT"), status=200))
    assert len(changed) == 5
    rest = sorted(set(OPEN) - set(changed))
    attempted = set(ids_of(one_deal(copper, "PUT")))
    assert len(attempted) < len(OPEN), "the run went on after Copper failed"
    assert all(n == 2 for n in (ids_of(one_deal(copper, "PUT")).count(i) for i in attempted - set(changed)))
    assert results(p) == {i: "changed" if i in changed else "not done" for i in OPEN}
    assert "updated 5 opportunities, 17 not done" in p.stderr
    assert "stopped before 17:" in p.stderr
    assert "500" in p.stderr
    assert sorted(not_done_ids(cwd / "nd.txt")) == rest
    assert tagged(copper, OPEN) == {i: i in changed for i in OPEN}

    batch = batch_named(p.stderr)
    assert latest_batch(cwd)["count"] == 5
    assert sorted(e["id"] for e in batch_entries(cwd, batch)) == changed
    copper.clear_faults()
    puts = len(one_deal(copper, "PUT"))
    u = run(cwd, "undo", batch, "--yes", "-o", "json")
    assert results(u) == dict.fromkeys(changed, "changed")
    assert sorted(ids_of(one_deal(copper, "PUT")[puts:])) == changed
    assert all(copper.records[i] | {"date_modified": 0} == ORIGINAL[i] | {"date_modified": 0}
               for i in OPEN)


# ---- a signal during the run ------------------------------------------------------------------
def _signalled(copper, cwd, signum):
    """A slow bulk update of all 36 deals (4 in flight, 0.25 s each), stopped by `signum`
    once 8 PUTs were answered."""
    records = run(cwd, "search", "-n", "100", "-o", "jsonl").stdout
    assert len(jsonl_ids(records)) == len(ORIGINAL)
    copper.latency = 0.25
    p, sent = start_and_signal(cwd, copper, ["update", "-", "--add-tag", TAG, "--yes", "-o", "json",
                                             "--not-done", "nd.txt"], records, signum, after_puts=8)
    copper.latency = 0.0
    return p, sent


@pytest.mark.parametrize("signum,code", SIGNALS)
def test_a_signal_stops_the_run_with_its_exit_code_and_a_report(copper, cwd, signum, code):
    p, _ = _signalled(copper, cwd, signum)
    changed = sorted(ids_of(one_deal(copper, "PUT"), status=200))
    rest = len(ORIGINAL) - len(changed)
    assert 8 <= len(changed) < len(ORIGINAL)
    assert p.returncode == code, p.stderr
    assert "Traceback" not in p.stderr, p.stderr
    assert f"updated {len(changed)} opportunities, {rest} not done" in p.stderr
    assert f"stopped before {rest}:" in p.stderr


@pytest.mark.parametrize("signum,code", SIGNALS)
def test_after_a_signal_every_answered_put_is_in_the_batch_and_undo_restores_exactly_those(
        copper, cwd, signum, code):
    p, _ = _signalled(copper, cwd, signum)
    changed = sorted(ids_of(one_deal(copper, "PUT"), status=200))
    assert sorted(ids_of(one_deal(copper, "PUT"))) == changed, "a PUT without an answer"
    rest = sorted(set(ORIGINAL) - set(changed))
    assert rest, "the run was not stopped"
    assert results(p) == {**dict.fromkeys(changed, "changed"), **dict.fromkeys(rest, "not done")}
    assert sorted(not_done_ids(cwd / "nd.txt")) == rest
    assert tagged(copper, ORIGINAL) == {i: i in changed for i in ORIGINAL}

    batch = latest_batch(cwd)["batch"]
    entries = batch_entries(cwd, batch)
    assert sorted(e["id"] for e in entries) == changed
    assert all(e["after"]["tags"] == [*ORIGINAL[e["id"]]["tags"], TAG] for e in entries)
    puts = len(one_deal(copper, "PUT"))
    u = run(cwd, "undo", batch, "--yes", "-o", "json")
    assert results(u) == dict.fromkeys(changed, "changed")
    assert sorted(ids_of(one_deal(copper, "PUT")[puts:])) == changed
    assert {i: copper.records[i]["tags"] for i in ORIGINAL} == {i: r["tags"] for i, r in ORIGINAL.items()}


@pytest.mark.parametrize("signum,code", SIGNALS)
def test_after_a_signal_no_new_request_is_sent(copper, cwd, signum, code):
    """Only the requests in flight when the signal came finish; none starts after it (a short
    grace for the one a worker may pick up while the signal is being delivered)."""
    _, sent = _signalled(copper, cwd, signum)
    late = [(ids_of([r])[0], round(r.started - sent, 3)) for r in one_deal(copper, "PUT")
            if r.started > sent + 0.15]
    assert late == [], f"PUTs started after the signal (deal, seconds after): {late}"


def test_a_signal_during_the_undo_of_a_batch_stops_it_with_130_and_records_the_undo_so_far(copper, cwd):
    records = run(cwd, "search", "-n", "100", "-o", "jsonl").stdout
    done = run(cwd, "update", "-", "--add-tag", TAG, "--yes", "-o", "json", input=records)
    batch = batch_named(done.stderr)
    assert tagged(copper, ORIGINAL) == dict.fromkeys(ORIGINAL, True)
    puts = len(one_deal(copper, "PUT"))
    copper.latency = 0.25
    p, _ = start_and_signal(cwd, copper, ["undo", batch, "--yes", "-o", "json"], "", signal.SIGINT,
                            after_puts=8)
    copper.latency = 0.0
    restored = sorted(ids_of(one_deal(copper, "PUT")[puts:], status=200))
    assert 8 <= len(restored) < len(ORIGINAL)
    assert tagged(copper, ORIGINAL) == {i: i not in restored for i in ORIGINAL}
    undo_line = latest_batch(cwd)
    assert undo_line["undo_of"] == batch
    assert sorted(e["id"] for e in batch_entries(cwd, undo_line["batch"])) == restored
    assert p.returncode == 130, p.stderr
    assert "Traceback" not in p.stderr, p.stderr
