"""Spreadsheet-safe CSV (--excel: a UTF-8 byte order mark first, rows in CRLF, on list,
search, export and report; import reads such a file back unchanged) and colour in tables
(statuses: Won green, Lost red, Abandoned dim, Open plain; an open deal's past close date
marked; none with NO_COLOR or --color never, and nothing changes off a terminal)."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess

import orjson
import pytest

from checks import one_error_line, snapshot
from conftest import oppcli_exe
from ptyterm import on_a_terminal

BOM = b"\xef\xbb\xbf"
SGR = re.compile(r"\x1b\[([0-9;]*)m")


@pytest.fixture
def store(sh, store_path):
    sh("init", "--sample")
    return store_path


def raw(args: list[str]) -> bytes:
    return subprocess.run([oppcli_exe(), *args], capture_output=True, check=True,
                          stdin=subprocess.DEVNULL).stdout


@pytest.mark.parametrize("args", [
    ["list", "--fields", "id,name,details"],
    ["search", "--status", "open", "--fields", "id,name"],
    ["export"],
    ["report", "--by", "assignee"],
])
def test_excel_csv_starts_with_a_bom_and_is_otherwise_the_csv(store, args):
    plain = raw([*args, "-o", "csv"])
    excel = raw([*args, "--excel"])
    assert excel == BOM + plain
    assert excel.count(b"\r\n") == plain.count(b"\r\n") > 1
    rows = list(csv.reader(io.StringIO(excel.decode("utf-8-sig"), newline="")))
    assert rows[0][0] in ("id", "assignee")  # the header's first cell is clean, no BOM in it


def test_excel_export_to_a_file_keeps_accents_and_line_breaks(sh, store, tmp_path):
    sh("update", "1001", "--name", "Café Müller", "--details", "line one\nline two")
    out = tmp_path / "deals.csv"
    sh("export", "--excel", "--output-file", str(out))
    data = out.read_bytes()
    assert data.startswith(BOM + b"id,")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    row = next(r for r in rows if r["id"] == "1001")
    assert row["name"] == "Café Müller" and row["details"] == "line one\nline two"


def test_import_reads_an_excel_csv_back_unchanged(sh, store, tmp_path):
    out = tmp_path / "deals.csv"
    sh("export", "--excel", "--output-file", str(out))
    before = snapshot(store)
    result = sh("import", str(out), "--dry-run", "-o", "json")
    assert {r["action"] for r in orjson.loads(result.stdout)} == {"unchanged"}
    piped = subprocess.run([oppcli_exe(), "import", "-", "--dry-run", "-o", "json"],
                           input=out.read_bytes(), capture_output=True, check=True)
    assert {r["action"] for r in orjson.loads(piped.stdout)} == {"unchanged"}
    assert snapshot(store) == before


@pytest.mark.parametrize("args", [["list", "--excel", "-o", "json"],
                                  ["report", "--by", "stage", "--excel", "-o", "tsv"],
                                  ["export", "--excel", "-o", "jsonl"]])
def test_excel_with_another_format_is_refused(sh, store, args):
    line = one_error_line(sh(*args, expect=None), 2)
    assert "excel" in line.lower() and "csv" in line


def _colours(out: str) -> set[str]:
    return {m for m in SGR.findall(out) if m and any(p.startswith(("3", "9")) for p in m.split(";"))}


def test_statuses_and_overdue_close_dates_are_coloured_on_a_terminal(store):
    code, out = on_a_terminal(["search", "--status", "won,lost,open", "--sort", "id", "-n", "12"],
                              columns=160)
    assert code == 0
    won = re.search(r"\x1b\[32mWon", out)
    lost = re.search(r"\x1b\[31mLost", out)
    assert won and lost, out
    # sample close dates are in 2026 up to December: some open ones are past today
    assert re.search(r"\x1b\[1;31m\d{4}-\d\d-\d\d", out), out
    assert not re.search(r"\x1b\[[0-9;]*mOpen", out)  # Open stays plain
    code, shown = on_a_terminal(["show", "1034"], columns=120)  # a Won deal
    assert re.search(r"\x1b\[32mWon", shown)


@pytest.mark.parametrize("how", [["--color", "never"], "NO_COLOR"])
def test_no_colour_with_no_color_or_color_never(store, monkeypatch, how):
    if how == "NO_COLOR":
        monkeypatch.setenv("NO_COLOR", "1")
        args = ["list", "-n", "20"]
    else:
        args = [*how, "list", "-n", "20"]
    code, out = on_a_terminal(args, columns=160)
    assert code == 0 and "Won" in out
    assert not _colours(out), out


def test_nothing_changes_off_a_terminal(store):
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    out = subprocess.run([oppcli_exe(), "list", "-o", "table", "-n", "20"], capture_output=True,
                         text=True, env=env, stdin=subprocess.DEVNULL, check=True).stdout
    assert "Won" in out and "\x1b" not in out



def test_show_colours_the_deals_status_and_close_date_not_custom_fields_named_so(store_path):
    """Custom fields named "status" and "close_date" are shown plain beside the deal's own
    Won status, or its past close date while Open, which are coloured."""
    import copy

    from checks import make_store
    from oppcli.domain.sample import SAMPLE_LOOKUPS, sample_records

    lookups = copy.deepcopy(SAMPLE_LOOKUPS)
    lookups["custom_field_definitions"] += [
        {"id": 491, "name": "status", "data_type": "String", "available_on": ["opportunity"]},
        {"id": 492, "name": "close_date", "data_type": "String", "available_on": ["opportunity"]}]
    records = sample_records()[:2]
    for rec, status in zip(records, ("Won", "Open"), strict=True):
        rec.update(status=status, close_date="1/15/2020")
        rec["custom_fields"] += [{"custom_field_definition_id": 491, "value": "cf-status"},
                                 {"custom_field_definition_id": 492, "value": "cf-close"}]
    make_store(store_path, lookups, records)
    coloured_value = re.compile(r"\x1b\[(?:[0-9;]*;)?3\dm\s*(\S+)")
    for rec, marked in zip(records, ("Won", "2020-01-15"), strict=True):
        code, out = on_a_terminal(["show", str(rec["id"])], columns=120)
        assert code == 0, out
        assert "cf-status" in out and "cf-close" in out, out
        assert coloured_value.findall(out) == [marked], out
