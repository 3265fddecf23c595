"""The audit entry's "where" (and the export state's "source") is LocalStore.describe(), built
from the --store path as typed, not resolved (local.py describe; common.py:54). The same store
named two ways is two stores to history/undo; two different stores named alike are one."""

from __future__ import annotations

import orjson


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
