"""Bulk update on the local store, through the installed `oppcli`: the deals picked by a pipe
from `search` (JSON Lines, a JSON array, ids one per line), by several ids or by --where-*
filters; the changes from update's flags and --from-json; --dry-run's exact per-deal
[before, after]; the refusal without a terminal and the prompt on one (also when stdin is the
pipe); an idempotent rerun; and one atomic replace of the data file for the whole command.

Expected values are computed here from the store file itself, never from oppcli's answers.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest
from bulk_local_support import audit, bash, rows, without_dates

from checks import snapshot, stored_records
from oppcli.backends.local import DATA
from ptyterm import answer_a_prompt_in_shell

HOT = [1007, 1008, 1015, 1016, 1023, 1024, 1031, 1032]  # the sample deals tagged "hot"


# ---- fixtures and helpers -------------------------------------------------------------------
@pytest.fixture
def store(shared_sample_store: Path, store_path: Path) -> Path:
    """A private copy of what `oppcli init --sample` writes."""
    shutil.copytree(shared_sample_store, store_path)
    return store_path


def by_id(items: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    out = {r["id"]: r for r in items}
    assert len(out) == len(items), f"a deal listed twice: {[r['id'] for r in items]}"
    return out


def tag_rows(before: dict[int, dict[str, Any]], ids: list[int], tag: str,
             result: str | None = "changed") -> dict[int, dict[str, Any]]:
    """What `--add-tag TAG` reports for these deals, from the records before."""
    out = {}
    for i in ids:
        tags = before[i]["tags"]
        row: dict[str, Any] = {"id": i, "name": before[i]["name"]}
        if result is not None:
            row["result"] = result
        row["changes"] = {"tags": [tags, [*tags, tag]]}
        out[i] = row
    return out


def assert_only_tag_added(before: dict[int, dict[str, Any]], after: dict[int, dict[str, Any]],
                          ids: list[int], tag: str) -> None:
    """These deals gained the tag (and a new date_modified) and nothing else; every other deal
    is exactly as it was."""
    assert sorted(after) == sorted(before)
    for i, old in before.items():
        if i in ids:
            assert after[i]["tags"] == [*old["tags"], tag], i
            assert without_dates({**after[i], "tags": old["tags"]}) == without_dates(old), i
            assert after[i]["date_modified"] > old["date_modified"], i
        else:
            assert after[i] == old, i


# ---- choosing the deals -----------------------------------------------------------------------
def test_search_jsonl_piped_into_update_changes_exactly_the_deals_found(store, isolated):
    before = stored_records(store)
    proc = bash("OPPCLI search --tag hot -o jsonl | OPPCLI update - --add-tag webinar --yes -o jsonl")
    assert by_id(rows(proc.stdout)) == tag_rows(before, HOT, "webinar")
    batch = audit(isolated)[-1]["batch"]
    assert f"updated 8 opportunities; `oppcli undo {batch}` takes it back" in proc.stderr
    assert_only_tag_added(before, stored_records(store), HOT, "webinar")


def test_ids_one_per_line_from_a_pipe(store):
    before = stored_records(store)
    proc = bash("printf '1003\\n\\n 1001 \\n1002\\n1001\\n' | OPPCLI update - --add-tag t --yes -o json")
    got = rows(proc.stdout)
    assert [r["id"] for r in got] == [1003, 1001, 1002]  # in the order given, each once
    assert by_id(got) == tag_rows(before, [1001, 1002, 1003], "t")
    assert_only_tag_added(before, stored_records(store), [1001, 1002, 1003], "t")


def test_a_json_array_of_records_from_search_or_of_ids(store):
    before = stored_records(store)
    bash("OPPCLI search --id 1004,1005 -o json | OPPCLI update - --add-tag a --yes")
    bash("echo '[1006, \"1009\"]' | OPPCLI update - --add-tag a --yes")
    assert_only_tag_added(before, stored_records(store), [1004, 1005, 1006, 1009], "a")


def test_piped_records_cut_down_or_stale_are_planned_from_the_store(store):
    """The local store reads every selected deal itself: a record cut down with --fields, or
    one whose values are out of date, changes the deal as it is stored."""
    before = stored_records(store)
    bash("OPPCLI search --id 1001,1002 --fields id,name -o jsonl | OPPCLI update - --add-tag t --yes")
    stale = orjson.dumps({"id": 1003, "name": "old name", "tags": ["bogus"], "priority": "Low"})
    proc = bash(f"echo {shlex.quote(stale.decode())} | OPPCLI update - --add-tag t --yes -o json")
    assert rows(proc.stdout) == list(tag_rows(before, [1003], "t").values())
    assert_only_tag_added(before, stored_records(store), [1001, 1002, 1003], "t")


def test_several_ids_as_arguments_are_the_bulk_form(sh, store, isolated):
    before = stored_records(store)
    r = sh("update", "1001", "1002", "--priority", "Low", "--yes", "-o", "json")
    assert by_id(rows(r.stdout)) == {
        1001: {"id": 1001, "name": before[1001]["name"], "result": "changed",
               "changes": {"priority": [before[1001]["priority"], "Low"]}},
        1002: {"id": 1002, "name": before[1002]["name"], "result": "changed",
               "changes": {"priority": [before[1002]["priority"], "Low"]}}}
    assert before[1001]["priority"] != "Low" and before[1002]["priority"] != "Low"
    entries = audit(isolated)
    assert [(e["op"], e["id"]) for e in entries] == [("update", 1001), ("update", 1002)]
    assert entries[0]["batch"] == entries[1]["batch"]


def test_one_id_keeps_the_single_update(sh, store, isolated):
    r = sh("update", "1001", "--priority", "Low", "-o", "json")  # no --yes, no terminal: fine
    record = orjson.loads(r.stdout)
    assert record == stored_records(store)[1001] and record["priority"] == "Low"
    assert r.stderr.strip() == "oppcli: updated opportunity 1001"
    assert "batch" not in audit(isolated)[-1]


@pytest.mark.parametrize("stdin, said", [
    ("1001\nabc\n", "stdin line 2 is neither an id nor a JSON record: 'abc'"),
    ('1001\n{"id": 1002, bad\n', "stdin line 2 is not valid JSON"),
    ('{"id": 1001}\n\n{"name": "no id"}\n', "stdin line 3 is a JSON object without a whole-number id"),
    ('{"id": "1001"}\n', "stdin line 1 is a JSON object without a whole-number id"),
    ("1001\n-5\n", "stdin line 2 is neither an id nor a JSON record: '-5'"),
    ('[1001, "x"]', "stdin item 2 is neither an id nor a JSON record: 'x'"),
    ('[1001, {"id": 1002}, true]', "stdin item 3 is neither an id nor a JSON record"),
    ("[1001, 1002", "malformed JSON array on stdin"),
])
def test_a_bad_stdin_line_is_refused_by_its_number_and_nothing_changes(sh, store, isolated,
                                                                        stdin, said):
    files = snapshot(store)
    r = sh("update", "-", "--add-tag", "t", "--yes", input=stdin, expect=2)
    assert r.stdout == ""
    assert r.stderr.startswith("oppcli: error: " + said), r.stderr
    assert snapshot(store) == files
    assert audit(isolated) == []


def test_an_unknown_id_changes_nothing(sh, store, isolated):
    files = snapshot(store)
    r = sh("update", "1001", "99998", "1002", "99999", "--add-tag", "t", "--yes", expect=4)
    assert r.stdout == ""
    assert r.stderr.startswith("oppcli: error: no opportunities with id 99998, 99999; nothing "
                               "was changed"), r.stderr
    r = sh("update", "-", "--add-tag", "t", "--yes", input="1001\n99999\n", expect=4)
    assert r.stderr.startswith("oppcli: error: no opportunity with id 99999; nothing was "
                               "changed"), r.stderr
    assert snapshot(store) == files
    assert audit(isolated) == []


def test_where_filters_select_what_search_finds(sh, store):
    before = stored_records(store)
    wanted = sorted(i for i, r in before.items()
                    if r["status"] == "Open" and r["assignee_id"] == 101)  # Ada Park
    found = orjson.loads(sh("search", "--status", "Open", "--assignee", "Ada Park", "-o",
                            "json").stdout)
    assert sorted(r["id"] for r in found) == wanted and len(wanted) > 2
    r = sh("update", "--where-status", "Open", "--where-assignee", "Ada Park",
           "--assignee", "Ben Okafor", "--yes", "-o", "jsonl")
    assert by_id(rows(r.stdout)) == {
        i: {"id": i, "name": before[i]["name"], "result": "changed",
            "changes": {"assignee_id": [101, 102]}} for i in wanted}
    after = stored_records(store)
    for i, old in before.items():
        if i in wanted:
            assert without_dates(after[i]) == without_dates({**old, "assignee_id": 102}), i
        else:
            assert after[i] == old, i
    # The filters are search's: the changed deals are no longer found, so a rerun finds none.
    r = sh("update", "--where-status", "Open", "--where-assignee", "Ada Park",
           "--assignee", "Ben Okafor", "--yes", "-o", "json")
    assert rows(r.stdout) == []


def test_where_filters_with_several_values_and_a_range(sh, store):
    before = stored_records(store)
    wanted = sorted(i for i, r in before.items() if r["status"] in ("Won", "Lost")
                    and r["monetary_value"] is not None and r["monetary_value"] >= 50000)
    r = sh("update", "--where-status", "Won,Lost", "--where-min-value", "50000",
           "--add-tag", "big", "--dry-run", "-o", "json")
    assert sorted(by_id(rows(r.stdout))) == wanted and len(wanted) > 2


def test_ids_and_where_filters_together_are_refused(sh, store):
    files = snapshot(store)
    r = sh("update", "1001", "1002", "--where-status", "Open", "--add-tag", "t", "--yes", expect=2)
    assert r.stderr.startswith("oppcli: error: give ids (or - for stdin) or --where-* filters, "
                               "not both")
    r = sh("update", "-", "--where-status", "Open", "--add-tag", "t", "--yes", input="1001\n",
           expect=2)
    assert "not both" in r.stderr
    r = sh("delete", "-", "--where-status", "Open", "--yes", input="1001\n", expect=2)
    assert "not both" in r.stderr
    assert snapshot(store) == files


def test_the_change_flags_and_the_select_flags_are_apart_in_help(sh):
    out = sh("update", "--help").stdout
    select, change = out.index("Select: which deals"), out.index("Change: fields")
    assert select < out.index("--where-status STATUS", select) < change
    assert "--status STATUS" not in out[:change].replace("--where-status STATUS", "")
    assert out.index("--status STATUS", change) > change
    assert "--where-" not in out[change:]


def test_bulk_output_takes_no_fields_or_raw(sh, store):
    files = snapshot(store)
    r = sh("update", "1001", "1002", "--add-tag", "t", "--yes", "--fields", "id", expect=2)
    assert "--fields and --raw" in r.stderr
    sh("update", "1001", "1002", "--add-tag", "t", "--yes", "-o", "csv", expect=2)
    assert snapshot(store) == files


def test_a_stage_name_two_pipelines_share_is_read_in_each_deals_pipeline(sh, store):
    sh("update", "1004", "--stage", "Renewals/Upcoming")
    before = stored_records(store)
    assert [(before[i]["pipeline_id"], before[i]["pipeline_stage_id"]) for i in (1002, 1004)] == \
        [(1, 14), (2, 21)]
    r = sh("update", "1002", "1004", "--stage", "Qualified", "--dry-run", "-o", "json")
    assert by_id(rows(r.stdout)) == {  # Sales/Qualified is 11 (10%), Renewals/Qualified 22 (60%)
        1002: {"id": 1002, "name": before[1002]["name"],
               "changes": {"pipeline_stage_id": [14, 11],
                           "win_probability": [before[1002]["win_probability"], 10]}},
        1004: {"id": 1004, "name": before[1004]["name"],
               "changes": {"pipeline_stage_id": [21, 22],
                           "win_probability": [before[1004]["win_probability"], 60]}}}


# ---- the changes ------------------------------------------------------------------------------
def test_from_json_applies_a_partial_object_to_every_deal(sh, store, tmp_path):
    before = stored_records(store)
    part = tmp_path / "part.json"
    part.write_bytes(orjson.dumps({"priority": "Low", "details": "from json",
                                   "custom_fields": [{"custom_field_definition_id": 402,
                                                      "value": 7}]}))
    sh("update", "1001", "1002", "1003", "--from-json", str(part), "--yes")
    after = stored_records(store)
    for i in (1001, 1002, 1003):
        cfs = [dict(cf, value=7) if cf["custom_field_definition_id"] == 402 else cf
               for cf in before[i]["custom_fields"]]
        assert without_dates(after[i]) == without_dates(
            {**before[i], "priority": "Low", "details": "from json", "custom_fields": cfs}), i
    assert {i: after[i] for i in after if i not in (1001, 1002, 1003)} == \
        {i: before[i] for i in before if i not in (1001, 1002, 1003)}


def test_from_json_under_flags_the_flags_win(sh, store, tmp_path):
    before = stored_records(store)
    part = tmp_path / "part.json"
    part.write_bytes(orjson.dumps({"priority": "Low", "monetary_value": 1234}))
    r = sh("update", "-", "--from-json", str(part), "--priority", "High", "--add-tag", "x",
           "--yes", "-o", "json", input="1002\n1003\n")
    for row in rows(r.stdout):
        old = before[row["id"]]
        expected = {"monetary_value": [old["monetary_value"], 1234],
                    "tags": [old["tags"], [*old["tags"], "x"]]}
        if old["priority"] != "High":
            expected["priority"] = [old["priority"], "High"]
        assert row["changes"] == expected, row
    after = stored_records(store)
    assert [after[i]["priority"] for i in (1002, 1003)] == ["High", "High"]
    assert [after[i]["monetary_value"] for i in (1002, 1003)] == [1234, 1234]


def test_from_json_dash_with_ids_from_stdin_is_refused(sh, store):
    files = snapshot(store)
    r = sh("update", "-", "--from-json", "-", "--yes", input='{"priority": "Low"}\n', expect=2)
    assert r.stdout == ""
    assert r.stderr.startswith("oppcli: error: stdin cannot carry both the deals (-) and "
                               "--from-json -"), r.stderr
    assert snapshot(store) == files


def test_from_json_dash_with_ids_as_arguments_reads_the_object_from_stdin(sh, store):
    sh("update", "1001", "1002", "--from-json", "-", "--yes", input='{"priority": "Low"}')
    after = stored_records(store)
    assert (after[1001]["priority"], after[1002]["priority"]) == ("Low", "Low")


def test_from_json_that_is_not_a_partial_record_is_refused(sh, store, tmp_path):
    files = snapshot(store)
    bad = tmp_path / "bad.json"
    for text, said in (('[{"priority": "Low"}]', "needs one JSON object"),
                       ('{"bogus": 1}', "unknown field bogus"), ('{"priority": ', "malformed JSON")):
        bad.write_text(text)
        r = sh("update", "1001", "1002", "--from-json", str(bad), "--yes", expect=2)
        assert said in r.stderr, r.stderr
    assert snapshot(store) == files


# ---- --dry-run --------------------------------------------------------------------------------
CHANGES = ["--add-tag", "webinar", "--priority", "High", "--monetary-value", "75000",
           "--clear", "details", "--custom-field", "Contract Months=7", "--assignee", "Ben Okafor",
           "--close-date", "2027-01-31"]


def expected_preview(record: dict[str, Any]) -> dict[str, Any]:
    """CHANGES' effect on one record, field by field, computed from the record."""
    changes: dict[str, Any] = {}
    if record["assignee_id"] != 102:
        changes["assignee_id"] = [record["assignee_id"], 102]
    if record["close_date"] != "1/31/2027":  # the store keeps dates as M/D/YYYY
        changes["close_date"] = [record["close_date"], "1/31/2027"]
    if record["details"] is not None:
        changes["details"] = [record["details"], None]
    if record["monetary_value"] != 75000:
        changes["monetary_value"] = [record["monetary_value"], 75000]
    if record["priority"] != "High":
        changes["priority"] = [record["priority"], "High"]
    if "webinar" not in record["tags"]:
        changes["tags"] = [record["tags"], [*record["tags"], "webinar"]]
    months = {cf["custom_field_definition_id"]: cf["value"] for cf in record["custom_fields"]}[402]
    if months != 7:
        changes["custom_fields"] = [[{"custom_field_definition_id": 402, "value": months}],
                                    [{"custom_field_definition_id": 402, "value": 7}]]
    return {"id": record["id"], "name": record["name"], "changes": changes}


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_dry_run_shows_each_field_before_and_after_and_changes_nothing(sh, store, isolated, fmt):
    before = stored_records(store)
    files = snapshot(store)
    wanted = [r for r in before.values() if r["status"] == "Open"
              and r["monetary_value"] is not None and r["monetary_value"] >= 50000]
    r = sh("update", "--where-status", "Open", "--where-min-value", "50000", *CHANGES,
           "--dry-run", "-o", fmt)
    got = rows(r.stdout)
    if fmt == "json":
        assert r.stdout.startswith("[")
    else:
        assert len(r.stdout.splitlines()) == len(got)
    assert by_id(got) == {rec["id"]: expected_preview(rec) for rec in wanted}
    assert len(wanted) == 12
    assert r.stderr.strip() == "oppcli: would update 12 opportunities (dry run: nothing changed)"
    assert snapshot(store) == files
    assert audit(isolated) == []


