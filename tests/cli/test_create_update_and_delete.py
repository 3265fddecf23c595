"""create, update and delete through the CLI: every flag, Copper's defaults, names that resolve
(ambiguous ones, names holding commas and slashes), the delete prompt on a terminal, and bad input.

Every refused command must leave the store byte-for-byte as it was, print nothing on stdout and
say what is wrong in one line on stderr; an update that changes nothing writes nothing.
"""

from __future__ import annotations

import copy
import datetime as dt
import shutil
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

import checks
from checks import json_ids, make_store, one_error_line
from oppcli.backends.local import LocalStore
from oppcli.domain import fields as F
from oppcli.domain.sample import SAMPLE_LOOKUPS, sample_records
from ptyterm import answer_a_prompt

RECORDS = {r["id"]: r for r in sample_records()}
NEXT_ID = max(RECORDS) + 1
STORE_FILES = ("opportunities.jsonl", "meta.json", "lookups.json")

# Custom field definitions of the types the sample lacks, for a store that has every type.
EXTRA_DEFINITIONS = [
    {"id": 406, "name": "Website", "data_type": "URL", "available_on": ["opportunity"]},
    {"id": 407, "name": "Code Name", "data_type": "String", "available_on": ["opportunity"]},
    {"id": 408, "name": "Discount", "data_type": "Percentage", "available_on": ["opportunity"]},
    {"id": 409, "name": "Budget", "data_type": "Currency", "available_on": ["opportunity"]},
    {"id": 410, "name": "Renewal Date", "data_type": "Date", "available_on": ["opportunity"]},
    {"id": 411, "name": "Account Notes", "data_type": "Text", "available_on": ["company"]},
]


# ---- fixtures and helpers -------------------------------------------------------------------
@pytest.fixture
def fresh_sample(shared_sample_store: Path, store_path: Path) -> Path:
    """A private copy of the sample store (what `init --sample` writes), without running init:
    for the many parametrized cases below."""
    shutil.copytree(shared_sample_store, store_path)
    return store_path


@pytest.fixture
def typed_store(store_path: Path) -> Path:
    """The sample data plus custom fields of every Copper data type."""
    lookups = copy.deepcopy(SAMPLE_LOOKUPS)
    lookups["custom_field_definitions"] += copy.deepcopy(EXTRA_DEFINITIONS)
    LocalStore.create_store(store_path, lookups=lookups, records=sample_records())
    return store_path


@pytest.fixture
def dupes_store(store_path: Path) -> Path:
    """The sample data plus lookups whose names collide (case-insensitively)."""
    lookups = copy.deepcopy(SAMPLE_LOOKUPS)
    lookups["pipelines"].append({"id": 3, "name": "renewals", "is_revenue": False,
                                 "type": "opportunity",
                                 "stages": [{"id": 31, "name": "Intake", "win_probability": 5}]})
    lookups["users"].append({"id": 105, "name": "ADA PARK", "email": "ada.p@example.org"})
    lookups["custom_field_definitions"].append(
        {"id": 412, "name": "region", "data_type": "String", "available_on": ["opportunity"]})
    LocalStore.create_store(store_path, lookups=lookups, records=sample_records())
    return store_path


def snapshot(store: Path) -> dict[str, bytes]:
    return {name: (store / name).read_bytes() for name in STORE_FILES}


def stored(store: Path) -> dict[int, dict[str, Any]]:
    lines = (store / "opportunities.jsonl").read_bytes().splitlines()
    return {rec["id"]: rec for rec in map(orjson.loads, lines)}


def cf(record: dict[str, Any], definition_id: int) -> Any:
    values = {c["custom_field_definition_id"]: c["value"] for c in record["custom_fields"]}
    return values[definition_id]


def utc_seconds(day: str) -> int:
    return int(dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC).timestamp())


def refused(run: Any, store: Path, *args: str, code: int, input: str | None = None) -> str:
    """Run a command that must fail: exit code, empty stdout, one stderr line, store untouched."""
    before = snapshot(store)
    result = run(*args, input=input, expect=code)
    assert result.stdout == "", f"stdout must stay empty on error: {result.stdout!r}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {result.stderr!r}"
    assert snapshot(store) == before, "a refused command changed the store"
    return lines[0]


def created(run: Any, *args: str, input: str | None = None) -> dict[str, Any]:
    result = run("create", *args, "-o", "json", input=input)
    record = orjson.loads(result.stdout)
    assert isinstance(record, dict)
    assert f"created opportunity {record['id']}" in result.stderr
    return record


def updated(run: Any, *args: str) -> dict[str, Any]:
    result = run("update", *args, "-o", "json")
    record = orjson.loads(result.stdout)
    assert f"updated opportunity {record['id']}" in result.stderr
    return record


