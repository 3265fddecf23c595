"""Real records carry read-only extras (docs/copper-api.md, "What real records and answers look
like"): `show` displays them readably, CSV/TSV export always has a column for each (after the
fields, before the cf: columns), and import ignores those columns, so an export imported back
changes nothing. csv_extras reads such cells back to their JSON types, losslessly.

Records are written straight into a local store (conftest.build_store)."""

from __future__ import annotations

import copy
import csv
import io
from pathlib import Path
from typing import Any

import pytest

from conftest import build_store
from oppcli.domain import fields as F
from oppcli.domain.sample import SAMPLE_LOOKUPS, sample_records
from oppcli.ops.rows import csv_extras, read_input

T = 1_690_000_000  # 2023-07-22 04:26:40 UTC
EVERY_EXTRA = {
    "interaction_count": 12, "monetary_unit": "USD", "converted_unit": "USD",
    "converted_value": "250000.0", "date_stage_changed": T, "date_last_contacted": T + 86400,
    "leads_converted_from": [{"lead_id": 9, "converted_timestamp": T},
                             {"lead_id": 12, "converted_timestamp": T + 40 * 86400}],
    "date_lead_created": T - 86400,
}
NULL_EXTRAS = {"interaction_count": 0, "monetary_unit": None, "converted_unit": None,
               "converted_value": None, "date_stage_changed": None, "date_last_contacted": None,
               "leads_converted_from": [], "date_lead_created": None}
# Cells a spreadsheet would run, or a table would act on: still read back exactly.
ODD_EXTRAS = {"interaction_count": 3, "monetary_unit": "=HYPERLINK(1)",
              "converted_unit": "[red]EUR\x1b[2J", "converted_value": "-1234.5",
              "date_stage_changed": T, "date_last_contacted": None,
              "leads_converted_from": [{"lead_id": 7, "converted_timestamp": None}],
              "date_lead_created": None}
CF_HEADERS = [f"cf:{d['name']}" for d in SAMPLE_LOOKUPS["custom_field_definitions"]]
HEADER = [n for n in F.FIELD_NAMES if n != "custom_fields"] + list(F.EXTRA_NAMES) + CF_HEADERS


def _records() -> list[dict[str, Any]]:
    """1001 every extra, 1002 every extra null or empty, 1003 odd ones, 1004 none (the
    sample's records have none), 1005 an older record: only some."""
    recs = copy.deepcopy(sample_records(5))
    recs[0].update(EVERY_EXTRA)
    recs[1].update(NULL_EXTRAS)
    recs[2].update(ODD_EXTRAS)
    recs[4].update(interaction_count=1, converted_value="75000.0", leads_converted_from=[])
    return recs


@pytest.fixture
def extras_store(store_path: Path) -> dict[int, dict[str, Any]]:
    return build_store(store_path, _records())