def test_dry_run_leaves_out_deals_that_already_have_the_values(sh, store):
    sh("update", "1001", "--add-tag", "x")
    r = sh("update", "1001", "1002", "--add-tag", "x", "--dry-run", "-o", "json")
    assert [row["id"] for row in rows(r.stdout)] == [1002]
    assert "would update 1 opportunity, 1 already had the values" in r.stderr


def test_dry_run_of_one_id_is_a_preview_not_an_update(sh, store):
    files = snapshot(store)
    before = stored_records(store)[1001]
    r = sh("update", "1001", "--priority", "Low", "--dry-run", "-o", "json")
    assert rows(r.stdout) == [{"id": 1001, "name": before["name"],
                               "changes": {"priority": [before["priority"], "Low"]}}]
    assert snapshot(store) == files


def test_dry_run_on_a_terminal_is_a_table_of_fields(store):
    from ptyterm import on_a_terminal

    files = snapshot(store)
    code, out = on_a_terminal(["--color", "never", "update", "1001", "1002", "--priority", "Low",
                               "--add-tag", "zz", "--dry-run"], columns=160)
    assert code == 0, out
    before = stored_records(store)
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines()
             if line.startswith("│")]
    assert cells == [
        ["1001", before[1001]["name"], "priority", "High", "Low"],
        ["", "", "tags", "enterprise", "enterprise, zz"],
        ["1002", before[1002]["name"], "priority", "Medium", "Low"],
        ["", "", "tags", "smb", "smb, zz"]], out
    assert "2 deals would change" in out
    assert "would update 2 opportunities (dry run: nothing changed)" in out
    assert snapshot(store) == files


