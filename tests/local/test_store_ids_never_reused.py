"""Ids are never reused, whatever order the data file is in.

A user may sort opportunities.jsonl by hand (`jq -c -s 'sort_by(.name)[]'`), and an older
oppcli left meta.json's next_id where it was on every create: create must still issue an id
above every id the store holds or ever issued, and update and delete must touch exactly their
record. A file holding an id twice is refused (exit 3) by every write, naming the id and lines.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import orjson
import pytest

from oppcli.backends.local import DATA, META, LocalStore

needs_jq = pytest.mark.skipif(shutil.which("jq") is None, reason="sorts the file with real jq")


def ids_in_file(store: Path) -> list[int]:
    return [orjson.loads(line)["id"] for line in (store / DATA).read_bytes().splitlines()]


def snapshot(store: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(store.iterdir()) if p.is_file() and p.name != ".lock"}


def jq_sort_by_name(store: Path) -> None:
    """What a user does: sort the file with jq into a temp file and move it over the old one."""
    data = store / DATA
    out = subprocess.run(["jq", "-c", "-s", "sort_by(.name)[]", str(data)], capture_output=True,
                         check=True, timeout=60).stdout
    tmp = store / "sorted.tmp.jsonl"
    tmp.write_bytes(out)
    os.replace(tmp, data)
    assert ids_in_file(store) != sorted(ids_in_file(store))


def as_an_older_oppcli_left_it(store: Path, next_id: int) -> None:
    """meta.json as an older oppcli wrote it: next_id not advanced by creates, no stamp."""
    meta = orjson.loads((store / META).read_bytes())
    meta["next_id"] = next_id
    meta.pop("data_stamp", None)
    (store / META).write_bytes(orjson.dumps(meta, option=orjson.OPT_INDENT_2))


def create(sh, name: str) -> int:
    return int(orjson.loads(sh("create", "--name", name, "--primary-contact-id", "601",
                               "-o", "json").stdout)["id"])


@needs_jq
@pytest.mark.parametrize("older_meta", [False, True], ids=["this-oppcli", "older-oppcli-meta"])
def test_creates_after_sorting_the_file_by_name_never_reuse_an_id(sh, sample, older_meta):
    held = set(ids_in_file(sample))
    a, b = create(sh, "First new"), create(sh, "Second new")
    ever = held | {a, b}
    if older_meta:  # a and b made by an oppcli that left next_id where init put it
        as_an_older_oppcli_left_it(sample, min(held) + len(held))
        held |= {a, b}
    else:
        held |= {a}
        sh("delete", str(b), "--yes")  # b is no longer held, but was issued: never again
    jq_sort_by_name(sample)

    third = sh("create", "--name", "Third new", "--primary-contact-id", "601", "-o", "json")
    assert "not in id order" in third.stderr  # the first write puts the file back in id order
    c, d = orjson.loads(third.stdout)["id"], create(sh, "Fourth new")
    assert c != d and min(c, d) > max(ever), (c, d, max(ever))
    ids = ids_in_file(sample)
    assert ids == sorted(ids) and len(ids) == len(set(ids)) == len(held) + 2
    assert orjson.loads((sample / META).read_bytes())["next_id"] > max(c, d)

    # update and delete touch exactly their record
    sh("update", str(c), "--details", "only c")
    by_id = {r["id"]: r for r in map(orjson.loads, (sample / DATA).read_bytes().splitlines())}
    assert by_id[c]["details"] == "only c" and by_id[d]["details"] != "only c"
    assert sorted(by_id) == ids_in_file(sample)
    sh("delete", str(d), "--yes")
    assert ids_in_file(sample) == sorted(held | {c})
    assert orjson.loads(sh("show", str(c), "-o", "json").stdout)["details"] == "only c"
    sh("show", str(d), expect=4)
    assert create(sh, "Fifth new") > max(c, d)


def test_create_trusts_next_id_and_advances_it_without_reading_the_file(sample, monkeypatch):
    """The common path stays O(1): next_id is persisted by every create and no scan happens."""
    store = LocalStore.open(sample)
    first = store.create({"name": "a", "primary_contact_id": 601})["id"]

    def no_scan(*_a, **_k):
        raise AssertionError("create read the whole file")

    monkeypatch.setattr(LocalStore, "_survey", no_scan)
    monkeypatch.setattr(LocalStore, "scan", no_scan)
    ids = [LocalStore.open(sample).create({"name": f"n{i}", "primary_contact_id": 601})["id"]
           for i in range(3)]
    assert ids == [first + 1, first + 2, first + 3]
    assert orjson.loads((sample / META).read_bytes())["next_id"] == first + 4


def test_an_older_oppclis_unadvanced_next_id_is_caught_by_the_stamp(sample):
    """Lines appended in id order by an oppcli that did not advance next_id: meta's next_id is
    not above the last line's id, the stamp does not match; one scan, and the result is kept."""
    store = LocalStore.open(sample)
    top = store.create({"name": "a", "primary_contact_id": 601})["id"]
    as_an_older_oppcli_left_it(sample, 5)
    assert LocalStore.open(sample).next_id() == top + 1
    assert LocalStore.open(sample).create({"name": "b", "primary_contact_id": 601})["id"] == top + 1
    assert orjson.loads((sample / META).read_bytes())["next_id"] == top + 2


def _duplicate(store: Path, rid: int, where: str) -> None:
    lines = (store / DATA).read_bytes().splitlines(keepends=True)
    copy = next(x for x in lines if orjson.loads(x)["id"] == rid)
    if where == "end":
        lines.append(copy)
    else:  # right after itself: the ids still never go down
        lines.insert(lines.index(copy) + 1, copy)
    (store / DATA).write_bytes(b"".join(lines))


@pytest.mark.parametrize("where", ["end", "adjacent"])
def test_a_duplicate_id_is_refused_by_every_write_naming_it_and_its_lines(sh, sample, where):
    _duplicate(sample, 1005, where)
    before = snapshot(sample)
    for args in (["create", "--name", "New", "--primary-contact-id", "601"],
                 ["update", "1010", "--details", "x"], ["delete", "1020", "--yes"],
                 ["update", "1005", "--details", "x"]):
        proc = sh(*args, expect=None)
        assert proc.returncode == 3, (args, proc.returncode, proc.stderr)
        assert "Traceback" not in proc.stderr and proc.stdout == ""
        line2 = 37 if where == "end" else 6
        assert "id 1005 on lines 5, " + str(line2) in proc.stderr, (args, proc.stderr)
        assert snapshot(sample) == before, args
    assert orjson.loads(sh("show", "1010", "-o", "json").stdout)["id"] == 1010  # reads work


@needs_jq
def test_update_and_delete_put_a_file_sorted_by_hand_back_in_id_order(sh, sample):
    jq_sort_by_name(sample)
    updated = sh("update", "1010", "--details", "only 1010")
    assert "not in id order" in updated.stderr
    ids = ids_in_file(sample)
    assert ids == sorted(ids) and len(ids) == 36
    by_id = {r["id"]: r for r in map(orjson.loads, (sample / DATA).read_bytes().splitlines())}
    assert by_id[1010]["details"] == "only 1010"
    assert sum(r["details"] == "only 1010" for r in by_id.values()) == 1
    jq_sort_by_name(sample)
    deleted = sh("delete", "1020", "--yes")
    assert "not in id order" in deleted.stderr
    assert ids_in_file(sample) == sorted(set(ids) - {1020})
