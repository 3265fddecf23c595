"""The audit log, history and undo, on both backends: every change recorded with before and
after (imports row by row), history newest first, undo only of what is unchanged since and only
in the backend and store the change was made in; a log that cannot be written stops the change."""

from __future__ import annotations

import orjson
import pytest


@pytest.fixture(params=["local", "copper"])
def backend(request, run, sample, copper):
    """Both backends hold the same sample data; `b` is the flag selecting one."""
    return ["--backend", request.param]


def entries(isolated):
    path = isolated / "config" / "audit.jsonl"
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def test_every_change_is_recorded_with_before_and_after(run, backend, isolated):
    before = run.json(*backend, "show", "1001")
    after = run.json(*backend, "update", "1001", "--status", "Won", "--add-tag", "hot")
    created = run.json(*backend, "create", "--name", "Audited", "--primary-contact-id", "601")
    run(*backend, "delete", "1002", "--yes")
    run(*backend, "update", "1003", "--priority", run.json(*backend, "show", "1003")["priority"])
    log = entries(isolated)
    assert [(e["op"], e["id"]) for e in log] == [("update", 1001), ("create", created["id"]),
                                                 ("delete", 1002)]  # a no-op update: no entry
    upd = log[0]
    assert upd["before"] == before and upd["after"] == after
    assert upd["backend"] == backend[1] and upd["profile"] == "default"
    assert log[1]["before"] is None and log[1]["after"] == created
    assert log[2]["before"]["name"] == "Contoso Ltd - Pilot" and log[2]["after"] is None
    assert (isolated / "config" / "audit.jsonl").stat().st_mode & 0o777 == 0o600


def test_history_lists_newest_first_and_filters_by_id(run, backend):
    run(*backend, "update", "1001", "--status", "Won")
    run(*backend, "update", "1004", "--status", "Lost")
    run(*backend, "update", "1001", "--priority", "Low")
    hist = run.json(*backend, "history")
    assert [(e["id"], e["op"]) for e in hist] == [(1001, "update"), (1004, "update"),
                                                 (1001, "update")]
    assert [e["after"]["priority"] for e in run.json(*backend, "history", "1001")][0] == "Low"
    table = run(*backend, "history", "-o", "table").stdout
    assert "status" in table and "priority" in table and hist[0]["audit_id"] in table
    assert len(run.json(*backend, "history", "-n", "1")) == 1


def test_undo_reverts_an_update(run, backend):
    original = run.json(*backend, "show", "1001")
    run(*backend, "update", "1001", "--status", "Lost", "--loss-reason", "Price",
        "--clear", "close_date", "--custom-field", "Region=APAC", "--tag", "x,y")
    restored = run.json(*backend, "undo")
    for key in ("status", "loss_reason_id", "close_date", "custom_fields", "tags", "name"):
        assert restored[key] == original[key], key
    assert run.json(*backend, "history")[0]["undo_of"]
    run(*backend, "undo", expect=4)  # the undo itself is not undone by default: nothing left


def test_undo_restores_a_deleted_opportunity_with_a_new_id(run, backend):
    gone = run.json(*backend, "show", "1005")
    run(*backend, "delete", "1005", "--yes")
    r = run(*backend, "undo", "-o", "json")
    back = orjson.loads(r.stdout)
    assert back["id"] != 1005 and f"restored deleted opportunity 1005 as {back['id']}" in r.stderr
    for key in ("name", "status", "monetary_value", "tags", "custom_fields", "close_date",
                "pipeline_stage_id", "assignee_id"):
        assert back[key] == gone[key], key


def test_undo_of_a_create_deletes_it_and_asks_first(run, backend):
    made = run.json(*backend, "create", "--name", "Oops", "--primary-contact-id", "601")
    r = run(*backend, "undo", expect=2)
    assert "--yes" in r.stderr
    run.json(*backend, "show", str(made["id"]))  # still there
    run(*backend, "undo", "--yes")
    run(*backend, "show", str(made["id"]), expect=4)


