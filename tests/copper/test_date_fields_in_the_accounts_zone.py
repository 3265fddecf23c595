"""Date custom fields are calendar days in the account's time zone (copper.timezone; a local
store's own, in meta.json): shown, compared and written as midnight there, never rewritten
when the day is unchanged; settings it cannot use (a bad time zone, a number that would
overflow, an empty store path) are refused naming themselves, never a crash."""

from __future__ import annotations

import copy

import orjson
import pytest

from conftest import API_KEY, USER_EMAIL, copper_env, derived_records
from fakecopper import FakeCopper
from oppcli.domain.sample import SAMPLE_LOOKUPS

DATE_DEF = {"id": 4090, "name": "Renewal Date", "data_type": "Date",
            "available_on": ["opportunity", "company"], "is_filterable": True}
LA_MIDNIGHT_DEC_4 = 1575446400  # 2019-12-04 08:00 UTC: midnight in Los Angeles


def _lookups() -> dict:
    lookups = copy.deepcopy(SAMPLE_LOOKUPS)
    lookups["custom_field_definitions"].append(DATE_DEF)
    return lookups


def _records(value: int | float | None) -> list[dict]:
    records = derived_records(3, 1001)
    for rec in records:
        rec["custom_fields"] = [*rec["custom_fields"],
                                {"custom_field_definition_id": 4090, "value": value}]
    return records


@pytest.fixture
def la_copper(monkeypatch):
    server = FakeCopper(lookups=_lookups(), records=_records(LA_MIDNIGHT_DEC_4), api_key=API_KEY,
                        user_email=USER_EMAIL)
    with server:
        for key, value in copper_env(server.url, OPPCLI_COPPER_TIMEZONE="America/Los_Angeles").items():
            monkeypatch.setenv(key, value)
        yield server


def _puts(server: FakeCopper) -> list:
    return [q for q in server.requests if q.method == "PUT"]


def _date_cell(run, opp_id: int = 1001) -> str:
    rows = run("show", str(opp_id), "-o", "csv").stdout.splitlines()
    header, cells = rows[0].split(","), rows[1].split(",")
    return dict(zip(header, cells, strict=False))["cf:Renewal Date"]


def test_a_date_is_shown_as_the_day_in_the_accounts_zone(run, la_copper):
    assert _date_cell(run) == "2019-12-04"  # not 2019-12-04T08:00 UTC's day by luck: see below
    la_copper.records[1002]["custom_fields"][-1]["value"] = LA_MIDNIGHT_DEC_4 - 3600
    assert _date_cell(run, 1002) == "2019-12-03"  # 23:00 in Los Angeles on the 3rd


def test_setting_the_day_it_already_holds_sends_nothing(run, la_copper):
    run("update", "1001", "--custom-field", "Renewal Date=2019-12-04")
    assert _puts(la_copper) == []


def test_a_new_day_is_written_as_midnight_in_the_zone(run, la_copper):
    run("update", "1001", "--custom-field", "Renewal Date=2019-12-05")
    (put,) = _puts(la_copper)
    assert put.body["custom_fields"] == [{"custom_field_definition_id": 4090,
                                          "value": LA_MIDNIGHT_DEC_4 + 86400}]


def test_a_csv_round_trip_rewrites_no_date(run, la_copper, tmp_path):
    out = tmp_path / "deals.csv"
    run("export", "-o", "csv", "--output-file", str(out))
    r = run("import", str(out), "-o", "json")
    assert {x["action"] for x in orjson.loads(r.stdout)} == {"unchanged"}
    assert _puts(la_copper) == []


def test_searching_a_day_finds_the_deals_on_that_day_in_the_zone(run, la_copper):
    hits = run.json("search", "--custom-field", "Renewal Date=2019-12-04")
    assert sorted(h["id"] for h in hits) == [1001, 1002, 1003]
    assert run.json("search", "--custom-field", "Renewal Date=2019-12-03") == []


def test_a_date_not_at_midnight_survives_a_csv_round_trip_on_the_local_store(run, store_path,
                                                                             tmp_path):
    from oppcli.backends.local import LocalStore

    LocalStore.create_store(store_path, lookups=_lookups(), records=_records(1772370000))
    before = (store_path / "opportunities.jsonl").read_bytes()
    out = tmp_path / "deals.csv"
    run("export", "-o", "csv", "--output-file", str(out))
    r = run("import", str(out), "-o", "json")
    assert {x["action"] for x in orjson.loads(r.stdout)} == {"unchanged"}
    assert (store_path / "opportunities.jsonl").read_bytes() == before


