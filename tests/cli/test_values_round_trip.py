"""Values come out as they went in, never changed, dropped or turned into a crash: details of
spaces, TSV imports, years before 1900, out-of-range Date custom fields, integers past 2**53,
repeated MultiSelect options, digits int() cannot read, and --since units."""

from __future__ import annotations

import copy
import subprocess

import orjson
import pytest

from conftest import build_store, derived_records, oppcli_exe
from oppcli.domain.sample import SAMPLE_LOOKUPS

DATE_DEF = {"id": 4090, "name": "Renewal Date", "data_type": "Date",
            "available_on": ["opportunity"], "is_filterable": True}


@pytest.fixture
def dated_store(store_path):
    """The sample lookups plus a Date custom field; a few records."""
    lookups = copy.deepcopy(SAMPLE_LOOKUPS)
    lookups["custom_field_definitions"].append(DATE_DEF)
    from oppcli.backends.local import LocalStore

    LocalStore.create_store(store_path, lookups=lookups, records=derived_records(3, 1001))
    return store_path


@pytest.mark.parametrize("details", ["", "   ", " two  spaces "])
def test_a_csv_round_trip_keeps_details_of_spaces_or_nothing(run, sample, tmp_path, details):
    run("update", "1001", "--details", details) if details.strip() else None
    if not details.strip():
        path = tmp_path / "set.jsonl"
        path.write_bytes(orjson.dumps({"id": 1001, "details": details}) + b"\n")
        run("import", str(path))
    assert run.json("show", "1001")["details"] == details
    out = tmp_path / "deals.csv"
    run("export", "-o", "csv", "--output-file", str(out))
    r = run("import", str(out), "-o", "json")
    assert {x["action"] for x in orjson.loads(r.stdout)} == {"unchanged"}
    assert run.json("show", "1001")["details"] == details


def test_a_tsv_export_imports_back_unchanged(run, sample, tmp_path):
    run("update", "1001", "--details", "tab\there\nand a line\\n", "--name", "'=not a formula")
    out = tmp_path / "deals.tsv"
    run("export", "-o", "tsv", "--output-file", str(out))
    r = run("import", str(out), "-o", "json")
    assert {x["action"] for x in orjson.loads(r.stdout)} == {"unchanged"}, r.stdout
    r = run("import", "-", "--format", "tsv", "-o", "json", input=out.read_bytes())
    assert {x["action"] for x in orjson.loads(r.stdout)} == {"unchanged"}
    assert run.json("show", "1001")["name"] == "'=not a formula"


def test_a_changed_tsv_row_updates_and_a_bad_one_goes_to_a_tsv_failed_file(run, sample, tmp_path):
    out = tmp_path / "deals.tsv"
    run("export", "-o", "tsv", "--fields", "id,name,monetary_value", "--id", "1001,1002",
        "--output-file", str(out))
    lines = out.read_text().splitlines()
    lines[1] = lines[1].rsplit("\t", 1)[0] + "\t777"
    lines[2] = lines[2].rsplit("\t", 1)[0] + "\tlots"
    out.write_text("\n".join(lines) + "\n")
    r = run("import", str(out), "-o", "json", expect=7)
    assert [x["action"] for x in orjson.loads(r.stdout)] == ["updated", "failed"]
    assert run.json("show", "1001")["monetary_value"] == 777
    failed = (tmp_path / "deals.failed.tsv").read_text().splitlines()
    assert failed[0] == "id\tname\tmonetary_value\toppcli_import_started"
    assert failed[1].split("\t")[2] == "lots"


@pytest.mark.parametrize("date", ["0999-05-01", "5/1/999", "1899-12-31"])
def test_close_dates_before_1900_are_refused(run, sample, date):
    r = run("update", "1001", "--close-date", date, expect=2)
    assert "1900" in r.stderr or "cannot read date" in r.stderr


def test_a_date_custom_field_out_of_range_is_refused_on_the_way_in(run, dated_store, tmp_path):
    body = {"name": "Far", "primary_contact_id": 601,
            "custom_fields": [{"custom_field_definition_id": 4090, "value": 1e20}]}
    path = tmp_path / "far.json"
    path.write_bytes(orjson.dumps(body))
    r = run("create", "--from-json", str(path), expect=2)
    assert "Renewal Date" in r.stderr and "1900" in r.stderr
    run("export", "-o", "csv")  # the nightly export still works