# ---- asking first -----------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["pipe", "ids", "where"])
def test_without_a_terminal_and_without_yes_it_refuses_and_changes_nothing(store, isolated, how):
    files = snapshot(store)
    script = {"pipe": "OPPCLI search --tag hot -o jsonl | OPPCLI update - --add-tag t 2>&1",
              "ids": "OPPCLI update 1001 1002 --add-tag t 2>&1",
              "where": "OPPCLI update --where-tag hot --add-tag t 2>&1"}[how]
    proc = bash(script, expect=2)
    count = 2 if how == "ids" else 8
    assert proc.stdout == (f"oppcli: error: refusing to update {count} opportunities without "
                           "confirmation; add --yes to update from a script (--dry-run shows what "
                           "would change)\n")
    assert snapshot(store) == files
    assert audit(isolated) == []


def test_on_a_terminal_it_asks_even_when_stdin_is_the_pipe_and_n_changes_nothing(store, isolated):
    files = snapshot(store)
    code, out = answer_a_prompt_in_shell("printf '1001\\n1002\\n' | OPPCLI update - --add-tag t", "n")
    assert code == 2, out
    assert "update 2 opportunities: add_tag=t" in out
    assert "Update 2 opportunities? [y/N]:" in out
    assert "nothing updated" in out
    assert snapshot(store) == files
    assert audit(isolated) == []