# ---- create: Copper's defaults --------------------------------------------------------------
def test_create_minimal_applies_coppers_defaults(run, sample):
    before = int(time.time())
    rec = created(run, "--name", "Acme - Pilot", "--primary-contact", "Nancy Davolio")
    after = int(time.time())
    # Copper's fields in its order, then the read-only extras Copper keeps on a new deal
    assert list(rec) == list(F.FIELD_NAMES) + ["interaction_count", "date_stage_changed",
                                               "date_last_contacted", "date_lead_created"]
    assert rec["id"] == NEXT_ID
    assert rec["name"] == "Acme - Pilot"
    assert rec["status"] == "Open" and rec["priority"] == "None"
    # The default pipeline (Sales), its first stage, and that stage's win probability.
    assert rec["pipeline_id"] == 1 and rec["pipeline_stage_id"] == 11 and rec["win_probability"] == 10
    assert rec["pipeline_is_revenue"] is True and rec["pipeline_type"] == "opportunity"
    # The company of the primary contact, and its name derived.
    assert rec["primary_contact_id"] == 601
    assert rec["company_id"] == 501 and rec["company_name"] == "Northwind Traders"
    assert rec["tags"] == []
    assert rec["custom_fields"] == [{"custom_field_definition_id": d["id"], "value": None}
                                    for d in SAMPLE_LOOKUPS["custom_field_definitions"]]
    for name in ("assignee_id", "close_date", "customer_source_id", "details", "loss_reason_id",
                 "monetary_value"):
        assert rec[name] is None, name
    assert isinstance(rec["date_created"], int) and rec["date_created"] == rec["date_modified"]
    assert before <= rec["date_created"] <= after
    assert stored(sample)[rec["id"]] == rec


def test_create_uses_the_pipelines_first_stage_and_probability(run, sample):
    rec = created(run, "--name", "R", "--primary-contact", "601", "--pipeline", "Renewals")
    assert (rec["pipeline_id"], rec["pipeline_stage_id"], rec["win_probability"]) == (2, 21, 40)


def test_create_takes_pipeline_and_probability_from_the_stage(run, sample):
    rec = created(run, "--name", "R", "--primary-contact", "601", "--stage", "Renewals/Quote Sent")
    assert (rec["pipeline_id"], rec["pipeline_stage_id"], rec["win_probability"]) == (2, 23, 80)


def test_create_keeps_an_explicit_win_probability_of_zero(run, sample):
    rec = created(run, "--name", "R", "--primary-contact", "601", "--win-probability", "0")
    assert rec["win_probability"] == 0


def test_create_contact_without_company_leaves_company_empty(run, sample):
    rec = created(run, "--name", "P", "--primary-contact", "pat.lee@example.com")
    assert rec["primary_contact_id"] == 612
    assert rec["company_id"] is None and rec["company_name"] is None


def test_create_explicit_company_beats_the_contacts_company(run, sample):
    rec = created(run, "--name", "P", "--primary-contact", "Nancy Davolio", "--company", "Contoso Ltd")
    assert rec["company_id"] == 502 and rec["company_name"] == "Contoso Ltd"


def test_create_assigns_increasing_ids_and_never_reuses_a_deleted_one(run, sample):
    a = created(run, "--name", "A", "--primary-contact", "601")
    b = created(run, "--name", "B", "--primary-contact", "601")
    assert (a["id"], b["id"]) == (NEXT_ID, NEXT_ID + 1)
    run("delete", str(b["id"]), "--yes")
    c = created(run, "--name", "C", "--primary-contact", "601")
    assert c["id"] == NEXT_ID + 2


# ---- create: every flag ---------------------------------------------------------------------
def test_create_with_every_field_flag(run, sample):
    rec = created(
        run, "--name", "Full Deal", "--primary-contact-id", "605", "--assignee-id", "102",
        "--close-date", "2026-07-04", "--company-id", "503", "--customer-source-id", "203",
        "--details", "Line one; line two", "--loss-reason-id", "302", "--monetary-value", "12345.67",
        "--pipeline-id", "2", "--pipeline-stage-id", "23", "--priority", "medium", "--status", "lost",
        "--tag", "alpha", "--win-probability", "35")
    expected = {
        "name": "Full Deal", "primary_contact_id": 605, "assignee_id": 102, "close_date": "7/4/2026",
        "company_id": 503, "company_name": "Fabrikam Inc", "customer_source_id": 203,
        "details": "Line one; line two", "loss_reason_id": 302, "monetary_value": 12345.67,
        "pipeline_id": 2, "pipeline_stage_id": 23, "priority": "Medium", "status": "Lost",
        "tags": ["alpha"], "win_probability": 35,
    }
    assert {k: rec[k] for k in expected} == expected
    assert stored(sample)[rec["id"]] == rec
    assert orjson.loads(run("show", str(rec["id"]), "-o", "json").stdout) == rec


