"""The pure domain modules, without a store or a server: values (dates, numbers, booleans and
tags read and written as documented), query and criteria (predicates, order with missing values
last, the Copper search body) and lookups (names -> ids, ambiguous and unknown names)."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest

from oppcli.domain import fields as F
from oppcli.domain.changes import TagEdit
from oppcli.domain.criteria import SearchOptions, build_query, custom_criterion, sort_options
from oppcli.domain.lookups import Lookups
from oppcli.domain.query import NONE_ID, CustomCriterion, Query, order
from oppcli.domain.sample import SAMPLE_LOOKUPS, sample_records
from oppcli.domain.values import (
    check_date_order,
    check_percent,
    format_close_date,
    normalise_tags,
    parse_bool,
    parse_close_date,
    parse_filter_time,
    parse_int,
    parse_number,
    split_list,
    stored_close_date,
)
from oppcli.errors import ConflictError, NotFoundError, ValidationError

LK = Lookups(SAMPLE_LOOKUPS)
RECORDS = sample_records()


def utc(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp())


# ---- values: dates ------------------------------------------------------------------------------
@pytest.mark.parametrize("text,order_,expected", [
    ("03/04/2026", "MDY", dt.date(2026, 3, 4)),
    ("03/04/2026", "DMY", dt.date(2026, 4, 3)),
    ("3/4/2026", "MDY", dt.date(2026, 3, 4)),
    ("3/4/2026", "DMY", dt.date(2026, 4, 3)),
    ("12/31/2026", "MDY", dt.date(2026, 12, 31)),
    ("31/12/2026", "DMY", dt.date(2026, 12, 31)),
    ("2026-03-04", "MDY", dt.date(2026, 3, 4)),
    ("2026-03-04", "DMY", dt.date(2026, 3, 4)),  # ISO never depends on the order
    ("2026-3-4", "DMY", dt.date(2026, 3, 4)),
    (" 2/29/2028 ", "MDY", dt.date(2028, 2, 29)),  # leap year
])
def test_parse_close_date(text, order_, expected):
    assert parse_close_date(text, order_) == expected


@pytest.mark.parametrize("text,order_", [
    ("2026-02-30", "MDY"), ("2026-13-01", "MDY"), ("2026-00-10", "DMY"), ("13/45/2026", "MDY"),
    ("13/45/2026", "DMY"), ("31/12/2026", "MDY"), ("12/31/2026", "DMY"), ("2/29/2027", "MDY"),
    ("29/2/2027", "DMY"), ("0/1/2026", "MDY"),
])
def test_impossible_dates_are_refused_as_impossible(text, order_):
    with pytest.raises(ValidationError) as info:
        parse_close_date(text, order_)
    assert "impossible date" in str(info.value) and text in str(info.value)


@pytest.mark.parametrize("text", ["tomorrow", "", "2026/03/04", "03-04-2026", "3/4/26", "20260304",
                                  "2026-03-04T10:00"])
def test_unreadable_dates_name_the_accepted_shapes(text):
    with pytest.raises(ValidationError) as info:
        parse_close_date(text, "DMY")
    assert "YYYY-MM-DD" in str(info.value) and "DD/MM/YYYY" in str(info.value)


def test_format_close_date_is_unpadded_in_the_order():
    day = dt.date(2026, 3, 4)
    assert format_close_date(day, "MDY") == "3/4/2026"
    assert format_close_date(day, "DMY") == "4/3/2026"
    for d in (dt.date(2026, 1, 13), dt.date(2026, 12, 1)):
        for o in ("MDY", "DMY"):
            assert parse_close_date(format_close_date(d, o), o) == d


def test_stored_close_date_never_raises():
    assert stored_close_date("1/13/2018") == dt.date(2018, 1, 13)
    assert stored_close_date("13/1/2018", "DMY") == dt.date(2018, 1, 13)
    for bad in (None, "", "13/13/2018", 42, "soon"):
        assert stored_close_date(bad) is None


def test_parse_filter_time():
    assert parse_filter_time("2026-03-04") == utc("2026-03-04T00:00:00")
    assert parse_filter_time("2026-03-04", end_of_day=True) == utc("2026-03-04T23:59:59")
    assert parse_filter_time("2026-03-04T10:30") == utc("2026-03-04T10:30:00")
    assert parse_filter_time("2026-03-04T10:30:00Z") == utc("2026-03-04T10:30:00")
    assert parse_filter_time("2026-03-04T12:30:00+02:00") == utc("2026-03-04T10:30:00")
    for bad in ("yesterday", "2026-02-30", "04/03/2026"):
        with pytest.raises(ValidationError):
            parse_filter_time(bad)


@pytest.mark.parametrize("text,expected", [("MDY", "MDY"), ("dmy", "DMY"), (" DMY ", "DMY"),
                                           ("MM/DD/YYYY", "MDY"), ("dd/mm/yyyy", "DMY")])
def test_check_date_order(text, expected):
    assert check_date_order(text) == expected


def test_check_date_order_refuses_others():
    with pytest.raises(ValidationError, match="MDY"):
        check_date_order("YMD")


# ---- values: numbers, booleans, tags -------------------------------------------------------------
@pytest.mark.parametrize("text,expected", [
    ("42", 42), (" 42 ", 42), ("-7", -7), ("12.5", 12.5), ("1_000", 1000), ("12.0", 12),
    ("0", 0), ("1e3", 1000.0), ("+3", 3),
])
def test_parse_number(text, expected):
    value = parse_number(text, "value")
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("text", ["abc", "", "12k", "1,000", "nan", "inf", "-inf", "0x10", "1 2"])
def test_parse_number_refuses_non_numbers(text):
    with pytest.raises(ValidationError) as info:
        parse_number(text, "monetary_value")
    assert "monetary_value" in str(info.value)


def test_parse_number_keeps_huge_integers_exactly():
    assert parse_number("9007199254740991", "v") == 2**53 - 1
    # (never a float past 2**53, which would change the value: exact up to 64 bits, else refused)
    assert parse_number("9007199254740993", "v") == 9007199254740993
    assert isinstance(parse_number("1e20", "v"), float)


def test_parse_int():
    assert parse_int(" 17 ", "id") == 17 and parse_int("-2", "id") == -2
    for bad in ("1.5", "x", "", "1e3"):
        with pytest.raises(ValidationError):
            parse_int(bad, "id")


@pytest.mark.parametrize("text,expected", [("true", True), ("Yes", True), ("1", True), ("on", True),
                                           ("checked", True), ("false", False), ("NO", False),
                                           ("0", False), ("off", False), ("unchecked", False)])
def test_parse_bool(text, expected):
    assert parse_bool(text, "flag") is expected


def test_parse_bool_refuses_others():
    with pytest.raises(ValidationError):
        parse_bool("maybe", "flag")


def test_check_percent():
    assert check_percent(0) == 0 and check_percent(100) == 100 and check_percent(50.0) == 50
    for bad in (-1, 101, 50.5):
        with pytest.raises(ValidationError):
            check_percent(bad)


def test_normalise_tags_trims_drops_empties_and_case_insensitive_duplicates():
    assert normalise_tags([" Hot ", "hot", "", "  ", "Q3", "q3", "cold", "HOT"]) == ["Hot", "Q3", "cold"]
    assert normalise_tags([]) == []


def test_split_list_flattens_repeats_and_commas():
    assert split_list(["a,b", " c ", "d,,e,", ""]) == ["a", "b", "c", "d", "e"]
    assert split_list(None) == []


def test_tag_edit_removes_case_insensitively_then_adds_without_duplicates():
    edit = TagEdit(add=["new", "ENTERPRISE"], remove=["Q3"])
    assert edit.apply(["enterprise", "q3", "hot"]) == ["enterprise", "hot", "new"]


# ---- query: predicates -----------------------------------------------------------------------------
def matching(query: Query) -> set[int]:
    match = query.compile("MDY")
    return {r["id"] for r in RECORDS if match(r)}


def test_empty_query_matches_everything():
    assert matching(Query()) == {r["id"] for r in RECORDS}
    assert not Query().has_filters()
    assert Query(statuses=["Open"]).has_filters()


@pytest.mark.parametrize("query,predicate", [
    (Query(ids=[1001, 1005, 999]), lambda r: r["id"] in (1001, 1005)),
    (Query(name="pat lee - support plan"), lambda r: r["name"] == "Pat Lee - Support Plan"),
    (Query(name_contains="TOYS"), lambda r: "Toys" in r["name"]),
    (Query(statuses=["Won", "Lost"]), lambda r: r["status"] in ("Won", "Lost")),
    (Query(priorities=["High"]), lambda r: r["priority"] == "High"),
    (Query(assignee_ids=[NONE_ID]), lambda r: r["assignee_id"] is None),
    (Query(assignee_ids=[101, NONE_ID]), lambda r: r["assignee_id"] in (101, None)),
    (Query(source_ids=[NONE_ID]), lambda r: r["customer_source_id"] is None),
    (Query(stage_ids=[11, 22]), lambda r: r["pipeline_stage_id"] in (11, 22)),
    (Query(tags=["HOT", "upsell"]), lambda r: bool({"hot", "upsell"} & set(r["tags"]))),
    (Query(min_value=50000), lambda r: (r["monetary_value"] or -1) >= 50000),
    (Query(max_value=10000), lambda r: r["monetary_value"] is not None and r["monetary_value"] <= 10000),
    (Query(close_min=utc("2026-06-08"), close_max=utc("2026-06-08") + 86399),
     lambda r: r["close_date"] == "6/8/2026"),
    (Query(created_min=utc("2026-02-01"), created_max=utc("2026-02-28T23:59:59")),
     lambda r: utc("2026-02-01") <= r["date_created"] <= utc("2026-02-28T23:59:59")),
    (Query(statuses=["Open"], pipeline_ids=[2], tags=["renewal"]),
     lambda r: r["status"] == "Open" and r["pipeline_id"] == 2 and "renewal" in r["tags"]),
])
def test_predicates(query, predicate):
    expected = {r["id"] for r in RECORDS if predicate(r)}
    assert expected, "the case must select something"
    assert matching(query) == expected


def test_custom_criterion_matching():
    dropdown = CustomCriterion(401, "Dropdown", values=[4011, 4013])
    assert dropdown.matches(4011) and not dropdown.matches(4012) and not dropdown.matches(None)
    multi = CustomCriterion(404, "MultiSelect", values=[4042])
    assert multi.matches([4041, 4042]) and not multi.matches([4041]) and not multi.matches([])
    checkbox = CustomCriterion(403, "Checkbox", values=[False])
    assert checkbox.matches(False) and not checkbox.matches(True)
    assert checkbox.matches(None)  # an unset checkbox is unchecked
    assert not CustomCriterion(403, "Checkbox", values=[True]).matches(None)
    bounds = CustomCriterion(402, "Float", minimum=12, maximum=24)
    assert bounds.matches(12) and bounds.matches(24) and not bounds.matches(36)
    assert not bounds.matches(None) and not bounds.matches("12") and not bounds.matches(True)
    text = CustomCriterion(405, "Text", values=["Champion is the CFO"])
    assert text.matches("champion IS the cfo") and not text.matches("other")


def test_custom_criterion_from_text_only_empty():
    crit = custom_criterion("Region=", LK, "MDY")
    assert crit.matches(None) and crit.matches([])
    assert not crit.matches(4011) and not crit.matches(0)
    assert not custom_criterion("Contract Months=", LK, "MDY").matches(12)


def test_custom_criterion_from_text():
    assert custom_criterion("region = emea, APAC", LK, "MDY").values == [4011, 4013]
    assert custom_criterion("404=4041,Globex", LK, "MDY").values == [4041, 4042]
    assert custom_criterion("Signed NDA=no", LK, "MDY").values == [False]
    ge = custom_criterion("Contract Months>=24", LK, "MDY")
    assert (ge.minimum, ge.maximum) == (24, None)
    eq = custom_criterion("Contract Months=24", LK, "MDY")
    assert (eq.minimum, eq.maximum) == (24, 24)


# ---- query: order ------------------------------------------------------------------------------------
def test_order_ascending_puts_missing_values_last():
    items = [(3, 1, "a"), (None, 2, "b"), (1, 3, "c"), (None, 4, "d"), (3, 5, "e")]
    assert [t[2] for t in order(items, descending=False)] == ["c", "a", "e", "b", "d"]


def test_order_descending_still_puts_missing_values_last():
    items = [(3, 1, "a"), (None, 2, "b"), (1, 3, "c"), (None, 4, "d"), (3, 5, "e")]
    assert [t[2] for t in order(items, descending=True)] == ["e", "a", "c", "d", "b"]


def test_order_with_all_or_no_values_missing():
    assert [t[1] for t in order([(None, 2, 0), (None, 1, 0)], descending=False)] == [1, 2]
    assert order([], descending=True) == []


def test_order_survives_mixed_types():
    items = [("b", 1, 0), (2, 2, 0), (None, 3, 0)]
    assert [t[1] for t in order(items, descending=False)][-1] == 3


def test_sort_value_reads_close_dates_as_dates_and_text_case_insensitively():
    by_close = Query(sort_by="close_date").sort_value("MDY")
    assert by_close({"close_date": "10/8/2026"}) > by_close({"close_date": "2/8/2026"})
    assert by_close({"close_date": None}) is None
    by_name = Query(sort_by="name").sort_value()
    assert by_name({"name": "Zebra"}) > by_name({"name": "aardvark"})


def test_sort_options_defaults():
    assert sort_options(None, None) == ("date_modified", True)
    assert sort_options(None, True) == ("date_modified", False)
    assert sort_options("monetary_value", None) == ("monetary_value", False)
    assert sort_options("close-date", False) == ("close_date", True)
    with pytest.raises(ValidationError, match="sortable fields"):
        sort_options("tags", None)


# ---- query: Copper's search body -------------------------------------------------------------------------
def test_copper_body_paging_and_sort():
    body = Query().to_copper_body(page_number=3, page_size=200)
    assert body == {"page_number": 3, "page_size": 200, "sort_by": "date_modified",
                    "sort_direction": "desc"}
    body = Query(sort_by="monetary_value", descending=False).to_copper_body(1, 50)
    assert body["sort_by"] == "monetary_value" and body["sort_direction"] == "asc"
    assert body["page_size"] == 50
    # Sorts whose meaning in Copper is uncertain are done by the client: Copper pages in
    # date_modified order, ascending, and the client sorts.
    for field in ("pipeline_stage_id", "assignee_id", "status", "priority", "id"):
        q = Query(sort_by=field, descending=True)
        assert q.to_copper_body(1)["sort_by"] == "date_modified"
        assert q.to_copper_body(1)["sort_direction"] == "asc"


def test_copper_body_leaves_no_company_to_the_client():
    q = Query(company_ids=[502, NONE_ID])
    assert "company_ids" not in q.to_copper_body(1)
    assert q.split_for_copper()[1].company_ids == [502, NONE_ID]
    assert Query(company_ids=[502]).to_copper_body(1)["company_ids"] == [502]


@pytest.mark.parametrize("status,status_id", [("Open", 0), ("Won", 1), ("Lost", 2), ("Abandoned", 3)])
def test_copper_body_status_ids(status, status_id):
    assert Query(statuses=[status]).to_copper_body(1)["status_ids"] == [status_id]


def test_copper_body_from_a_full_search():
    opts = SearchOptions(
        name="Acme", name_contains="pilot", ids=["1001,1002"], status=["open", "Lost"],
        priority=["High"], assignee=["Ada Park", "none"], pipeline=["Sales"], stage=["Negotiation"],
        company=["Contoso Ltd"], primary_contact=["Nancy Davolio"], source=["none"],
        loss_reason=["Price"], tag=["hot,q3"], min_value="1000", max_value="50000.5",
        close_after="2026-01-01", close_before="2026-12-31", created_after="2026-02-01",
        created_before="2026-02-28", modified_after="2026-03-01", modified_before="2026-03-31",
        custom_field=["Region=EMEA,APAC", "Signed NDA=true", "Contract Months>=12"])
    body = build_query(opts, LK, "MDY").to_copper_body(page_number=1, page_size=200)
    json.dumps(body, allow_nan=False)  # must be sendable as strict JSON
    assert body["ids"] == [1001, 1002]
    assert body["name"] == "Acme"
    assert "name_contains" not in json.dumps(body) and "pilot" not in json.dumps(body)
    assert body["status_ids"] == [0, 2]
    assert body["assignee_ids"] == [101, NONE_ID]
    assert body["pipeline_ids"] == [1] and body["pipeline_stage_ids"] == [15]
    assert body["company_ids"] == [502] and body["primary_contact_ids"] == [601]
    assert body["customer_source_ids"] == [NONE_ID] and body["loss_reason_ids"] == [301]
    assert body["tags"] == ["hot", "q3"]
    assert "priority_ids" not in body  # undocumented ids: filtered on the client
    assert body["minimum_monetary_value"] == 1000 and body["maximum_monetary_value"] == 50000.5
    assert body["minimum_close_date"] == utc("2026-01-01")
    assert body["maximum_close_date"] == utc("2026-12-31T23:59:59")
    assert body["minimum_created_date"] == utc("2026-02-01")
    assert body["maximum_created_date"] == utc("2026-02-28T23:59:59")
    assert body["minimum_modified_date"] == utc("2026-03-01")
    assert body["maximum_modified_date"] == utc("2026-03-31T23:59:59")
    for key in ("minimum_close_date", "maximum_close_date", "minimum_created_date",
                "maximum_created_date", "minimum_modified_date", "maximum_modified_date"):
        assert type(body[key]) is int, key
    cfs = {c["custom_field_definition_id"]: c for c in body["custom_fields"]}
    assert cfs[401] == {"custom_field_definition_id": 401, "value": [4011, 4013]}
    assert cfs[403] == {"custom_field_definition_id": 403, "value": True}
    assert cfs[402] == {"custom_field_definition_id": 402, "minimum_value": 12}


def test_copper_body_leaves_out_criteria_not_given():
    body = Query(statuses=["Won"]).to_copper_body(1)
    assert set(body) == {"page_number", "page_size", "sort_by", "sort_direction", "status_ids"}


def test_copper_body_leaves_what_copper_cannot_search_to_the_client():
    # "is empty", text custom fields and priorities have no reliable Copper body: the
    # client applies them to each fetched record instead.
    q = Query(priorities=["High"], name_contains="pilot",
              custom=[custom_criterion("Region=", LK, "MDY"),
                      custom_criterion("Contract Months>=12", LK, "MDY"),
                      CustomCriterion(405, "Text", values=["CFO"])])
    body = q.to_copper_body(1)
    json.dumps(body, allow_nan=False)
    assert "priority_ids" not in body
    assert [c["custom_field_definition_id"] for c in body["custom_fields"]] == [402]
    server, client = q.split_for_copper()
    assert server.to_copper_body(1) == body
    assert client.priorities == ["High"] and client.name_contains == "pilot"
    assert [c.definition_id for c in client.custom] == [401, 405]
    check = client.compile()
    assert check({"name": "Pilot x", "priority": "High", "custom_fields": [
        {"custom_field_definition_id": 401, "value": None},
        {"custom_field_definition_id": 405, "value": "cfo"}]})
    assert not check({"name": "Pilot x", "priority": "High", "custom_fields": [
        {"custom_field_definition_id": 401, "value": 4011},
        {"custom_field_definition_id": 405, "value": "cfo"}]})


def test_copper_body_counts_an_unset_checkbox_as_unchecked():
    body = Query(custom=[custom_criterion("Signed NDA=no", LK, "MDY")]).to_copper_body(1)
    assert body["custom_fields"] == [{"custom_field_definition_id": 403, "value": False,
                                      "allow_empty": True}]


# ---- lookups -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("table,text,expected", [
    ("users", "Ada Park", 101), ("users", "ada park", 101), ("users", "  ADA   PARK ", 101),
    ("users", "ben.okafor@example.com", 102), ("users", "BEN.OKAFOR@EXAMPLE.COM", 102),
    ("users", "103", 103), ("pipelines", "renewals", 2), ("customer_sources", "trade show", 203),
    ("loss_reasons", "No Budget", 303), ("companies", "margie's travel", 510),
    ("people", "pat.lee@example.com", 612), ("stages", "Negotiation", 15),
    ("stages", "Sales/Qualified", 11), ("stages", "renewals/qualified", 22),
    ("stages", "RENEWALS / Quote Sent".replace(" / ", "/"), 23),
])
def test_resolve(table, text, expected):
    assert LK.resolve(table, text) == expected


def test_resolve_takes_ids_as_given():
    assert LK.resolve("users", 999) == 999 and LK.resolve("users", "999") == 999


def test_resolve_stage_narrowed_by_pipeline():
    assert LK.resolve("stages", "Qualified", pipeline_ids=[2]) == 22
    assert LK.resolve("stages", "Qualified", pipeline_ids=[1]) == 11


def test_resolve_ambiguous_stage_lists_pipeline_and_stage():
    with pytest.raises(ConflictError) as info:
        LK.resolve("stages", "qualified")
    text = str(info.value)
    assert "Sales/Qualified (id 11)" in text and "Renewals/Qualified (id 22)" in text
    assert "Pipeline/Stage" in text


def test_resolve_ambiguous_name_lists_matches_with_emails():
    data = copy.deepcopy(SAMPLE_LOOKUPS)
    data["users"].append({"id": 105, "name": "ada PARK", "email": "ada2@example.org"})
    lk = Lookups(data)
    with pytest.raises(ConflictError) as info:
        lk.resolve("users", "Ada Park")
    assert "ada.park@example.com" in str(info.value) and "ada2@example.org" in str(info.value)
    assert lk.resolve("users", "ada2@example.org") == 105


def test_resolve_unknown_lists_similar_candidates_first():
    with pytest.raises(NotFoundError) as info:
        LK.resolve("companies", "northwind")
    assert "Northwind Traders (id 501)" in str(info.value)
    assert "Contoso" not in str(info.value)
    with pytest.raises(NotFoundError) as info:
        LK.resolve("users", "Zed")
    assert all(u["name"] in str(info.value) for u in SAMPLE_LOOKUPS["users"])


def test_resolve_unknown_stage_after_narrowing_still_lists_candidates():
    with pytest.raises(NotFoundError) as info:
        LK.resolve("stages", "Renewals/Upcoming", pipeline_ids=[1])
    assert "Sales/Negotiation" in str(info.value)
    with pytest.raises(NotFoundError) as info:
        LK.resolve("stages", "Upsells/Qualified")
    assert "Sales/Qualified" in str(info.value) and "Renewals/Qualified" in str(info.value)


def test_resolve_in_an_empty_table_says_so():
    with pytest.raises(NotFoundError, match="no users"):
        Lookups({}).resolve("users", "Ada")


def test_resolve_empty_name_is_a_validation_error():
    with pytest.raises(ValidationError):
        LK.resolve("users", "  ")


def test_resolve_many_dedupes_in_order():
    assert LK.resolve_many("users", ["Carla Reyes", "101", "carla reyes"]) == [103, 101]


def test_custom_field_by_name_or_id():
    assert LK.custom_field("contract months")["id"] == 402
    assert LK.custom_field("403")["name"] == "Signed NDA"
    with pytest.raises(NotFoundError) as info:
        LK.custom_field("Colour")
    assert "Region (Dropdown)" in str(info.value)
    with pytest.raises(NotFoundError):
        LK.custom_field("999")


def test_custom_field_ambiguous():
    data = copy.deepcopy(SAMPLE_LOOKUPS)
    data["custom_field_definitions"].append({"id": 499, "name": "REGION", "data_type": "String"})
    with pytest.raises(ConflictError, match="give the id"):
        Lookups(data).custom_field("Region")


def test_custom_fields_of_other_entities_are_not_opportunity_fields():
    data = copy.deepcopy(SAMPLE_LOOKUPS)
    data["custom_field_definitions"].append(
        {"id": 498, "name": "Industry", "data_type": "String", "available_on": ["company"]})
    lk = Lookups(data)
    assert 498 not in [d["id"] for d in lk.opportunity_fields()]
    with pytest.raises(NotFoundError):
        lk.custom_field("Industry")


def test_options_by_name_or_id():
    region = LK.custom_field("Region")
    assert LK.option_id(region, "apac") == 4013 and LK.option_id(region, "4012") == 4012
    assert LK.option_name(region, 4011) == "EMEA" and LK.option_name(region, 9) == "9"
    with pytest.raises(ValidationError, match="EMEA, Americas, APAC"):
        LK.option_id(region, "Mars")


def test_default_pipeline_and_first_stage():
    assert LK.default_pipeline()["name"] == "Sales"
    assert LK.first_stage(2)["id"] == 21
    assert LK.name_of("stages", 24) == "Verbal Yes" and LK.name_of("users", None) is None
    no_default = copy.deepcopy(SAMPLE_LOOKUPS)
    for p in no_default["pipelines"]:
        p.pop("is_default", None)
    assert Lookups(no_default).default_pipeline()["id"] == 1  # the first one
    assert Lookups({}).default_pipeline() is None


def test_field_table_is_consistent():
    assert F.FIELD_NAMES[0] == "id" and F.FIELD_NAMES[-1] == "custom_fields"
    assert set(F.REQUIRED) == {"name", "primary_contact_id"}
    assert {f.flag for f in F.SIMPLE_WRITABLE} >= {
        "--name", "--primary-contact-id", "--assignee-id", "--close-date", "--company-id",
        "--customer-source-id", "--details", "--loss-reason-id", "--monetary-value", "--pipeline-id",
        "--pipeline-stage-id", "--priority", "--status", "--win-probability"}
    with pytest.raises(ValidationError) as info:
        F.parse_field_list("id,nope")
    assert "nope" in str(info.value) and "custom_fields" in str(info.value)