def test_on_a_terminal_y_updates_the_piped_deals(store, isolated):
    before = stored_records(store)
    code, out = answer_a_prompt_in_shell("printf '1001\\n1002\\n' | OPPCLI update - --add-tag t", "y")
    assert code == 0, out
    assert "Update 2 opportunities? [y/N]:" in out
    batch = audit(isolated)[-1]["batch"]
    assert f"updated 2 opportunities; `oppcli undo {batch}` takes it back" in out
    assert_only_tag_added(before, stored_records(store), [1001, 1002], "t")


def test_the_question_shows_the_count_and_the_first_five_deals(store):
    code, out = answer_a_prompt_in_shell("OPPCLI search --tag hot -o jsonl | OPPCLI update - --add-tag t "
                         "--priority High", "n")
    assert code == 2, out
    before = stored_records(store)
    assert "update 8 opportunities: priority=High; add_tag=t" in out
    assert "the first 5 of 8 opportunities" in out
    assert "and 3 more" in out
    order = [int(line.split()[1]) for line in out.splitlines()
             if line.startswith("│ 10") and line.split()[1].isdigit()]
    assert order == [r["id"] for r in sorted(before.values(), key=lambda r: -r["date_modified"])
                     if "hot" in r["tags"]][:5]


# ---- a rerun, and the cost ----------------------------------------------------------------------
def test_a_rerun_changes_nothing_and_writes_nothing(store, isolated):
    before = stored_records(store)
    script = ("OPPCLI search --tag hot -o jsonl | OPPCLI update - --add-tag webinar "
              "--priority High --yes -o json")
    bash(script)
    files, log = snapshot(store), audit(isolated)
    proc = bash(script)
    assert by_id(rows(proc.stdout)) == {
        i: {"id": i, "name": before[i]["name"], "result": "unchanged", "changes": {}} for i in HOT}
    assert proc.stderr.strip() == "oppcli: nothing to update: 8 already had the values"
    assert snapshot(store) == files
    assert audit(isolated) == log