@pytest.mark.parametrize("flag,value,field,expected", [
    ("--stage", "Negotiation", "pipeline_stage_id", 15),
    ("--stage", "renewals/qualified", "pipeline_stage_id", 22),
    ("--stage", "14", "pipeline_stage_id", 14),
    ("--pipeline", "renewals", "pipeline_id", 2),
    ("--pipeline", "1", "pipeline_id", 1),
    ("--assignee", "Carla Reyes", "assignee_id", 103),
    ("--assignee", "DEV.RAMAN@example.com", "assignee_id", 104),
    ("--assignee", "101", "assignee_id", 101),
    ("--source", "trade show", "customer_source_id", 203),
    ("--loss-reason", "No Budget", "loss_reason_id", 303),
    ("--company", "Coho Winery", "company_id", 508),
    ("--primary-contact", "janet@fabrikam.example", "primary_contact_id", 603),
    ("--primary-contact", "yoshi latimer", "primary_contact_id", 610),
])
def test_create_name_aliases(run, fresh_sample, flag, value, field, expected):
    args = [flag, value]
    if flag != "--primary-contact":
        args += ["--primary-contact", "601"]
    rec = created(run, "--name", "Alias", *args)
    assert rec[field] == expected
    assert stored(fresh_sample)[rec["id"]][field] == expected


def test_create_stage_name_is_narrowed_by_the_pipeline(run, sample):
    rec = created(run, "--name", "N", "--primary-contact", "601", "--pipeline", "Renewals",
                  "--stage", "Qualified")
    assert (rec["pipeline_id"], rec["pipeline_stage_id"]) == (2, 22)


def test_create_alias_and_id_flag_together_is_a_usage_error(run, sample):
    line = refused(run, sample, "create", "--name", "N", "--primary-contact", "601",
                   "--stage", "Negotiation", "--pipeline-stage-id", "15", code=2)
    assert "--stage" in line and "--pipeline-stage-id" in line


def test_create_tags_repeatable_and_comma_separated(run, sample):
    rec = created(run, "--name", "T", "--primary-contact", "601", "--tag", "a", "--tag", "b, c",
                  "--tag", " A ", "--tag", "d,,")
    assert rec["tags"] == ["a", "b", "c", "d"]


@pytest.mark.parametrize("assignment,definition_id,expected", [
    ("Region=apac", 401, 4013),
    ("401=4012", 401, 4012),
    ("Contract Months=18.5", 402, 18.5),
    ("402=7", 402, 7),
    ("Signed NDA=yes", 403, True),
    ("signed nda=false", 403, False),
    ("Competitors=Globex,initech", 404, [4042, 4043]),
    ("Competitors=Acme CRM", 404, [4041]),
    ("Champion Notes=The CFO, again = yes", 405, "The CFO, again = yes"),
    ("Website=https://acme.example/?a=b", 406, "https://acme.example/?a=b"),
    ("Code Name=Falcon", 407, "Falcon"),
    ("Discount=12.5", 408, 12.5),
    ("Budget=250000", 409, 250000),
    ("Renewal Date=2027-01-31", 410, utc_seconds("2027-01-31")),
    ("Renewal Date=01/31/2027", 410, utc_seconds("2027-01-31")),
    ("Region=", 401, None),
])
def test_create_custom_field_of_every_type(run, typed_store, assignment, definition_id, expected):
    rec = created(run, "--name", "CF", "--primary-contact", "601", "--custom-field", assignment)
    assert cf(rec, definition_id) == expected
    assert type(cf(rec, definition_id)) is type(expected)
    # Every opportunity definition appears once, in definition order; others stay null.
    ids = [c["custom_field_definition_id"] for c in rec["custom_fields"]]
    assert ids == [401, 402, 403, 404, 405, 406, 407, 408, 409, 410]
    assert all(c["value"] is None for c in rec["custom_fields"]
               if c["custom_field_definition_id"] != definition_id)


def test_create_several_custom_fields_at_once(run, typed_store):
    rec = created(run, "--name", "CF", "--primary-contact", "601", "--custom-field", "Region=EMEA",
                  "--custom-field", "Signed NDA=true", "--custom-field", "Budget=9.99")
    assert (cf(rec, 401), cf(rec, 403), cf(rec, 409)) == (4011, True, 9.99)


def test_custom_field_of_another_entity_is_unknown(run, typed_store):
    line = refused(run, typed_store, "create", "--name", "CF", "--primary-contact", "601",
                   "--custom-field", "Account Notes=x", code=4)
    assert "Account Notes" in line


# ---- create --from-json -----------------------------------------------------------------------
def test_create_from_json_file(run, sample, tmp_path):
    doc = {"name": "From File", "primary_contact_id": 602, "monetary_value": 5000,
           "close_date": "2026-12-01", "tags": ["x", "X", "y"], "status": "won",
           "custom_fields": [{"custom_field_definition_id": "Region", "value": "EMEA"},
                             {"custom_field_definition_id": 404, "value": [4041, 4043]}]}
    path = tmp_path / "deal.json"
    path.write_bytes(orjson.dumps(doc))
    rec = created(run, "--from-json", str(path))
    assert rec["name"] == "From File" and rec["primary_contact_id"] == 602
    assert rec["company_id"] == 502 and rec["company_name"] == "Contoso Ltd"
    assert rec["monetary_value"] == 5000 and rec["close_date"] == "12/1/2026"
    assert rec["tags"] == ["x", "y"] and rec["status"] == "Won"
    assert cf(rec, 401) == 4011 and cf(rec, 404) == [4041, 4043]
    assert stored(sample)[rec["id"]] == rec


