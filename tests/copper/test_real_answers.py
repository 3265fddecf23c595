"""Copper's real answers are read right: the test server answers as real accounts do (error bodies,
and with realistic=True records shaped as recorded ones), and every command gives the same
result against it as against a local store holding the same records; nothing is misread and no
extra field Copper sends is lost or changed on the way.
"""

from __future__ import annotations

import csv
import io

import orjson
import pytest
import requests

from conftest import API_KEY, USER_EMAIL, copper_env
from fakecopper import REAL_LOOKUPS, FakeCopper, real_records, validation_body
from oppcli.domain import fields as F

HEADERS = {"X-PW-AccessToken": API_KEY, "X-PW-Application": "developer_api",
           "X-PW-UserEmail": USER_EMAIL, "Content-Type": "application/json"}
EXTRAS = sorted(F.PASSTHROUGH)
CLOCK = ("date_created", "date_modified")


def exact(value: object) -> bytes:
    """A value as JSON bytes: 250000 and 250000.0 (or "250000.0") are not the same."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


# ---- the test server's error bodies are Copper's ---------------------------------------------------
def test_the_server_words_errors_as_copper_does():
    with FakeCopper(realistic=True, api_key=API_KEY, user_email=USER_EMAIL) as srv:
        http = requests.Session()
        http.headers.update(HEADERS)
        missing = http.get(f"{srv.url}/opportunities/42", timeout=5)
        assert missing.status_code == 404 and missing.json() == {"error": "not_found"}
        blank = http.post(f"{srv.url}/opportunities", json={}, timeout=5)
        assert blank.status_code == 422 and blank.json() == {
            "success": False, "status": 422,
            "message": "Invalid input: Validation errors: Name: can't be blank\n"
                       "Primary contact: can't be blank"}
        unknown = http.post(f"{srv.url}/opportunities/search", json={"pageSize": 20}, timeout=5)
        assert unknown.status_code == 422
        assert unknown.json()["message"].endswith("Base: Unrecognized attributes specified: pageSize")
        total = http.post(f"{srv.url}/opportunities/search", json={"page_size": 1}, timeout=5)
        assert "X-Pw-Total" in total.raw.headers.keys()  # noqa: SIM118 -- the spelling as sent
        assert total.headers["X-PW-TOTAL"] == "24"
        http.close()


# ---- oppcli shows them on one line ------------------------------------------------------------------
def _response(status: int, body: bytes, content_type: str = "application/json") -> requests.Response:
    resp = requests.Response()
    resp.status_code = status
    resp._content = body
    resp.headers["Content-Type"] = content_type
    resp.reason = "Unprocessable Entity"
    return resp


@pytest.mark.parametrize("body,shown", [
    (validation_body("Name: can't be blank", "Primary contact: can't be blank").encode(),
     "Invalid input: Validation errors: Name: can't be blank; Primary contact: can't be blank"),
    (b'{"error": "not_found"}', "not_found"),
    (b'{"message": "a\\r\\n\\n  b\\tc\\u001b[2J"}', "a; b c\\x1b[2J"),
    (b"<html>\n<body>Bad\ngateway</body>\n</html>", "<html>; <body>Bad; gateway</body>; </html>"),
])
def test_error_message_is_one_line(body, shown):
    from oppcli.backends.copper import error_message

    assert error_message(_response(422, body)) == shown


def test_a_422_with_several_problems_is_one_error_line(run, copper):
    copper.fail("/opportunities$", method="POST", status=422,
                body=validation_body("Name: can't be blank", "Monetary value: is not a number",
                                     "Close date: is invalid"))
    r = run("create", "--name", "X", "--primary-contact-id", "601", expect=6)
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.endswith("\n")  # one line, whatever Copper sent
    assert ("Validation errors: Name: can't be blank; Monetary value: is not a number; "
            "Close date: is invalid") in r.stderr
    assert r.stderr.startswith("oppcli: error: Copper rejected create opportunity: Invalid input")


def test_a_404_body_of_copper_s_shape_reads_as_not_found(run, copper):
    copper.fail("/opportunities/1001$", method="PUT", status=404, body='{"error": "not_found"}')
    r = run("update", "1001", "--details", "x", expect=4)
    assert r.stderr == "oppcli: error: no opportunity with id 1001 (deleted meanwhile?)\n"


# ---- realistic records: both backends give the same ------------------------------------------------
@pytest.fixture
def real(run, store_path, monkeypatch):
    """A realistic Copper server, and a local store holding the same records as the Copper
    backend reads them (every field present: what `sync pull` writes)."""
    from oppcli.backends.copper import normalise
    from oppcli.backends.local import LocalStore

    LocalStore.create_store(store_path, lookups=REAL_LOOKUPS,
                            records=[normalise(r) for r in real_records()])
    server = FakeCopper(realistic=True, api_key=API_KEY, user_email=USER_EMAIL)
    with server:
        for key, value in copper_env(server.url).items():
            monkeypatch.setenv(key, value)
        yield server


def both(run, *args: str, expect: int = 0):
    return (run("--backend", "local", *args, expect=expect),
            run("--backend", "copper", *args, expect=expect))


def same(run, *args: str, expect: int = 0) -> str:
    local, remote = both(run, *args, expect=expect)
    assert remote.stdout == local.stdout, f"oppcli {' '.join(args)}"
    assert remote.stderr == local.stderr
    return local.stdout


READS = [
    ["list"],
    ["list", "--sort", "name", "--asc"],
    ["list", "--sort", "monetary_value"],
    ["list", "--sort", "win_probability", "--desc"],
    ["list", "--sort", "priority"],
    ["list", "--sort", "close_date", "--asc"],
    ["search", "--priority", "none"],
    ["search", "--stage", "Sales/Negotiation"],
    ["search", "--stage", "Partnerships/Negotiation"],
    ["search", "--pipeline", "Partnerships", "--status", "open"],
    ["search", "--status", "open", "--loss-reason", "Price"],  # Open, and still a loss reason
    ["search", "--min-value", "200000", "--max-value", "400000"],
    ["search", "--close-after", "2020-01-01", "--close-before", "2020-06-30"],
    ["search", "--custom-field", "Region=EMEA,APAC"],
    ["search", "--custom-field", "Signed NDA=no"],
    ["search", "--custom-field", "Signed NDA=yes"],
    ["search", "--custom-field", "Setup Fee>=1500"],
    ["search", "--custom-field", "Kickoff>=2020-06-01"],
    ["search", "--custom-field", "Products=Training"],
    ["search", "--custom-field", "Products="],
    ["search", "--custom-field", "Headcount<=1240"],
    ["search", "--custom-field", "Discount>=13"],
    ["search", "--custom-field", "PO Number=PO-4410"],
    ["search", "--custom-field", "Proposal=www.example.com/proposals/3"],
    ["search", "--tag", "tag1"],
    ["search", "--name-contains", "keyboards"],
]


@pytest.mark.parametrize("fmt", ["json", "csv"])
@pytest.mark.parametrize("args", READS, ids=" ".join)
def test_reads_are_the_same(run, real, args, fmt):
    out = same(run, *args, "-o", fmt)
    found = len(orjson.loads(out)) if fmt == "json" else len(out.splitlines()) - 1
    assert 0 < found, "a case that finds nothing compares nothing"


def test_a_stage_name_two_pipelines_share_is_ambiguous_on_both(run, real):
    local, remote = both(run, "search", "--stage", "Negotiation", expect=6)
    assert local.stderr == remote.stderr and "Negotiation" in remote.stderr


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_show_is_the_same(run, real, fmt):
    for ident in ("15000001", "15000092", "Globex Corporation - Pilot (7)", "15000079"):
        same(run, "show", ident, "-o", fmt)


def _rows(text: str, fmt: str) -> list:
    if fmt == "csv":
        return sorted(csv.reader(io.StringIO(text)))
    rows = orjson.loads(text) if fmt == "json" else [orjson.loads(x) for x in text.splitlines()]
    return sorted(rows, key=lambda r: r["id"])


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_export_is_the_same(run, real, fmt):
    # Each backend streams in its own order (documented): the same rows, by id.
    local, remote = both(run, "export", "-o", fmt)
    assert _rows(remote.stdout, fmt) == _rows(local.stdout, fmt)
    assert len(_rows(remote.stdout, fmt)) == 24 + (fmt == "csv")


def test_every_extra_and_value_comes_through_exactly(run, real):
    """The records oppcli gives are Copper's: the same value and JSON type for every key Copper
    sent (an int stays an int, a float a float, converted_value a string, leads_converted_from
    its objects, custom fields in the record's own order), and no extra added."""
    given = {r["id"]: r for r in run.json("--backend", "copper", "export")}
    assert set(given) == set(real.records)
    for ident, sent in real.records.items():
        got = given[ident]
        for key, value in sent.items():
            assert exact(got[key]) == exact(value), (ident, key)
        added = set(got) - set(sent)
        assert added <= set(F.FIELD_NAMES), (ident, added)  # only fields, as null
        assert all(got[k] is None for k in added)
    old = given[15000092]  # an older record: no monetary_unit, no date_stage_changed
    assert "monetary_unit" not in old and "date_stage_changed" not in old
    assert isinstance(given[15000014]["monetary_value"], float)
    assert given[15000014]["converted_value"] == "75000.0"
    assert given[15000001]["leads_converted_from"] == [{"lead_id": 7700001,
                                                        "converted_timestamp": 1546297200}]


def test_a_sync_pull_mirror_holds_copper_s_records_unchanged(run, real, tmp_path):
    mirror = tmp_path / "mirror"
    run("--backend", "copper", "--store", str(mirror), "sync", "pull")
    pulled = {r["id"]: r for r in run.json("--backend", "local", "--store", str(mirror), "export")}
    served = {r["id"]: r for r in run.json("--backend", "copper", "export")}
    assert {i: exact(r) for i, r in pulled.items()} == {i: exact(r) for i, r in served.items()}
    same_lookups = run.json("--backend", "local", "--store", str(mirror), "lookups", "stages")
    assert [s["name"] for s in same_lookups].count("Negotiation") == 2


def _masked(text: str) -> dict:
    record = orjson.loads(text)
    for key in CLOCK:
        record[key] = "<clock>"
    return record


@pytest.mark.parametrize("args", [
    ["15000092", "--priority", "High"],  # an older record whose priority is null
    ["15000053", "--details", "Signed in person."],  # details "" before
    ["15000040", "--add-tag", "vip"],
], ids=" ".join)
def test_an_update_of_one_field_is_the_same_and_keeps_every_extra(run, real, args):
    before = dict(real.records)
    local, remote = both(run, "update", *args, "-o", "json")
    assert _masked(remote.stdout) == _masked(local.stdout)
    ident = int(args[0])
    (put,) = real.calls(rf"/opportunities/{ident}$", "PUT")
    field = args[1].lstrip("-").replace("-", "_").replace("add_tag", "tags")
    assert set(put.body) == {field}  # only the field that changes is sent
    after = real.records[ident]
    for key in EXTRAS + ["custom_fields"]:
        assert (key in after) == (key in before[ident]), key
        assert exact(after.get(key)) == exact(before[ident].get(key)), key
    assert {i: exact(r) for i, r in real.records.items() if i != ident} == \
        {i: exact(r) for i, r in before.items() if i != ident}


def test_an_update_of_a_custom_field_changes_only_it(run, real):
    """The same values on both; the order of the custom fields is each backend's own (the local
    store writes them in the definitions' order, Copper keeps the record's)."""
    before = real.records[15000040]
    local, remote = both(run, "update", "15000040", "--custom-field", "Discount=15", "-o", "json")
    by_id = [{cf["custom_field_definition_id"]: exact(cf["value"]) for cf in orjson.loads(out.stdout)[
        "custom_fields"]} for out in (local, remote)]
    assert by_id[0] == by_id[1]
    old = {cf["custom_field_definition_id"]: exact(cf["value"]) for cf in before["custom_fields"]}
    assert by_id[1] == {**old, 126246: b"15"}
    (put,) = real.calls(r"/opportunities/15000040$", "PUT")
    assert put.body == {"custom_fields": [{"custom_field_definition_id": 126246, "value": 15}]}


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_importing_an_export_back_changes_nothing(run, real, tmp_path, fmt):
    before = {i: exact(r) for i, r in real.records.items()}
    local_before = run("--backend", "local", "export", "-o", "jsonl").stdout
    path = tmp_path / f"deals.{fmt}"
    path.write_text(run("--backend", "copper", "export", "-o", fmt).stdout)
    for dry in (["--dry-run"], []):
        local, remote = both(run, "import", str(path), *dry, "-o", "json")
        assert local.stdout == remote.stdout
        actions = orjson.loads(remote.stdout)
        assert len(actions) == 24 and {a["action"] for a in actions} == {"unchanged"}
    assert {c.method for c in real.requests} <= {"GET", "POST"}  # nothing written...
    assert not real.calls(r"/opportunities$", "POST")  # ...nor created
    assert {i: exact(r) for i, r in real.records.items()} == before
    assert run("--backend", "local", "export", "-o", "jsonl").stdout == local_before
