"""Bulk delete, the audit batch and its undo on the local store, through the installed `oppcli`:
`search | delete -` and `delete --where-*`; history showing a bulk change as one line (its deals
in -o json and with --batch); `oppcli undo BATCH` (or plain `oppcli undo`) restoring every deal
field by field as one batch, refusing deals changed since by name unless --force; and undoing a
bulk delete bringing every deal back.

Records are compared with the store file as it was before the bulk change, read without oppcli.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from bulk_local_support import audit, bash, rows, without_dates

from checks import snapshot, stored_records
from oppcli.domain import fields as F
from ptyterm import answer_a_prompt_in_shell

HOT = [1007, 1008, 1015, 1016, 1023, 1024, 1031, 1032]  # the sample deals tagged "hot"
# What a deal brought back by create cannot keep: its id, and the dates the backend sets.
NOT_KEPT = ("id", "date_created", "date_modified")


@pytest.fixture
def store(shared_sample_store: Path, store_path: Path) -> Path:
    """A private copy of what `oppcli init --sample` writes."""
    shutil.copytree(shared_sample_store, store_path)
    return store_path


def same_but_dates(a: dict[int, dict[str, Any]], b: dict[int, dict[str, Any]]) -> None:
    assert sorted(a) == sorted(b)
    for i in a:
        assert without_dates(a[i]) == without_dates(b[i]), i


def kept_fields(record: dict[str, Any]) -> dict[str, Any]:
    """Every field of the record (oppcli's fields) but the id and the dates."""
    return {k: record.get(k) for k in F.FIELD_NAMES if k not in NOT_KEPT}


def last_batch(isolated: Path) -> str:
    return str(audit(isolated)[-1]["batch"])


# ---- delete ----------------------------------------------------------------------------------
def test_search_piped_into_delete_removes_exactly_the_deals_found(store, isolated):
    before = stored_records(store)
    lost = sorted(i for i, r in before.items() if r["status"] == "Lost")
    proc = bash("OPPCLI search --status Lost -o jsonl | OPPCLI delete - --yes -o json")
    got = rows(proc.stdout)
    assert sorted((r["id"], r["name"], r["result"]) for r in got) == \
        [(i, before[i]["name"], "deleted") for i in lost]
    batch = last_batch(isolated)
    assert f"deleted {len(lost)} opportunities; `oppcli undo {batch}` takes it back" in proc.stderr
    after = stored_records(store)
    assert after == {i: r for i, r in before.items() if i not in lost}
    entries = audit(isolated)
    assert sorted(e["id"] for e in entries) == lost
    assert all(e["op"] == "delete" and e["batch"] == batch and e["after"] is None
               and e["before"] == before[e["id"]] for e in entries)


def test_ids_one_per_line_into_delete(store):
    before = stored_records(store)
    bash("printf '1003\\n1001\\n' | OPPCLI delete - --yes")
    assert stored_records(store) == {i: r for i, r in before.items() if i not in (1001, 1003)}


def test_delete_where_filters(sh, store):
    before = stored_records(store)
    gone = sorted(i for i, r in before.items() if "hot" in r["tags"] and r["status"] == "Open")
    assert gone and len(gone) < len(HOT)
    sh("delete", "--where-tag", "hot", "--where-status", "Open", "--yes")
    assert stored_records(store) == {i: r for i, r in before.items() if i not in gone}


def test_bulk_delete_without_a_terminal_and_without_yes_refuses(store, isolated):
    files = snapshot(store)
    proc = bash("OPPCLI search --tag hot -o jsonl | OPPCLI delete - 2>&1", expect=2)
    assert proc.stdout.startswith("oppcli: error: refusing to delete 8 opportunities without "
                                  "confirmation; add --yes"), proc.stdout
    bash("OPPCLI delete --where-tag hot", expect=2)
    assert snapshot(store) == files
    assert audit(isolated) == []


def test_bulk_delete_dry_run_lists_them_and_deletes_nothing(sh, store, isolated):
    files = snapshot(store)
    before = stored_records(store)
    r = sh("delete", "--where-tag", "hot", "--dry-run", "-o", "json")
    assert sorted((row["id"], row["name"]) for row in rows(r.stdout)) == \
        [(i, before[i]["name"]) for i in HOT]
    assert "would delete 8 opportunities (dry run: nothing changed)" in r.stderr
    assert snapshot(store) == files
    assert audit(isolated) == []


def test_bulk_delete_of_an_unknown_id_deletes_nothing(sh, store, isolated):
    files = snapshot(store)
    r = sh("delete", "-", "--yes", input="1001\n99999\n", expect=4)
    assert "99999" in r.stderr and "nothing was changed" in r.stderr
    assert snapshot(store) == files
    assert audit(isolated) == []


# ---- history ----------------------------------------------------------------------------------
def test_history_shows_a_bulk_change_as_one_line_with_its_deals(sh, store, isolated):
    before = stored_records(store)
    sh("update", "1001", "--priority", "Low")
    bash("OPPCLI search --tag hot -o jsonl | OPPCLI update - --add-tag t --yes")
    batch = last_batch(isolated)
    hist = orjson.loads(sh("history", "-o", "json").stdout)
    assert len(hist) == 2
    line, single = hist
    assert single["op"] == "update" and single["id"] == 1001 and "batch" not in single
    assert {k: line[k] for k in ("audit_id", "batch", "op", "count", "fields")} == \
        {"audit_id": batch, "batch": batch, "op": "update", "count": 8, "fields": ["tags"]}
    per_deal = {e["id"]: e["audit_id"] for e in audit(isolated) if e.get("batch") == batch}
    assert sorted(line["deals"], key=lambda d: d["id"]) == [
        {"id": i, "name": before[i]["name"], "audit_id": per_deal[i], "fields": ["tags"]}
        for i in HOT]
    table = sh("history", "-o", "table").stdout
    assert table.count(batch) == 1 and "bulk update" in table and "8 deals" in table


def test_history_batch_lists_one_entry_per_deal(sh, store, isolated):
    before = stored_records(store)
    bash("OPPCLI search --tag hot -o jsonl | OPPCLI update - --add-tag t --yes")
    batch = last_batch(isolated)
    sh("update", "1001", "--priority", "Low")  # after the batch: not one of its entries
    entries = orjson.loads(sh("history", "--batch", batch, "-o", "json").stdout)
    assert sorted(e["id"] for e in entries) == HOT
    for e in entries:
        i = e["id"]
        assert e["batch"] == batch and e["op"] == "update"
        assert e["before"]["tags"] == before[i]["tags"]
        assert e["after"]["tags"] == [*before[i]["tags"], "t"]
    jsonl = sh("history", "--batch", batch, "-o", "jsonl").stdout.splitlines()
    assert [orjson.loads(x) for x in jsonl] == entries
    r = sh("history", "--batch", "nosuchid", expect=4)
    assert "no batch 'nosuchid'" in r.stderr


# ---- undo of a bulk update ----------------------------------------------------------------------
def test_undo_batch_restores_every_deal_field_by_field(sh, store, isolated):
    before = stored_records(store)
    bash("OPPCLI search --status Open -o jsonl | OPPCLI update - --add-tag t --priority High "
         "--stage Negotiation --monetary-value 1 --clear details "
         "--custom-field 'Region=EMEA' --custom-field 'Signed NDA=false' --yes")
    batch = last_batch(isolated)
    changed = stored_records(store)
    assert sum(without_dates(changed[i]) != without_dates(before[i]) for i in before) == 22
    r = sh("undo", batch, "-o", "json")
    assert r.stderr.strip().startswith(f"oppcli: undo of batch {batch}: updated 22 opportunities")
    assert {row["result"] for row in rows(r.stdout)} == {"changed"}
    same_but_dates(stored_records(store), before)


def test_the_undo_is_itself_one_batch_and_can_be_undone(sh, store, isolated):
    before = stored_records(store)
    sh("update", "--where-tag", "hot", "--add-tag", "t", "--yes")
    batch = last_batch(isolated)
    changed = stored_records(store)
    sh("undo", batch)
    undo_batch = last_batch(isolated)
    assert undo_batch != batch
    undo_entries = [e for e in audit(isolated) if e.get("batch") == undo_batch]
    originals = {e["audit_id"]: e["id"] for e in audit(isolated) if e.get("batch") == batch}
    assert sorted(e["id"] for e in undo_entries) == HOT
    assert all(originals[e["undo_of"]] == e["id"] for e in undo_entries)
    line = orjson.loads(sh("history", "-o", "json").stdout)[0]
    assert (line["batch"], line["count"], line["undo_of"]) == (undo_batch, 8, batch)
    same_but_dates(stored_records(store), before)
    sh("undo", undo_batch)  # the undo taken back: the tags are there again
    same_but_dates(stored_records(store), changed)


def test_plain_undo_right_after_a_bulk_update_undoes_the_whole_batch(sh, store, isolated):
    before = stored_records(store)
    sh("update", "1001", "--priority", "Low")
    bash("OPPCLI search --tag hot -o jsonl | OPPCLI update - --priority Low --add-tag t --yes")
    batch = last_batch(isolated)
    r = sh("undo")
    assert f"undo of batch {batch}" in r.stderr
    after = stored_records(store)
    same_but_dates({i: r for i, r in after.items() if i != 1001},
                   {i: r for i, r in before.items() if i != 1001})
    assert after[1001]["priority"] == "Low"  # the change before the batch stays
    sh("undo")  # then the single update before it
    same_but_dates(stored_records(store), before)


def test_undoing_a_batch_twice_is_refused_unless_forced(sh, store, isolated):
    sh("update", "--where-tag", "hot", "--add-tag", "t", "--yes")
    batch = last_batch(isolated)
    sh("undo", batch)
    files = snapshot(store)
    r = sh("undo", batch, expect=6)
    assert "already undone" in r.stderr
    assert snapshot(store) == files


def test_undo_refuses_deals_changed_since_by_name_and_force_overrides(sh, store, isolated):
    before = stored_records(store)
    sh("update", "--where-tag", "hot", "--add-tag", "t", "--priority", "Low", "--yes")
    batch = last_batch(isolated)
    sh("update", "1015", "--add-tag", "later")  # the same field, changed since
    sh("update", "1023", "--priority", "High")
    sh("update", "1031", "--details", "not a field of the batch")  # no conflict
    files, log = snapshot(store), audit(isolated)
    r = sh("undo", batch, expect=6)
    assert r.stdout == ""
    message = r.stderr
    assert f"2 of batch {batch}'s deals changed since" in message, message
    assert f"1015 {before[1015]['name']!r} (tags)" in message
    assert f"1023 {before[1023]['name']!r} (priority)" in message
    assert "1031" not in message and "--force" in message
    assert snapshot(store) == files and audit(isolated) == log  # nothing undone
    sh("undo", batch, "--force")
    after = stored_records(store)
    for i in HOT:
        assert after[i]["tags"] == before[i]["tags"], i
        assert after[i]["priority"] == before[i]["priority"], i
    assert after[1031]["details"] == "not a field of the batch"


# ---- undo of a bulk delete --------------------------------------------------------------------
def test_undo_of_a_bulk_delete_brings_every_deal_back_with_every_field(sh, store, isolated):
    before = stored_records(store)
    lost = sorted(i for i, r in before.items() if r["status"] == "Lost")
    bash("OPPCLI search --status Lost -o jsonl | OPPCLI delete - --yes")
    batch = last_batch(isolated)
    r = sh("undo", batch, "-o", "json")
    back = rows(r.stdout)
    assert {row["result"] for row in back} == {"brought back"}
    new_id = {row["id"]: row["changes"]["id"][1] for row in back}
    assert sorted(new_id) == lost
    assert all(row["changes"]["id"][0] == row["id"] for row in back)
    first_new = max(before) + 1
    assert sorted(new_id.values()) == list(range(first_new, first_new + len(lost)))
    after = stored_records(store)
    assert sorted(after) == sorted([i for i in before if i not in lost] + list(new_id.values()))
    for old, new in new_id.items():
        assert kept_fields(after[new]) == kept_fields(before[old]), old
    for i in before:
        if i not in lost:
            assert after[i] == before[i]
    line = orjson.loads(sh("history", "-o", "json").stdout)[0]
    assert (line["op"], line["count"], line["undo_of"]) == ("create", len(lost), batch)


def test_plain_undo_right_after_a_bulk_delete_brings_them_back(sh, store):
    before = stored_records(store)
    sh("delete", "--where-tag", "hot", "--yes")
    r = sh("undo", "-o", "json")
    back = {row["id"]: row["changes"]["id"][1] for row in rows(r.stdout)}
    assert sorted(back) == HOT
    after = stored_records(store)
    assert len(after) == len(before)
    for old, new in back.items():
        assert kept_fields(after[new]) == kept_fields(before[old])


def test_undoing_a_bulk_delete_twice_is_refused(sh, store, isolated):
    sh("delete", "--where-tag", "hot", "--yes")
    batch = last_batch(isolated)
    sh("undo", batch)
    files = snapshot(store)
    r = sh("undo", batch, expect=6)
    assert f"batch {batch} was already undone" in r.stderr
    assert snapshot(store) == files


def test_an_earlier_bulk_update_is_undone_on_deals_brought_back_since(sh, store, isolated):
    """A bulk update, then a bulk delete of those deals undone (new ids): undoing the update
    finds each deal under its new id."""
    before = stored_records(store)
    sh("update", "--where-tag", "hot", "--priority", "Low", "--yes")
    update_batch = last_batch(isolated)
    sh("delete", "--where-tag", "hot", "--yes")
    back = {row["id"]: row["changes"]["id"][1] for row in rows(sh("undo", "-o", "json").stdout)}
    sh("undo", update_batch)
    after = stored_records(store)
    for old, new in back.items():
        assert after[new]["priority"] == before[old]["priority"], old
        assert kept_fields(after[new]) == kept_fields(before[old]), old


def test_undo_restores_the_win_probability_a_stage_change_left_as_it_was(sh, store, isolated):
    """A deal whose win probability was set by hand (90, at Qualified: 10%) moved to a stage
    whose probability is that same 90 (Negotiation): only the stage changes. Undoing it must
    put the deal back as it was, as a single update's undo does, not give it the old stage's
    10%."""
    sh("update", "1001", "--win-probability", "90")
    sh("update", "1013", "--win-probability", "90")
    before = stored_records(store)
    assert [(before[i]["pipeline_stage_id"], before[i]["win_probability"]) for i in (1001, 1013)] \
        == [(11, 90), (12, 90)]
    sh("update", "1001", "1013", "--stage", "Negotiation", "--yes")
    sh("undo", last_batch(isolated))
    after = stored_records(store)
    assert [(after[i]["pipeline_stage_id"], after[i]["win_probability"]) for i in (1001, 1013)] \
        == [(11, 90), (12, 90)]


def test_a_single_update_undo_keeps_the_hand_set_win_probability_too(sh, store):
    """The single form, for comparison with the bulk one above."""
    sh("update", "1001", "--win-probability", "90")
    sh("update", "1001", "--stage", "Negotiation")
    sh("undo")
    after = stored_records(store)[1001]
    assert (after["pipeline_stage_id"], after["win_probability"]) == (11, 90)


def test_plain_undo_twice_takes_back_two_batches_newest_first(sh, store, isolated):
    before = stored_records(store)
    sh("update", "--where-tag", "hot", "--add-tag", "first", "--yes")
    middle = stored_records(store)
    sh("update", "--where-status", "Won", "--priority", "Low", "--yes")
    sh("undo")
    same_but_dates(stored_records(store), middle)
    sh("undo")
    same_but_dates(stored_records(store), before)
    r = sh("undo", expect=4)  # nothing left: the undos themselves are not undone by default
    assert "nothing to undo" in r.stderr


def test_one_deal_of_a_batch_undone_alone_is_left_out_of_the_batch_undo(sh, store, isolated):
    before = stored_records(store)
    sh("update", "--where-tag", "hot", "--add-tag", "t", "--yes")
    batch = last_batch(isolated)
    one = next(e for e in audit(isolated) if e["id"] == 1015)
    sh("undo", one["audit_id"])
    assert stored_records(store)[1015]["tags"] == before[1015]["tags"]
    r = sh("undo", batch, "-o", "json")
    assert sorted(row["id"] for row in rows(r.stdout)) == [i for i in HOT if i != 1015]
    same_but_dates(stored_records(store), before)


def test_history_batch_lists_every_deal_of_a_large_batch(sh, store, isolated):
    """`history --batch ID` lists the batch's entries: all of them, not the first 20 that -n
    defaults to for the history of changes (the batch's line says it holds 22)."""
    sh("update", "--where-status", "Open", "--add-tag", "t", "--yes")
    batch = last_batch(isolated)
    line = orjson.loads(sh("history", "-o", "json").stdout)[0]
    assert line["count"] == len(line["deals"]) == 22
    entries = orjson.loads(sh("history", "--batch", batch, "-o", "json").stdout)
    assert len(entries) == 22


def test_a_forced_undo_names_the_deal_it_could_not_restore(sh, store, isolated):
    """A deal of the batch deleted since cannot be restored: --force restores the others and
    exits 7, and says which deal failed (as `update` does for its failures)."""
    before = stored_records(store)
    sh("update", "--where-tag", "hot", "--add-tag", "t", "--yes")
    batch = last_batch(isolated)
    sh("delete", "1015", "--yes")
    r = sh("undo", batch, expect=6)
    assert f"1015 {before[1015]['name']!r} (deleted)" in r.stderr
    r = sh("undo", batch, "--force", expect=7)
    after = stored_records(store)
    for i in HOT:
        if i != 1015:
            assert after[i]["tags"] == before[i]["tags"], i
    assert "1015" in r.stderr, r.stderr


@pytest.mark.parametrize("answer", ["n", "y"])
def test_bulk_delete_asks_on_the_terminal_when_stdin_is_the_pipe(store, isolated, answer):
    before = stored_records(store)
    files = snapshot(store)
    code, out = answer_a_prompt_in_shell("printf '1001\\n1002\\n' | OPPCLI delete -", answer)
    assert "delete 2 opportunities permanently" in out
    assert "Delete 2 opportunities? [y/N]:" in out
    if answer == "n":
        assert code == 2, out
        assert "nothing deleted" in out
        assert snapshot(store) == files and audit(isolated) == []
    else:
        assert code == 0, out
        assert stored_records(store) == {i: r for i, r in before.items() if i not in (1001, 1002)}
        assert f"deleted 2 opportunities; `oppcli undo {last_batch(isolated)}` takes it back" in out


def test_delete_of_several_ids_is_one_batch_undone_as_one(sh, store, isolated):
    before = stored_records(store)
    r = sh("delete", "1001", "1002", "1003", "--yes", "-o", "json")
    assert rows(r.stdout) == [{"id": i, "is_deleted": True} for i in (1001, 1002, 1003)]
    entries = audit(isolated)
    assert sorted(e["id"] for e in entries) == [1001, 1002, 1003]
    assert len({e.get("batch") for e in entries}) == 1 and entries[0].get("batch")
    line = orjson.loads(sh("history", "-o", "json").stdout)[0]
    assert (line["op"], line["count"]) == ("delete", 3)
    back = {row["id"]: row["changes"]["id"][1] for row in rows(sh("undo", "-o", "json").stdout)}
    assert sorted(back) == [1001, 1002, 1003]
    after = stored_records(store)
    for old, new in back.items():
        assert kept_fields(after[new]) == kept_fields(before[old]), old
