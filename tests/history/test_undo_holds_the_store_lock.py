"""undo's check ("changed since?") and its write hold the store's lock together, so no other
writer slips in between and no change is lost; LocalStore.exclusive() is that lock, reentrant.
"""

from __future__ import annotations

import subprocess
import threading
import time

import orjson
import pytest

from conftest import oppcli_exe
from oppcli.backends.local import LocalStore
from oppcli.errors import ServiceError


def test_exclusive_is_reentrant_and_keeps_other_writers_out(sample, monkeypatch):
    store, other = LocalStore.open(sample), LocalStore.open(sample)
    monkeypatch.setattr("oppcli.backends.local.store.LOCK_TIMEOUT", 0.3)
    with store.exclusive():
        with store.exclusive():  # nested: joins, does not wait for itself
            made = store.create({"name": "inside", "primary_contact_id": 601})
        store.update(made["id"], {"details": "still inside"})
        assert store.next_id() == made["id"] + 1
        with pytest.raises(ServiceError, match="stayed locked"):
            other.create({"name": "outside", "primary_contact_id": 601})
    assert store._lock_depth == 0
    assert other.create({"name": "after", "primary_contact_id": 601})["id"] == made["id"] + 1


def test_a_writer_racing_undo_waits_for_it_and_is_not_overwritten(run, sample, monkeypatch):
    """Deterministic: the racer starts right after undo's check has read the record, from
    another store object (another lock holder), and is given time to write. Holding the lock,
    undo writes first and the racer's change lands after it, never put back by undo's old
    value."""
    run("update", "1001", "--details", "changed")
    racer_done = threading.Event()
    real_get = LocalStore.get
    raced = []

    def racer() -> None:
        LocalStore.open(sample).update(1001, {"details": "racer"})
        racer_done.set()

    def get(self, opp_id):
        found = real_get(self, opp_id)
        if not raced:
            t = threading.Thread(target=racer)
            t.start()
            raced.append(t)
            racer_done.wait(0.5)  # undo's check is done; the racer may write now, if it can
        return found

    monkeypatch.setattr(LocalStore, "get", get)
    run("undo")
    raced[0].join(10)
    assert racer_done.is_set()
    monkeypatch.setattr(LocalStore, "get", real_get)
    assert LocalStore.open(sample).get(1001)["details"] == "racer"  # not lost under the undo


def test_undo_waits_for_a_held_lock_then_sees_the_change_made_under_it(sample, isolated):
    """Across processes: while this process holds exclusive(), `oppcli undo` waits; a change
    made under the lock to the same field is then seen, and undo refuses (exit 6)."""
    exe = oppcli_exe()
    subprocess.run([exe, "update", "1001", "--details", "changed"], check=True,
                   capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
    store = LocalStore.open(sample)
    with store.exclusive():
        undo = subprocess.Popen([exe, "undo", "-o", "json"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2.0)  # time to start and reach the store
        assert undo.poll() is None, undo.communicate()
        store.update(1001, {"details": "made while undo waited"})  # reentrant, under the lock
    out, err = undo.communicate(timeout=60)
    assert undo.returncode == 6, (out, err)
    assert "changed since" in err
    assert store.get(1001)["details"] == "made while undo waited"
    entries = [orjson.loads(x) for x in (isolated / "config" / "audit.jsonl").read_bytes().splitlines()]
    assert not any(e.get("undo_of") for e in entries)
