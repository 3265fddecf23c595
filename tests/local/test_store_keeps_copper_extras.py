"""The local store keeps Copper's read-only extras like Copper does, reads its settings when
used, and judges a change by what it changes; undo restores what the change took."""

from __future__ import annotations

import orjson
import pytest


def test_a_new_deal_gets_coppers_extras(run, sample):
    made = run.json("create", "--name", "Fresh", "--primary-contact", "601")
    assert made["interaction_count"] == 0
    assert made["date_stage_changed"] == made["date_created"]
    assert made["date_last_contacted"] is None and made["date_lead_created"] is None


def test_a_stage_change_stamps_date_stage_changed(run, sample):
    before = run.json("show", "1001")
    after = run.json("update", "1001", "--stage", "Sales/Negotiation"
                     if before["pipeline_stage_id"] != 14 else "Sales/Qualified")
    assert after["date_stage_changed"] == after["date_modified"]
    again = run.json("update", "1001", "--monetary-value", "5")
    assert again["date_stage_changed"] == after["date_stage_changed"]  # no stage change


def test_records_without_the_extras_keep_working(run, sample):
    rec = run.json("show", "1002")
    assert "interaction_count" not in rec  # a store made before: no migration
    run("update", "1002", "--monetary-value", "7")
    assert run.json("show", "1002")["monetary_value"] == 7


def test_an_update_checks_only_the_references_it_changes(run, sample, store_path):
    lookups = orjson.loads((store_path / "lookups.json").read_bytes())
    owner = run.json("show", "1004")["assignee_id"]
    lookups["users"] = [u for u in lookups["users"] if u["id"] != owner]
    (store_path / "lookups.json").write_bytes(orjson.dumps(lookups))
    rec = run.json("update", "1004", "--add-tag", "hot")
    assert "hot" in rec["tags"] and rec["assignee_id"] == owner
    path = store_path.parent / "rows.jsonl"
    path.write_bytes(orjson.dumps({"id": 1004, "monetary_value": 123}) + b"\n")
    r = run("import", str(path), "--dry-run", "-o", "json")
    assert orjson.loads(r.stdout)[0]["action"] == "would update"
    r = run("import", str(path), "-o", "json")
    assert orjson.loads(r.stdout)[0]["action"] == "updated"  # what the dry run said
    r = run("update", "1004", "--assignee-id", str(owner), expect=0)  # unchanged: no check
    r = run("update", "1005", "--assignee-id", str(owner), expect=4)  # a change: checked
    assert f"unknown assignee_id {owner}" in r.stderr


@pytest.mark.parametrize("value", ["abc", "inf", "-1", "nan"])
def test_a_bad_lock_timeout_is_exit_3_naming_the_variable(run, sample, monkeypatch, value):
    monkeypatch.setenv("OPPCLI_LOCK_TIMEOUT", value)
    r = run("update", "1001", "--monetary-value", "1", expect=3)
    assert "OPPCLI_LOCK_TIMEOUT" in r.stderr
    run("list")  # reads take no lock


def test_a_whitespace_last_line_does_not_stop_create_or_delete(run, sample, store_path):
    with open(store_path / "opportunities.jsonl", "ab") as f:
        f.write(b"   \n")
    made = run.json("create", "--name", "After Blank", "--primary-contact", "601")
    run("delete", str(made["id"]), "--yes")
    assert run.json("search", "--name", "After Blank") == []
    assert len(run.json("list", "--all")) == 36


def test_undo_of_a_stage_change_restores_the_probability_given_with_it(run, sample):
    run("update", "1001", "--win-probability", "33")
    run("update", "1001", "--stage", "Sales/Follow-up", "--win-probability", "33")
    run("undo")
    assert run.json("show", "1001")["win_probability"] == 33


def test_undo_goes_on_past_a_deal_restored_under_a_new_id(run, sample):
    run("update", "1005", "--monetary-value", "4242")
    run("delete", "1005", "--yes")
    restored = run.json("undo", "-o", "json")  # the delete: back under a new id
    assert restored["id"] != 1005 and restored["monetary_value"] == 4242
    run("undo")  # the update, now on the restored deal
    assert run.json("show", str(restored["id"]))["monetary_value"] != 4242
    r = run("undo", expect=None)  # and on: never stuck on "no opportunity with id 1005"
    assert "1005" not in r.stderr or r.exit_code == 0, r.stderr