def _show(run, opp_id: int) -> dict[str, str]:
    """`show` as a table: field label -> the shown value."""
    out = run("show", str(opp_id), "-o", "table").stdout
    shown = {}
    for line in out.splitlines():
        parts = line.strip().split(None, 1)
        if parts:
            shown[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
    return shown


def _cells(text: str, fmt: str) -> list[dict[str, str]]:
    if fmt == "csv":
        header, *body = list(csv.reader(io.StringIO(text, newline="")))
    else:
        header, *body = [line.split("\t") for line in text.splitlines()]
    assert header == HEADER
    return [dict(zip(header, row, strict=True)) for row in body]


# ---- 1. show -----------------------------------------------------------------------------
def test_extras_names_every_passthrough_key_once():
    assert len(F.EXTRA_NAMES) == len(F.PASSTHROUGH) and set(F.EXTRA_NAMES) == F.PASSTHROUGH
    assert not set(F.EXTRA_NAMES) & set(F.FIELD_NAMES)


def test_show_table_displays_every_extra_readably(run, extras_store):
    shown = _show(run, 1001)
    assert shown["interaction_count"] == "12"
    assert shown["monetary_unit"] == "USD" and shown["converted_unit"] == "USD"
    assert shown["converted_value"] == "250,000"  # money-like, as monetary_value
    # Unix seconds as date_created shows them
    assert shown["date_created"] == "2026-01-01 00:00 UTC"
    assert shown["date_stage_changed"] == "2023-07-22 04:26 UTC"
    assert shown["date_last_contacted"] == "2023-07-23 04:26 UTC"
    assert shown["date_lead_created"] == "2023-07-21 04:26 UTC"
    assert shown["leads_converted_from"] == "lead 9 on 2023-07-22, lead 12 on 2023-08-31"
    # The extras come after the fields and custom fields, in Copper's order.
    labels = list(shown)
    assert [n for n in labels if n in F.EXTRA_BY_NAME] == list(F.EXTRA_NAMES)
    assert labels.index("date_modified") < labels.index("interaction_count")


def test_show_table_of_null_and_odd_extras(run, extras_store):
    shown = _show(run, 1002)
    assert shown["interaction_count"] == "0"
    for name in F.EXTRA_NAMES[1:]:  # null, or no lead: nothing shown, not "None" or "[]"
        assert shown[name] == "", name
    out = run("show", "1003", "-o", "table").stdout
    assert "\x1b" not in out
    shown = _show(run, 1003)
    assert shown["monetary_unit"] == "=HYPERLINK(1)"
    assert shown["converted_unit"] == "[red]EUR\\x1b[2J"  # literally, the escape escaped
    assert shown["converted_value"] == "-1,234.50"
    assert shown["leads_converted_from"] == "lead 7"  # no date: not "None", not a repr


def test_show_table_invents_no_extra_a_record_lacks(run, extras_store):
    shown = _show(run, 1004)
    assert not set(shown) & F.PASSTHROUGH
    shown = _show(run, 1005)
    assert set(shown) & F.PASSTHROUGH == {"interaction_count", "converted_value",
                                           "leads_converted_from"}
    assert shown["converted_value"] == "75,000" and shown["leads_converted_from"] == ""


def test_show_table_survives_an_out_of_range_timestamp(run, store_path):
    rec = copy.deepcopy(sample_records(1)[0])
    rec.update(date_stage_changed=10**15, leads_converted_from=[
        {"lead_id": 5, "converted_timestamp": 10**15}, "odd"])
    build_store(store_path, [rec])
    shown = _show(run, rec["id"])
    assert shown["date_stage_changed"] == str(10**15)
    assert shown["leads_converted_from"] == f"lead 5 on {10**15}, odd"


# ---- 2. CSV and TSV export ---------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_export_has_a_column_for_every_extra_whatever_the_records(run, store_path, fmt):
    """Always, between the fields and the cf: columns: the header does not depend on the
    records (export streams, and cron consumers read fixed columns)."""
    build_store(store_path, sample_records(2))  # records without any extra
    rows = _cells(run("export", "-o", fmt).stdout, fmt)
    assert all(row[n] == "" for row in rows for n in F.EXTRA_NAMES)
    # --fields gives exactly what was asked
    out = run("export", "-o", fmt, "--fields", "id,name").stdout
    assert out.splitlines()[0] == ("id,name" if fmt == "csv" else "id\tname")


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_export_cells_of_the_extras(run, extras_store, fmt):
    rows = {int(r["id"]): r for r in _cells(run("export", "-o", fmt).stdout, fmt)}
    every = rows[1001]
    assert every["interaction_count"] == "12"
    assert every["monetary_unit"] == every["converted_unit"] == "USD"
    assert every["converted_value"] == "250000.0"  # the string as it is
    # Unix seconds as digits, the form date_created takes in the same file
    assert every["date_created"] == str(extras_store[1001]["date_created"])
    assert every["date_stage_changed"] == str(T)
    assert every["date_last_contacted"] == str(T + 86400)
    assert every["date_lead_created"] == str(T - 86400)
    assert every["leads_converted_from"] == (
        f'[{{"lead_id":9,"converted_timestamp":{T}}},'
        f'{{"lead_id":12,"converted_timestamp":{T + 40 * 86400}}}]')
    nulls = rows[1002]
    assert nulls["interaction_count"] == "0" and nulls["leads_converted_from"] == "[]"
    assert all(nulls[n] == "" for n in F.EXTRA_NAMES if NULL_EXTRAS[n] is None)
    odd = rows[1003]
    if fmt == "csv":  # neutralised as any text cell; TSV never is
        assert odd["monetary_unit"] == "'=HYPERLINK(1)" and odd["converted_value"] == "'-1234.5"
    else:
        assert odd["monetary_unit"] == "=HYPERLINK(1)" and odd["converted_value"] == "-1234.5"
        assert odd["converted_unit"] == "[red]EUR\x1b[2J"


# ---- 3. import reads them back or ignores them; a round trip changes nothing --------------
def _snapshot(store: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(store.iterdir()) if p.name != ".lock"}


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_export_then_import_of_records_with_extras_changes_nothing(run, extras_store,
                                                                   store_path, tmp_path, fmt):
    path = tmp_path / f"deals.{fmt}"
    run("export", "-o", fmt, "--output-file", str(path))
    before = _snapshot(store_path)
    r = run("import", str(path))
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("oppcli: line ")]
    assert lines == [f"oppcli: line {n}: unchanged {i}"
                     for n, i in enumerate(sorted(extras_store), 2)], r.stderr
    assert _snapshot(store_path) == before


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_an_edited_row_with_extras_updates_only_the_writable_field(run, extras_store,
                                                                     tmp_path, fmt):
    """The extras' cells are read-only: a row that changes one, and the name, updates the name
    alone; the extras stay as the store has them."""
    text = run("export", "-o", fmt, "--id", "1001").stdout
    text = text.replace("Northwind Traders - Annual Licence", "Northwind renamed")
    text = text.replace("250000.0", "1.0")
    path = tmp_path / f"edit.{fmt}"
    path.write_text(text, newline="")
    r = run("import", str(path))
    assert "updated 1001" in r.stderr
    after = run.json("show", "1001")
    assert after["name"] == "Northwind renamed"
    assert {k: after[k] for k in F.EXTRA_NAMES} == EVERY_EXTRA


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_import_reads_the_extras_back_as_export_wrote_them(run, extras_store, fmt):
    """Every value with its JSON type (ints stay ints, converted_value a string,
    leads_converted_from its objects); null and a missing key are both an empty cell, read as
    no value (the row then lacks the key)."""
    data = run("export", "-o", fmt).stdout.encode()
    rows = [row.values for row in read_input(data, fmt).rows if row.values]
    got = {int(values["id"]): {n: values[n] for n in F.EXTRA_NAMES if n in values}
           for values in rows}
    assert len(got) == len(extras_store)
    for opp_id, rec in extras_store.items():
        expected = {n: rec[n] for n in F.EXTRA_NAMES if rec.get(n) is not None}
        assert got[opp_id] == expected, opp_id
        for n, v in expected.items():
            assert type(got[opp_id][n]) is type(v), (opp_id, n)


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_a_restore_into_an_empty_store_keeps_the_extras(run, extras_store, tmp_path, fmt):
    """A row whose id the store never issued is created; the local store keeps its extras
    (as from a JSON row), with their JSON types. An empty cell is no value: the new deal gets
    what the store gives any (and no key for an extra the store does not set)."""
    path = tmp_path / f"deals.{fmt}"
    run("export", "-o", fmt, "--output-file", str(path))
    empty = tmp_path / "empty"
    build_store(empty, [])
    r = run("--store", str(empty), "import", str(path))
    assert r.stderr.count(": created ") == len(extras_store), r.stderr
    copied = {rec["name"]: rec for rec in run.json("--store", str(empty), "list", "--all")}
    unset = ("monetary_unit", "converted_unit", "converted_value", "leads_converted_from")
    for rec in extras_store.values():
        got = copied[rec["name"]]
        kept = {n: rec[n] for n in F.EXTRA_NAMES if rec.get(n) is not None}
        assert {n: got[n] for n in kept} == kept
        assert [type(got[n]) for n in kept] == [type(v) for v in kept.values()]
        assert all(n not in got for n in unset if n not in kept)


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_an_unreadable_extra_cell_fails_its_row_alone(run, extras_store, tmp_path, fmt):
    text = run("export", "-o", fmt, "--id", "1001,1002").stdout
    text = text.replace(",12,USD," if fmt == "csv" else "\t12\tUSD\t",
                        ",twelve,USD," if fmt == "csv" else "\ttwelve\tUSD\t")
    path = tmp_path / f"edit.{fmt}"
    path.write_text(text, newline="")
    r = run("import", str(path), expect=7)
    assert "failed (interaction_count must be a number, got 'twelve')" in r.stderr, r.stderr
    assert ": unchanged 1002" in r.stderr


def test_csv_extras_refuses_an_unreadable_cell():
    from oppcli.errors import ValidationError

    assert csv_extras({"name": "x", "interaction_count": "4"}) == {"interaction_count": 4}
    assert csv_extras({"monetary_unit": "'=X", "converted_value": ""}) == {"monetary_unit": "=X"}
    assert csv_extras({"monetary_unit": "'=X"}, neutralised=False) == {"monetary_unit": "'=X"}
    for column, cell in (("interaction_count", "four"), ("date_stage_changed", "true"),
                         ("leads_converted_from", '{"lead_id": 1}')):
        with pytest.raises(ValidationError, match=column):
            csv_extras({column: cell})
