"""Every output format: json, jsonl, csv, tsv and table, --fields, and their errors.

The table footer counts, totals and weighs (Won in full, Open by its probability, Lost and
Abandoned as nothing); --fields gives each column once; a command refuses formats it cannot
write. Expected cells are computed here from the sample data and the README's rules, not by oppcli.
"""

from __future__ import annotations

import copy
import csv
import io
import re
from typing import Any

import orjson
import pytest

from checks import make_store, one_error_line
from oppcli.domain import fields as F
from oppcli.domain.sample import SAMPLE_LOOKUPS, sample_records

RECORDS = sample_records()
BY_ID = {r["id"]: r for r in RECORDS}
DEFINITIONS = SAMPLE_LOOKUPS["custom_field_definitions"]
NEWEST_FIRST = sorted(RECORDS, key=lambda r: (r["date_modified"], r["id"]), reverse=True)
PLAIN_COLUMNS = [n for n in F.FIELD_NAMES if n != "custom_fields"]
# The read-only extras are always columns, between the fields and the cf: columns.
CSV_HEADER = PLAIN_COLUMNS + list(F.EXTRA_NAMES) + [f"cf:{d['name']}" for d in DEFINITIONS]


def option_name(definition: dict[str, Any], option_id: int) -> str:
    return next(o["name"] for o in definition["options"] if o["id"] == option_id)


def expected_cells(record: dict[str, Any]) -> list[str]:
    """One CSV row by the README's rules: null empty, tags joined with ';', custom fields by
    option name, booleans true/false, ids as ids."""
    cells = []
    for name in PLAIN_COLUMNS:
        value = record[name]
        if value is None:
            cells.append("")
        elif isinstance(value, bool):
            cells.append("true" if value else "false")
        elif name == "tags":
            cells.append(";".join(value))
        else:
            cells.append(str(value))
    cells += ["" if record.get(n) is None else str(record[n]) for n in F.EXTRA_NAMES]  # none here
    values = {c["custom_field_definition_id"]: c["value"] for c in record["custom_fields"]}
    for d in DEFINITIONS:
        value = values.get(d["id"])
        if value is None:
            cells.append("")
        elif d["data_type"] == "Dropdown":
            cells.append(option_name(d, value))
        elif d["data_type"] == "MultiSelect":
            cells.append(";".join(option_name(d, v) for v in value))
        elif isinstance(value, bool):
            cells.append("true" if value else "false")
        else:
            cells.append(str(value))
    return cells


def money(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def one_line_error(result: Any) -> str:
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


# ---- json -------------------------------------------------------------------------------------
def test_json_is_an_array_of_api_records(run, ro_sample):
    result = run("list", "-o", "json")
    assert result.stderr == ""
    data = orjson.loads(result.stdout)
    assert isinstance(data, list)
    assert data == NEWEST_FIRST


def test_json_field_names_and_types_are_the_apis(run, ro_sample):
    for rec in orjson.loads(run("list", "-o", "json").stdout):
        assert list(rec) == list(F.FIELD_NAMES)
        assert type(rec["id"]) is int
        for name in ("date_created", "date_modified"):
            assert type(rec[name]) is int and rec[name] > 1_700_000_000  # Unix seconds
        for name in ("assignee_id", "company_id", "customer_source_id", "loss_reason_id",
                     "pipeline_id", "primary_contact_id", "pipeline_stage_id"):
            assert rec[name] is None or type(rec[name]) is int, name
        assert re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}", rec["close_date"])
        assert rec["status"] in F.STATUSES and rec["priority"] in F.PRIORITIES
        assert type(rec["win_probability"]) is int and 0 <= rec["win_probability"] <= 100
        assert type(rec["pipeline_is_revenue"]) is bool
        assert isinstance(rec["tags"], list) and all(isinstance(t, str) for t in rec["tags"])
        assert [set(c) for c in rec["custom_fields"]] == \
            [{"custom_field_definition_id", "value"}] * len(DEFINITIONS)
        assert [c["custom_field_definition_id"] for c in rec["custom_fields"]] == \
            [d["id"] for d in DEFINITIONS]