def test_a_rerun_with_some_deals_new_changes_only_those(sh, store):
    sh("update", "1001", "1002", "--add-tag", "t", "--yes")
    r = sh("update", "1001", "1002", "1003", "--add-tag", "t", "--yes", "-o", "json")
    got = by_id(rows(r.stdout))
    assert {i: row["result"] for i, row in got.items()} == {1001: "unchanged", 1002: "unchanged",
                                                            1003: "changed"}
    assert got[1001]["changes"] == {} and got[1003]["changes"]["tags"][1][-1] == "t"
    assert "updated 1 opportunity, 2 already had the values" in r.stderr


def test_the_data_file_is_replaced_once_for_the_whole_command(run, store, monkeypatch):
    data = store / DATA
    replaced: list[str] = []
    real_replace = os.replace

    def spy(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if Path(dst) == data:
            replaced.append(str(src))
        real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", spy)
    run("update", "--where-status", "Open", "--add-tag", "once", "--yes")
    assert len(replaced) == 1
    assert sum("once" in r["tags"] for r in stored_records(store).values()) == \
        sum(r["status"] == "Open" for r in stored_records(store).values()) == 22


def test_the_installed_script_replaces_the_data_file_atomically_once(store, isolated):
    data = store / DATA
    inode = data.stat().st_ino
    if shutil.which("strace") is None:
        bash("OPPCLI update --where-status Open --add-tag once --yes -o json >/dev/null")
        assert data.stat().st_ino != inode  # a new file took its place
        return
    trace = isolated / "trace.txt"
    probe = subprocess.run(["strace", "-o", str(trace), "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("strace cannot trace here")
    bash(f"strace -f -e trace=rename,renameat,renameat2 -o {shlex.quote(str(trace))} "
         "OPPCLI update --where-status Open --add-tag once --yes -o json >/dev/null")
    renames = [ln for ln in trace.read_text().splitlines()
               if "rename" in ln and f'"{data}"' in ln and "= 0" in ln]
    assert len(renames) == 1, renames
    assert data.stat().st_ino != inode
    assert len(audit(isolated)) == 22 and len({e["batch"] for e in audit(isolated)}) == 1
