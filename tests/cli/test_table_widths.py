"""Tables never hide what was asked for, whatever the terminal width (README "Output").

Ids, money and dates are never cut; long text is cut (with an ellipsis) or wraps; columns
nobody asked for (the default ones, without --fields) are dropped next; only then do lines run
past the width. Expected cells are computed here from the sample data.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import os
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oppcli.domain.sample import SAMPLE_LOOKUPS, sample_records


def money(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def iso(close_date: str) -> str:
    month, day, year = (int(p) for p in close_date.split("/"))
    return dt.date(year, month, day).isoformat()


def stamp(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def records() -> list[dict[str, Any]]:
    """The sample, with a six-figure deal, a long name and long details."""
    recs = sample_records()
    recs[0].update(monetary_value=100500, name="Northwind Traders - " + "Annual Licence " * 6,
                   details="A long description of the deal. " * 8)
    recs[1].update(monetary_value=1234567.5)
    return recs


RECORDS = records()


@pytest.fixture
def wide_store(store_path: Path) -> Path:
    from oppcli.backends.local import LocalStore

    LocalStore.create_store(store_path, lookups=copy.deepcopy(SAMPLE_LOOKUPS), records=records())
    return store_path


def token(text: str) -> str:
    """`text` standing alone: not the start or the end of a longer cut cell."""
    return rf"(?<![^\s│┃]){re.escape(text)}(?![^\s│┃])"


def assert_whole(out: str, fields: list[str]) -> None:
    """Each record's row holds its id and, when asked for, its value and close date, whole."""
    lines = out.splitlines()
    for rec in RECORDS:
        row = [line for line in lines if re.search(token(str(rec["id"])), line)]
        assert len(row) == 1, (rec["id"], out)
        if "monetary_value" in fields and rec["monetary_value"] is not None:
            assert re.search(token(money(rec["monetary_value"])), row[0]), (rec["id"], row[0])
        if "close_date" in fields and rec["close_date"]:
            assert re.search(token(iso(rec["close_date"])), row[0]), (rec["id"], row[0])


ASKED = ["id", "name", "details", "close_date", "monetary_value"]


@pytest.mark.parametrize("columns", [80, 30])
def test_asked_for_ids_values_and_dates_show_in_full(run, wide_store, monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    out = run("list", "--fields", ",".join(ASKED), "-o", "table").stdout
    header = next(line for line in out.splitlines() if "Name" in line)
    assert header.split() == ["ID", "Name", "details", "Close", "Value"], out
    assert_whole(out, ASKED)
    if columns == 80:  # it fits: the text is cut, nothing runs past the width
        assert max(map(len, out.splitlines())) <= columns, out
        assert "…" in out


@pytest.mark.parametrize("columns", [200, 80, 30])
def test_default_table_keeps_ids_and_values_whole_within_the_width(run, wide_store, monkeypatch,
                                                                   columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    out = run("list", "-o", "table").stdout
    assert_whole(out, ["id", "monetary_value"] + (["close_date"] if columns == 200 else []))
    assert max(map(len, out.splitlines())) <= columns, out


@pytest.mark.parametrize("columns,kept", [
    (200, ["ID", "Name", "Status", "Stage", "Value", "Prob%", "Close", "Priority", "Owner"]),
    (80, ["ID", "Name", "Status", "Stage", "Value"]),
    (40, ["ID", "Name", "Value"]),
    (30, ["ID", "Value"]),  # "1,234,567.50" leaves no room for a name
])
def test_default_columns_are_dropped_before_anything_is_cut(run, wide_store, monkeypatch,
                                                            columns, kept):
    monkeypatch.setenv("COLUMNS", str(columns))
    out = run("list", "-o", "table").stdout
    header = next(line for line in out.splitlines() if "ID" in line)
    assert header.split() == kept, out


def test_asked_for_columns_are_never_dropped(run, wide_store, monkeypatch):
    monkeypatch.setenv("COLUMNS", "30")
    fields = "id,status,priority,win_probability,close_date,monetary_value"
    out = run("list", "--fields", fields, "-o", "table").stdout
    header = next(line for line in out.splitlines() if "Status" in line)
    assert header.split() == ["ID", "Status", "Priority", "Prob%", "Close", "Value"]  # all kept
    assert_whole(out, fields.split(","))
    for rec in RECORDS:
        row = next(line for line in out.splitlines() if re.search(token(str(rec["id"])), line))
        for word in (rec["status"], rec["priority"], str(rec["win_probability"])):
            assert re.search(token(word), row), (word, row)


@pytest.mark.parametrize("columns", [80, 30])
def test_show_keeps_ids_values_and_dates_on_one_line(run, wide_store, monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    rec = RECORDS[0]
    out = run("show", str(rec["id"]), "-o", "table").stdout
    for cell in ("100,500", iso(rec["close_date"]), stamp(rec["date_created"]),
                 stamp(rec["date_modified"]), "(101)", "(601)"):
        assert cell in out, (cell, out)


def test_history_keeps_audit_ids_and_times_whole(run, wide_store, monkeypatch):
    run("update", "1001", "--priority", "Low", "-o", "json")
    monkeypatch.setenv("COLUMNS", "40")
    entry = run.json("history")[0]
    out = run("history", "-o", "table").stdout
    when = dt.datetime.fromtimestamp(entry["at"], dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    assert entry["audit_id"] in out and when in out, out


# ---- any width, any choice of fields (property) ---------------------------------------------------
FIELDS = st.lists(st.sampled_from(["name", "details", "tags", "status", "pipeline_stage_id",
                                   "assignee_id", "close_date", "monetary_value", "priority",
                                   "win_probability", "custom_fields", "company_id"]),
                  unique=True, max_size=8)
WIDTHS = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "120")), deadline=None,
                  derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture])


@WIDTHS
@given(columns=st.integers(min_value=10, max_value=200), fields=st.none() | FIELDS)
def test_at_any_width_nothing_asked_for_is_cut(monkeypatch, columns, fields):
    from oppcli.domain.lookups import Lookups
    from oppcli.output import Context, write_table

    monkeypatch.setenv("COLUMNS", str(columns))
    names = None if fields is None else ["id", *fields]
    buf = io.StringIO()
    write_table(iter(copy.deepcopy(RECORDS)), buf, names, Context(Lookups(SAMPLE_LOOKUPS)))
    out = buf.getvalue()
    assert_whole(out, ["id", *(["monetary_value"] if fields is None else fields)])
    if fields is None:  # default columns: dropped, never run past the width
        assert max(map(len, out.splitlines())) <= max(columns, 21), out  # ID, Value