def test_json_array_has_one_compact_record_per_line(run, ro_sample):
    lines = run("list", "--limit", "3", "-o", "json").stdout.splitlines()
    assert lines[0] == "[" and lines[-1] == "]" and len(lines) == 5
    assert [orjson.loads(x.rstrip(",")) for x in lines[1:-1]] == NEWEST_FIRST[:3]


@pytest.mark.parametrize("command", [["list", "--limit", "0"], ["search", "--name", "No Such Deal"]])
def test_json_empty_result_is_an_empty_array(run, ro_sample, command):
    result = run(*command, "-o", "json")
    assert result.stdout.strip() == "[]"
    assert orjson.loads(result.stdout) == []


def test_json_of_show_is_one_object(run, ro_sample):
    assert orjson.loads(run("show", "1002", "-o", "json").stdout) == BY_ID[1002]
    assert orjson.loads(run("show", "1002").stdout) == BY_ID[1002]  # not a terminal: JSON


def test_output_format_name_is_case_insensitive(run, ro_sample):
    assert orjson.loads(run("show", "1002", "-o", "JSON").stdout) == BY_ID[1002]


# ---- jsonl ------------------------------------------------------------------------------------
def test_jsonl_is_one_record_per_line(run, ro_sample):
    lines = run("list", "-o", "jsonl").stdout.splitlines()
    assert [orjson.loads(x) for x in lines] == NEWEST_FIRST


def test_jsonl_empty_result_prints_nothing(run, ro_sample):
    assert run("search", "--name", "No Such Deal", "-o", "jsonl").stdout == ""


def test_jsonl_of_show_is_one_line(run, ro_sample):
    out = run("show", "1003", "-o", "jsonl").stdout
    assert out.count("\n") == 1 and orjson.loads(out) == BY_ID[1003]


# ---- csv --------------------------------------------------------------------------------------
def test_csv_header_and_every_cell(run, ro_sample):
    result = run("list", "-o", "csv")
    assert result.stderr == ""
    rows = csv_rows(result.stdout)
    assert rows[0] == CSV_HEADER
    assert rows[1:] == [expected_cells(r) for r in NEWEST_FIRST]


def test_csv_rules_hold_on_the_sample(run, ro_sample):
    """The rules the full comparison above relies on actually occur in the data."""
    body = csv_rows(run("list", "-o", "csv").stdout)[1:]
    rows = {int(r[0]): dict(zip(CSV_HEADER, r, strict=True)) for r in body}
    assert rows[1001]["details"] == "" and BY_ID[1001]["details"] is None  # null -> empty
    assert rows[1003]["tags"] == "enterprise;q3"
    assert rows[1001]["cf:Region"] == "EMEA" and rows[1002]["cf:Region"] == "Americas"
    assert rows[1002]["cf:Competitors"] == "Globex;Initech"
    assert rows[1001]["cf:Signed NDA"] == "true" and rows[1002]["cf:Signed NDA"] == "false"
    assert rows[1001]["pipeline_stage_id"] == "11" and rows[1001]["assignee_id"] == "101"


def test_csv_uses_crlf_and_quotes_per_rfc4180(run, sample):
    run("create", "--name", 'Quote "this", please', "--primary-contact", "601",
        "--details", "line one\nline two")
    result = run("show", "1037", "-o", "csv", "--fields", "id,name,details")
    assert result.stdout_bytes.startswith(b"id,name,details\r\n")  # .stdout folds CRLF
    assert csv_rows(result.stdout_bytes.decode())[1] == ["1037", 'Quote "this", please', "line one\nline two"]


def test_csv_empty_result_is_just_the_header(run, ro_sample):
    assert csv_rows(run("search", "--name", "No Such Deal", "-o", "csv").stdout) == [CSV_HEADER]


DANGEROUS = ["create", "--name", "=HYPERLINK(\"http://evil.example\")", "--primary-contact", "601",
             "--details", "+44 20 7946 0000", "--tag", "@everyone", "--tag", "-rf",
             "--custom-field", "Champion Notes=-2+3"]