def test_a_local_store_keeps_its_own_zone(run, store_path, monkeypatch):
    run("init", "--timezone", "Asia/Tokyo")
    meta = orjson.loads((store_path / "meta.json").read_bytes())
    assert meta["timezone"] == "Asia/Tokyo"
    lookups = orjson.loads((store_path / "lookups.json").read_bytes())
    lookups["custom_field_definitions"].append(DATE_DEF)
    lookups.update({k: v for k, v in SAMPLE_LOOKUPS.items() if k != "custom_field_definitions"})
    (store_path / "lookups.json").write_bytes(orjson.dumps(lookups))
    made = run.json("create", "--name", "Tokyo", "--primary-contact", "601",
                    "--custom-field", "Renewal Date=2026-03-01")
    (value,) = [c["value"] for c in made["custom_fields"] if c["custom_field_definition_id"] == 4090]
    assert value == 1772290800  # 2026-03-01T00:00+09:00


def test_a_date_value_out_of_range_in_a_record_never_stops_a_listing(run, store_path):
    from oppcli.backends.local import LocalStore

    LocalStore.create_store(store_path, lookups=_lookups(), records=_records(1e20))
    run("export", "-o", "csv")
    assert "1e+20" in _date_cell(run) or "100000000000000000000" in _date_cell(run)
    run("show", "1001", "-o", "table")


@pytest.mark.parametrize("zone", ["Mars/Olympus", "+25:00", "nowhere"])
def test_a_bad_time_zone_is_refused_where_it_is_set_and_where_it_is_read(run, sample, zone,
                                                                         monkeypatch):
    r = run("config", "set", "copper.timezone", zone, expect=2)
    assert "copper.timezone" in r.stderr or "time zone" in r.stderr
    r = run("init", "--timezone", zone, "--store", str(sample.parent / "new"), expect=2)
    monkeypatch.setenv("OPPCLI_COPPER_TIMEZONE", zone)
    monkeypatch.setenv("OPPCLI_BACKEND", "copper")
    monkeypatch.setenv("COPPER_API_KEY", API_KEY)
    monkeypatch.setenv("COPPER_USER_EMAIL", USER_EMAIL)
    monkeypatch.setenv("OPPCLI_COPPER_URL", "http://127.0.0.1:9/developer_api/v1")
    r = run("list", expect=3)
    assert "OPPCLI_COPPER_TIMEZONE" in r.stderr


@pytest.mark.parametrize("var, value", [("OPPCLI_COPPER_TIMEOUT", "inf"),
                                        ("OPPCLI_COPPER_TIMEOUT", "1e12"),
                                        ("OPPCLI_COPPER_RATE_WINDOW", "inf"),
                                        ("OPPCLI_COPPER_BACKOFF", "1e300")])
def test_a_numeric_setting_that_would_overflow_is_exit_3_naming_it(run, copper, monkeypatch,
                                                                    var, value):
    monkeypatch.setenv(var, value)
    r = run("list", expect=3)
    assert var in r.stderr and "unexpected" not in r.stderr


@pytest.mark.parametrize("key, value", [("copper.timeout", "1e12"), ("copper.timeout", "inf"),
                                        ("copper.rate_window", "inf")])
def test_config_set_refuses_a_numeric_value_that_would_overflow(run, key, value):
    r = run("config", "set", key, value, expect=2)
    assert key in r.stderr


def test_config_set_store_to_nothing_is_refused(run):
    r = run("config", "set", "store", "", expect=2)
    assert "store" in r.stderr
    r = run("config", "set", "store", "   ", expect=2)


def test_dates_that_are_midnights_elsewhere_bring_a_warning_naming_the_offset(run, monkeypatch):
    records = _records(None)
    for i, rec in enumerate(derived_records(12, 2001)):
        rec["custom_fields"] = [*rec["custom_fields"], {"custom_field_definition_id": 4090,
                                                        "value": LA_MIDNIGHT_DEC_4 + 86400 * i}]
        records.append(rec)
    server = FakeCopper(lookups=_lookups(), records=records, api_key=API_KEY,
                        user_email=USER_EMAIL)
    with server:
        for key, value in copper_env(server.url).items():  # copper.timezone left at UTC
            monkeypatch.setenv(key, value)
        r = run("list", "--all", "-o", "csv")  # dates shown as days
        assert r.stderr.count("UTC-08:00") == 1 and "copper.timezone" in r.stderr
        monkeypatch.setenv("OPPCLI_COPPER_TIMEZONE", "America/Los_Angeles")
        r = run("list", "--all", "-o", "csv")
        assert "warning" not in r.stderr
