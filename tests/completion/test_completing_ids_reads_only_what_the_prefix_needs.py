"""Completing an id reads what the typed prefix needs (binary search over the id-ordered
file through a memory map), never the whole store copied into memory; a file out of order is
still completed right."""

from __future__ import annotations

import tracemalloc

import orjson

from conftest import build_store, derived_records
from oppcli.cli.completion import ID_LIMIT, _ids_from


def _expected(ids: list[int], prefix: str) -> list[str]:
    return [str(i) for i in ids if str(i).startswith(prefix)][:ID_LIMIT]


def test_ids_by_prefix_match_a_brute_force_answer(store_path):
    records = derived_records(3000, first_id=1)
    build_store(store_path, records)
    path = store_path / "opportunities.jsonl"
    ids = sorted(r["id"] for r in records)
    for prefix in ("", "1", "12", "299", "3000", "4", "0", "30001", "7"):
        got = _ids_from(path, prefix, 3001)
        assert all(g.startswith(prefix) for g in got) and len(got) == len(set(got)), prefix
        want = [str(i) for i in ids if str(i).startswith(prefix)]
        if len(want) <= ID_LIMIT:
            assert sorted(got, key=int) == sorted(want, key=int), prefix
        else:
            assert len(got) == ID_LIMIT, prefix


def test_a_file_sorted_by_hand_is_still_completed(store_path):
    records = derived_records(400, first_id=1)
    build_store(store_path, records)
    path = store_path / "opportunities.jsonl"
    lines = path.read_bytes().splitlines()
    lines.sort(key=lambda x: orjson.loads(x)["name"])
    path.write_bytes(b"\n".join(lines) + b"\n")
    got = _ids_from(path, "12", 401, in_order=False)  # what the store says of this file
    assert sorted(got, key=int) == [str(i) for i in range(1, 401) if str(i).startswith("12")]


def test_completing_an_id_does_not_copy_the_store_into_memory(store_path):
    build_store(store_path, derived_records(40_000, first_id=1))
    path = store_path / "opportunities.jsonl"
    size = path.stat().st_size
    assert size > 20_000_000
    tracemalloc.start()
    try:
        got = _ids_from(path, "3999", 40_001)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "39990" in got and "3999" in got
    assert peak < size // 20, (peak, size)  # was: the whole file read, then copied


def test_the_store_says_whether_its_file_is_in_id_order(store_path, run):
    from oppcli.backends.local import LocalStore

    run("init", "--sample")
    run("create", "--name", "x", "--primary-contact", "601")
    assert LocalStore.open(store_path).in_id_order()
    path = store_path / "opportunities.jsonl"
    lines = path.read_bytes().splitlines()
    path.write_bytes(b"\n".join(reversed(lines)) + b"\n")
    assert not LocalStore.open(store_path).in_id_order()