def test_create_from_json_stdin(run, sample):
    rec = created(run, "--from-json", "-",
                  input='{"name": "From Stdin", "primary_contact_id": 603, "priority": "Low"}')
    assert (rec["name"], rec["primary_contact_id"], rec["priority"]) == ("From Stdin", 603, "Low")


def test_flags_override_the_json_record(run, sample):
    doc = {"name": "JSON name", "primary_contact_id": 603, "monetary_value": 1, "tags": ["json"],
           "priority": "Low", "custom_fields": [{"custom_field_definition_id": 401, "value": 4011}]}
    rec = created(run, "--from-json", "-", "--name", "Flag name", "--monetary-value", "2",
                  "--tag", "flag", "--custom-field", "Region=APAC", input=orjson.dumps(doc).decode())
    assert rec["name"] == "Flag name" and rec["monetary_value"] == 2 and rec["tags"] == ["flag"]
    assert cf(rec, 401) == 4013
    assert rec["priority"] == "Low" and rec["primary_contact_id"] == 603  # not overridden: kept


def test_json_from_show_round_trips_through_create(run, sample):
    """What `show -o json` prints is accepted back; backend-owned fields are ignored."""
    shown = run("show", "1003", "-o", "json").stdout
    rec = created(run, "--from-json", "-", input=shown)
    original = orjson.loads(shown)
    assert rec["id"] == NEXT_ID != original["id"]
    owned = {"id", "date_created", "date_modified",
             # the extras a new deal gets (the sample's records, made before, lack them)
             "interaction_count", "date_stage_changed", "date_last_contacted", "date_lead_created"}
    assert {k: v for k, v in rec.items() if k not in owned} == \
        {k: v for k, v in original.items() if k not in owned}
    assert rec["date_created"] > original["date_created"]


# ---- update -----------------------------------------------------------------------------------
def test_update_changes_only_the_given_field(run, sample):
    before = stored(sample)
    rec = updated(run, "1001", "--monetary-value", "777")
    after = stored(sample)
    assert rec == after[1001]
    assert rec["monetary_value"] == 777
    changed = {k for k in rec if rec[k] != before[1001][k]}
    assert changed == {"monetary_value", "date_modified"}
    assert {i: r for i, r in after.items() if i != 1001} == {i: r for i, r in before.items() if i != 1001}


def test_update_every_plain_field(run, sample):
    rec = updated(run, "1002", "--name", "Renamed", "--assignee", "Dev Raman", "--close-date", "12/31/2026",
                  "--details", "new details", "--monetary-value", "1.5", "--priority", "low",
                  "--status", "Abandoned", "--win-probability", "5", "--source", "Outbound",
                  "--company", "Tailspin Toys", "--primary-contact", "Robert King")
    expected = {"name": "Renamed", "assignee_id": 104, "close_date": "12/31/2026",
                "details": "new details", "monetary_value": 1.5, "priority": "Low",
                "status": "Abandoned", "win_probability": 5, "customer_source_id": 204,
                "company_id": 504, "company_name": "Tailspin Toys", "primary_contact_id": 607}
    assert {k: rec[k] for k in expected} == expected
    assert stored(sample)[1002] == rec


def test_update_by_exact_name(run, sample):
    rec = updated(run, "Contoso Ltd - Analytics Add-on", "--priority", "High")
    assert rec["id"] == 1014 and rec["priority"] == "High"


@pytest.mark.parametrize("field", ["close_date", "close-date", "assignee_id", "details",
                                   "monetary_value", "customer_source_id", "company_id"])
def test_update_clear_sets_null(run, sample, field):
    name = field.replace("-", "_")
    assert RECORDS[1003][name] is not None
    rec = updated(run, "1003", "--clear", field)
    assert rec[name] is None
    assert stored(sample)[1003][name] is None
    if name == "company_id":
        assert rec["company_name"] is None  # derived from company_id


def test_update_clear_tags_and_custom_fields(run, sample):
    rec = updated(run, "1003", "--clear", "tags", "--clear", "custom_fields", "--clear", "details")
    assert rec["tags"] == [] and rec["details"] is None
    assert [c["value"] for c in rec["custom_fields"]] == [None] * 5


@pytest.mark.parametrize("field", ["name", "primary_contact_id", "status", "priority"])
def test_update_clear_of_a_required_field_is_refused(run, sample, field):
    line = refused(run, sample, "update", "1001", "--clear", field, code=2)
    assert field in line and "cannot be cleared" in line


def test_update_clear_of_an_unknown_or_read_only_field_is_refused(run, sample):
    line = refused(run, sample, "update", "1001", "--clear", "bogus", code=2)
    assert "bogus" in line and "close_date" in line
    # The hint lists only fields that can really be cleared.
    assert "primary_contact_id" not in line.split("cleared:")[-1]
    assert "name," not in line.split("cleared:")[-1]
    line = refused(run, sample, "update", "1001", "--clear", "date_created", code=2)
    assert "date_created" in line


