"""The Copper backend keeps a record it fetched only until the update or delete that uses it, and
never more than FETCHED_KEEP of them: an import of many rows, or a dry run that reads thousands
of deals, does not hold every record it read until the command ends."""

from __future__ import annotations

import orjson
import pytest

import oppcli.backends.copper.backend as copper_module


@pytest.fixture
def backend(copper):
    from oppcli.backends.copper import CopperBackend
    from oppcli.config import load_settings

    return CopperBackend.from_settings(load_settings())


def test_updates_given_the_record_leave_nothing_cached(backend, copper):
    for ident in sorted(copper.records):
        current = backend.get(ident)
        backend.update(ident, {"details": f"checked {ident}"}, current=current)
        assert backend._fetched == {}, ident
    assert all(r["details"] == f"checked {i}" for i, r in copper.records.items())


def test_an_update_after_a_get_uses_the_record_once(backend, copper):
    backend.lookups().custom_field("Region")  # (the tables are fetched here, not below)
    backend.get(1001)
    copper.requests.clear()
    backend.update(1001, {"details": "one"})
    assert [c.method for c in copper.requests] == ["PUT"]  # the fetched record, not a GET
    backend.update(1002, {"details": "two"})
    assert [c.method for c in copper.requests] == ["PUT", "GET", "PUT"]
    assert backend._fetched == {}


def test_reads_that_no_write_uses_are_bounded(backend, copper, monkeypatch):
    monkeypatch.setattr(copper_module, "FETCHED_KEEP", 5)
    for ident in sorted(copper.records):
        backend.get(ident)
        assert len(backend._fetched) <= 5
    assert list(backend._fetched) == sorted(copper.records)[-5:]  # the latest kept


def test_a_delete_of_more_than_are_kept_still_logs_every_record(backend, copper, monkeypatch):
    monkeypatch.setattr(copper_module, "FETCHED_KEEP", 3)
    ids = sorted(copper.records)[:8]
    wanted = {i: dict(copper.records[i]) for i in ids}
    fetched = [backend.get(i) for i in ids]  # as the delete command does
    assert len(backend._fetched) == 3
    done = backend.delete(ids)
    assert [r["id"] for r in done] == ids
    assert [r["name"] for r in done] == [wanted[i]["name"] for i in ids]
    assert done == fetched
    assert backend._fetched == {} and not set(ids) & set(copper.records)


def test_an_import_leaves_nothing_cached(run, copper, monkeypatch, tmp_path):
    from oppcli.backends.copper import CopperBackend

    made: list[CopperBackend] = []
    original = CopperBackend.__init__

    def keep(self, *args, **kwargs):
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(CopperBackend, "__init__", keep)
    rows = run.json("export")
    path = tmp_path / "deals.json"
    path.write_bytes(orjson.dumps([{**r, "details": f"imported {r['id']}"} for r in rows]))
    run("import", str(path))
    (backend,) = made[1:]  # the import's
    assert len(copper.calls(r"/opportunities/\d+$", "PUT")) == 36
    assert backend._fetched == {}
