"""Sorted by a field some deals lack (close_date, monetary_value, company_name, win_probability),
the deals without a value come last, ascending and descending, on both backends (README: "missing
values last"), by id (reversed when descending). Real Copper sorts them first when ascending (the
test server does too); the Copper backend gives them after the others, wherever Copper puts them.
"""

from __future__ import annotations

import datetime as dt

import pytest

from conftest import API_KEY, USER_EMAIL, build_store, copper_env

FIELDS = ("close_date", "monetary_value", "company_name", "win_probability")


def records() -> list[dict]:
    from oppcli.domain.sample import sample_records

    out = []
    for i, rec in enumerate(sample_records()):
        rec = dict(rec)
        if i % 7 == 2:
            rec["close_date"] = None
        if i % 8 == 1:
            rec["win_probability"] = None
        out.append(rec)
    return out


def sort_value(rec: dict, field: str):
    v = rec.get(field)
    if v is None:
        return None
    if field == "close_date":
        month, day, year = (int(x) for x in v.split("/"))
        return dt.date(year, month, day)
    return v.casefold() if isinstance(v, str) else v


def expected(field: str, descending: bool) -> list[int]:
    recs = records()
    present = sorted(((sort_value(r, field), r["id"]) for r in recs if r.get(field) is not None),
                     reverse=descending)
    missing = sorted((r["id"] for r in recs if r.get(field) is None), reverse=descending)
    assert present and missing
    return [i for _, i in present] + missing


def _nulls_always_first():
    from fakecopper import FakeCopper

    class NullsFirst(FakeCopper):
        """A Copper that puts deals without a value first in both directions."""

        def _order(self, recs, field, descending):
            value = self._sort_value(field)
            ordered = super()._order(recs, field, descending)
            return ([r for r in ordered if value(r) is None]
                    + [r for r in ordered if value(r) is not None])
    return NullsFirst


@pytest.fixture(params=["copper-like", "nulls-always-first"])
def server(request, store_path, monkeypatch):
    from fakecopper import FakeCopper
    from oppcli.domain.sample import SAMPLE_LOOKUPS

    recs = records()
    build_store(store_path, recs)
    cls = FakeCopper if request.param == "copper-like" else _nulls_always_first()
    srv = cls(lookups=SAMPLE_LOOKUPS, records=recs, api_key=API_KEY, user_email=USER_EMAIL)
    with srv:
        for key, value in copper_env(srv.url).items():
            monkeypatch.setenv(key, value)
        yield srv


def ids(run, backend: str, *args: str) -> list[int]:
    return [r["id"] for r in run.json("--backend", backend, *args)]


@pytest.mark.parametrize("direction", ["--asc", "--desc"])
@pytest.mark.parametrize("field", FIELDS)
def test_missing_values_come_last_on_both_backends(run, server, field, direction):
    want = expected(field, direction == "--desc")
    for args in (["list"], ["search", "--status", "open,won,lost,abandoned"]):
        local = ids(run, "local", *args, "--sort", field, direction)
        remote = ids(run, "copper", *args, "--sort", field, direction)
        assert local == want
        assert remote == want


@pytest.mark.parametrize("direction", ["--asc", "--desc"])
@pytest.mark.parametrize("field", ["monetary_value", "close_date"])
def test_a_limit_takes_the_first_in_that_order(run, server, field, direction):
    want = expected(field, direction == "--desc")
    present = sum(1 for r in records() if r.get(field) is not None)
    for n in (1, 3, present, present + 1, len(want)):
        local = ids(run, "local", "list", "--sort", field, direction, "-n", str(n))
        remote = ids(run, "copper", "list", "--sort", field, direction, "-n", str(n))
        assert local == remote == want[:n], n


def test_client_filters_and_held_back_records_together(run, server):
    """A criterion applied after fetching (--priority) and the held-back deals, with a limit."""
    recs = [r for r in records() if r["priority"] in ("High", "Low")]
    present = sorted((r["monetary_value"], r["id"]) for r in recs if r["monetary_value"] is not None)
    missing = sorted(r["id"] for r in recs if r["monetary_value"] is None)
    assert missing
    want = [i for _, i in present] + missing
    for n in (len(present), len(want)):
        args = ("search", "--priority", "high,low", "--sort", "monetary_value", "-n", str(n))
        assert ids(run, "local", *args) == ids(run, "copper", *args) == want[:n]
