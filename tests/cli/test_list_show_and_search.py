"""list, show and search through the CLI, checked against the sample data computed in Python:
every filter (an unset checkbox counts as false), every sort (priority and status by their rank,
missing values last), limits, and the errors.

Expected results come from `sample_records()` and `SAMPLE_LOOKUPS` filtered here by hand, never
from oppcli's own query code, so a wrong predicate or a wrong order shows up as a failure.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from checks import json_ids, make_store
from oppcli.backends.local import LocalStore
from oppcli.domain import fields as F
from oppcli.domain.sample import SAMPLE_LOOKUPS, sample_records

RECORDS = sample_records()
BY_ID = {r["id"]: r for r in RECORDS}
Record = dict[str, Any]


# ---- helpers: the expected answers, computed independently ----------------------------------
def newest_first(records: list[Record]) -> list[int]:
    """Default order: date_modified newest first (ties: higher id first)."""
    return [r["id"] for r in sorted(records, key=lambda r: (r["date_modified"], r["id"]), reverse=True)]


def ids_of(stdout: str) -> list[int]:
    return [r["id"] for r in orjson.loads(stdout)]


def cf(record: Record, definition_id: int) -> Any:
    for item in record["custom_fields"]:
        if item["custom_field_definition_id"] == definition_id:
            return item["value"]
    return None


def close_day(record: Record) -> dt.date | None:
    if not record["close_date"]:
        return None
    month, day, year = (int(p) for p in record["close_date"].split("/"))
    return dt.date(year, month, day)


def utc(day: str, *, end: bool = False) -> int:
    start = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
    return int(start.timestamp()) + (86399 if end else 0)


def one_line_error(result: Any) -> str:
    assert result.stdout == "", f"stdout must be empty on error, got {result.stdout!r}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected a one-line message, got {result.stderr!r}"
    return lines[0]


def test_shared_store_is_what_init_sample_writes(run, sample, ro_sample):
    assert (sample / "opportunities.jsonl").read_bytes() == \
        (ro_sample / "opportunities.jsonl").read_bytes()
    assert (sample / "lookups.json").read_bytes() == (ro_sample / "lookups.json").read_bytes()


@pytest.fixture
def big_store(store_path: Path) -> Path:
    """130 opportunities: more than a terminal table shows by default (100)."""
    LocalStore.create_store(store_path, lookups=SAMPLE_LOOKUPS, records=sample_records(130))
    return store_path


# ---- list: order ----------------------------------------------------------------------------
def test_list_default_order_is_most_recently_modified_first(run, sample):
    result = run("list", "-o", "json")
    assert ids_of(result.stdout) == newest_first(RECORDS)
    assert result.stderr == ""


def test_list_without_output_flag_writes_json_when_not_a_terminal(run, ro_sample):
    result = run("list")
    assert ids_of(result.stdout) == newest_first(RECORDS)


def test_list_desc_alone_keeps_newest_first_and_asc_alone_gives_oldest_first(run, ro_sample):
    assert ids_of(run("list", "--desc", "-o", "json").stdout) == newest_first(RECORDS)
    assert ids_of(run("list", "--asc", "-o", "json").stdout) == newest_first(RECORDS)[::-1]


def _by_value(descending: bool) -> list[int]:
    present = [r for r in RECORDS if r["monetary_value"] is not None]
    missing = [r for r in RECORDS if r["monetary_value"] is None]
    present.sort(key=lambda r: (r["monetary_value"], r["id"]), reverse=descending)
    missing.sort(key=lambda r: r["id"], reverse=descending)
    return [r["id"] for r in present + missing]


def test_sort_field_alone_is_ascending_with_missing_values_last(run, ro_sample):
    assert any(r["monetary_value"] is None for r in RECORDS)  # the case under test exists
    got = ids_of(run("list", "--sort", "monetary_value", "-o", "json").stdout)
    assert got == _by_value(descending=False)
    assert BY_ID[got[-1]]["monetary_value"] is None


def test_sort_desc_is_descending_with_missing_values_still_last(run, ro_sample):
    got = ids_of(run("list", "--sort", "monetary_value", "--desc", "-o", "json").stdout)
    assert got == _by_value(descending=True)
    assert BY_ID[got[0]]["monetary_value"] == max(r["monetary_value"] or 0 for r in RECORDS)
    assert BY_ID[got[-1]]["monetary_value"] is None


def test_sort_asc_flag_matches_the_default_direction_of_sort(run, ro_sample):
    a = run("list", "--sort", "monetary_value", "--asc", "-o", "json").stdout
    b = run("list", "--sort", "monetary-value", "-o", "json").stdout  # dashes accepted too
    assert ids_of(a) == ids_of(b) == _by_value(descending=False)


def test_sort_close_date_compares_dates_not_strings(run, ro_sample):
    got = ids_of(run("list", "--sort", "close_date", "-o", "json").stdout)
    expected = [r["id"] for r in sorted(RECORDS, key=lambda r: (close_day(r), r["id"]))]
    assert got == expected
    # "10/8/2026" sorts before "2/8/2026" as text; as a date it comes later.
    assert got != [r["id"] for r in sorted(RECORDS, key=lambda r: (r["close_date"], r["id"]))]
    desc = ids_of(run("list", "--sort", "close_date", "--desc", "-o", "json").stdout)
    assert desc == [r["id"] for r in sorted(RECORDS, key=lambda r: (close_day(r), r["id"]),
                                            reverse=True)]


def test_sort_name_is_case_insensitive(run, sample):
    run("create", "--name", "aardvark deal", "--primary-contact", "601")
    run("create", "--name", "Zebra deal", "--primary-contact", "601")
    names = [r["name"] for r in orjson.loads(run("list", "--sort", "name", "-o", "json").stdout)]
    assert names[0] == "aardvark deal" and names[-1] == "Zebra deal"
    assert names == sorted(names, key=str.casefold)


def test_sort_id_ascending_and_descending(run, ro_sample):
    ids = sorted(BY_ID)
    assert ids_of(run("list", "--sort", "id", "-o", "json").stdout) == ids
    assert ids_of(run("list", "--sort", "id", "--desc", "-o", "json").stdout) == ids[::-1]


# Priority and status sort by their rank (None < Low < Medium < High; Open, Won, Lost,
# Abandoned), not alphabetically; a missing priority still sorts last.
@pytest.fixture
def unranked_store(store_path: Path) -> Path:
    """The sample with two deals whose priority is missing (null; absent), as hand edits leave."""
    records = sample_records()
    records[4]["priority"] = None
    del records[5]["priority"]
    return make_store(store_path, copy.deepcopy(SAMPLE_LOOKUPS), records)


def test_sort_by_priority_follows_its_rank(run, unranked_store):
    rank = {"None": 0, "Low": 1, "Medium": 2, "High": 3}
    present = [r["priority"] for r in BY_ID.values()
               if r["id"] not in (1005, 1006)]
    asc = [r.get("priority") for r in orjson.loads(run("list", "--sort", "priority").stdout)]
    assert asc == sorted(present, key=rank.__getitem__) + [None, None]
    assert asc[0] == "None" and asc[-3] == "High"
    desc = [r.get("priority") for r in
            orjson.loads(run("list", "--sort", "priority", "--desc").stdout)]
    assert desc == sorted(present, key=rank.__getitem__, reverse=True) + [None, None]


def test_sort_by_status_follows_its_rank(run, ro_sample):
    statuses = [r["status"] for r in orjson.loads(run("list", "--sort", "status").stdout)]
    order = ["Open", "Won", "Lost", "Abandoned"]
    assert statuses == sorted(statuses, key=order.index)
    assert statuses[0] == "Open" and statuses[-1] == "Abandoned"
    assert set(statuses) == set(order)


@pytest.mark.parametrize("field", ["bogus", "tags", "custom_fields", "details"])
def test_sort_by_unknown_or_unsortable_field_exits_2_listing_sortable_fields(run, ro_sample, field):
    line = one_line_error(run("list", "--sort", field, expect=2))
    assert repr(field) in line
    assert "monetary_value" in line and "close_date" in line


# ---- list: limits ---------------------------------------------------------------------------
def test_limit_is_a_total_cap_on_the_default_order(run, ro_sample):
    assert ids_of(run("list", "--limit", "5", "-o", "json").stdout) == newest_first(RECORDS)[:5]
    assert ids_of(run("list", "-n", "3", "-o", "json").stdout) == newest_first(RECORDS)[:3]


def test_limit_applies_after_sorting(run, ro_sample):
    got = ids_of(run("list", "--sort", "monetary_value", "--desc", "--limit", "4", "-o", "json").stdout)
    assert got == _by_value(descending=True)[:4]


def test_limit_zero_returns_an_empty_array(run, ro_sample):
    result = run("list", "--limit", "0", "-o", "json")
    assert orjson.loads(result.stdout) == []
    assert result.stdout.strip() == "[]"


def test_limit_above_the_count_and_all_return_everything(run, ro_sample):
    assert len(ids_of(run("list", "--limit", "1000", "-o", "json").stdout)) == len(RECORDS)
    assert ids_of(run("list", "--all", "-o", "json").stdout) == newest_first(RECORDS)


def test_negative_limit_is_a_usage_error(run, ro_sample):
    one_line_error(run("list", "--limit", "-1", expect=2))


def test_limit_caps_search_results_too(run, ro_sample):
    expected = newest_first([r for r in RECORDS if r["status"] == "Open"])[:2]
    assert ids_of(run("search", "--status", "Open", "--limit", "2", "-o", "json").stdout) == expected


def _table_ids(stdout: str) -> list[int]:
    return [int(m[1]) for m in re.finditer(r"^\s*(\d{4})\s", stdout, re.M)]


def test_terminal_table_shows_100_rows_and_says_more_match(run, big_store):
    result = run("list", "-o", "table")
    expected = newest_first(sample_records(130))
    assert _table_ids(result.stdout) == expected[:100]
    assert "100 opportunities" in result.stdout
    assert "more match" in result.stdout and "--all" in result.stdout


def test_terminal_table_with_all_shows_every_row_and_no_cap_message(run, big_store):
    result = run("list", "-o", "table", "--all")
    assert len(_table_ids(result.stdout)) == 130
    assert "130 opportunities" in result.stdout
    assert "more match" not in result.stdout


def test_terminal_table_with_limit_shows_that_many_and_no_cap_message(run, big_store):
    result = run("list", "-o", "table", "--limit", "120")
    assert len(_table_ids(result.stdout)) == 120
    assert "more match" not in result.stdout


def test_machine_formats_are_not_capped(run, big_store):
    assert len(ids_of(run("list", "-o", "json").stdout)) == 130
    assert len(run("list", "-o", "jsonl").stdout.splitlines()) == 130


# ---- show -----------------------------------------------------------------------------------
@pytest.mark.parametrize("opp_id", [1001, 1006, 1011, 1012, 1024, 1036])
def test_show_prints_every_field(run, ro_sample, opp_id):
    for record in [BY_ID[opp_id]]:
        shown = orjson.loads(run("show", str(record["id"]), "-o", "json").stdout)
        assert shown == record
        assert list(shown) == list(F.FIELD_NAMES)


def test_show_prints_one_object_not_an_array(run, ro_sample):
    result = run("show", "1001", "-o", "json")
    assert isinstance(orjson.loads(result.stdout), dict)
    assert result.stderr == ""


def test_show_by_exact_name_case_insensitive(run, ro_sample):
    counts = Counter(r["name"] for r in RECORDS)
    unique = next(r for r in RECORDS if counts[r["name"]] == 1)
    for spelling in (unique["name"], unique["name"].upper(), f"  {unique['name'].lower()} "):
        assert orjson.loads(run("show", spelling, "-o", "json").stdout)["id"] == unique["id"]


def test_show_ambiguous_name_exits_6_listing_the_ids(run, ro_sample):
    counts = Counter(r["name"] for r in RECORDS)
    name = next(n for n, c in counts.items() if c > 1)
    line = one_line_error(run("show", name, expect=6))
    for r in RECORDS:
        if r["name"] == name:
            assert str(r["id"]) in line


def test_show_unknown_id_exits_4(run, ro_sample):
    line = one_line_error(run("show", "999999", expect=4))
    assert "999999" in line


def test_show_unknown_name_exits_4(run, ro_sample):
    line = one_line_error(run("show", "No Such Deal", expect=4))
    assert "No Such Deal" in line


# ---- search: every filter -------------------------------------------------------------------
U = {u["name"]: u["id"] for u in SAMPLE_LOOKUPS["users"]}
S = {s["name"]: s["id"] for s in SAMPLE_LOOKUPS["customer_sources"]}
L = {r["name"]: r["id"] for r in SAMPLE_LOOKUPS["loss_reasons"]}
C = {c["name"]: c["id"] for c in SAMPLE_LOOKUPS["companies"]}
P = {p["name"]: p["id"] for p in SAMPLE_LOOKUPS["people"]}
STAGE = {(p["name"], s["name"]): s["id"] for p in SAMPLE_LOOKUPS["pipelines"] for s in p["stages"]}
PIPE = {p["name"]: p["id"] for p in SAMPLE_LOOKUPS["pipelines"]}
REGION = {o["name"]: o["id"] for o in SAMPLE_LOOKUPS["custom_field_definitions"][0]["options"]}
COMPETITOR = {o["name"]: o["id"] for o in SAMPLE_LOOKUPS["custom_field_definitions"][3]["options"]}
UNIQUE_NAME = next(n for n, c in Counter(r["name"] for r in RECORDS).items() if c == 1)

SEARCHES: list[tuple[list[str], Callable[[Record], bool]]] = [
    ([], lambda r: True),
    (["--name", UNIQUE_NAME.upper()], lambda r: r["name"] == UNIQUE_NAME),
    (["--name", "Northwind Traders - Annual Licence"],
     lambda r: r["name"] == "Northwind Traders - Annual Licence"),
    (["--name", "Northwind"], lambda r: False),  # exact, not a substring
    (["--name-contains", "WINERY"], lambda r: "winery" in r["name"].lower()),
    (["--name-contains", "- p"], lambda r: "- p" in r["name"].lower()),
    (["--id", "1001", "--id", "1003,1005"], lambda r: r["id"] in (1001, 1003, 1005)),
    (["--id", "1002,999999"], lambda r: r["id"] == 1002),
    (["--status", "open"], lambda r: r["status"] == "Open"),
    (["--status", "Won,lost"], lambda r: r["status"] in ("Won", "Lost")),
    (["--status", "Abandoned", "--status", "WON"], lambda r: r["status"] in ("Abandoned", "Won")),
    (["--priority", "HIGH"], lambda r: r["priority"] == "High"),
    (["--priority", "none,low"], lambda r: r["priority"] in ("None", "Low")),
    (["--assignee", "Ada Park"], lambda r: r["assignee_id"] == U["Ada Park"]),
    (["--assignee", "ada park"], lambda r: r["assignee_id"] == U["Ada Park"]),
    (["--assignee", "Ben.Okafor@example.com"], lambda r: r["assignee_id"] == U["Ben Okafor"]),
    (["--assignee", str(U["Carla Reyes"])], lambda r: r["assignee_id"] == U["Carla Reyes"]),
    (["--assignee", "none"], lambda r: r["assignee_id"] is None),
    (["--assignee", "Dev Raman,none"], lambda r: r["assignee_id"] in (None, U["Dev Raman"])),
    (["--assignee", "Ada Park", "--assignee", "Carla Reyes"],
     lambda r: r["assignee_id"] in (U["Ada Park"], U["Carla Reyes"])),
    (["--pipeline", "Renewals"], lambda r: r["pipeline_id"] == PIPE["Renewals"]),
    (["--pipeline", "sales"], lambda r: r["pipeline_id"] == PIPE["Sales"]),
    (["--pipeline", "1,2"], lambda r: True),
    (["--stage", "Negotiation"], lambda r: r["pipeline_stage_id"] == STAGE["Sales", "Negotiation"]),
    (["--stage", "Renewals/Qualified"],
     lambda r: r["pipeline_stage_id"] == STAGE["Renewals", "Qualified"]),
    (["--stage", "sales/QUALIFIED"], lambda r: r["pipeline_stage_id"] == STAGE["Sales", "Qualified"]),
    (["--stage", "Qualified", "--pipeline", "Renewals"],
     lambda r: r["pipeline_stage_id"] == STAGE["Renewals", "Qualified"]),
    (["--stage", f"{STAGE['Sales', 'Qualified']},Negotiation"],
     lambda r: r["pipeline_stage_id"] in (STAGE["Sales", "Qualified"], STAGE["Sales", "Negotiation"])),
    (["--company", "Northwind Traders"], lambda r: r["company_id"] == C["Northwind Traders"]),
    (["--company", str(C["Contoso Ltd"])], lambda r: r["company_id"] == C["Contoso Ltd"]),
    (["--company", "none"], lambda r: r["company_id"] is None),
    (["--primary-contact", "Nancy Davolio"], lambda r: r["primary_contact_id"] == P["Nancy Davolio"]),
    (["--primary-contact", "PAT.LEE@example.com"], lambda r: r["primary_contact_id"] == P["Pat Lee"]),
    (["--primary-contact", "603,Maria Anders"],
     lambda r: r["primary_contact_id"] in (603, P["Maria Anders"])),
    (["--source", "Referral"], lambda r: r["customer_source_id"] == S["Referral"]),
    (["--source", "website,Trade Show"],
     lambda r: r["customer_source_id"] in (S["Website"], S["Trade Show"])),
    (["--source", "none"], lambda r: r["customer_source_id"] is None),
    (["--loss-reason", "Competitor"], lambda r: r["loss_reason_id"] == L["Competitor"]),
    (["--loss-reason", "price", "--loss-reason", "TIMING"],
     lambda r: r["loss_reason_id"] in (L["Price"], L["Timing"])),
    (["--loss-reason", "none"], lambda r: r["loss_reason_id"] is None),
    (["--tag", "hot"], lambda r: "hot" in r["tags"]),
    (["--tag", "Q3,renewal"], lambda r: "q3" in r["tags"] or "renewal" in r["tags"]),
    (["--tag", "smb", "--tag", "upsell"], lambda r: "smb" in r["tags"] or "upsell" in r["tags"]),
    (["--min-value", "61000"], lambda r: r["monetary_value"] is not None and r["monetary_value"] >= 61000),
    (["--max-value", "24000"], lambda r: r["monetary_value"] is not None and r["monetary_value"] <= 24000),
    (["--min-value", "42000", "--max-value", "79000"],
     lambda r: r["monetary_value"] is not None and 42000 <= r["monetary_value"] <= 79000),
    (["--close-after", "2026-03-15"], lambda r: close_day(r) >= dt.date(2026, 3, 15)),
    (["--close-before", "2026-03-15"], lambda r: close_day(r) <= dt.date(2026, 3, 15)),
    (["--close-after", "2026-03-15", "--close-before", "2026-08-22"],
     lambda r: dt.date(2026, 3, 15) <= close_day(r) <= dt.date(2026, 8, 22)),
    (["--close-after", "2026-01-01", "--close-before", "2026-01-01"],
     lambda r: close_day(r) == dt.date(2026, 1, 1)),
    (["--created-after", "2026-01-04"], lambda r: r["date_created"] >= utc("2026-01-04")),
    (["--created-before", "2026-01-04"], lambda r: r["date_created"] <= utc("2026-01-04", end=True)),
    (["--created-after", "2026-02-01", "--created-before", "2026-02-28"],
     lambda r: utc("2026-02-01") <= r["date_created"] <= utc("2026-02-28", end=True)),
    (["--modified-after", "2026-03-01"], lambda r: r["date_modified"] >= utc("2026-03-01")),
    (["--modified-before", "2026-01-10"], lambda r: r["date_modified"] <= utc("2026-01-10", end=True)),
    (["--custom-field", "Region=EMEA"], lambda r: cf(r, 401) == REGION["EMEA"]),
    (["--custom-field", "region=emea,APAC"], lambda r: cf(r, 401) in (REGION["EMEA"], REGION["APAC"])),
    (["--custom-field", "401=Americas"], lambda r: cf(r, 401) == REGION["Americas"]),
    (["--custom-field", "Region="], lambda r: cf(r, 401) is None),
    (["--custom-field", "Competitors=Globex"], lambda r: COMPETITOR["Globex"] in (cf(r, 404) or [])),
    (["--custom-field", "Competitors=Acme CRM,Initech"],
     lambda r: bool({COMPETITOR["Acme CRM"], COMPETITOR["Initech"]} & set(cf(r, 404) or []))),
    (["--custom-field", "Competitors="], lambda r: not cf(r, 404)),
    (["--custom-field", "Signed NDA=true"], lambda r: cf(r, 403) is True),
    (["--custom-field", "Signed NDA=no"], lambda r: cf(r, 403) is False),
    (["--custom-field", "Contract Months>=24"], lambda r: cf(r, 402) is not None and cf(r, 402) >= 24),
    (["--custom-field", "Contract Months<=12"], lambda r: cf(r, 402) is not None and cf(r, 402) <= 12),
    (["--custom-field", "Contract Months>=12", "--custom-field", "Contract Months<=24"],
     lambda r: cf(r, 402) is not None and 12 <= cf(r, 402) <= 24),
    (["--custom-field", "Contract Months=24"], lambda r: cf(r, 402) == 24),
    (["--custom-field", "Contract Months="], lambda r: cf(r, 402) is None),
    # Filters are ANDed.
    (["--status", "Open", "--pipeline", "Sales", "--tag", "enterprise", "--min-value", "20000"],
     lambda r: r["status"] == "Open" and r["pipeline_id"] == 1 and "enterprise" in r["tags"]
     and (r["monetary_value"] or 0) >= 20000),
    (["--assignee", "Ada Park", "--custom-field", "Signed NDA=true", "--close-after", "2026-05-01"],
     lambda r: r["assignee_id"] == U["Ada Park"] and cf(r, 403) is True
     and close_day(r) >= dt.date(2026, 5, 1)),
    (["--status", "Lost", "--status", "Won", "--priority", "High,Medium", "--source", "none"],
     lambda r: r["status"] in ("Lost", "Won") and r["priority"] in ("High", "Medium")
     and r["customer_source_id"] is None),
]


@pytest.mark.parametrize("args,predicate", SEARCHES, ids=[" ".join(a) or "no-filter" for a, _ in SEARCHES])
def test_search_filter(run, ro_sample, args, predicate):
    result = run("search", *args, "-o", "json")
    assert result.stderr == ""
    assert ids_of(result.stdout) == newest_first([r for r in RECORDS if predicate(r)])


def test_search_filters_are_not_vacuous():
    """Each filter case above selects a proper, non-empty subset (except the deliberate ones)."""
    for args, predicate in SEARCHES:
        hits = [r for r in RECORDS if predicate(r)]
        if args in ([], ["--name", "Northwind"], ["--pipeline", "1,2"]):
            continue
        assert 0 < len(hits) < len(RECORDS), args


def test_repeated_and_comma_separated_forms_are_equivalent(run, ro_sample):
    pairs = [
        (["--status", "Open", "--status", "Won"], ["--status", "Open,Won"]),
        (["--tag", "hot", "--tag", "q3"], ["--tag", "hot,q3"]),
        (["--assignee", "Ada Park", "--assignee", "none"], ["--assignee", "Ada Park,none"]),
        (["--stage", "Negotiation", "--stage", "Renewals/Upcoming"],
         ["--stage", "Negotiation,Renewals/Upcoming"]),
        (["--id", "1001", "--id", "1002"], ["--id", "1001,1002"]),
        (["--custom-field", "Region=EMEA,APAC"], ["--custom-field", "Region=APAC,EMEA"]),
    ]
    for repeated, commas in pairs:
        a = ids_of(run("search", *repeated, "-o", "json").stdout)
        b = ids_of(run("search", *commas, "-o", "json").stdout)
        assert a == b and a, (repeated, commas)


def test_search_with_no_match_prints_an_empty_array_and_exits_0(run, ro_sample):
    result = run("search", "--status", "Won", "--tag", "no-such-tag", "-o", "json")
    assert orjson.loads(result.stdout) == []


def test_search_sees_records_created_and_updated_since(run, sample):
    run("create", "--name", "Fresh deal", "--primary-contact", "Pat Lee", "--tag", "brand-new")
    run("update", "1001", "--add-tag", "brand-new")
    got = ids_of(run("search", "--tag", "brand-new", "-o", "json").stdout)
    assert sorted(got) == [1001, 1037]


def test_an_unset_checkbox_matches_false_not_true(run, sample):
    fresh = orjson.loads(run("create", "--name", "Fresh", "--primary-contact-id", "601",
                             "-o", "json").stdout)
    nda = {c["custom_field_definition_id"]: c["value"] for c in fresh["custom_fields"]}[403]
    assert nda is None
    checked = sorted(i for i, r in BY_ID.items() if r["custom_fields"][2]["value"] is True)
    unchecked = sorted(i for i, r in BY_ID.items() if r["custom_fields"][2]["value"] is False)
    no = run("search", "--custom-field", "Signed NDA=false", "--sort", "id", "-o", "json")
    assert json_ids(no) == unchecked + [fresh["id"]]
    yes = run("search", "--custom-field", "Signed NDA=true", "--sort", "id", "-o", "json")
    assert json_ids(yes) == checked


# ---- search: errors -------------------------------------------------------------------------
def test_ambiguous_stage_exits_6_listing_the_candidates(run, ro_sample):
    line = one_line_error(run("search", "--stage", "Qualified", expect=6))
    assert "ambiguous" in line
    assert "Sales/Qualified" in line and "Renewals/Qualified" in line
    assert f"id {STAGE['Sales', 'Qualified']}" in line and f"id {STAGE['Renewals', 'Qualified']}" in line


UNKNOWN_NAMES = [
    (["--assignee", "Zed Nobody"], "user", [u["name"] for u in SAMPLE_LOOKUPS["users"]]),
    (["--pipeline", "Upsells"], "pipeline", ["Sales", "Renewals"]),
    (["--stage", "Closing"], "stage", ["Sales/Negotiation", "Renewals/Verbal Yes"]),
    (["--stage", "Renewals/Negotiation"], "stage", ["Renewals/Upcoming"]),
    # Narrowed to nothing (no such pipeline, or the stage is in another pipeline): the message
    # still lists real candidates instead of claiming there are no stages.
    (["--stage", "Upsells/Qualified"], "stage", ["Sales/Qualified", "Renewals/Qualified"]),
    (["--stage", "Negotiation", "--pipeline", "Renewals"], "stage", ["Renewals/Upcoming"]),
    (["--stage", "Renewals/Upcoming", "--pipeline", "Sales"], "stage", ["Sales/Negotiation"]),
    (["--company", "Initrode"], "company", ["Northwind Traders", "Coho Winery"]),
    (["--primary-contact", "Nobody Atall"], "person", ["Nancy Davolio", "Pat Lee"]),
    (["--source", "Billboard"], "customer source", ["Website", "Outbound"]),
    (["--loss-reason", "Weather"], "loss reason", ["Price", "Timing"]),
    (["--custom-field", "Colour=red"], "custom field", ["Region", "Competitors"]),
]


@pytest.mark.parametrize("args,label,candidates", UNKNOWN_NAMES,
                         ids=[" ".join(a) for a, _, _ in UNKNOWN_NAMES])
def test_unknown_name_exits_4_listing_candidates(run, ro_sample, args, label, candidates):
    line = one_line_error(run("search", *args, expect=4))
    assert f"no {label} named" in line
    for c in candidates:
        assert c in line, (c, line)


def test_unknown_name_suggests_similar_names_first(run, ro_sample):
    line = one_line_error(run("search", "--company", "Traders", expect=4))
    assert "Northwind Traders" in line
    assert "Coho Winery" not in line


BAD_VALUES = [
    (["--status", "bogus"], ["bogus", "Open, Won, Lost, Abandoned"]),
    (["--status", "Open,Closed"], ["Closed", "Open, Won, Lost, Abandoned"]),
    (["--priority", "urgent"], ["urgent", "None, Low, Medium, High"]),
    (["--id", "abc"], ["abc"]),
    (["--min-value", "abc"], ["--min-value", "abc"]),
    (["--max-value", "1x"], ["--max-value", "1x"]),
    (["--min-value", "100", "--max-value", "10"], ["value range"]),
    (["--close-after", "2026-02-30"], ["2026-02-30"]),
    (["--close-before", "13/45/2026"], ["13/45/2026"]),
    (["--close-after", "soon"], ["soon"]),
    (["--created-after", "yesterday"], ["yesterday"]),
    (["--created-before", "2026-13-01"], ["2026-13-01"]),
    (["--modified-after", "2026-04-31"], ["2026-04-31"]),
    (["--modified-before", "next week"], ["next week"]),
    (["--custom-field", "Region=Mars"], ["Mars", "EMEA", "Americas", "APAC"]),
    (["--custom-field", "Competitors=Globex,Hooli"], ["Hooli", "Initech"]),
    (["--custom-field", "Signed NDA=maybe"], ["maybe"]),
    (["--custom-field", "Contract Months>=lots"], ["lots"]),
    (["--custom-field", "Region>=2"], ["Region"]),
    (["--custom-field", "Region"], ["NAME=VALUE"]),
    (["--custom-field", "Contract Months>="], ["Contract Months"]),
    (["--limit", "many"], ["many"]),
    (["--bogus-filter", "x"], ["--bogus-filter"]),
]


@pytest.mark.parametrize("args,needles", BAD_VALUES, ids=[" ".join(a) for a, _ in BAD_VALUES])
def test_bad_value_exits_2_with_a_one_line_message(run, ro_sample, args, needles):
    line = one_line_error(run("search", *args, expect=2))
    for needle in needles:
        assert needle in line, (needle, line)


# ---- show finds a record by binary search over the id order ---------------------------------
def test_show_finds_every_id_by_the_id_order_and_falls_back_for_a_hand_edited_file(run, tmp_path):
    store = tmp_path / "bisect"
    records = sample_records(count=600)
    LocalStore.create_store(store, lookups=SAMPLE_LOOKUPS, records=records)
    ids = [r["id"] for r in records]
    run("--store", str(store), "delete", str(ids[300]), str(ids[0]), str(ids[-1]), "--yes")
    gone = {ids[300], ids[0], ids[-1]}
    data = store / "opportunities.jsonl"
    for layout in ("sorted", "hand-edited"):
        if layout == "hand-edited":  # the last lines moved to the top: no longer in id order
            lines = data.read_bytes().splitlines(keepends=True)
            data.write_bytes(b"".join(lines[-50:] + lines[:-50]))
        for opp_id in ids:
            if opp_id in gone:
                run("--store", str(store), "show", str(opp_id), "-o", "json", expect=4)
            else:
                got = orjson.loads(run("--store", str(store), "show", str(opp_id), "-o",
                                       "json").stdout)
                assert got["id"] == opp_id, layout
        run("--store", str(store), "show", str(ids[-1] + 100), "-o", "json", expect=4)


def test_show_reports_a_damaged_line_it_lands_on(run, tmp_path):
    store = tmp_path / "damaged"
    records = sample_records(count=200)
    LocalStore.create_store(store, lookups=SAMPLE_LOOKUPS, records=records)
    data = store / "opportunities.jsonl"
    lines = data.read_bytes().splitlines(keepends=True)
    target = records[120]["id"]
    lines[120] = b'{"id":%d,"name": broken\n' % target
    data.write_bytes(b"".join(lines))
    r = run("--store", str(store), "show", str(target), expect=3)
    assert "line 121" in r.stderr and "corrupt" in r.stderr


@pytest.mark.parametrize("args", [
    ("list",),  # nothing to narrow by: every line parsed, positions counted
    ("search", "--status", "Won", "--sort", "monetary_value", "--desc"),  # narrowed lines
    ("search", "--tag", "enterprise", "--sort", "name"),
])
def test_sorted_output_past_the_kept_bytes_reads_lines_back_by_offset(run, tmp_path,
                                                                      monkeypatch, args):
    """Past KEEP_BYTES a sorted search keeps only where each line is; with tiny chunks and a
    tiny allowance every path (narrowed or not, several chunks) must give what keeping every
    line gives."""
    from oppcli.backends import local

    store = tmp_path / "offsets"
    LocalStore.create_store(store, lookups=SAMPLE_LOOKUPS, records=sample_records(count=900))
    want = run("--store", str(store), *args, "-o", "jsonl").stdout
    monkeypatch.setattr(local.scan, "KEEP_BYTES", 2000)
    monkeypatch.setattr(local.datafile, "CHUNK", 4096)
    got = run("--store", str(store), *args, "-o", "jsonl").stdout
    assert got == want and len(want.splitlines()) > 20


def _order_by_hand(records: list[dict[str, Any]], field: str, desc: bool) -> list[int]:
    """The documented order, computed here: by value then id, records without a value last
    whichever the direction."""
    present = sorted((r for r in records if r.get(field) is not None),
                     key=lambda r: (r[field], r["id"]), reverse=desc)
    missing = sorted((r["id"] for r in records if r.get(field) is None), reverse=desc)
    return [r["id"] for r in present] + missing


def _edited(records: list[dict[str, Any]], field: str, edits: dict[int, Any]
            ) -> list[dict[str, Any]]:
    out = [dict(r) for r in records]
    for index, value in edits.items():
        out[index][field] = value
    return out


# Integer sorts keep each match as one int; a value that does not fit that (a float, a negative
# number, as a hand-edited store may hold) turns what was kept into (value, id, where) triples,
# at the first record, in the middle, or at the last. None is missing, not a value.
SORT_CASES = {
    "date_modified, clean": ("date_modified", {}),
    "date_modified, some missing": ("date_modified", {5: None, 77: None, 250: None}),
    "monetary_value, a float midway": ("monetary_value", {150: 12500.5, 3: None}),
    "monetary_value, a negative first": ("monetary_value", {0: -40, 299: None}),
    "win_probability, a float last": ("win_probability", {299: 55.5, 10: None}),
    "id": ("id", {}),
}


@pytest.mark.parametrize("case", list(SORT_CASES))
@pytest.mark.parametrize("keep", ["kept", "read back"])
def test_integer_sorts_give_the_documented_order(run, tmp_path, monkeypatch, case, keep):
    from oppcli.backends import local

    field, edits = SORT_CASES[case]
    records = _edited(sample_records(count=300), field, edits)
    store = tmp_path / "sorted"
    LocalStore.create_store(store, lookups=SAMPLE_LOOKUPS, records=[])
    (store / "opportunities.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n"
                                                         for r in records))
    if keep == "read back":  # a few lines kept, the rest read back by offset
        monkeypatch.setattr(local.scan, "KEEP_BYTES", 3000)
        monkeypatch.setattr(local.datafile, "CHUNK", 8192)
    for direction, desc in (("--asc", False), ("--desc", True)):
        want = _order_by_hand(records, field, desc)
        got = run("--store", str(store), "list", "--sort", field, direction, "-o", "jsonl",
                  "--fields", "id").stdout.splitlines()
        assert [orjson.loads(x)["id"] for x in got] == want, direction
        first = run("--store", str(store), "list", "--sort", field, direction, "-n", "7",
                    "-o", "json")
        assert [r["id"] for r in orjson.loads(first.stdout)] == want[:7]
        whole = run("--store", str(store), "list", "--sort", field, direction, "-o", "jsonl")
        assert [orjson.loads(x) for x in whole.stdout.splitlines()] == \
            sorted(records, key=lambda r: want.index(r["id"]))