def test_update_clear_and_set_the_same_field_is_refused(run, sample):
    refused(run, sample, "update", "1001", "--clear", "details", "--details", "x", code=2)


def test_update_tag_replaces_all_tags(run, sample):
    assert RECORDS[1003]["tags"] == ["enterprise", "q3"]
    rec = updated(run, "1003", "--tag", "new", "--tag", "other,more")
    assert rec["tags"] == ["new", "other", "more"]


def test_update_add_and_remove_tags_edit_the_current_ones(run, sample):
    rec = updated(run, "1003", "--add-tag", "hot", "--add-tag", "ENTERPRISE", "--remove-tag", "Q3")
    assert rec["tags"] == ["enterprise", "hot"]
    rec = updated(run, "1003", "--remove-tag", "not-there,hot")
    assert rec["tags"] == ["enterprise"]


def test_update_tag_with_add_tag_is_refused(run, sample):
    refused(run, sample, "update", "1003", "--tag", "a", "--add-tag", "b", code=2)


def test_update_custom_field_changes_only_that_one(run, sample):
    before = RECORDS[1001]["custom_fields"]
    rec = updated(run, "1001", "--custom-field", "Competitors=Globex")
    assert cf(rec, 404) == [4042]
    assert [c for c in rec["custom_fields"] if c["custom_field_definition_id"] != 404] == \
        [c for c in before if c["custom_field_definition_id"] != 404]
    rec = updated(run, "1001", "--custom-field", "Region=")
    assert cf(rec, 401) is None and cf(rec, 404) == [4042]


def test_date_modified_strictly_advances_and_date_created_stays(run, sample):
    first = updated(run, "1001", "--details", "one")
    second = updated(run, "1001", "--details", "two")
    third = updated(run, "1001", "--details", "three")
    assert RECORDS[1001]["date_modified"] < first["date_modified"] < second["date_modified"] \
        < third["date_modified"]
    assert first["date_created"] == third["date_created"] == RECORDS[1001]["date_created"]


def test_update_moves_the_record_to_the_top_of_list(run, sample):
    updated(run, "1001", "--details", "touched")
    newest = orjson.loads(run("list", "--limit", "1", "-o", "json").stdout)
    assert newest[0]["id"] == 1001


def test_stage_change_brings_its_pipeline(run, sample):
    assert (RECORDS[1001]["pipeline_id"], RECORDS[1001]["pipeline_stage_id"]) == (1, 11)
    rec = updated(run, "1001", "--stage", "Renewals/Verbal Yes")
    assert (rec["pipeline_id"], rec["pipeline_stage_id"]) == (2, 24)
    rec = updated(run, "1001", "--pipeline-stage-id", "14")
    assert (rec["pipeline_id"], rec["pipeline_stage_id"]) == (1, 14)


def test_pipeline_change_moves_to_its_first_stage(run, sample):
    rec = updated(run, "1001", "--pipeline", "Renewals")
    assert (rec["pipeline_id"], rec["pipeline_stage_id"]) == (2, 21)


def test_stage_name_resolves_within_the_records_pipeline(run, sample):
    assert RECORDS[1004]["pipeline_id"] == 2
    rec = updated(run, "1004", "--stage", "Qualified")  # ambiguous overall, not in Renewals
    assert (rec["pipeline_id"], rec["pipeline_stage_id"]) == (2, 22)
    rec = updated(run, "1001", "--stage", "qualified")
    assert (rec["pipeline_id"], rec["pipeline_stage_id"]) == (1, 11)
    rec = updated(run, "1001", "--pipeline", "Renewals", "--stage", "Quote Sent")
    assert (rec["pipeline_id"], rec["pipeline_stage_id"]) == (2, 23)


def test_stage_of_another_pipeline_is_refused(run, sample):
    line = refused(run, sample, "update", "1001", "--pipeline-id", "2", "--pipeline-stage-id", "15",
                   code=2)
    assert "Negotiation" in line and "Renewals" in line
    refused(run, sample, "update", "1001", "--pipeline", "Sales", "--stage", "Verbal Yes", code=4)


def test_update_unknown_id_exits_4(run, sample):
    line = refused(run, sample, "update", "999999", "--status", "Won", code=4)
    assert "999999" in line


def test_update_with_nothing_to_change_exits_2(run, sample):
    line = refused(run, sample, "update", "1001", code=2)
    assert "nothing to change" in line


# A stage or pipeline change takes the new stage's win probability unless one is given; the
# pipeline and stage can be changed but never cleared.
def test_a_stage_change_takes_the_new_stages_probability(run, sample):
    assert (RECORDS[1001]["status"], RECORDS[1001]["pipeline_stage_id"],
            RECORDS[1001]["win_probability"]) == ("Open", 11, 10)
    rec = orjson.loads(run("update", "1001", "--stage", "Sales/Negotiation", "-o", "json").stdout)
    assert (rec["pipeline_stage_id"], rec["win_probability"]) == (15, 90)
    assert stored(sample)[1001]["win_probability"] == 90