def test_integers_past_2_53_are_kept_exactly(run, sample):
    made = run.json("create", "--name", "Huge", "--primary-contact", "601",
                    "--monetary-value", "9007199254740993")
    assert made["monetary_value"] == 9007199254740993
    assert run.json("show", str(made["id"]))["monetary_value"] == 9007199254740993
    r = run("update", str(made["id"]), "--monetary-value", "99999999999999999999", expect=2)
    assert "too large" in r.stderr


def test_a_multiselect_option_given_twice_is_stored_once(run, sample):
    rec = run.json("update", "1001", "--custom-field", "Competitors=globex,initech,Globex")
    (value,) = [c["value"] for c in rec["custom_fields"]
                if c["custom_field_definition_id"] == 404]
    assert len(value) == len(set(value)) == 2


@pytest.mark.parametrize("args", [["show", "²"], ["delete", "①", "--yes"],
                                  ["search", "--assignee=--5"], ["update", "1001", "--stage=--11"],
                                  ["search", "--custom-field", "²=x"]])
def test_digits_int_cannot_read_are_names_not_crashes(run, sample, args):
    r = run(*args, expect=4)
    assert "unexpected" not in r.stderr


@pytest.mark.parametrize("since", ["1M", "1m", "3mo", "5y"])
def test_an_ambiguous_since_unit_is_refused(run, sample, since):
    r = run("export", "--since", since, expect=2)
    assert "min" in r.stderr and r.stdout == ""


def test_since_in_minutes_is_spelled_min(run, sample):
    run("export", "--since", "90min")


def test_the_installed_oppcli_reads_a_tsv_pipe(tmp_path, store_path):
    build_store(store_path, derived_records(5, 1001))
    exported = subprocess.run([oppcli_exe(), "export", "-o", "tsv"], capture_output=True,
                              check=True, stdin=subprocess.DEVNULL).stdout
    proc = subprocess.run([oppcli_exe(), "import", "-", "-o", "json"], input=exported,
                          capture_output=True)
    assert proc.returncode == 0, proc.stderr
    assert {x["action"] for x in orjson.loads(proc.stdout)} == {"unchanged"}


# ---- Copper's own records: nulls that do not change are not errors; PUTs send only changes ----
def test_import_of_an_unchanged_export_with_null_contact_and_priority(run, copper, tmp_path):
    for rec in list(copper.records.values())[:3]:
        rec["primary_contact_id"] = None
        rec["priority"] = None
    out = tmp_path / "deals.jsonl"
    run("export", "-o", "jsonl", "--output-file", str(out))
    r = run("import", str(out), "--dry-run", "-o", "json")
    assert {x["action"] for x in orjson.loads(r.stdout)} == {"unchanged"}
    r = run("import", str(out), "-o", "json")
    assert {x["action"] for x in orjson.loads(r.stdout)} == {"unchanged"}


def test_a_null_that_would_clear_a_value_is_still_refused(run, sample, tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(orjson.dumps({"id": 1001, "priority": None}) + b"\n")
    r = run("import", str(path), "-o", "json", expect=7)
    assert "cannot be cleared" in orjson.loads(r.stdout)[0]["error"]


def test_an_update_puts_only_the_custom_field_it_changes(run, copper):
    rec = copper.records[1001]
    rec["custom_fields"] = [c for c in rec["custom_fields"]
                            if c["custom_field_definition_id"] != 402]  # no entry for 402
    for c in rec["custom_fields"]:
        if c["custom_field_definition_id"] == 404:
            c["value"] = [4042, 4043]
        if c["custom_field_definition_id"] == 401:
            c["value"] = 4011
    run("update", "1001", "--custom-field", "Region=APAC")
    (put,) = [q for q in copper.requests if q.method == "PUT"]
    sent = put.body["custom_fields"]
    assert [c["custom_field_definition_id"] for c in sent] == [401]
    before = len([q for q in copper.requests if q.method == "PUT"])
    run("update", "1001", "--custom-field", "Competitors=Initech,Globex")  # the same set
    assert len([q for q in copper.requests if q.method == "PUT"]) == before


@pytest.mark.parametrize("args", [["list", "--limit", "9223372036854775808"],
                                  ["search", "--limit", "99999999999999999999"],
                                  ["export", "--overlap", "99999999999999999999"]])
def test_a_number_too_large_for_an_option_is_a_usage_error(run, sample, args):
    r = run(*args, expect=2)
    assert "range" in r.stderr and "unexpected" not in r.stderr
