"""Self-tests of the fake Copper server (tests/fakecopper.py), through real HTTP with requests."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from fakecopper import FakeCopper
from oppcli.domain.sample import SAMPLE_LOOKUPS, sample_records

KEY = "k-test-123"
EMAIL = "ada.park@example.com"
HEADERS = {"X-PW-AccessToken": KEY, "X-PW-Application": "developer_api", "X-PW-UserEmail": EMAIL,
           "Content-Type": "application/json"}


@pytest.fixture
def srv():
    with FakeCopper(lookups=SAMPLE_LOOKUPS, records=sample_records(36), api_key=KEY,
                    user_email=EMAIL) as server:
        yield server


@pytest.fixture
def http():
    with requests.Session() as session:
        session.headers.update(HEADERS)
        yield session


def search(http, srv, **body):
    return http.post(f"{srv.url}/opportunities/search", json=body, timeout=5)


def ids_of(resp) -> list[int]:
    assert resp.status_code == 200, resp.text
    return [r["id"] for r in resp.json()]


def all_ids(srv, predicate) -> list[int]:
    return sorted(i for i, r in srv.records.items() if predicate(r))


# ---- headers and lookups --------------------------------------------------------------------
def test_headers_are_enforced(srv):
    url = f"{srv.url}/users/me"
    assert requests.get(url, headers=HEADERS, timeout=5).json()["email"] == EMAIL
    for name, value, status in (("X-PW-AccessToken", "wrong", 401), ("X-PW-UserEmail", "x@y.z", 401),
                                ("X-PW-Application", "other", 400), ("Content-Type", "text/plain", 400)):
        resp = requests.get(url, headers={**HEADERS, name: value}, timeout=5)
        assert resp.status_code == status, name
        assert resp.json()["success"] is False and resp.json()["status"] == status
    missing = {k: v for k, v in HEADERS.items() if k != "X-PW-AccessToken"}
    resp = requests.get(url, headers=missing, timeout=5)
    assert resp.status_code == 401 and resp.json()["message"] == "API Key and/or Email are invalid"
    upper = requests.get(url, headers={**HEADERS, "X-PW-UserEmail": EMAIL.upper()}, timeout=5)
    assert upper.status_code == 200


def test_lookups_and_unknown_paths(srv, http):
    pipelines = http.get(f"{srv.url}/pipelines").json()
    assert pipelines[0]["is_default"] is True and pipelines[0]["stages"][0] == \
        {"id": 11, "name": "Qualified", "win_probability": 10}
    stages = http.get(f"{srv.url}/pipeline_stages/pipeline/2").json()
    assert [s["id"] for s in stages] == [21, 22, 23, 24] and stages[0]["pipeline_id"] == 2
    assert len(http.get(f"{srv.url}/pipeline_stages").json()) == 9
    assert http.get(f"{srv.url}/custom_field_definitions").json()[0]["name"] == "Region"
    users = http.post(f"{srv.url}/users/search", json={"page_size": 3, "page_number": 2})
    assert [u["id"] for u in users.json()] == [104] and users.headers["X-PW-TOTAL"] == "4"
    companies = http.post(f"{srv.url}/companies/search", json={"name": "WORLD"}).json()
    assert [c["id"] for c in companies] == [505]
    people = http.post(f"{srv.url}/people/search", json={"name": "nancy"}).json()
    assert people == [{"id": 601, "name": "Nancy Davolio",
                       "emails": [{"email": "nancy@northwind.example", "category": "work"}],
                       "company_id": 501}]
    by_email = http.post(f"{srv.url}/people/fetch_by_email", json={"email": "Pat.Lee@example.com"})
    assert by_email.json()["id"] == 612
    assert http.post(f"{srv.url}/people/fetch_by_email", json={"email": "no@one"}).status_code == 404
    assert http.post(f"{srv.url}/pipeline_stages/search", json={}).status_code == 401
    assert http.get(f"{srv.url}/nothing/here").status_code == 404


# ---- search -------------------------------------------------------------------------------
def test_page_size_limits_and_unknown_keys(srv, http):
    for size in (201, 0):
        resp = search(http, srv, page_size=size)
        assert resp.status_code == 422 and "page_size" in resp.json()["message"]
    for body in ({"priority_ids": [1]}, {"status": "Open"}, {"sort_by": "colour"}):
        assert search(http, srv, **body).status_code == 422
    assert search(http, srv, priority_ids=[1]).json()["message"] == \
        "Invalid input: Validation errors: Base: Unrecognized attributes specified: priority_ids"
    assert search(http, srv, assignee_ids=["101"]).status_code == 422  # strings, not ids
    assert http.post(f"{srv.url}/opportunities/search", data="{bad", timeout=5).status_code == 400


def test_paging_stops_with_a_short_page_and_total(srv, http):
    seen: list[int] = []
    page = 1
    while True:
        resp = search(http, srv, page_size=10, page_number=page, sort_by="date_modified")
        assert resp.headers["X-PW-TOTAL"] == "36"
        seen += ids_of(resp)
        if len(resp.json()) < 10:
            break
        page += 1
    assert page == 4 and sorted(seen) == sorted(srv.records)
    assert len(seen) == len(set(seen))
    assert ids_of(search(http, srv))[:3] == [r["id"] for r in sorted(
        srv.records.values(), key=lambda r: (r["name"].casefold(), r["id"]))][:3]  # default: name, 20


def test_search_filters(srv, http):
    big = 200

    def check(body, predicate):
        resp = search(http, srv, page_size=big, sort_by="id", **body)
        assert sorted(ids_of(resp)) == all_ids(srv, predicate), body
        assert resp.headers["X-PW-TOTAL"] == str(len(all_ids(srv, predicate)))
        return resp

    check({"status_ids": [1, 3]}, lambda r: r["status"] in ("Won", "Abandoned"))
    check({"tags": ["HOT", "q3"]}, lambda r: {"hot", "q3"} & set(r["tags"]))
    check({"assignee_ids": [-2]}, lambda r: r["assignee_id"] is None)
    check({"assignee_ids": [-2, 101]}, lambda r: r["assignee_id"] in (None, 101))
    check({"company_ids": [-2]}, lambda r: r["company_id"] is None)
    check({"customer_source_ids": [-2]}, lambda r: r["customer_source_id"] is None)
    check({"minimum_monetary_value": 60000},
          lambda r: r["monetary_value"] is not None and r["monetary_value"] >= 60000)
    # 2026-03-01 .. 2026-06-30 at midnight UTC, inclusive; close dates are M/D/YYYY
    lo, hi = 1772323200, 1782777600

    def in_range(r):
        m, d, y = map(int, r["close_date"].split("/"))
        return (y, 3, 1) <= (y, m, d) <= (y, 6, 30)
    resp = check({"minimum_close_date": lo, "maximum_close_date": hi}, in_range)
    assert resp.json()
    check({"custom_fields": [{"custom_field_definition_id": 401, "value": [4011]}]},
          lambda r: r["custom_fields"][0]["value"] == 4011)
    check({"custom_fields": [{"custom_field_definition_id": 404, "value": [4043]}]},
          lambda r: 4043 in r["custom_fields"][3]["value"])
    check({"custom_fields": [{"custom_field_definition_id": 403, "value": False}]},
          lambda r: not r["custom_fields"][2]["value"])
    check({"custom_fields": [{"custom_field_definition_id": 402, "minimum_value": 24}]},
          lambda r: (r["custom_fields"][1]["value"] or 0) >= 24)
    check({"custom_fields": [{"custom_field_definition_id": 401, "value": [4011], "allow_empty": True}]},
          lambda r: r["custom_fields"][0]["value"] in (4011, None))
    wanted = srv.records[1005]["name"]
    check({"name": wanted.upper()}, lambda r: r["name"] == wanted)
    assert search(http, srv, custom_fields=[{"custom_field_definition_id": 405, "value": ["x"]}]
                  ).status_code == 422  # text fields cannot be searched


def test_sort_puts_missing_values_lowest_as_copper_does(srv, http):
    """Like real Copper: deals without a value first ascending, last descending."""
    asc = ids_of(search(http, srv, page_size=200, sort_by="monetary_value"))
    desc = ids_of(search(http, srv, page_size=200, sort_by="monetary_value", sort_direction="desc"))
    missing = sorted(i for i, r in srv.records.items() if r["monetary_value"] is None)
    assert missing and asc[:len(missing)] == missing and desc[-len(missing):] == missing[::-1]
    assert asc == desc[::-1]
    values = [srv.records[i]["monetary_value"] for i in asc[len(missing):]]
    assert values == sorted(values)
    prio = ids_of(search(http, srv, page_size=200, sort_by="priority"))
    ranks = ["None", "Low", "Medium", "High"]
    assert [ranks.index(srv.records[i]["priority"]) for i in prio] == sorted(
        ranks.index(r["priority"]) for r in srv.records.values())


def test_result_window_cuts_pages(http):
    with FakeCopper(SAMPLE_LOOKUPS, sample_records(36), window=25) as small:
        first = search(http, small, page_size=20, page_number=1)
        second = search(http, small, page_size=20, page_number=2)
        third = search(http, small, page_size=20, page_number=3)
        assert len(first.json()) == 20 and len(second.json()) == 5 and third.json() == []
        assert second.headers["X-PW-TOTAL"] == third.headers["X-PW-TOTAL"] == "36"
        assert search(http, small, page_size=25, page_number=2).json() == []


# ---- writes -------------------------------------------------------------------------------
def test_create_fills_defaults(srv, http):
    before = time.time()
    resp = http.post(f"{srv.url}/opportunities", json={"name": "New deal", "primary_contact_id": 602,
                                                       "id": 5, "company_name": "ignored"})
    assert resp.status_code == 200
    rec = resp.json()
    assert rec["id"] == 1037 and rec == srv.records[1037]
    assert list(rec)[:3] == ["id", "name", "assignee_id"]
    assert (rec["status"], rec["priority"], rec["tags"]) == ("Open", "None", [])
    assert (rec["pipeline_id"], rec["pipeline_stage_id"], rec["win_probability"]) == (1, 11, 10)
    assert (rec["company_id"], rec["company_name"]) == (502, "Contoso Ltd")
    assert (rec["pipeline_is_revenue"], rec["pipeline_type"]) == (True, "opportunity")
    assert rec["custom_fields"] == [{"custom_field_definition_id": i, "value": None}
                                    for i in (401, 402, 403, 404, 405)]
    assert before - 1 <= rec["date_created"] == rec["date_modified"] <= time.time()
    staged = http.post(f"{srv.url}/opportunities",
                       json={"name": "R", "primary_contact_id": 612, "pipeline_stage_id": 23}).json()
    assert (staged["pipeline_id"], staged["win_probability"], staged["company_id"]) == (2, 80, None)
    # ids are never reused, even after deleting the highest
    assert http.delete(f"{srv.url}/opportunities/{staged['id']}").json() == \
        {"id": staged["id"], "is_deleted": True}
    again = http.post(f"{srv.url}/opportunities", json={"name": "S", "primary_contact_id": 601})
    assert again.json()["id"] == staged["id"] + 1


@pytest.mark.parametrize("body, word", [
    ({"primary_contact_id": 601}, "Name"),
    ({"name": "x"}, "Primary contact"),
    ({"name": "x", "primary_contact_id": 601, "status": "Pending"}, "status"),
    ({"name": "x", "primary_contact_id": 601, "priority": "Urgent"}, "priority"),
    ({"name": "x", "primary_contact_id": 601, "pipeline_stage_id": 999}, "pipeline_stage_id"),
    ({"name": "x", "primary_contact_id": 601, "assignee_id": 999}, "assignee_id"),
    ({"name": "x", "primary_contact_id": 601, "pipeline_id": 1, "pipeline_stage_id": 21}, "pipeline"),
    ({"name": "x", "primary_contact_id": 601, "close_date": "2026-03-01"}, "close_date"),
])
def test_create_validation(srv, http, body, word):
    resp = http.post(f"{srv.url}/opportunities", json=body)
    assert resp.status_code == 422 and word in resp.json()["message"]
    assert len(srv.records) == 36


def test_update_delete(srv, http):
    url = f"{srv.url}/opportunities/1001"
    old = srv.records[1001]
    resp = http.put(url, json={"details": None, "tags": ["x"], "date_created": 1,
                               "custom_fields": [{"custom_field_definition_id": 402, "value": 99}]})
    assert resp.status_code == 200
    rec = resp.json()
    assert rec["details"] is None and rec["tags"] == ["x"] and rec["date_created"] == old["date_created"]
    cfs = {c["custom_field_definition_id"]: c["value"] for c in rec["custom_fields"]}
    old_cfs = {c["custom_field_definition_id"]: c["value"] for c in old["custom_fields"]}
    assert cfs == {**old_cfs, 402: 99}
    assert rec["date_modified"] > old["date_modified"] and rec["name"] == old["name"]
    moved = http.put(url, json={"pipeline_stage_id": 22}).json()
    assert (moved["pipeline_id"], moved["win_probability"]) == (2, 60)
    company = http.put(url, json={"company_id": None}).json()
    assert company["company_name"] is None
    assert http.put(url, json={"status": "Done"}).status_code == 422
    assert http.put(f"{srv.url}/opportunities/9999", json={"details": "x"}).status_code == 404
    assert http.delete(url).status_code == 200 and 1001 not in srv.records
    missing = http.get(url)
    assert missing.status_code == 404 and missing.json() == {"error": "not_found"}
    assert http.delete(url).status_code == 404


# ---- rate limit and faults ----------------------------------------------------------------
def test_rate_limit(srv, http):
    now = [1000.0]  # a fake clock: a loaded machine cannot stretch the requests past the window
    srv.clock = lambda: now[0]
    srv.set_rate_limit(3, 0.3)
    codes = [http.get(f"{srv.url}/users/me").status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    assert [r.status for r in srv.requests[-5:]] == codes
    now[0] += 0.29
    last = http.get(f"{srv.url}/users/me")
    assert last.json() == {"message": "Rate limit exceeded"} and "Retry-After" not in last.headers
    now[0] += 0.02  # 0.31 s after the three admitted: the window has rolled past them
    assert http.get(f"{srv.url}/users/me").status_code == 200


def test_fault_status_with_retry_after(srv, http):
    srv.fail(r"/opportunities/search$", status=503, retry_after=2, times=2)
    codes = [search(http, srv).status_code for _ in range(3)]
    assert codes == [503, 503, 200]
    srv.fail(method="GET", status=429, retry_after=1)
    resp = http.get(f"{srv.url}/users/me")
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "1"


def test_fault_drop_truncate_content_type(srv, http):
    srv.fail(drop=True)
    with pytest.raises(requests.ConnectionError):
        http.get(f"{srv.url}/opportunities/1001")
    assert srv.requests[-1].status is None
    srv.fail(truncate=True)
    resp = http.get(f"{srv.url}/opportunities/1001")
    assert resp.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(resp.content)
    srv.fail(content_type="text/html", body="<html>Bad gateway</html>", status=502)
    resp = http.get(f"{srv.url}/opportunities/1001")
    assert resp.status_code == 502 and resp.headers["Content-Type"] == "text/html"
    assert http.get(f"{srv.url}/opportunities/1001").json()["id"] == 1001  # rules used up


def test_fault_latency_does_not_serialize(srv):
    rule = srv.fail(latency=1.5)  # long enough that a loaded machine's delays cannot hide it
    slow = requests.Session()
    slow.headers.update(HEADERS)
    t0 = time.monotonic()
    result = {}
    thread = threading.Thread(target=lambda: result.update(r=slow.get(f"{srv.url}/users/me")))
    thread.start()
    # The slow request has taken its latency rule (times=1) before the fast one is sent.
    deadline = time.monotonic() + 10
    while rule.times != 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    fast = requests.get(f"{srv.url}/users/me", headers=HEADERS, timeout=5)
    slow_still_running = thread.is_alive()
    thread.join()
    assert fast.status_code == 200 and slow_still_running  # answered while the slow one waited
    assert result["r"].status_code == 200 and time.monotonic() - t0 >= 1.5
    slow.close()


def test_fault_after_create_happened(srv, http):
    srv.fail(r"/opportunities$", method="POST", status=500, after=True)
    resp = http.post(f"{srv.url}/opportunities", json={"name": "Ghost", "primary_contact_id": 601})
    assert resp.status_code == 500
    assert [r["name"] for r in srv.records.values()].count("Ghost") == 1
    assert srv.calls(r"/opportunities$", "POST")[-1].status == 500
    srv.fail(r"/opportunities$", method="POST", drop=True, after=True)
    with pytest.raises(requests.ConnectionError):
        http.post(f"{srv.url}/opportunities", json={"name": "Ghost 2", "primary_contact_id": 601})
    assert any(r["name"] == "Ghost 2" for r in srv.records.values())


def test_requests_are_logged(srv, http):
    search(http, srv, page_size=5, status_ids=[0])
    entry = srv.requests[-1]
    assert (entry.method, entry.path, entry.status) == \
        ("POST", "/developer_api/v1/opportunities/search", 200)
    assert entry.body == {"page_size": 5, "status_ids": [0]}
    assert entry.headers["X-PW-AccessToken"] == KEY and entry.started <= entry.ended


def test_standalone_prints_url():
    script = Path(__file__).resolve().parents[1] / "fakecopper.py"
    proc = subprocess.Popen([sys.executable, str(script), "--records", "50", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        resp = requests.post(f"{url}/opportunities/search", json={"page_size": 1}, headers=HEADERS,
                             timeout=5)
        assert resp.headers["X-PW-TOTAL"] == "50"
    finally:
        proc.terminate()
        assert proc.wait(timeout=5) == 0
