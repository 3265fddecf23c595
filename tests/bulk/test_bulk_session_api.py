"""The library's bulk API on the local store: Session.update_many / delete_many / plan_update /
plan_delete / apply / history(batch=) / undo(batch), agreeing with the installed `oppcli` on the
same data; a plan is a dry run (nothing written); a deal gone between the plan and the write
fails alone (exit 7, its id in the not-done file) while the others are written.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

import oppcli
from checks import snapshot, stored_records
from oppcli import errors as E

HOT = [1007, 1008, 1015, 1016, 1023, 1024, 1031, 1032]  # the sample deals tagged "hot"
DATES = ("date_modified", "date_stage_changed")


@pytest.fixture
def twin(shared_sample_store: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Two private copies of the sample store: one for the CLI, one for the library."""
    cli, lib = tmp_path / "cli-store", tmp_path / "lib-store"
    shutil.copytree(shared_sample_store, cli)
    shutil.copytree(shared_sample_store, lib)
    return cli, lib


@pytest.fixture
def store(shared_sample_store: Path, store_path: Path) -> Path:
    shutil.copytree(shared_sample_store, store_path)
    return store_path


def rows(text: str) -> list[dict[str, Any]]:
    return orjson.loads(text)


def without_dates(records: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {i: {k: v for k, v in r.items() if k not in DATES} for i, r in records.items()}


def audit(isolated: Path) -> list[dict[str, Any]]:
    path = isolated / "config" / "audit.jsonl"
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def by_id(items: Any) -> dict[int, dict[str, Any]]:
    items = list(items)
    out = {r["id"]: r for r in items}
    assert len(out) == len(items)
    return out


def test_update_many_with_where_agrees_with_the_cli(sh, twin):
    cli, lib = twin
    before = stored_records(cli)
    r = sh("--store", str(cli), "update", "--where-tag", "hot", "--where-status", "Open",
           "--add-tag", "t", "--priority", "Low", "--yes", "-o", "json")
    with oppcli.connect(store=lib) as s:
        result = s.update_many(where={"tag": "hot", "status": "Open"}, add_tags=["t"],
                               priority="Low")
    assert by_id(result.rows()) == by_id(rows(r.stdout))
    assert without_dates(stored_records(lib)) == without_dates(stored_records(cli))
    wanted = sorted(i for i in HOT if before[i]["status"] == "Open")
    assert sorted(p.id for p in result.changed) == wanted
    for p in result.changed:
        old = before[p.id]
        expected = {"tags": [old["tags"], [*old["tags"], "t"]]}
        if old["priority"] != "Low":
            expected["priority"] = [old["priority"], "Low"]
        assert p.changes == expected
    assert result.exit_code == 0 and result.batch and not result.failed and not result.not_done


def test_update_many_with_ids_and_records(store):
    before = stored_records(store)
    with oppcli.connect(store=store) as s:
        s.update_many([1001, "1002"], add_tags=["a"])
        found = list(s.search(id=[1003, 1004]))
        s.update_many(records=found, add_tags=["a"])
    after = stored_records(store)
    for i in (1001, 1002, 1003, 1004):
        assert after[i]["tags"] == [*before[i]["tags"], "a"]
    assert {i: after[i] for i in after if i > 1004} == {i: before[i] for i in before if i > 1004}


def test_plan_update_is_a_dry_run_that_agrees_with_the_cli(sh, store, isolated):
    files = snapshot(store)
    r = sh("update", "--where-status", "Won", "--priority", "High", "--clear", "details",
           "--dry-run", "-o", "json")
    with oppcli.connect(store=store) as s:
        plan = s.plan_update(s.select(where={"status": "Won"}), priority="High",
                             clear=["details"])
        dry = s.update_many(where={"status": "Won"}, priority="High", clear=["details"],
                            dry_run=True)
    assert [p.as_json() for p in plan.previews] == rows(r.stdout)
    assert len(plan) == len(plan.previews) == len(rows(r.stdout)) > 0
    before = stored_records(store)
    won = [i for i, rec in before.items() if rec["status"] == "Won"]
    assert sorted([p.id for p in plan.previews] + [p.id for p in plan.unchanged]) == sorted(won)
    assert dry.dry_run and dry.batch is None
    assert {row["id"]: row["result"] for row in dry.rows()} == {
        **{p.id: "would be changed" for p in plan.previews},
        **{p.id: "unchanged" for p in plan.unchanged}}
    assert sorted(p.id for p in dry.changed) == sorted(p.id for p in plan.previews)
    assert plan.unchanged == [] or all(before[p.id]["priority"] == "High"
                                       and before[p.id]["details"] is None for p in plan.unchanged)
    assert snapshot(store) == files
    assert audit(isolated) == []


def test_apply_writes_a_plan_as_one_batch(store, isolated):
    with oppcli.connect(store=store) as s:
        plan = s.plan_update(s.select(HOT), add_tag="t")
        result = s.apply(plan)
        entries = s.history(batch=result.batch, limit=100)
        line = s.history()[0]
    assert sorted(e["id"] for e in entries) == HOT
    assert {e["batch"] for e in entries} == {result.batch}
    assert (line["batch"], line["count"]) == (result.batch, 8)
    assert [e["audit_id"] for e in audit(isolated)] == [e["audit_id"] for e in entries[::-1]]


def test_a_deal_deleted_between_the_plan_and_the_write_fails_alone(store, isolated, tmp_path):
    before = stored_records(store)
    leftovers = tmp_path / "not-done.txt"
    with oppcli.connect(store=store) as s:
        plan = s.plan_update(s.select([1001, 1002, 1003]), add_tag="t")
        with oppcli.connect(store=store) as other:
            other.delete(1002)
        result = s.apply(plan, leftovers=leftovers)
    assert [p.id for p in result.changed] == [1001, 1003]
    assert [(p.id, p.error) for p in result.failed] == \
        [(1002, "no opportunity with id 1002 (deleted meanwhile?)")]
    assert result.exit_code == 7
    assert result.leftovers == leftovers and leftovers.read_text() == "1002\n"
    with pytest.raises(E.PartialFailure) as caught:
        result.check()
    assert caught.value.exit_code == 7
    after = stored_records(store)
    assert 1002 not in after
    assert after[1001]["tags"] == [*before[1001]["tags"], "t"]
    assert after[1003]["tags"] == [*before[1003]["tags"], "t"]
    batch = [e for e in audit(isolated) if e.get("batch")]
    assert sorted(e["id"] for e in batch) == [1001, 1003]


def test_a_rerun_through_the_library_writes_nothing(store, isolated):
    with oppcli.connect(store=store) as s:
        s.update_many(where={"tag": "hot"}, add_tags=["t"])
        files, log = snapshot(store), audit(isolated)
        again = s.update_many(where={"tag": "hot"}, add_tags=["t"])
    assert again.changed == [] and sorted(p.id for p in again.unchanged) == HOT
    assert again.batch is None and again.exit_code == 0
    assert {row["result"] for row in again.rows()} == {"unchanged"}
    assert snapshot(store) == files and audit(isolated) == log


def test_selection_errors_through_the_library(store, isolated):
    files = snapshot(store)
    with oppcli.connect(store=store) as s:
        with pytest.raises(E.UsageError):
            s.select([1001], where={"status": "Open"})
        with pytest.raises(E.NotFoundError):
            s.update_many([1001, 99999], add_tags=["t"])
        with pytest.raises(E.UsageError):
            s.update_many([1001, 1002])  # nothing to change
        with pytest.raises(E.NotFoundError):
            s.delete_many([1001, 99999])
    assert snapshot(store) == files
    assert audit(isolated) == []


def test_delete_many_and_undo_of_the_batch(sh, twin, isolated):
    cli, lib = twin
    before = stored_records(lib)
    lost = sorted(i for i, r in before.items() if r["status"] == "Lost")
    sh("--store", str(cli), "delete", "--where-status", "Lost", "--yes")
    with oppcli.connect(store=lib) as s:
        dry = s.delete_many(where={"status": "Lost"}, dry_run=True)
        assert sorted(p.id for p in dry.changed) == lost and stored_records(lib) == before
        result = s.delete_many(where={"status": "Lost"})
        assert sorted(p.id for p in result.changed) == lost
        assert {row["result"] for row in result.rows()} == {"deleted"}
        assert stored_records(lib) == stored_records(cli)
        undone = s.undo(result.batch)
    assert undone.bulk is not None and len(undone.bulk.changed) == len(lost)
    moved = {p.id: p.changes["id"][1] for p in undone.bulk.changed}
    assert sorted(moved) == lost
    after = stored_records(lib)
    for old, new in moved.items():
        keep = {k: v for k, v in before[old].items()
                if k not in ("id", "date_created", "date_modified", *DATES)}
        assert {k: after[new].get(k) for k in keep} == keep, old


def test_undo_of_a_batch_through_the_library_restores_the_records(store):
    before = stored_records(store)
    with oppcli.connect(store=store) as s:
        result = s.update_many(where={"status": "Open"}, stage="Negotiation", add_tags=["t"],
                               custom_fields=["Region=EMEA"])
        assert len(result.changed) == 22
        undone = s.undo()  # the latest change: the whole batch
    assert undone.bulk is not None and undone.entry["batch"] == result.batch
    assert len(undone.bulk.changed) == 22
    assert without_dates(stored_records(store)) == without_dates(before)


def test_a_deal_changed_between_the_plan_and_the_write_keeps_that_change(store):
    """The write applies the plan's changes to each deal as it is stored then: a change made
    meanwhile by another writer to other fields is not reverted to what the plan read."""
    before = stored_records(store)
    with oppcli.connect(store=store) as s:
        plan = s.plan_update(s.select([1001, 1002]), add_tag="t")
        with oppcli.connect(store=store) as other:
            other.update(1001, priority="Low", details="changed meanwhile")
        result = s.apply(plan)
    after = stored_records(store)
    assert (after[1001]["priority"], after[1001]["details"]) == ("Low", "changed meanwhile")
    assert after[1001]["tags"] == [*before[1001]["tags"], "t"]
    assert after[1002]["tags"] == [*before[1002]["tags"], "t"]
    assert {p.id: p.changes for p in result.changed} == {
        1001: {"tags": [before[1001]["tags"], [*before[1001]["tags"], "t"]]},
        1002: {"tags": [before[1002]["tags"], [*before[1002]["tags"], "t"]]}}