def test_a_stage_change_keeps_an_explicit_probability(run, sample):
    assert RECORDS[1002]["pipeline_stage_id"] != 15
    rec = orjson.loads(run("update", "1002", "--stage", "Sales/Negotiation",
                           "--win-probability", "33", "-o", "json").stdout)
    assert (rec["pipeline_stage_id"], rec["win_probability"]) == (15, 33)


def test_a_pipeline_change_moves_to_its_first_stage_and_probability(run, sample):
    assert (RECORDS[1003]["pipeline_id"], RECORDS[1003]["win_probability"]) == (1, 25)
    rec = orjson.loads(run("update", "1003", "--pipeline", "Renewals", "-o", "json").stdout)
    assert (rec["pipeline_id"], rec["pipeline_stage_id"], rec["win_probability"]) == (2, 21, 40)


@pytest.mark.parametrize("field", ["pipeline_id", "pipeline_stage_id"])
def test_pipeline_and_stage_cannot_be_cleared(run, sample, field):
    before = checks.snapshot(sample)
    message = one_error_line(run("update", "1001", "--clear", field, expect=None), 2)
    assert field in message
    assert checks.snapshot(sample) == before


# An update that changes nothing writes nothing: no new date_modified, the store's bytes as they were.
@pytest.mark.parametrize("change", [
    ["--remove-tag", "not-there"],
    ["--status", "Open"],
    ["--priority", "High"],
    ["--monetary-value", "5500"],
    ["--custom-field", "Signed NDA=true"],
    ["--stage", "Sales/Qualified"],
], ids=lambda c: " ".join(c))
def test_an_update_that_changes_nothing_writes_nothing(run, sample, change):
    current = RECORDS[1001]
    assert (current["status"], current["priority"], current["monetary_value"],
            current["custom_fields"][2]["value"], current["pipeline_stage_id"],
            "not-there" in current["tags"]) == ("Open", "High", 5500, True, 11, False)
    before = checks.snapshot(sample)
    rec = orjson.loads(run("update", "1001", *change, "-o", "json").stdout)
    assert rec["date_modified"] == current["date_modified"]
    assert checks.snapshot(sample) == before
    assert stored(sample)[1001]["date_modified"] == current["date_modified"]


# ---- delete -----------------------------------------------------------------------------------
def test_delete_with_yes(run, sample):
    result = run("delete", "1001", "--yes")
    assert orjson.loads(result.stdout) == [{"id": 1001, "is_deleted": True}]
    assert result.stdout.replace("\n", "").replace(" ", "") == '[{"id":1001,"is_deleted":true}]'
    assert "1001" in result.stderr
    left = stored(sample)
    assert 1001 not in left and len(left) == len(RECORDS) - 1
    assert left == {i: r for i, r in RECORDS.items() if i != 1001}
    run("show", "1001", expect=4)


def test_delete_several_with_short_yes(run, sample):
    result = run("delete", "1002", "1005", "1002", "-y", "-o", "json")
    assert orjson.loads(result.stdout) == [{"id": 1002, "is_deleted": True},
                                          {"id": 1005, "is_deleted": True}]
    assert set(RECORDS) - set(stored(sample)) == {1002, 1005}


def test_delete_without_yes_and_without_a_terminal_refuses(run, sample):
    line = refused(run, sample, "delete", "1001", "1002", code=2)
    assert "--yes" in line


def test_delete_dry_run_deletes_nothing(run, sample):
    before = snapshot(sample)
    result = run("delete", "1001", "1002", "--dry-run", "-o", "json")
    assert snapshot(sample) == before
    assert [r["id"] for r in orjson.loads(result.stdout)] == [1001, 1002]
    assert "would delete" in result.stderr and "nothing deleted" in result.stderr


def test_delete_unknown_id_among_several_deletes_none(run, sample):
    line = refused(run, sample, "delete", "1001", "999999", "1002", "--yes", code=4)
    assert "999999" in line


# The delete prompt on a real terminal: only "y" deletes; "n", SIGINT and Ctrl-C delete nothing.
@pytest.mark.parametrize("answer", ["n", "sigint", "ctrl-c"])
def test_declining_or_interrupting_the_delete_prompt_deletes_nothing(sample, answer):
    before = checks.snapshot(sample)
    code, out = answer_a_prompt(["delete", "1001"], answer)
    assert code == (2 if answer == "n" else 130), out
    assert "Traceback" not in out and "deleted 1" not in out, out
    if answer == "n":
        assert "nothing deleted" in out, out
    else:
        assert "aborted" not in out, out
    assert checks.snapshot(sample) == before


def test_confirming_the_delete_prompt_deletes(sample):
    code, out = answer_a_prompt(["delete", "1001"], "y")
    assert code == 0, out
    assert "deleted 1: 1001" in out, out
    assert 1001 not in stored(sample) and len(stored(sample)) == len(RECORDS) - 1