def test_csv_neutralises_cells_that_a_spreadsheet_would_run(run, sample):
    run(*DANGEROUS)
    run("create", "--name", "a=b", "--primary-contact", "601", "--details", "safe -x")
    rows = csv_rows(run("list", "--sort", "id", "--desc", "-n", "2", "-o", "csv").stdout)
    cells = dict(zip(rows[0], rows[2], strict=True))
    assert cells["name"] == "'=HYPERLINK(\"http://evil.example\")"
    assert cells["details"] == "'+44 20 7946 0000"
    assert cells["tags"] == "'@everyone;-rf"
    assert cells["cf:Champion Notes"] == "'-2+3"
    safe = dict(zip(rows[0], rows[1], strict=True))  # only a leading character counts
    assert safe["name"] == "a=b" and safe["details"] == "safe -x"


def test_csv_raw_leaves_cells_as_they_are(run, sample):
    run(*DANGEROUS)
    rows = csv_rows(run("show", "1037", "-o", "csv", "--raw").stdout)
    cells = dict(zip(rows[0], rows[1], strict=True))
    assert cells["name"] == "=HYPERLINK(\"http://evil.example\")"
    assert cells["details"] == "+44 20 7946 0000"
    assert cells["tags"] == "@everyone;-rf"
    assert cells["cf:Champion Notes"] == "-2+3"


# ---- tsv --------------------------------------------------------------------------------------
def test_tsv_header_and_cells(run, ro_sample):
    lines = run("list", "-o", "tsv").stdout.split("\n")
    assert lines[-1] == ""  # ends with a newline
    assert lines[0].split("\t") == CSV_HEADER
    assert [line.split("\t") for line in lines[1:-1]] == [expected_cells(r) for r in NEWEST_FIRST]


def test_tsv_escapes_tab_newline_carriage_return_and_backslash(run, sample):
    details = "a\tb\nc\\d\re"
    run("create", "--name", "Tab\tName", "--primary-contact", "601", "--details", details)
    out = run("show", "1037", "-o", "tsv", "--fields", "id,name,details").stdout_bytes.decode()
    assert out == "id\tname\tdetails\n1037\tTab\\tName\ta\\tb\\nc\\\\d\\re\n"


def test_tsv_rows_have_one_cell_per_column(run, sample):
    run("create", "--name", "x", "--primary-contact", "601", "--details", "\t\t\n\n",
        "--custom-field", "Champion Notes=\tlead")
    lines = run("list", "-o", "tsv").stdout.splitlines()
    assert len(lines) == len(RECORDS) + 2
    assert {line.count("\t") for line in lines} == {len(CSV_HEADER) - 1}


# ---- table ------------------------------------------------------------------------------------
def test_table_shows_names_not_ids(run, ro_sample):
    out = run("search", "--id", "1001", "-o", "table", "--fields",
              "id,assignee_id,pipeline_stage_id,primary_contact_id,company_id,customer_source_id,"
              "pipeline_id").stdout
    row = next(line for line in out.splitlines() if "1001" in line)
    for name in ("Ada Park", "Qualified", "Nancy Davolio", "Northwind Traders", "Website", "Sales"):
        assert name in row, (name, row)
    for ident in ("101", "11", "601", "501", "201"):
        assert not re.search(rf"\b{ident}\b", row), (ident, row)


def test_table_default_columns_are_readable(run, ro_sample):
    out = run("search", "--id", "1001", "-o", "table").stdout
    header = next(line for line in out.splitlines() if "Name" in line)
    for heading in ("ID", "Name", "Status", "Stage", "Value", "Close", "Priority", "Owner"):
        assert heading in header, heading
    row = next(line for line in out.splitlines() if "1001" in line)
    for cell in ("Northwind Traders - Annual Licence", "Open", "Qualified", "5,500", "2026-01-01",
                 "High", "Ada Park"):
        assert cell in row, (cell, row)


def test_table_footer_has_count_total_and_weighted_value(run, ro_sample):
    out = run("list", "-o", "table").stdout
    valued = [r for r in RECORDS if r["monetary_value"] is not None]
    total = sum(r["monetary_value"] for r in valued)
    weighted = sum(r["monetary_value"] * r["win_probability"] / 100 for r in valued)
    footer = out.strip().splitlines()[-1]
    assert f"{len(RECORDS)} opportunities" in footer
    assert f"total value {money(total)}" in footer
    assert f"weighted {money(weighted)}" in footer


