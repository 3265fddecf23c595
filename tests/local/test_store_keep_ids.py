"""LocalStore.create(payload, keep_id=N) and LocalStore.next_id(), for `import --keep-ids`:
a kept id goes where the id order puts it, is refused when a record holds it, and next_id moves
past it so that no id is ever issued twice."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from conftest import build_store, derived_records
from oppcli.backends.local import DATA, META, LocalStore
from oppcli.errors import CONFLICT, ConflictError, UsageError

NEW = {"name": "Kept", "primary_contact_id": 601}


def file_ids(store: Path) -> list[int]:
    return [orjson.loads(x)["id"] for x in (store / DATA).read_bytes().splitlines()]


@pytest.fixture
def gappy(isolated: Path) -> Path:
    """Ids 1..40 without 7, 20 and 33."""
    path = isolated / "gappy"
    build_store(path, [r for r in derived_records(40) if r["id"] not in (7, 20, 33)])
    return path


def test_a_kept_id_above_the_last_is_appended_and_next_id_moves_past_it(gappy):
    store = LocalStore.open(gappy)
    assert store.next_id() == 41
    before = (gappy / DATA).read_bytes()
    made = store.create(NEW, keep_id=500)
    assert made["id"] == 500 and made["name"] == "Kept" and made["date_created"] > 0
    assert (gappy / DATA).read_bytes().startswith(before)  # appended: the rest untouched
    assert file_ids(gappy)[-1] == 500
    assert store.next_id() == 501 and orjson.loads((gappy / META).read_bytes())["next_id"] == 501
    assert LocalStore.open(gappy).create(NEW)["id"] == 501


@pytest.mark.parametrize("kept", [7, 20, 33])
def test_a_kept_id_below_the_last_is_inserted_in_id_order(gappy, kept):
    store = LocalStore.open(gappy)
    made = store.create(dict(NEW, name=f"Kept {kept}"), keep_id=kept)
    assert made["id"] == kept
    ids = file_ids(gappy)
    assert ids == sorted(ids) and kept in ids and len(ids) == 38
    with (gappy / DATA).open("rb") as f:
        found = store._bisect(f, kept)  # found by the binary search, not the full look
    assert found is not None and found[2]["name"] == f"Kept {kept}"
    assert LocalStore.open(gappy).get(kept)["name"] == f"Kept {kept}"
    assert [r["id"] for r in store.scan()] == ids
    assert store.next_id() == 41  # a kept id below it does not move it back


def test_a_kept_id_held_by_a_record_is_refused_and_nothing_changes(gappy):
    store = LocalStore.open(gappy)
    before = {p.name: p.read_bytes() for p in gappy.iterdir() if p.is_file() and p.name != ".lock"}
    for held in (1, 21, 40):
        with pytest.raises(ConflictError, match=f"cannot keep id {held}") as info:
            store.create(NEW, keep_id=held)
        assert info.value.exit_code == CONFLICT
    assert {p.name: p.read_bytes() for p in gappy.iterdir() if p.is_file() and p.name != ".lock"} == before
    for bad in (0, -3, True):
        with pytest.raises(UsageError):
            store.create(NEW, keep_id=bad)


def test_keeping_ids_in_a_file_sorted_by_hand_puts_it_back_in_id_order(gappy, capsys):
    lines = (gappy / DATA).read_bytes().splitlines(keepends=True)
    (gappy / DATA).write_bytes(b"".join(reversed(lines)))
    store = LocalStore.open(gappy)
    with pytest.raises(ConflictError):
        store.create(NEW, keep_id=10)
    assert store.create(NEW, keep_id=20)["id"] == 20
    assert "not in id order" in capsys.readouterr().err
    ids = file_ids(gappy)
    assert ids == sorted(ids) and len(ids) == 38
    assert store.create(NEW, keep_id=900)["id"] == 900 and file_ids(gappy)[-1] == 900
    assert store.next_id() == 901


def test_keep_id_inside_exclusive_sees_a_stable_next_id(gappy):
    store = LocalStore.open(gappy)
    with store.exclusive():
        start = store.next_id()
        store.create(NEW, keep_id=start + 5)
        assert store.create(NEW)["id"] == start + 6
        assert store.next_id() == start + 7