# ---- bad input: exit code, one line, empty stdout, store untouched ------------------------------
C = ["create", "--name", "Bad Deal", "--primary-contact", "601"]
BAD_INPUT: list[tuple[str, list[str], str | None, int, list[str]]] = [
    ("missing name", ["create", "--primary-contact", "601"], None, 2, ["name", "--name"]),
    ("empty name", ["create", "--name", "  ", "--primary-contact", "601"], None, 2, ["name"]),
    ("missing primary contact", ["create", "--name", "X"], None, 2, ["primary_contact"]),
    ("missing both", ["create", "--details", "x"], None, 2, ["name", "primary_contact"]),
    ("unknown status", [*C, "--status", "Pending"], None, 2, ["Pending", "Open, Won, Lost, Abandoned"]),
    ("unknown priority", [*C, "--priority", "Urgent"], None, 2, ["Urgent", "None, Low, Medium, High"]),
    ("win probability above 100", [*C, "--win-probability", "101"], None, 2, ["win_probability", "101"]),
    ("win probability below 0", [*C, "--win-probability", "-1"], None, 2, ["win_probability", "-1"]),
    ("win probability not whole", [*C, "--win-probability", "50.5"], None, 2, ["win_probability"]),
    ("win probability not a number", [*C, "--win-probability", "high"], None, 2, ["win_probability"]),
    ("non-numeric value", [*C, "--monetary-value", "lots"], None, 2, ["monetary_value", "lots"]),
    ("value with a suffix", [*C, "--monetary-value", "12k"], None, 2, ["monetary_value", "12k"]),
    ("infinite value", [*C, "--monetary-value", "inf"], None, 2, ["monetary_value"]),
    ("impossible ISO date", [*C, "--close-date", "2026-02-30"], None, 2, ["2026-02-30"]),
    ("impossible slash date", [*C, "--close-date", "13/45/2026"], None, 2, ["13/45/2026"]),
    ("impossible MDY date", [*C, "--close-date", "02/30/2026"], None, 2, ["02/30/2026"]),
    ("unreadable date", [*C, "--close-date", "next friday"], None, 2, ["next friday"]),
    ("non-numeric id", [*C, "--assignee-id", "ada"], None, 2, ["assignee_id", "ada"]),
    ("unknown stage", [*C, "--stage", "Closing"], None, 4, ["no stage named 'Closing'", "Sales/Negotiation"]),
    ("unknown stage id", [*C, "--pipeline-stage-id", "99"], None, 4, ["99", "Negotiation"]),
    ("ambiguous stage", [*C, "--stage", "Qualified"], None, 6,
     ["Qualified", "Sales/Qualified", "Renewals/Qualified"]),
    ("stage not in pipeline", [*C, "--pipeline", "Sales", "--stage", "Verbal Yes"], None, 4,
     ["Verbal Yes", "Sales/Negotiation"]),
    ("unknown pipeline", [*C, "--pipeline", "Upsells"], None, 4, ["Upsells", "Sales", "Renewals"]),
    ("unknown user", [*C, "--assignee", "Zed Nobody"], None, 4, ["Zed Nobody", "Ada Park"]),
    ("unknown user id", [*C, "--assignee-id", "999"], None, 4, ["999", "Ada Park"]),
    ("unknown contact", [*C[:3], "--primary-contact", "Nobody Atall"], None, 4, ["Nobody Atall"]),
    ("unknown company", [*C, "--company", "Initrode"], None, 4, ["Initrode"]),
    ("unknown source", [*C, "--source", "Billboard"], None, 4, ["Billboard", "Website"]),
    ("unknown loss reason", [*C, "--loss-reason", "Weather"], None, 4, ["Weather", "Price"]),
    ("unknown custom field", [*C, "--custom-field", "Colour=red"], None, 4, ["Colour", "Region"]),
    ("unknown dropdown option", [*C, "--custom-field", "Region=Mars"], None, 2, ["Mars", "EMEA"]),
    ("bad checkbox", [*C, "--custom-field", "Signed NDA=maybe"], None, 2, ["maybe"]),
    ("bad float", [*C, "--custom-field", "Contract Months=ten"], None, 2, ["ten"]),
    ("custom field without =", [*C, "--custom-field", "Region"], None, 2, ["NAME=VALUE"]),
    ("malformed JSON on stdin", ["create", "--from-json", "-"], '{"name": "X",', 2, ["malformed JSON"]),
    ("empty stdin", ["create", "--from-json", "-"], "", 2, ["JSON"]),
    ("JSON array", ["create", "--from-json", "-"], '[{"name": "X", "primary_contact_id": 601}]', 2,
     ["array"]),
    ("JSON unknown key", ["create", "--from-json", "-"],
     '{"name": "X", "primary_contact_id": 601, "colour": "red"}', 2, ["colour"]),
    ("JSON bad value", ["create", "--from-json", "-"],
     '{"name": "X", "primary_contact_id": 601, "win_probability": 300}', 2, ["win_probability"]),
    ("JSON bad status", ["create", "--from-json", "-"],
     '{"name": "X", "primary_contact_id": 601, "status": "Done"}', 2, ["Done", "Open"]),
    ("JSON without a contact", ["create", "--from-json", "-"], '{"name": "X"}', 2, ["primary_contact"]),
    ("JSON file missing", ["create", "--from-json", "/nonexistent/deal.json"], None, 2,
     ["/nonexistent/deal.json"]),
    ("unknown output format", [*C, "-o", "xml"], None, 2, ["xml"]),
    ("unknown --fields", [*C, "--fields", "id,colour"], None, 2, ["colour"]),
    ("update unknown id", ["update", "999999", "--status", "Won"], None, 4, ["999999"]),
    ("update unknown name", ["update", "No Such Deal", "--status", "Won"], None, 4, ["No Such Deal"]),
    ("update unknown status", ["update", "1001", "--status", "Pending"], None, 2, ["Pending", "Won"]),
    ("update impossible date", ["update", "1001", "--close-date", "2026-02-30"], None, 2, ["2026-02-30"]),
    ("update bad probability", ["update", "1001", "--win-probability", "150"], None, 2, ["150"]),
    ("update unknown user", ["update", "1001", "--assignee", "Zed"], None, 4, ["Zed"]),
    ("update unknown custom field", ["update", "1001", "--custom-field", "Colour=red"], None, 4,
     ["Colour"]),
    ("delete unknown id", ["delete", "999999", "--yes"], None, 4, ["999999"]),
]