def test_table_footer_of_a_filtered_single_record(run, ro_sample):
    rec = BY_ID[1002]
    footer = run("search", "--id", "1002", "-o", "table").stdout.strip().splitlines()[-1]
    assert "1 opportunity " in footer
    assert f"total value {money(rec['monetary_value'])}" in footer
    assert f"weighted {money(rec['monetary_value'] * rec['win_probability'] / 100)}" in footer


def test_table_footer_weighs_won_in_full_and_lost_abandoned_as_nothing(run, store_path):
    records = sample_records()
    for r in records:  # probabilities that disagree with the status, as hand-kept data has
        if r["status"] == "Won":
            r["win_probability"] = 70
        elif r["status"] in ("Lost", "Abandoned"):
            r["win_probability"] = 30
    make_store(store_path, copy.deepcopy(SAMPLE_LOOKUPS), records)
    for args in (["search", "--pipeline", "Sales"], ["list"]):
        shown = orjson.loads(run(*args, "-o", "json").stdout)
        statuses = {r["status"] for r in shown if r["monetary_value"] is not None}
        assert statuses == {"Open", "Won", "Lost", "Abandoned"}
        expected = 0.0
        naive = 0.0
        for r in shown:
            value, prob = r["monetary_value"], r["win_probability"]
            if value is None:
                continue
            naive += value * (prob or 0) / 100
            if r["status"] == "Won":
                expected += value
            elif r["status"] == "Open":
                expected += value * (prob or 0) / 100
        assert abs(expected - naive) > 1  # the data tells the two rules apart
        table = run(*args, "-o", "table").stdout
        m = re.search(r"([\d,]+) opportunit\w+\s+total value ([\d,.]+)\s+weighted ([\d,.]+)", table)
        assert m, table
        assert int(m[1].replace(",", "")) == len(shown)
        assert abs(float(m[3].replace(",", "")) - expected) < 0.01, (m[0], expected)


def test_table_with_no_match_says_so(run, ro_sample):
    result = run("search", "--name", "No Such Deal", "-o", "table")
    assert "No opportunities match" in result.stdout


def test_show_table_lists_every_field_and_custom_fields_by_name(run, ro_sample):
    out = run("show", "1001", "-o", "table").stdout
    labels = {line.split()[0] for line in out.splitlines() if line.strip()}
    for name in PLAIN_COLUMNS:
        assert name in labels, name
    assert "custom_fields" not in out and "custom_field_definition_id" not in out
    expected = {"Region": "EMEA", "Contract Months": "12", "Signed NDA": "true",
                "Competitors": "Acme CRM", "Champion Notes": "Champion is the CFO"}
    for label, value in expected.items():
        assert re.search(rf"^\s*{label}\s+{value}\s*$", out, re.M), (label, value, out)
    assert re.search(r"^\s*assignee_id\s+Ada Park \(101\)\s*$", out, re.M)
    # "Qualified" is a stage of both sample pipelines: show names which one, not just "Qualified (11)"
    assert re.search(r"^\s*pipeline_stage_id\s+Sales/Qualified \(11\)\s*$", out, re.M)


# ---- --fields ---------------------------------------------------------------------------------
FIELDS = ["name", "id", "status"]


def test_fields_project_json(run, ro_sample):
    data = orjson.loads(run("list", "--fields", "name,id,status", "-o", "json").stdout)
    assert data == [{k: r[k] for k in FIELDS} for r in NEWEST_FIRST]
    assert all(list(r) == FIELDS for r in data)


def test_fields_project_jsonl(run, ro_sample):
    lines = run("list", "--fields", "name, id ,status", "-o", "jsonl").stdout.splitlines()
    assert [list(orjson.loads(x).items()) for x in lines] == \
        [[(k, r[k]) for k in FIELDS] for r in NEWEST_FIRST]


def test_fields_project_csv_and_tsv(run, ro_sample):
    rows = csv_rows(run("list", "--fields", "name,id,status", "-o", "csv").stdout)
    assert rows == [FIELDS] + [[r["name"], str(r["id"]), r["status"]] for r in NEWEST_FIRST]
    lines = run("list", "--fields", "name,id,status", "-o", "tsv").stdout.splitlines()
    assert [x.split("\t") for x in lines] == rows


