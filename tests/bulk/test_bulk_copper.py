"""Bulk update and delete on Copper, through the installed `oppcli` against the test Copper server
(tests/fakecopper.py): what is sent (one PUT per deal that changes, a GET only for a record that
lacks what the change needs), the safety rules (dry run, refusal off a terminal), requests in
flight at once, and the batch in the audit log taken back as one. Stops and failures half-way
are in test_bulk_copper_stops.py.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from copper_bulk_support import (
    batch_entries,
    batch_named,
    ids_of,
    jsonl_ids,
    latest_batch,
    max_in_flight,
    one_deal,
    pipe,
    results,
    rows,
    run,
    writes,
)

from oppcli.domain.sample import sample_records

ORIGINAL = {r["id"]: r for r in sample_records()}
ADA, BEN = 101, 102


def ids_where(**want) -> list[int]:
    return sorted(i for i, r in ORIGINAL.items() if all(r[k] == v for k, v in want.items()))


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    d = tmp_path / "work"
    d.mkdir()
    return d


# ---- what is sent ------------------------------------------------------------------------------
def test_piped_search_records_cost_one_put_per_deal_that_changes_and_no_get(copper, cwd):
    open_ids = ids_where(status="Open")
    already = ids_where(status="Open", assignee_id=BEN)
    assert len(open_ids) == 22 and len(already) == 2
    p = pipe(cwd, ["search", "--status", "Open", "-o", "jsonl"],
             ["update", "-", "--assignee", "Ben Okafor", "--yes", "-o", "json"])
    assert one_deal(copper, "GET") == []
    puts = one_deal(copper, "PUT")
    assert sorted(ids_of(puts)) == sorted(set(open_ids) - set(already))
    assert all(r.body == {"assignee_id": BEN} for r in puts), [r.body for r in puts]
    got = rows(p)
    assert sorted(got) == open_ids
    for i in open_ids:
        row = got[i]
        assert row["name"] == ORIGINAL[i]["name"]
        if i in already:
            assert (row["result"], row["changes"]) == ("unchanged", {})
        else:
            assert (row["result"], row["changes"]) == ("changed",
                                                       {"assignee_id": [ORIGINAL[i]["assignee_id"], BEN]})
    assert {i: copper.records[i]["assignee_id"] for i in open_ids} == dict.fromkeys(open_ids, BEN)
    others = set(ORIGINAL) - set(open_ids)
    assert all(copper.records[i] == ORIGINAL[i] for i in others)
    assert "updated 20 opportunities, 2 already had the values" in p.stderr
    assert not list(cwd.iterdir()), "a not-done file was written for a run that completed"


def test_rerunning_the_same_pipeline_changes_nothing_more(copper, cwd):
    search = ["search", "--assignee", "Ada Park", "--status", "Open", "-o", "jsonl"]
    command = ["update", "-", "--add-tag", "webinar", "--yes", "-o", "json"]
    ada_open = ids_where(assignee_id=ADA, status="Open")
    first = pipe(cwd, search, command)
    assert results(first) == dict.fromkeys(ada_open, "changed")
    batch = latest_batch(cwd)["batch"]
    puts = len(one_deal(copper, "PUT"))
    assert puts == len(ada_open) == 8
    after_first = {i: copper.records[i] for i in ada_open}

    again = pipe(cwd, search, command)
    assert results(again) == dict.fromkeys(ada_open, "unchanged")
    assert all(r["changes"] == {} for r in rows(again).values())
    assert "nothing to update: 8 already had the values" in again.stderr
    assert len(one_deal(copper, "PUT")) == puts
    assert {i: copper.records[i] for i in ada_open} == after_first
    assert latest_batch(cwd)["batch"] == batch, "a rerun that changed nothing recorded a batch"
    # the same deals handed in as ids: read, found to have the values, not written
    ids = "".join(f"{i}\n" for i in ada_open)
    third = run(cwd, "update", "-", "--add-tag", "webinar", "--yes", "-o", "json", input=ids)
    assert results(third) == dict.fromkeys(ada_open, "unchanged")
    assert len(one_deal(copper, "PUT")) == puts
    assert not list(cwd.iterdir())


def test_records_cut_down_to_id_and_name_are_read_with_a_get_first(copper, cwd):
    lost = ids_where(status="Lost")
    p = pipe(cwd, ["search", "--status", "Lost", "-o", "jsonl", "--fields", "id,name"],
             ["update", "-", "--priority", "Low", "--yes", "-o", "json"])
    assert sorted(ids_of(one_deal(copper, "GET"))) == lost
    changing = [i for i in lost if ORIGINAL[i]["priority"] != "Low"]
    assert changing and len(changing) < len(lost)
    assert sorted(ids_of(one_deal(copper, "PUT"))) == changing
    assert rows(p) == {i: {"id": i, "name": ORIGINAL[i]["name"],
                           "result": "changed" if i in changing else "unchanged",
                           "changes": {"priority": [ORIGINAL[i]["priority"], "Low"]}
                           if i in changing else {}} for i in lost}
    assert all(copper.records[i]["priority"] == "Low" for i in lost)


def test_bare_ids_on_stdin_are_read_with_a_get_first(copper, cwd):
    chosen = [1003, 1010, 1017, 1024, 1031]
    p = run(cwd, "update", "-", "--add-tag", "webinar", "--yes", "-o", "json",
            input="".join(f"{i}\n" for i in chosen))
    assert sorted(ids_of(one_deal(copper, "GET"))) == chosen
    assert sorted(ids_of(one_deal(copper, "PUT"))) == chosen
    for i in chosen:
        tags = ORIGINAL[i]["tags"]
        assert rows(p)[i]["changes"] == {"tags": [tags, [*tags, "webinar"]]}
        assert copper.records[i]["tags"] == [*tags, "webinar"]


def _cut_down_run(copper, cwd):
    """Lost deals piped as records holding only id, priority and date_modified, set to High."""
    lost = ids_where(status="Lost")
    p = pipe(cwd, ["search", "--status", "Lost", "-o", "jsonl", "--fields", "id,priority,date_modified"],
             ["update", "-", "--priority", "High", "--yes", "-o", "json"])
    changing = [i for i in lost if ORIGINAL[i]["priority"] != "High"]
    assert len(changing) == 3
    return lost, changing, p


def test_a_cut_down_record_holding_the_changed_field_needs_no_get_and_reports_only_that_change(copper, cwd):
    """The issue: a GET only when the record at hand lacks a field being changed or date_modified."""
    lost, changing, p = _cut_down_run(copper, cwd)
    assert one_deal(copper, "GET") == []
    assert sorted(ids_of(one_deal(copper, "PUT"))) == changing
    assert all(r.body == {"priority": "High"} for r in one_deal(copper, "PUT"))
    assert {i: copper.records[i]["priority"] for i in lost} == dict.fromkeys(lost, "High")
    assert {i: r["changes"] for i, r in rows(p).items() if r["result"] == "changed"} == {
        i: {"priority": [ORIGINAL[i]["priority"], "High"]} for i in changing}


def test_a_batch_from_cut_down_records_records_only_the_change_and_undoes(copper, cwd):
    lost, changing, p = _cut_down_run(copper, cwd)
    batch = batch_named(p.stderr)
    line = latest_batch(cwd)
    assert (line["batch"], line["count"], line["fields"]) == (batch, len(changing), ["priority"])
    for e in batch_entries(cwd, batch):
        assert e["before"]["priority"] == ORIGINAL[e["id"]]["priority"]
        assert e["before"].get("name") in (None, ORIGINAL[e["id"]]["name"])
    run(cwd, "undo", batch, "--yes", "-o", "json")
    assert {i: copper.records[i]["priority"] for i in lost} == {i: ORIGINAL[i]["priority"] for i in lost}
    assert all(copper.records[i]["name"] == ORIGINAL[i]["name"] for i in lost)


# ---- safety ------------------------------------------------------------------------------------
def test_dry_run_shows_each_field_before_and_after_and_sends_no_write(copper, cwd):
    won = ids_where(status="Won")
    p = pipe(cwd, ["search", "--status", "Won", "-o", "jsonl"],
             ["update", "-", "--priority", "Low", "--dry-run", "-o", "json"])
    expected = [{"id": i, "name": ORIGINAL[i]["name"],
                 "changes": {"priority": [ORIGINAL[i]["priority"], "Low"]}}
                for i in won if ORIGINAL[i]["priority"] != "Low"]
    assert sorted(orjson.loads(p.stdout), key=lambda r: r["id"]) == expected
    assert f"would update {len(expected)} opportunities" in p.stderr
    where = run(cwd, "update", "--where-status", "Won", "--priority", "Low", "--dry-run", "-o", "json")
    assert sorted(orjson.loads(where.stdout), key=lambda r: r["id"]) == expected
    gone = pipe(cwd, ["search", "--status", "Won", "-o", "jsonl"], ["delete", "-", "--dry-run", "-o", "json"])
    assert sorted(r["id"] for r in orjson.loads(gone.stdout)) == won
    assert writes(copper) == []
    assert all(copper.records[i] == ORIGINAL[i] for i in ORIGINAL)
    assert orjson.loads(run(cwd, "history", "-o", "json").stdout) == []


@pytest.mark.parametrize("how", ["update -", "delete -", "update --where"])
def test_off_a_terminal_without_yes_nothing_is_sent_and_exit_2(copper, cwd, how):
    if how == "update --where":
        p = run(cwd, "update", "--where-status", "Lost", "--status", "Abandoned", expect=2)
    else:
        args = ["update", "-", "--status", "Abandoned"] if how == "update -" else ["delete", "-"]
        p = pipe(cwd, ["search", "--status", "Lost", "-o", "jsonl"], args, expect=2)
    assert "without confirmation" in p.stderr and "--yes" in p.stderr
    assert p.stdout == ""
    assert writes(copper) == []
    assert len(copper.records) == len(ORIGINAL)
    assert all(copper.records[i] == ORIGINAL[i] for i in ORIGINAL)
    assert not list(cwd.iterdir())


def test_where_filters_update_the_matching_deals_without_a_get_each(copper, cwd):
    ada_open = ids_where(assignee_id=ADA, status="Open")
    p = run(cwd, "update", "--where-assignee", "Ada Park", "--where-status", "Open",
            "--assignee", "Ben Okafor", "--yes", "-o", "json")
    assert results(p) == dict.fromkeys(ada_open, "changed")
    assert one_deal(copper, "GET") == []
    assert sorted(ids_of(one_deal(copper, "PUT"))) == ada_open
    assert {i for i, r in copper.records.items() if r["assignee_id"] == BEN} == \
        set(ids_where(assignee_id=BEN)) | set(ada_open)


# ---- speed: requests in flight at once, paced --------------------------------------------------
@pytest.mark.parametrize("concurrency", [1, 3])
def test_puts_go_several_at_once_up_to_copper_concurrency(copper, cwd, monkeypatch, concurrency):
    monkeypatch.setenv("OPPCLI_COPPER_CONCURRENCY", str(concurrency))
    records = run(cwd, "search", "--status", "Open", "-o", "jsonl", "--sort", "id").stdout
    chosen = "".join(records.splitlines(keepends=True)[:12])
    copper.latency = 0.12
    run(cwd, "update", "-", "--add-tag", "fast", "--yes", "-o", "json", input=chosen)
    puts = one_deal(copper, "PUT")
    assert len(puts) == 12
    assert max_in_flight(puts) == concurrency
    assert all(copper.records[i]["tags"][-1] == "fast" for i in jsonl_ids(chosen))


def test_a_bulk_update_stays_under_the_rate_limit(copper, cwd, monkeypatch):
    """oppcli's pacer set to the server's limit: every PUT admitted the first time (no 429)."""
    records = run(cwd, "search", "--status", "Open", "-o", "jsonl").stdout
    copper.set_rate_limit(8, 1.0)
    monkeypatch.setenv("OPPCLI_COPPER_RATE_LIMIT", "8")
    monkeypatch.setenv("OPPCLI_COPPER_RATE_WINDOW", "1")
    p = run(cwd, "update", "-", "--add-tag", "paced", "--yes", "-o", "json", input=records)
    assert set(results(p).values()) == {"changed"} and len(results(p)) == 22
    assert [r.status for r in copper.requests if r.status == 429] == []
    assert len(one_deal(copper, "PUT")) == 22


# ---- the batch: one line in history, undone as one ---------------------------------------------
def test_a_batch_is_one_history_line_and_undo_restores_every_deal_on_the_server(copper, cwd):
    open_ids = ids_where(status="Open")
    p = pipe(cwd, ["search", "--status", "Open", "-o", "jsonl"],
             ["update", "-", "--stage", "Negotiation", "--add-tag", "push", "--yes", "-o", "json"])
    batch = batch_named(p.stderr)
    changed = sorted(i for i, s in results(p).items() if s == "changed")
    assert changed == open_ids  # every one gains the tag
    line = latest_batch(cwd)
    assert (line["audit_id"], line["op"], line["count"]) == (batch, "update", len(open_ids))
    assert sorted(d["id"] for d in line["deals"]) == open_ids
    entries = batch_entries(cwd, batch)
    assert sorted(e["id"] for e in entries) == open_ids
    assert all(e["before"]["tags"] == ORIGINAL[e["id"]]["tags"] for e in entries)

    before_undo = len(one_deal(copper, "PUT"))
    u = run(cwd, "undo", batch, "--yes", "-o", "json")
    assert sorted(i for i, s in results(u).items() if s == "changed") == open_ids
    assert len(one_deal(copper, "PUT")) == before_undo + len(open_ids)
    fields = ("pipeline_id", "pipeline_stage_id", "win_probability", "tags", "status", "assignee_id")
    for i in ORIGINAL:
        assert {f: copper.records[i][f] for f in fields} == {f: ORIGINAL[i][f] for f in fields}, i
    undo_line = latest_batch(cwd)
    assert undo_line["undo_of"] == batch and undo_line["count"] == len(open_ids)


def test_bulk_delete_from_a_pipe_then_undo_brings_every_deal_back_with_new_ids(copper, cwd):
    hot = sorted(i for i, r in ORIGINAL.items() if "hot" in r["tags"])
    assert len(hot) == 8
    p = pipe(cwd, ["search", "--tag", "hot", "-o", "jsonl"], ["delete", "-", "--yes", "-o", "json"])
    assert results(p) == dict.fromkeys(hot, "deleted")
    assert one_deal(copper, "GET") == []
    assert sorted(ids_of(one_deal(copper, "DELETE"))) == hot
    assert set(copper.records) == set(ORIGINAL) - set(hot)
    batch = batch_named(p.stderr)
    assert latest_batch(cwd)["count"] == len(hot)

    u = run(cwd, "undo", batch, "--yes", "-o", "json")
    back = rows(u)
    assert sorted(back) == hot and {r["result"] for r in back.values()} == {"brought back"}
    new_ids = {i: r["changes"]["id"][1] for i, r in back.items()}
    assert all(r["changes"]["id"][0] == i for i, r in back.items())
    assert len(set(new_ids.values())) == len(hot) and not set(new_ids.values()) & set(ORIGINAL)
    assert len(copper.records) == len(ORIGINAL)
    kept = ("name", "assignee_id", "close_date", "company_id", "monetary_value", "pipeline_id",
            "pipeline_stage_id", "primary_contact_id", "priority", "status", "tags", "details",
            "custom_fields")
    for old, new in new_ids.items():
        assert {k: copper.records[new][k] for k in kept} == {k: ORIGINAL[old][k] for k in kept}, old


def test_undo_of_a_batch_refuses_a_deal_changed_since_on_the_server(copper, cwd):
    lost = ids_where(status="Lost")
    p = pipe(cwd, ["search", "--status", "Lost", "-o", "jsonl"],
             ["update", "-", "--status", "Abandoned", "--yes", "-o", "json"])
    batch = batch_named(p.stderr)
    moved = lost[1]
    rec = dict(copper.records[moved])  # someone in Copper's app reopens one meanwhile
    rec.update(status="Open", date_modified=rec["date_modified"] + 60)
    copper.records[moved] = rec
    copper.invalidate()
    puts = len(one_deal(copper, "PUT"))

    refused = run(cwd, "undo", batch, "--yes", expect=6)
    assert f"{moved} {ORIGINAL[moved]['name']!r} (status)" in refused.stderr
    assert "1 of batch" in refused.stderr
    assert len(one_deal(copper, "PUT")) == puts
    assert {i: copper.records[i]["status"] for i in lost} == {
        i: "Open" if i == moved else "Abandoned" for i in lost}

    run(cwd, "undo", batch, "--yes", "--force", "-o", "json")
    assert {i: copper.records[i]["status"] for i in lost} == dict.fromkeys(lost, "Lost")