@pytest.mark.parametrize("args,input,code,needles", [c[1:] for c in BAD_INPUT],
                         ids=[c[0] for c in BAD_INPUT])
def test_bad_input_is_refused_cleanly(run, fresh_sample, args, input, code, needles):
    line = refused(run, fresh_sample, *args, code=code, input=input)
    for needle in needles:
        assert needle in line, (needle, line)


AMBIGUOUS = [
    ("pipeline", ["--pipeline", "Renewals"], ["Renewals (id 2", "renewals (id 3"]),
    ("user", ["--assignee", "ada park"], ["ada.park@example.com", "ada.p@example.org"]),
    ("custom field", ["--custom-field", "Region=EMEA"], ["id 401", "id 412"]),
]


@pytest.mark.parametrize("what,args,needles", AMBIGUOUS, ids=[a[0] for a in AMBIGUOUS])
@pytest.mark.parametrize("command", ["create", "update"])
def test_ambiguous_name_exits_6_listing_candidates(run, dupes_store, what, args, needles, command):
    head = ["create", *C[1:]] if command == "create" else ["update", "1001"]
    line = refused(run, dupes_store, *head, *args, code=6)
    assert "ambiguous" in line
    for needle in needles:
        assert needle in line, (needle, line)


def test_ambiguous_names_resolve_by_id_or_email(run, dupes_store):
    rec = created(run, *C[1:], "--pipeline", "3", "--assignee", "ada.p@example.org",
                  "--custom-field", "401=EMEA", "--custom-field", "412=free text")
    assert (rec["pipeline_id"], rec["pipeline_stage_id"], rec["assignee_id"]) == (3, 31, 105)
    assert cf(rec, 401) == 4011 and cf(rec, 412) == "free text"
    assert rec["pipeline_is_revenue"] is False


# ---- names holding commas and slashes ---------------------------------------------------------
# A company name with a comma resolves whole (a comma between two names still means two), and a
# stage name with a slash resolves, alone or after its pipeline.
@pytest.fixture
def punctuated_store(store_path: Path) -> Path:
    lookups = copy.deepcopy(SAMPLE_LOOKUPS)
    lookups["companies"].append({"id": 511, "name": "Acme, Inc."})
    lookups["pipelines"][0]["stages"].append({"id": 16, "name": "Won/Lost", "win_probability": 100})
    return make_store(store_path, lookups, sample_records())


def test_a_company_name_with_a_comma_resolves_whole(run, punctuated_store):
    created = orjson.loads(run("create", "--name", "Acme - Pilot", "--primary-contact", "Pat Lee",
                               "--company", "Acme, Inc.", "-o", "json").stdout)
    assert created["company_id"] == 511 and created["company_name"] == "Acme, Inc."
    result = run("search", "--company", "Acme, Inc.", "-o", "json")
    assert json_ids(result) == [created["id"]]
    # A comma between two names still means two companies.
    two = run("search", "--company", "Northwind Traders,Contoso Ltd", "--sort", "id", "-o", "json")
    assert json_ids(two) == sorted(i for i, r in RECORDS.items() if r["company_id"] in (501, 502))


def test_a_stage_name_with_a_slash_resolves(run, punctuated_store):
    created = orjson.loads(run("create", "--name", "Slash - Deal", "--primary-contact", "Pat Lee",
                               "--stage", "Won/Lost", "-o", "json").stdout)
    assert created["pipeline_stage_id"] == 16 and created["pipeline_id"] == 1
    for spelling in ("Won/Lost", "Sales/Won/Lost", "sales/won/lost"):
        result = run("search", "--stage", spelling, "-o", "json")
        assert json_ids(result) == [created["id"]], spelling
    message = one_error_line(run("search", "--stage", "Renewals/Negotiation", expect=None), 4)
    for stage in ("Upcoming", "Qualified", "Quote Sent", "Verbal Yes"):
        assert f"Renewals/{stage}" in message, message
    assert "Sales/" not in message, message
