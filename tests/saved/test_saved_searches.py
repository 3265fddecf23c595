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


def test_filters_given_replace_saved_ones_naming_what_is_gone(sh, store):
    """A stage and an owner gone from the account: the saved search fails naming what is still
    missing until filters given replace both; then it runs, and can be saved again."""
    sh("search", "--stage", "Sales/Negotiation", "--assignee", "Ben Okafor", "--save", "ben")
    lookups_file = store / "lookups.json"
    lookups = json.loads(lookups_file.read_text())
    for p in lookups["pipelines"]:
        p["stages"] = [s for s in p["stages"] if s["name"] != "Negotiation"]
    lookups["users"] = [u for u in lookups["users"] if u["id"] != BEN]
    lookups_file.write_text(json.dumps(lookups))
    line = one_error_line(sh("search", "--saved", "ben", "--assignee", "Ada Park",
                             expect=None), 4)
    assert "saved search 'ben'" in line and "Sales/Negotiation" in line, line
    got = sh("search", "--saved", "ben", "--assignee", "Ada Park", "--stage", "Sales/Qualified",
             "-o", "json")
    want = sh("search", "--assignee", "Ada Park", "--stage", "Sales/Qualified", "-o", "json")
    assert got.stdout == want.stdout and ids(got)
    sh("search", "--saved", "ben", "--assignee", "Ada Park", "--stage", "Sales/Qualified",
       "--save", "ada-qualified")
    assert sh("search", "--saved", "ada-qualified", "-o", "json").stdout == want.stdout


def test_a_saved_search_broken_by_hand_is_a_config_error_naming_the_key(sh, store, isolated):
    """Values only a hand edit of the config file can give: exit 3, one line naming the saved
    search and the key; `saved delete` still removes it. A single status written as text
    works on forecast as on search."""
    path = isolated / "config" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        '[profiles.default.searches.sorted]\nsort = 5\n'
        '[profiles.default.searches.asc]\nasc = "yes"\n'
        '[profiles.default.searches.nested]\nstatus = [["open"]]\n'
        '[profiles.default.searches.dated]\nclose_after = 2026-01-01\n'
        '[profiles.default.searches.listed]\nmin_value = ["5"]\n'
        '[profiles.default.searches.open]\nstatus = "open"\n')
    for name, key in (("sorted", "sort"), ("asc", "asc"), ("nested", "status"),
                      ("dated", "close_after"), ("listed", "min_value")):
        for cmd in (["search"], ["forecast"], ["update", "--add-tag", "x", "--yes"]):
            line = one_error_line(sh(*cmd, "--saved", name, expect=None), 3)
            assert f"saved search {name!r}" in line and f"{key} must be" in line, line
    assert sh("forecast", "--saved", "open", "-o", "json").stdout == \
        sh("forecast", "-o", "json").stdout
    sh("saved", "delete", "sorted")
    assert "sorted" not in config(isolated)["profiles"]["default"]["searches"]


@pytest.mark.parametrize("args,code,words", [
    (["search", "--saved", "nope"], 4, "no saved search 'nope'"),
    (["search", "--stage", "Nowhere", "--save", "x"], 4, "no stage named 'Nowhere'"),
    (["search", "--status", "open", "--save", "bad name!"], 2, "cannot save a search as"),
    (["search", "--save", "empty"], 2, "no filters given"),
    (["search", "--status", "open", "--sort", "nope", "--save", "x"], 2, "sort"),
    (["search", "--status", "open", "--save", "x", "-o", "nope"], 2, "unknown output format"),
    (["search", "--status", "open", "--save", "x", "--fields", "nope"], 2, "unknown field"),
    (["search", "--status", "open", "--save", "x", "--excel", "-o", "json"], 2, "--excel"),
    (["search", "--status", "open", "--save", "x", "--limit", "-1"], 2, "limit"),
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


def test_saved_show_prints_flags_the_shell_reads_back_as_the_saved_values(sh, store):
    """Quotes, backslashes, a line break, an escape character and invisible ones: the flags
    `saved show` prints hold nothing unseen, and bash reads them back as exactly the values
    saved."""
    import shutil
    import subprocess

    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    odd = "O'Brien\nx\x1b[31m\u202e\u00a0\\z \"q\""
    sh("search", "--name-contains", odd, "--tag", "plain", "--tag", "a b", "--save", "odd")
    words = sh("saved", "show", "odd", "-o", "table").stdout.strip()
    assert words.isprintable(), words
    argv = subprocess.run([bash, "-c", f"printf '%s\\0' {words}"], capture_output=True,
                          check=True).stdout.decode("utf-8").split("\0")[:-1]
    assert argv == ["--name-contains", odd, "--tag", "plain", "--tag", "a b"]


def test_a_custom_field_given_replaces_the_saved_criteria_on_that_field_only(sh, store):
    sh("search", "--custom-field", "Region=EMEA,APAC", "--custom-field", "Contract Months>=12",
       "--save", "cf")
    records = stored_records(store).values()

    def cf(r, ident):
        return next((c["value"] for c in r["custom_fields"]
                     if c["custom_field_definition_id"] == ident), None)
    # Signed NDA is ANDed to both saved criteria; Region given replaces only the saved Region one
    got = sh("search", "--saved", "cf", "--custom-field", "Signed NDA=true", "-o", "json")
    want = {r["id"] for r in records if cf(r, 401) in (4011, 4013) and (cf(r, 402) or 0) >= 12
            and cf(r, 403) is True}
    assert set(ids(got)) == want and want
    got = sh("search", "--saved", "cf", "--custom-field", "region=Americas", "-o", "json")
    want = {r["id"] for r in records if cf(r, 401) == 4012 and (cf(r, 402) or 0) >= 12}
    assert set(ids(got)) == want and want


def test_another_sort_given_does_not_inherit_the_saved_direction(sh, store):
    sh("search", "--status", "won", "--sort", "monetary_value", "--desc", "--save", "big")
    by_value = ids(sh("search", "--saved", "big", "-o", "json"))
    assert by_value == ids(sh("search", "--status", "won", "--sort", "monetary_value", "--desc",
                              "-o", "json"))
    by_name = ids(sh("search", "--saved", "big", "--sort", "name", "-o", "json"))
    assert by_name == ids(sh("search", "--status", "won", "--sort", "name", "-o", "json"))
    ascending = ids(sh("search", "--saved", "big", "--asc", "-o", "json"))
    assert ascending == ids(sh("search", "--status", "won", "--sort", "monetary_value", "--asc",
                               "-o", "json"))
