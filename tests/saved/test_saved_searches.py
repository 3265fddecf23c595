"""Saved searches: `search FILTERS --save NAME` keeps the filters (and sort) in the profile;
`--saved NAME` uses them on search, list, export, report, forecast, stale and the bulk forms
of update and delete; a filter given too replaces the saved one of its kind, others are ANDed.
`oppcli saved list|show|delete`. A saved search naming a stage or owner that is gone fails with
exit 4 and says which. All through the installed oppcli, on the sample store (and once on the
test Copper server)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import orjson
import pytest

from checks import one_error_line, snapshot, stored_records
from completer import complete_bash

ADA, BEN = 101, 102


@pytest.fixture
def store(sh, store_path: Path) -> Path:
    sh("init", "--sample")
    return store_path


def ids(proc) -> list[int]:
    return [r["id"] for r in orjson.loads(proc.stdout)]


def config(isolated: Path) -> dict:
    return tomllib.loads((isolated / "config" / "config.toml").read_text())


def test_save_keeps_the_filters_and_sort_in_the_profile_and_prints_the_search(sh, store, isolated):
    plain = sh("search", "--status", "open", "--assignee", "Ada Park", "--sort", "monetary_value",
               "--desc", "-o", "json")
    saved = sh("search", "--status", "open", "--assignee", "Ada Park", "--sort", "monetary_value",
               "--desc", "--save", "ada-open", "-o", "json")
    assert saved.stdout == plain.stdout and ids(saved)
    assert "saved the search as 'ada-open'" in saved.stderr
    entry = config(isolated)["profiles"]["default"]["searches"]["ada-open"]
    assert entry == {"status": ["open"], "assignee": ["Ada Park"], "sort": "monetary_value",
                     "asc": False}
    again = sh("search", "--saved", "ada-open", "-o", "json")
    assert again.stdout == plain.stdout  # the same deals in the same (saved) order
    assert sh("list", "--saved", "ada-open", "-o", "json").stdout == plain.stdout


def test_a_filter_given_replaces_the_saved_one_of_its_kind_and_others_are_anded(sh, store):
    sh("search", "--status", "open", "--assignee", "Ada Park", "--save", "ada-open")
    records = stored_records(store).values()
    # --assignee replaces the saved owner; the saved status stays
    got = sh("search", "--saved", "ada-open", "--assignee", "Ben Okafor", "-o", "json")
    want = {r["id"] for r in records if r["status"] == "Open" and r["assignee_id"] == BEN}
    assert set(ids(got)) == want and want
    # a filter of another kind is ANDed
    got = sh("search", "--saved", "ada-open", "--min-value", "50000", "-o", "json")
    want = {r["id"] for r in records if r["status"] == "Open" and r["assignee_id"] == ADA
            and (r["monetary_value"] or 0) >= 50000}
    assert set(ids(got)) == want and want


def test_saved_searches_work_on_export_report_forecast_and_stale(sh, store):
    sh("search", "--assignee", "Ada Park", "--save", "ada")
    sh("search", "--status", "open", "--assignee", "Ada Park", "--save", "ada-open")
    records = stored_records(store).values()
    ada = sorted(r["id"] for r in records if r["assignee_id"] == ADA)
    exported = [orjson.loads(x)["id"] for x in sh("export", "--saved", "ada").stdout.splitlines()]
    assert exported == ada
    report = orjson.loads(sh("report", "--by", "status", "--saved", "ada", "-o", "json").stdout)
    assert sum(r["count"] for r in report) == len(ada)
    assert report == orjson.loads(sh("report", "--by", "status", "--assignee", "Ada Park",
                                     "-o", "json").stdout)
    assert sh("forecast", "--saved", "ada-open", "-o", "json").stdout == \
        sh("forecast", "--assignee", "Ada Park", "-o", "json").stdout
    assert sh("stale", "--saved", "ada", "--days", "1", "-o", "json").stdout == \
        sh("stale", "--assignee", "Ada Park", "--days", "1", "-o", "json").stdout


def test_forecast_and_stale_refuse_a_saved_search_asking_for_closed_deals(sh, store):
    sh("search", "--status", "won", "--save", "won")
    for cmd in (["forecast"], ["stale"]):
        line = one_error_line(sh(*cmd, "--saved", "won", expect=None), 2)
        assert "saved search 'won' asks for status won" in line


def test_bulk_update_and_delete_select_with_a_saved_search(sh, store):
    sh("search", "--status", "open", "--assignee", "Ada Park", "--save", "ada-open")
    records = stored_records(store)
    want = sorted(i for i, r in records.items() if r["status"] == "Open" and r["assignee_id"] == ADA)
    preview = orjson.loads(sh("update", "--saved", "ada-open", "--add-tag", "mine", "--dry-run",
                              "-o", "json").stdout)
    assert sorted(p["id"] for p in preview) == want
    sh("update", "--saved", "ada-open", "--where-priority", "High", "--add-tag", "mine", "--yes",
       "-o", "json")
    after = stored_records(store)
    tagged = sorted(i for i, r in after.items() if "mine" in r["tags"])
    assert tagged == [i for i in want if records[i]["priority"] == "High"] and tagged
    sh("delete", "--saved", "ada-open", "--yes", "-o", "json")
    left = stored_records(store)
    assert not set(want) & set(left) and len(left) == len(records) - len(want)


def test_saved_list_show_and_delete(sh, store, isolated):
    sh("search", "--status", "open", "--tag", "hot", "--save", "hot")
    sh("search", "--stage", "Sales/Negotiation", "--sort", "close_date", "--save", "closing")
    listed = orjson.loads(sh("saved", "list", "-o", "json").stdout)
    assert listed == {"hot": {"status": ["open"], "tag": ["hot"]},
                      "closing": {"stage": ["Sales/Negotiation"], "sort": "close_date"}}
    assert orjson.loads(sh("saved", "show", "closing", "-o", "json").stdout) == listed["closing"]
    assert sh("saved", "show", "closing", "-o", "table").stdout.strip() == \
        "--stage Sales/Negotiation --sort close_date"
    sh("saved", "delete", "hot")
    assert list(orjson.loads(sh("saved", "list", "-o", "json").stdout)) == ["closing"]
    line = one_error_line(sh("saved", "show", "hot", expect=None), 4)
    assert "no saved search 'hot'" in line and "closing" in line


def test_a_saved_search_is_per_profile(sh, store):
    sh("search", "--tag", "hot", "--save", "hot")
    sh("--profile", "work", "config", "set", "backend", "local")
    one_error_line(sh("--profile", "work", "search", "--saved", "hot", expect=None), 4)
    assert orjson.loads(sh("--profile", "work", "saved", "list", "-o", "json").stdout) == {}


def test_a_saved_search_naming_a_stage_that_is_gone_fails_saying_which(sh, store):
    sh("search", "--stage", "Sales/Negotiation", "--save", "closing")
    lookups_file = store / "lookups.json"
    lookups = json.loads(lookups_file.read_text())
    for p in lookups["pipelines"]:
        p["stages"] = [s for s in p["stages"] if s["name"] != "Negotiation"]
    lookups_file.write_text(json.dumps(lookups))
    before = snapshot(store)
    for args in (["search"], ["report", "--by", "stage"], ["update", "--add-tag", "x", "--yes"]):
        line = one_error_line(sh(*args, "--saved", "closing", expect=None), 4)
        assert "saved search 'closing'" in line and "Negotiation" in line, line
    assert snapshot(store) == before


@pytest.mark.parametrize("args,code,words", [
    (["search", "--saved", "nope"], 4, "no saved search 'nope'"),
    (["search", "--stage", "Nowhere", "--save", "x"], 4, "no stage named 'Nowhere'"),
    (["search", "--status", "open", "--save", "bad name!"], 2, "cannot save a search as"),
    (["search", "--save", "empty"], 2, "no filters given"),
    (["search", "--status", "open", "--sort", "nope", "--save", "x"], 2, "sort"),
])
def test_bad_saved_searches_are_refused_and_nothing_is_kept(sh, store, isolated, args, code, words):
    line = one_error_line(sh(*args, expect=None), code)
    assert words in line
    path = isolated / "config" / "config.toml"
    assert not path.exists() or "searches" not in config(isolated).get("profiles", {}).get(
        "default", {})


def test_saved_search_names_complete(run, sample):
    run("search", "--status", "open", "--save", "open-deals")
    run("search", "--tag", "hot", "--save", "hot")
    assert complete_bash("oppcli search --saved o") == ["open-deals"]
    assert sorted(complete_bash("oppcli saved show ")) == ["hot", "open-deals"]
    assert complete_bash("oppcli update --saved h") == ["hot"]


def test_saved_searches_on_copper(copper, sh, isolated):
    sh("--profile", "default", "config", "set", "backend", "copper", env={})
    sh("search", "--status", "open", "--assignee", "Ada Park", "--save", "ada-open")
    body = copper.calls("/opportunities/search")[-1].body
    got = sh("search", "--saved", "ada-open", "-o", "json")
    assert copper.calls("/opportunities/search")[-1].body["assignee_ids"] == [ADA]
    assert body["status_ids"] == [0]
    assert all(r["assignee_id"] == ADA and r["status"] == "Open" for r in orjson.loads(got.stdout))