def test_fields_custom_fields_in_csv_become_one_column_per_definition(run, ro_sample):
    rows = csv_rows(run("show", "1002", "--fields", "id,custom_fields", "-o", "csv").stdout)
    assert rows[0] == ["id"] + [f"cf:{d['name']}" for d in DEFINITIONS]
    assert rows[1] == ["1002"] + expected_cells(BY_ID[1002])[len(PLAIN_COLUMNS) + len(F.EXTRAS):]


def test_fields_project_table(run, ro_sample):
    out = run("list", "--fields", "name,id,status", "-o", "table").stdout
    header = next(line for line in out.splitlines() if "Name" in line)
    assert header.split() == ["Name", "ID", "Status"]
    for heading in ("Value", "Stage", "Owner", "Priority"):
        assert heading not in out


def test_fields_project_show_in_every_format(run, ro_sample):
    rec = BY_ID[1004]
    assert orjson.loads(run("show", "1004", "--fields", "status,id", "-o", "json").stdout) == \
        {"status": rec["status"], "id": 1004}
    assert orjson.loads(run("show", "1004", "--fields", "status,id", "-o", "jsonl").stdout) == \
        {"status": rec["status"], "id": 1004}
    assert csv_rows(run("show", "1004", "--fields", "status,id", "-o", "csv").stdout) == \
        [["status", "id"], [rec["status"], "1004"]]
    assert run("show", "1004", "--fields", "status,id", "-o", "tsv").stdout == \
        f"status\tid\n{rec['status']}\t1004\n"
    table = run("show", "1004", "--fields", "status,id", "-o", "table").stdout
    assert [line.split()[0] for line in table.splitlines() if line.strip()] == ["status", "id"]


def test_fields_project_create_and_update_output(run, sample):
    out = run("create", "--name", "F", "--primary-contact", "601", "--fields", "id,name", "-o", "json")
    assert orjson.loads(out.stdout) == {"id": 1037, "name": "F"}
    out = run("update", "1037", "--status", "Won", "--fields", "status", "-o", "csv")
    assert csv_rows(out.stdout) == [["status"], ["Won"]]


@pytest.mark.parametrize("command", [["list"], ["search", "--status", "Open"], ["show", "1001"]])
@pytest.mark.parametrize("fields", ["id,colour", "bogus", "id,,Name"])
def test_unknown_field_exits_2_listing_valid_names(run, ro_sample, command, fields):
    line = one_line_error(run(*command, "--fields", fields, expect=2))
    assert "unknown field" in line
    assert ", ".join(F.FIELD_NAMES) in line


def test_empty_fields_exits_2(run, ro_sample):
    line = one_line_error(run("list", "--fields", " , ", expect=2))
    assert "--fields" in line


def test_repeated_fields_give_each_column_once(run, ro_sample):
    args = ("list", "--sort", "id", "--limit", "2", "--fields", "name,name,id")
    records = orjson.loads(run(*args, "-o", "json").stdout)
    assert [list(r) for r in records] == [["name", "id"], ["name", "id"]]
    assert run(*args, "-o", "csv").stdout.splitlines()[0] == "name,id"
    assert run(*args, "-o", "tsv").stdout.splitlines()[0] == "name\tid"
    table = [x for x in run(*args, "-o", "table").stdout.splitlines() if x.strip()]
    assert table[0].split() == ["Name", "ID"], table[0]


@pytest.mark.parametrize("command", [["list"], ["search"], ["show", "1001"], ["delete", "1001", "--yes"]])
def test_unknown_output_format_exits_2_listing_formats(run, ro_sample, command):
    line = one_line_error(run(*command, "-o", "xml", expect=2))
    assert "xml" in line and "table, json, jsonl, csv, tsv" in line


@pytest.mark.parametrize("args", [["lookups", "-o", "csv"], ["config", "show", "-o", "jsonl"]],
                         ids=["lookups -o csv", "config show -o jsonl"])
def test_formats_a_command_cannot_write_are_refused(run, ro_sample, args):
    message = one_error_line(run(*args, expect=None), 2)
    assert "table, json" in message, message


def test_delete_output_in_csv(run, sample):
    out = run("delete", "1001", "--yes", "-o", "csv").stdout
    assert csv_rows(out) == [["id", "is_deleted"], ["1001", "true"]]