def test_undo_refuses_when_the_record_changed_since(run, backend):
    run(*backend, "update", "1001", "--status", "Won")
    audit_id = run.json(*backend, "history")[0]["audit_id"]
    run(*backend, "update", "1001", "--status", "Lost")
    r = run(*backend, "undo", audit_id, expect=6)
    assert "changed since" in r.stderr and "--force" in r.stderr
    assert run.json(*backend, "show", "1001")["status"] == "Lost"
    run(*backend, "undo", audit_id, "--force")
    assert run.json(*backend, "show", "1001")["status"] == "Open"


def test_undo_by_id_dry_run_and_unknown_ids(run, backend):
    run(*backend, "update", "1001", "--status", "Won")
    audit_id = run.json(*backend, "history")[0]["audit_id"]
    r = run(*backend, "undo", audit_id, "--dry-run")
    assert "would restore status" in r.stderr
    assert run.json(*backend, "show", "1001")["status"] == "Won"
    run(*backend, "undo", "nope1234", expect=4)
    run(*backend, "undo", audit_id)
    run(*backend, "undo", audit_id, expect=6)  # already undone


def test_a_change_on_another_backend_is_not_undone_here(run, sample, copper):
    run("--backend", "copper", "update", "1001", "--status", "Won")
    audit_id = run.json("--backend", "copper", "history")[0]["audit_id"]
    assert run.json("--backend", "local", "history") == []
    assert len(run.json("--backend", "local", "history", "--all-backends")) == 1
    r = run("--backend", "local", "undo", audit_id, expect=2)
    assert "--backend" in r.stderr
    run("--backend", "local", "undo", expect=4)


# A change belongs to the store it was made in, known by its real path (the audit entry's
# "where"): undo in another store reached by the same relative --store replays nothing, and
# history finds a store's changes however its path is spelled.
def test_undo_does_not_replay_another_stores_delete(run, tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    run("--store", "deals", "init", "--sample")
    run("--store", "deals", "delete", "1001", "--yes")
    monkeypatch.chdir(tmp_path / "b")
    run("--store", "deals", "init", "--sample")  # another store, 1001 still in it
    r = run("--store", "deals", "undo", expect=None)
    ids = [x["id"] for x in orjson.loads(run("--store", "deals", "list", "-o", "json").stdout)]
    assert r.exit_code != 0 and len(ids) == 36, \
        f"undo in store b replayed store a's delete: {r.stderr}"


def test_history_finds_changes_whatever_the_store_path_is_spelled(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run("--store", "deals", "init", "--sample")
    run("--store", "deals", "update", "1001", "--name", "Renamed", "-o", "json")
    hist = orjson.loads(run("--store", str(tmp_path / "deals"), "history", "-o", "json").stdout)
    assert [e["id"] for e in hist] == [1001]


def test_imports_are_audited_row_by_row(run, sample, isolated, tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text("id,name,primary_contact_id,status\n1001,,,Won\n,New,601,\n")
    run("--backend", "local", "import", str(rows))
    assert [e["op"] for e in entries(isolated)] == ["update", "create"]


def test_an_unwritable_audit_log_stops_a_change_before_it_happens(run, sample, isolated):
    import os

    if os.geteuid() == 0:
        pytest.skip("root writes whatever the mode")
    log = isolated / "config"
    log.mkdir(exist_ok=True)
    log.chmod(0o500)
    try:
        before = (sample / "opportunities.jsonl").read_bytes()
        r = run("--backend", "local", "update", "1001", "--status", "Won", expect=3)
        assert "audit log" in r.stderr and "nothing was changed" in r.stderr
        assert (sample / "opportunities.jsonl").read_bytes() == before
    finally:
        log.chmod(0o700)


def test_an_audit_log_that_is_a_directory_stops_a_change(run, sample, isolated):
    (isolated / "config").mkdir(exist_ok=True)
    (isolated / "config" / "audit.jsonl").mkdir()
    before = (sample / "opportunities.jsonl").read_bytes()
    r = run("--backend", "local", "update", "1001", "--status", "Won", expect=3)
    assert "audit log" in r.stderr
    assert (sample / "opportunities.jsonl").read_bytes() == before


def test_history_needs_no_key_and_no_network(run, copper, monkeypatch):
    run("--backend", "copper", "update", "1001", "--status", "Won")
    monkeypatch.delenv("COPPER_API_KEY")
    copper.stop()
    hist = run.json("--backend", "copper", "history")
    assert [(e["op"], e["id"]) for e in hist] == [("update", 1001)]
