"""A fake Copper developer API (v1) on 127.0.0.1, for tests and benchmarks. Standard library only.

It implements Copper's semantics on its own (it does not use oppcli.domain.query): its purpose is to
check that oppcli's Copper backend translates queries and writes correctly, so the search body
is evaluated here from Copper's keys, and the results are meant to equal what oppcli's local
store gives for the same query (same defaults, same sort rule, same record key order).

    srv = FakeCopper(lookups=SAMPLE_LOOKUPS, records=sample_records(36))
    with srv:
        srv.url                      # http://127.0.0.1:PORT/developer_api/v1
        srv.fail("/opportunities/search", status=500, times=2)
        ...
        srv.requests                 # LoggedRequest per request, in the order they were answered

Order of a request: logged start -> rate limit (429 when more than n requests were admitted in
the rolling window; 429s are logged but not counted) -> first matching fault rule taken ->
global + rule latency slept -> fault (status/drop before the operation unless after=True) or
the real answer (then truncate/content_type/after-faults applied to it).

Stricter than Copper is documented to be, on purpose (to catch the client): unknown keys in a
search body or a write body, ids sent as strings, text or non-filterable custom fields in a
search, and JSON that is not JSON (Infinity, NaN) are refused with 422/400.

Error bodies are Copper's: a 404 is {"error": "not_found"}; a 422 is {"success": false,
"status": 422, "message": "Invalid input: Validation errors: Name: can't be blank"}, several
problems joined by "\n" (validation_body() makes one for fail(body=...)); an unknown search key
is "Base: Unrecognized attributes specified: pageSize".

realistic=True (or --realistic) serves real_records() with REAL_LOOKUPS: records shaped as real
accounts' are (Copper's key order, the read-only extras, every custom field type in a different
order on each record, floats for money, null priority and win probability, two pipelines with a
stage named "Negotiation"); a create fills what Copper fills; X-PW-TOTAL is spelt X-Pw-Total.

With CACHE_FROM records or more, search results are cached until the next write through the
API; call srv.invalidate() after editing srv.records directly.

Opt-in, as Copper is allowed to behave: shuffle_ties=True serves records sharing a sort value
(a mass edit's second) in a new random order on every request; total_slack=N over-reports
X-PW-TOTAL by N (Copper's total is only an upper bound). srv.fail(..., hold=event) keeps the
matching requests waiting until the test sets the event.

Standalone, for a benchmark (prints the URL on stdout line 1, serves until killed):

    python tests/fakecopper.py --records 1000 --latency 0.3 --rate-limit 180/60 --port 0
"""

from __future__ import annotations

import argparse
import calendar
import copy
import datetime as dt
import functools
import json
import math
import random
import re
import signal
import socket
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from oppcli.domain.fields import FIELD_NAMES, PASSTHROUGH
from oppcli.domain.sample import SAMPLE_LOOKUPS, sample_records

PREFIX = "/developer_api/v1"
INVALID_AUTH = "API Key and/or Email are invalid"
NOT_FOUND = "not_found"  # Copper's 404 body is {"error": "not_found"}
INVALID_INPUT = "Invalid input: Validation errors: "  # then the problems, one per line

# Copper's facts, written out here rather than imported, so that a mistake in oppcli shows.
STATUSES = ("Open", "Won", "Lost", "Abandoned")  # status_ids 0..3
PRIORITIES = ("None", "Low", "Medium", "High")
NONE_ID = -2
TEXT_TYPES = ("String", "Text", "URL")
NUMBER_TYPES = ("Float", "Percentage", "Currency")

# Writable opportunity keys and the lookup table an id points into (None: not an id).
WRITABLE: dict[str, str | None] = {
    "name": None, "assignee_id": "users", "close_date": None, "company_id": "companies",
    "customer_source_id": "customer_sources", "details": None, "loss_reason_id": "loss_reasons",
    "monetary_value": None, "pipeline_id": "pipelines", "primary_contact_id": "people",
    "priority": None, "pipeline_stage_id": "stages", "status": None, "tags": None,
    "win_probability": None, "custom_fields": None,
}
# Keys the server owns: accepted in a write body and ignored.
IGNORED_ON_WRITE = frozenset({"id", "company_name", "pipeline_is_revenue", "pipeline_type",
                              "date_created", "date_modified"}) | PASSTHROUGH
NOT_NULLABLE = frozenset({"name", "primary_contact_id", "pipeline_id", "pipeline_stage_id",
                          "priority", "status", "custom_fields"})

# Search body: list-of-id keys -> record key; which accept -2 for "none".
ID_LIST_KEYS = {"ids": "id", "assignee_ids": "assignee_id", "pipeline_ids": "pipeline_id",
                "pipeline_stage_ids": "pipeline_stage_id",
                "primary_contact_ids": "primary_contact_id", "company_ids": "company_id",
                "customer_source_ids": "customer_source_id", "loss_reason_ids": "loss_reason_id"}
NONE_ALLOWED = frozenset({"assignee_ids", "company_ids", "customer_source_ids", "loss_reason_ids"})
RANGE_KEYS = {"monetary_value": "monetary_value", "close_date": "close_date",
              "created_date": "date_created", "modified_date": "date_modified",
              # the read-only extras: interaction_date is the last contact
              "interaction_count": "interaction_count", "interaction_date": "date_last_contacted",
              "stage_change_date": "date_stage_changed"}
# Copper also searches the read-only extras real records carry (ints: a count, Unix seconds); a
# record without the value (missing or null) matches no bound on it.
RANGE_KEYS.update({"interaction_count": "interaction_count", "interaction_date": "date_last_contacted",
                   "stage_change_date": "date_stage_changed"})
SEARCH_KEYS = frozenset({"page_number", "page_size", "sort_by", "sort_direction", "name", "status_ids",
                         "tags", "custom_fields", *ID_LIST_KEYS,
                         *(f"{b}_{k}" for k in RANGE_KEYS for b in ("minimum", "maximum"))})
SORT_KEYS = {"name": "name", "date_modified": "date_modified", "date_created": "date_created",
             "assignee": "assignee_id", "company_name": "company_name", "status": "status",
             "stage": "pipeline_stage_id", "priority": "priority", "monetary_value": "monetary_value",
             "close_date": "close_date", "win_probability": "win_probability",
             "customer_source_id": "customer_source_id", "primary_contact": "primary_contact_id",
             "id": "id"}
CF_CRITERION_KEYS = frozenset({"custom_field_definition_id", "value", "minimum_value", "maximum_value",
                               "allow_empty", "option"})
MAX_PAGE_SIZE = 200
CACHE_FROM = 5000  # records from which search results are cached between writes
HOLD_LIMIT = 60.0  # seconds a held request waits at most for its rule's event
_SLASH_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


@dataclass
class LoggedRequest:
    method: str
    path: str  # as sent, query string included
    headers: dict[str, str]
    body: Any  # parsed JSON, or None (no body, or not JSON)
    status: int | None  # None when the connection was dropped without an answer
    started: float
    ended: float


@dataclass
class FaultRule:
    path_regex: str
    method: str | None = None
    times: int | None = 1  # None: forever
    status: int | None = None
    retry_after: Any = None
    body: bytes | str | None = None
    content_type: str | None = None
    latency: float = 0.0
    drop: bool = False
    truncate: bool = False
    after: bool = False
    headers: dict[str, str] | None = None  # extra response headers (Location, say)
    cut: bool = False  # promise the whole body in Content-Length, send half, close
    hold: threading.Event | None = None  # the answer waits until this is set (HOLD_LIMIT at most)

    def __post_init__(self) -> None:
        self._pattern = re.compile(self.path_regex)

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.method is not None and self.method.upper() != method:
            return False
        return self._pattern.search(path) is not None


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str]


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _invalid(*problems: str) -> ApiError:
    """A 422 as Copper words it: "Invalid input: Validation errors: " and the problems, joined
    by line ends."""
    return ApiError(422, INVALID_INPUT + "\n".join(problems))


def dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def error_body(status: int, message: str) -> bytes:
    """Copper's error bodies: a 404 is {"error": "not_found"}; the others (422 among them)
    {"success": false, "status": N, "message": "..."}."""
    if status == 404:
        return dumps({"error": NOT_FOUND})
    return dumps({"success": False, "status": status, "message": message})


def validation_body(*problems: str) -> str:
    """A 422 body as Copper sends it, for fail(body=...): several problems joined by \\n."""
    return dumps({"success": False, "status": 422, "message": INVALID_INPUT + "\n".join(problems)}
                 ).decode()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)
            and (not isinstance(v, float) or math.isfinite(v)))


def read_close_date(value: Any, date_order: str) -> dt.date | None:
    """A stored close_date ("1/13/2018", in the account's date order) as a date, else None."""
    return _read_close_date(value, date_order) if isinstance(value, str) else None


@functools.lru_cache(maxsize=1 << 16)
def _read_close_date(value: str, date_order: str) -> dt.date | None:
    m = _SLASH_DATE.match(value.strip())
    if not m:
        return None
    a, b, year = int(m[1]), int(m[2]), int(m[3])
    month, day = (a, b) if date_order == "MDY" else (b, a)
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def midnight_utc(day: dt.date) -> int:
    return calendar.timegm((day.year, day.month, day.day, 0, 0, 0))


# ---- realistic data: records shaped as real accounts' are -------------------------------------
# Modelled on opportunity records recorded from real Copper accounts and Copper's own examples
# (see docs/copper-api.md, "What real records and answers look like"): FakeCopper(realistic=True)
# serves these by default. Copper's own key order, extras every reader must pass through, every
# custom field type, custom fields in a different order on each record, unpadded close dates,
# floats for money, null priority and win probability, "" details, and two pipelines that both
# have a stage named "Negotiation".
REAL_KEY_ORDER = (
    "id", "name", "assignee_id", "close_date", "company_id", "company_name", "customer_source_id",
    "details", "loss_reason_id", "pipeline_id", "pipeline_stage_id", "primary_contact_id",
    "priority", "status", "tags", "interaction_count", "monetary_unit", "monetary_value",
    "converted_unit", "converted_value", "win_probability", "date_stage_changed",
    "date_last_contacted", "leads_converted_from", "date_lead_created", "date_created",
    "date_modified", "custom_fields", "pipeline_is_revenue", "pipeline_type")

REAL_LOOKUPS: dict[str, Any] = {
    "pipelines": [
        {"id": 213214, "name": "Sales", "is_default": True, "is_revenue": True, "type": "opportunity",
         "stages": [{"id": 1080101, "name": "Qualified", "win_probability": 10},
                    {"id": 1080102, "name": "Proposal", "win_probability": 40},
                    {"id": 1080103, "name": "Negotiation", "win_probability": 70},
                    {"id": 1080104, "name": "Verbal Yes", "win_probability": 90}]},
        {"id": 213215, "name": "Partnerships", "is_revenue": False, "type": "opportunity",
         "stages": [{"id": 1080201, "name": "Intro", "win_probability": 20},
                    {"id": 1080202, "name": "Negotiation", "win_probability": 60},
                    {"id": 1080203, "name": "Signed", "win_probability": 100}]},
    ],
    "users": [
        {"id": 880001, "name": "Ada Park", "email": "ada.park@example.com"},
        {"id": 880002, "name": "Ben Okafor", "email": "ben.okafor@example.com"},
        {"id": 880003, "name": "Carla Reyes", "email": "carla.reyes@example.com"},
    ],
    "customer_sources": [{"id": 331, "name": "Email"}, {"id": 332, "name": "Cold Call"},
                         {"id": 333, "name": "Advertising"}],
    "loss_reasons": [{"id": 441, "name": "Price"}, {"id": 442, "name": "Went with competitor"},
                     {"id": 443, "name": "No decision"}],
    "custom_field_definitions": [
        {"id": 126240, "name": "Region", "canonical_name": None, "data_type": "Dropdown",
         "available_on": ["opportunity", "company", "lead"], "is_filterable": True,
         "options": [{"id": 167771, "name": "EMEA", "rank": 0},
                     {"id": 167772, "name": "Americas", "rank": 1},
                     {"id": 167773, "name": "APAC", "rank": 2}]},
        {"id": 126241, "name": "Signed NDA", "canonical_name": None, "data_type": "Checkbox",
         "available_on": ["lead", "person", "opportunity"], "is_filterable": True},
        {"id": 126242, "name": "Setup Fee", "canonical_name": None, "data_type": "Currency",
         "currency": "USD", "available_on": ["opportunity"], "is_filterable": True},
        {"id": 126243, "name": "Kickoff", "canonical_name": None, "data_type": "Date",
         "available_on": ["opportunity", "project"], "is_filterable": True},
        {"id": 126244, "name": "Products", "canonical_name": None, "data_type": "MultiSelect",
         "available_on": ["opportunity", "lead"], "is_filterable": True,
         "options": [{"id": 167781, "name": "Seats", "rank": 0},
                     {"id": 167782, "name": "Support", "rank": 1},
                     {"id": 167783, "name": "Training", "rank": 2}]},
        {"id": 126245, "name": "Headcount", "canonical_name": None, "data_type": "Float",
         "available_on": ["opportunity", "company"], "is_filterable": True},
        {"id": 126246, "name": "Discount", "canonical_name": None, "data_type": "Percentage",
         "available_on": ["opportunity"], "is_filterable": True},
        {"id": 126247, "name": "PO Number", "canonical_name": None, "data_type": "String",
         "available_on": ["opportunity", "company"], "is_filterable": True},
        {"id": 126248, "name": "Finance Notes", "canonical_name": None, "data_type": "Text",
         "available_on": ["opportunity"], "is_filterable": False},
        {"id": 126249, "name": "Proposal", "canonical_name": None, "data_type": "URL",
         "available_on": ["opportunity", "company", "person"], "is_filterable": True},
        {"id": 126250, "name": "Parent Deal", "canonical_name": None, "data_type": "Connect",
         "available_on": ["opportunity"], "is_filterable": False, "connected_id": 126251},
        {"id": 126251, "name": "Child Deals", "canonical_name": None, "data_type": "Connect",
         "available_on": ["company"], "is_filterable": False, "connected_id": 126250},
        {"id": 126252, "name": "Birthday", "canonical_name": None, "data_type": "Date",
         "available_on": ["person"], "is_filterable": True},
    ],
    "companies": [{"id": 550001, "name": "Sabre Inc"}, {"id": 550002, "name": "Dunder Mifflin"},
                  {"id": 550003, "name": "Initech"}, {"id": 550004, "name": "Globex Corporation"}],
    "people": [
        {"id": 660001, "name": "Pam Beesly", "company_id": 550002, "email": "pam@dunder.example"},
        {"id": 660002, "name": "Bill Lumbergh", "company_id": 550003, "email": "bill@initech.example"},
        {"id": 660003, "name": "Hank Scorpio", "company_id": 550004, "email": "hank@globex.example"},
        {"id": 660004, "name": "Ada Lovelace", "company_id": None, "email": "ada@example.org"},
        {"id": 660005, "name": "Leigh Stone", "company_id": 550001, "email": "leigh@sabre.example"},
    ],
}
REAL_BASE_TIME = 1546300800  # 2019-01-01T00:00:00Z
_REAL_PRODUCTS = ("500 Keyboards", "Annual Licence", "Pilot", "Support Renewal", "Expansion")
_REAL_STATUSES = ("Open", "Open", "Won", "Lost", "Open", "Abandoned", "Open")
_REAL_PRIORITIES = ("None", "Low", None, "Medium", "High")


def real_records(count: int = 24, date_order: str = "MDY") -> list[dict[str, Any]]:
    """Deterministic records shaped like real Copper ones (see REAL_LOOKUPS above)."""
    lk = REAL_LOOKUPS
    companies = {c["id"]: c["name"] for c in lk["companies"]}
    people = lk["people"]
    out = []
    for i in range(count):
        person = people[i % len(people)]
        pipeline = lk["pipelines"][1 if i % 3 == 2 else 0]
        stage = pipeline["stages"][(i // 3 if i % 3 == 2 else i) % len(pipeline["stages"])]
        status = _REAL_STATUSES[i % len(_REAL_STATUSES)]
        old = i % 8 == 7  # an older record: no monetary_unit, date_stage_changed or pipeline_type
        created = REAL_BASE_TIME + i * 86400 * 5 + 977 * i
        if i % 6 == 5:
            value: Any = None
        elif i % 4 == 0:
            value = (i + 1) * 12500  # an int, as older records have
        else:
            value = float((i + 2) * 25000)  # 250000.0, as newer ones have
        day = dt.date(2019 + i % 2, 1 + (i * 5) % 12, 1 + (i * 11) % 28)
        close = None if i % 7 == 4 else (f"{day.month}/{day.day}/{day.year}" if date_order == "MDY"
                                         else f"{day.day}/{day.month}/{day.year}")
        probability = None if i % 5 == 3 else 100 if status == "Won" else \
            0 if status in ("Lost", "Abandoned") else stage["win_probability"]
        company_id = person["company_id"]
        cfs = [
            {"custom_field_definition_id": 126240, "value": (167771, 167772, 167773, None)[i % 4]},
            {"custom_field_definition_id": 126241, "value": i % 3 == 0},
            {"custom_field_definition_id": 126242, "value": None if i % 4 == 1 else 567.0 + 100 * i},
            {"custom_field_definition_id": 126243,
             "value": None if i % 5 == 2 else midnight_utc(dt.date(2020, 1 + i % 12, 1 + i % 27))},
            {"custom_field_definition_id": 126244,
             "value": ([], [167781], [167782, 167783], [167783])[i % 4]},
            {"custom_field_definition_id": 126245, "value": None if i % 3 == 1 else 1232.0 + i},
            {"custom_field_definition_id": 126246, "value": None if i % 4 == 3 else 5 * (i % 5) + 3},
            {"custom_field_definition_id": 126247, "value": None if i % 2 else f"PO-{4400 + i}"},
            {"custom_field_definition_id": 126248,
             "value": "Net 30.\nInvoice the parent company." if i % 6 == 0 else None},
            {"custom_field_definition_id": 126249,
             "value": f"www.example.com/proposals/{i}" if i % 3 != 2 else None},
            {"custom_field_definition_id": 126250, "value": []},
        ]
        shift = (i * 7) % len(cfs)  # each record lists its custom fields in its own order
        cfs = cfs[shift:] + cfs[:shift]
        if i % 2:
            cfs.reverse()
        rec: dict[str, Any] = {
            "id": 15_000_001 + i * 13,
            "name": f"{companies.get(company_id) or person['name']} - {_REAL_PRODUCTS[i % 5]}"
                    + (f" ({i})" if i >= 5 else ""),
            "assignee_id": None if i % 6 == 4 else lk["users"][i % 3]["id"],
            "close_date": close,
            "company_id": company_id,
            "company_name": companies.get(company_id) if company_id else None,
            "customer_source_id": None if i % 4 == 2 else lk["customer_sources"][i % 3]["id"],
            "details": ("" if i % 3 == 1 else None) if i % 3 else f"Deal {i}: see the proposal.",
            # Lost deals have a reason, and one Open deal still carries one
            "loss_reason_id": lk["loss_reasons"][i % 3]["id"] if status == "Lost" or i == 6 else None,
            "pipeline_id": pipeline["id"],
            "pipeline_stage_id": stage["id"],
            "primary_contact_id": person["id"],
            "priority": _REAL_PRIORITIES[i % len(_REAL_PRIORITIES)],
            "status": status,
            "tags": [["tag1"], [], ["enterprise", "q3"], ["renewal"]][i % 4],
            "interaction_count": (i * 7) % 17,
            "monetary_unit": None if value is None else "USD",
            "monetary_value": value,
            "converted_unit": None if value is None else "USD",
            "converted_value": None if value is None else str(float(value)),
            "win_probability": probability,
            "date_stage_changed": created + 86400,
            "date_last_contacted": None if i % 3 == 2 else created + 2 * 86400 + i,
            "leads_converted_from": [] if i % 5 else [{"lead_id": 7_700_001 + i,
                                                       "converted_timestamp": created - 3600}],
            "date_lead_created": None if i % 5 else created - 86400 * 3,
            "date_created": created,
            "date_modified": created + 86400 * (1 + i % 9) + 37 * i,
            "custom_fields": cfs,
            "pipeline_is_revenue": bool(pipeline["is_revenue"]),
            "pipeline_type": "opportunity",
        }
        if old:
            for key in ("monetary_unit", "date_stage_changed", "pipeline_is_revenue", "pipeline_type"):
                del rec[key]
        out.append(rec)
    return out


class FakeCopper:
    """A Copper-speaking HTTP server in a thread; see the module docstring."""

    # GET /account: the account the key belongs to (Copper's answer has its id and name).
    account: Mapping[str, Any] = {"id": 500123, "name": "Sample Account"}

    def __init__(self, lookups: Mapping[str, Any] | None = None,
                 records: Iterable[Mapping[str, Any]] | None = None, *,
                 api_key: str = "k-test-123", user_email: str = "ada.park@example.com",
                 date_order: str = "MDY", window: int = 100_000, latency: float = 0.0,
                 host: str = "127.0.0.1", port: int = 0, shuffle_ties: bool = False,
                 total_slack: int = 0, seed: int | None = None, realistic: bool = False) -> None:
        if date_order not in ("MDY", "DMY"):
            raise ValueError("date_order must be MDY or DMY")
        # realistic: REAL_LOOKUPS and real_records() by default; records kept in Copper's key
        # order with only the keys they have; a create fills what Copper fills (extras, unset
        # Checkbox false, MultiSelect and Connect []); X-PW-TOTAL spelt X-Pw-Total.
        self.realistic = realistic
        if realistic and records is None:
            records = real_records(date_order=date_order)
        default_lookups = REAL_LOOKUPS if realistic else SAMPLE_LOOKUPS
        self.lookups: dict[str, Any] = copy.deepcopy(dict(lookups if lookups is not None
                                                          else default_lookups))
        self.total_header = "X-Pw-Total" if realistic else "X-PW-TOTAL"
        self.api_key = api_key
        self.user_email = user_email
        self.date_order = date_order
        self.window = window
        self.latency = latency
        # Copper promises no order among records with equal sort values: with shuffle_ties,
        # every search answer serves each such group in a new random order.
        self.shuffle_ties = shuffle_ties
        self._random = random.Random(seed)
        # X-PW-TOTAL is only an upper bound: total_slack is added to every search's true count.
        self.total_slack = total_slack
        self.rate_limit_retry_after: Any = None
        self.host = host
        self.port = port
        self.requests: list[LoggedRequest] = []
        self.records: dict[int, dict[str, Any]] = {}
        self.rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._rate: tuple[int, float] | None = None
        self._starts: deque[float] = deque()
        # What the rolling rate limit reads the time from; a test can set a fake clock.
        self.clock: Callable[[], float] = time.time
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        # Big stores only: the matched and sorted ids of recent searches, until the next write.
        self._cache: dict[str, list[int]] = {}
        self._version = 0
        self._index()
        # Stored records are never changed in place (a write stores a new dict), so a shallow copy
        # is enough to keep the caller's list and the server's state apart.
        for rec in records or ():
            self.records[int(rec["id"])] = self._canonical(rec)
        self._next_id = max(self.records, default=0) + 1

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self) -> FakeCopper:
        if self._httpd is not None:
            return self
        httpd = _Server((self.host, self.port), _Handler)
        httpd.fake = self  # type: ignore[attr-defined]
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fakecopper", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        with self._lock:
            holds = [r.hold for r in self.rules if r.hold is not None]
        for hold in holds:  # release held requests: their threads end
            hold.set()
        httpd.shutdown()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:  # idle keep-alive connections would otherwise linger
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeCopper:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("FakeCopper is not started")
        return f"http://{self.host}:{self.port}{PREFIX}"

    # ---- test controls ----------------------------------------------------------------------
    def fail(self, path_regex: str = ".*", method: str | None = None, times: int | None = 1,
             status: int | None = None, retry_after: Any = None, body: bytes | str | None = None,
             content_type: str | None = None, latency: float = 0.0, drop: bool = False,
             truncate: bool = False, after: bool = False,
             headers: Mapping[str, str] | None = None, cut: bool = False,
             hold: threading.Event | None = None) -> FaultRule:
        """Add a fault rule; a request takes the first matching rule with times left. A rule
        with nothing to change passes requests through (to let the first `times` by); `hold`
        keeps its requests waiting until the test sets the event."""
        rule = FaultRule(path_regex, method, times, status, retry_after, body, content_type, latency,
                         drop, truncate, after, dict(headers) if headers else None, cut, hold)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear_faults(self) -> None:
        with self._lock:
            self.rules.clear()

    def set_rate_limit(self, n: int | None, window_seconds: float = 60.0) -> None:
        """More than n requests admitted within a rolling window_seconds -> 429. None: no limit."""
        with self._lock:
            self._rate = None if n is None else (int(n), float(window_seconds))
            self._starts.clear()

    def calls(self, path_regex: str = ".*", method: str | None = None) -> list[LoggedRequest]:
        """The logged requests whose path (without query) matches, optionally of one method."""
        pattern = re.compile(path_regex)
        with self._lock:
            logged = list(self.requests)
        return [r for r in logged if pattern.search(r.path.split("?", 1)[0])
                and (method is None or r.method == method.upper())]

    # ---- request plumbing (called by the handler) ------------------------------------------
    def _log(self, entry: LoggedRequest) -> None:
        with self._lock:
            self.requests.append(entry)

    def _admit(self, now: float) -> bool:
        with self._lock:
            if self._rate is None:
                return True
            limit, window = self._rate
            while self._starts and self._starts[0] <= now - window:
                self._starts.popleft()
            if len(self._starts) >= limit:
                return False
            self._starts.append(now)
            return True

    def _take_rule(self, method: str, path: str) -> FaultRule | None:
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    if rule.times is not None:
                        rule.times -= 1
                    return rule
        return None

    def _rate_limited(self) -> Response:
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if self.rate_limit_retry_after is not None:
            headers["Retry-After"] = str(self.rate_limit_retry_after)
        return Response(429, dumps({"message": "Rate limit exceeded"}), headers)

    def _fault_response(self, rule: FaultRule) -> Response:
        assert rule.status is not None
        if rule.body is None:
            try:
                phrase = HTTPStatus(rule.status).phrase
            except ValueError:
                phrase = "Error"
            body = error_body(rule.status, phrase)
        else:
            body = rule.body.encode() if isinstance(rule.body, str) else rule.body
        headers = {"Content-Type": rule.content_type or "application/json; charset=utf-8"}
        if rule.retry_after is not None:
            headers["Retry-After"] = str(rule.retry_after)
        headers.update(rule.headers or {})
        return Response(rule.status, body, headers)

    def _apply_after(self, rule: FaultRule, resp: Response) -> Response:
        """A real answer changed by a rule: status replaced, content type changed, body cut."""
        if rule.status is not None:
            resp = self._fault_response(rule)
        elif rule.content_type is not None:
            resp.headers["Content-Type"] = rule.content_type
            if rule.body is not None:
                resp.body = rule.body.encode() if isinstance(rule.body, str) else rule.body
        if rule.truncate:
            resp.body = resp.body[: len(resp.body) // 2]
        return resp

    def _dispatch(self, method: str, path: str, headers: Mapping[str, str], raw: bytes) -> Response:
        try:
            self._check_headers(headers)
            body = self._parse_body(method, raw)
            route = path.split("?", 1)[0]
            if not route.startswith(PREFIX + "/"):
                raise self._unknown_path(method)
            return self._route(method, route[len(PREFIX):], body)
        except ApiError as exc:
            return Response(exc.status, error_body(exc.status, exc.message),
                            {"Content-Type": "application/json; charset=utf-8"})
        except Exception:  # a bug here: say so, as a server would
            traceback.print_exc(file=sys.stderr)
            return Response(500, error_body(500, "Internal server error"),
                            {"Content-Type": "application/json; charset=utf-8"})

    def _check_headers(self, headers: Mapping[str, str]) -> None:
        lower = {k.lower(): v for k, v in headers.items()}
        token = lower.get("x-pw-accesstoken")
        email = lower.get("x-pw-useremail")
        if token != self.api_key or email is None or email.strip().lower() != self.user_email.lower():
            raise ApiError(401, INVALID_AUTH)
        if lower.get("x-pw-application") != "developer_api":
            raise ApiError(400, "X-PW-Application header must be developer_api")
        ctype = (lower.get("content-type") or "").split(";", 1)[0].strip().lower()
        if ctype != "application/json":
            raise ApiError(400, "Content-Type must be application/json")

    @staticmethod
    def _parse_body(method: str, raw: bytes) -> Any:
        if not raw.strip():
            return {} if method in ("POST", "PUT") else None
        try:
            return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "Request body is not valid JSON") from None

    @staticmethod
    def _unknown_path(method: str) -> ApiError:
        # Copper's trap: an unknown POST path (e.g. /pipeline_stages/search) answers 401.
        return ApiError(401, INVALID_AUTH) if method == "POST" else ApiError(404, NOT_FOUND)

    def _route(self, method: str, path: str, body: Any) -> Response:
        m = re.fullmatch(r"/opportunities/(\d+)", path)
        if m and method in ("GET", "PUT", "DELETE"):
            opp_id = int(m[1])
            if method == "GET":
                return self._ok(self._get(opp_id))
            if method == "PUT":
                return self._ok(self._update(opp_id, self._object(body)))
            return self._ok(self._delete(opp_id))
        if method == "POST" and path == "/opportunities":
            return self._ok(self._create(self._object(body)))
        if method == "POST" and path == "/opportunities/search":
            return self._search(self._object(body))
        if method == "GET":
            simple = {"/customer_sources": "customer_sources", "/loss_reasons": "loss_reasons",
                      "/custom_field_definitions": "custom_field_definitions"}
            if path in simple:
                return self._ok(self._table(simple[path]))
            if path == "/users/me":
                return self._ok(self._me())
            if path == "/account":
                return self._ok(dict(self.account))
            if path == "/pipelines":
                return self._ok(self._table("pipelines"))
            if path == "/pipeline_stages":
                return self._ok(self._stage_rows(None))
            m = re.fullmatch(r"/pipeline_stages/pipeline/(\d+)", path)
            if m:
                return self._ok(self._stage_rows(int(m[1])))
            m = re.fullmatch(r"/users/(\d+)", path)
            if m:
                user = self._users_by_id.get(int(m[1]))
                if user is None:
                    raise ApiError(404, NOT_FOUND)
                return self._ok(user)
            m = re.fullmatch(r"/(companies|people)/(\d+)", path)
            if m:
                row = next((r for r in self._table(m[1]) if r["id"] == int(m[2])), None)
                if row is None:
                    raise ApiError(404, NOT_FOUND)
                return self._ok(self._person(row) if m[1] == "people" else row)
        if method == "POST":
            if path == "/users/search":
                return self._paged(self._table("users"), self._object(body))
            if path == "/companies/search":
                return self._paged(self._named(self._table("companies"), body), self._object(body))
            if path == "/people/search":
                people = [self._person(p) for p in self._table("people")]
                return self._paged(self._named(people, body), self._object(body))
            if path == "/people/fetch_by_email":
                return self._ok(self._person_by_email(self._object(body)))
        raise self._unknown_path(method)

    @staticmethod
    def _object(body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "Request body must be a JSON object")
        return body

    @staticmethod
    def _ok(data: Any, extra: Mapping[str, str] | None = None) -> Response:
        headers = {"Content-Type": "application/json; charset=utf-8", **(extra or {})}
        return Response(200, dumps(data), headers)

    # ---- lookups ----------------------------------------------------------------------------
    def _index(self) -> None:
        lk = self.lookups
        self._pipelines = {p["id"]: p for p in lk.get("pipelines") or []}
        self._stages: dict[int, dict[str, Any]] = {}
        for p in lk.get("pipelines") or []:
            for s in p.get("stages") or []:
                self._stages[s["id"]] = {**s, "pipeline_id": p["id"]}
        self._users_by_id = {u["id"]: u for u in lk.get("users") or []}
        self._tables: dict[str, set[int]] = {
            t: {r["id"] for r in lk.get(t) or []}
            for t in ("users", "companies", "people", "customer_sources", "loss_reasons", "pipelines")}
        self._tables["stages"] = set(self._stages)
        self._cf_defs = {d["id"]: d for d in lk.get("custom_field_definitions") or []}
        self._opp_defs = [d for d in lk.get("custom_field_definitions") or []
                          if "opportunity" in (d.get("available_on") or ["opportunity"])]

    def _table(self, name: str) -> list[dict[str, Any]]:
        return copy.deepcopy(list(self.lookups.get(name) or []))

    def _stage_rows(self, pipeline_id: int | None) -> list[dict[str, Any]]:
        return [dict(s) for s in self._stages.values()
                if pipeline_id is None or s["pipeline_id"] == pipeline_id]

    def _me(self) -> dict[str, Any]:
        for u in self.lookups.get("users") or []:
            if str(u.get("email", "")).lower() == self.user_email.lower():
                return {"id": u["id"], "name": u["name"], "email": u["email"]}
        return {"id": 1, "name": "API User", "email": self.user_email}

    @staticmethod
    def _person(row: Mapping[str, Any]) -> dict[str, Any]:
        out = {"id": row["id"], "name": row["name"]}
        emails = row.get("emails")
        if emails is None:
            emails = [{"email": row["email"], "category": "work"}] if row.get("email") else []
        out["emails"] = emails
        out["company_id"] = row.get("company_id")
        out.update({k: v for k, v in row.items() if k not in out and k != "email"})
        return out

    def _person_by_email(self, body: dict[str, Any]) -> dict[str, Any]:
        email = body.get("email")
        if not isinstance(email, str) or not email.strip():
            raise _invalid("email is required")
        for row in self.lookups.get("people") or []:
            person = self._person(row)
            if any(str(e.get("email", "")).lower() == email.strip().lower() for e in person["emails"]):
                return person
        raise ApiError(404, NOT_FOUND)

    @staticmethod
    def _named(rows: list[dict[str, Any]], body: Any) -> list[dict[str, Any]]:
        name = body.get("name") if isinstance(body, dict) else None
        if name is None:
            return rows
        if not isinstance(name, str):
            raise _invalid("name must be a string")
        want = " ".join(name.split()).casefold()
        return [r for r in rows if want in " ".join(str(r.get("name", "")).split()).casefold()]

    @staticmethod
    def _page_params(body: Mapping[str, Any]) -> tuple[int, int]:
        number = body.get("page_number", 1)
        size = body.get("page_size", 20)
        if not _is_int(number) or number < 1:
            raise _invalid("page_number must be a whole number of at least 1")
        if not _is_int(size) or not 1 <= size <= MAX_PAGE_SIZE:
            raise _invalid(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        return number, size

    def _paged(self, rows: list[dict[str, Any]], body: Mapping[str, Any]) -> Response:
        number, size = self._page_params(body)
        start = (number - 1) * size
        return self._ok(rows[start:start + size], {self.total_header: str(len(rows))})

    # ---- opportunities: reads and writes ----------------------------------------------------
    def _get(self, opp_id: int) -> dict[str, Any]:
        with self._lock:
            rec = self.records.get(opp_id)
        if rec is None:
            raise ApiError(404, NOT_FOUND)
        return rec

    def _delete(self, opp_id: int) -> dict[str, Any]:
        with self._lock:
            if self.records.pop(opp_id, None) is None:
                raise ApiError(404, NOT_FOUND)
            self._version += 1
        return {"id": opp_id, "is_deleted": True}

    def _create(self, body: dict[str, Any]) -> dict[str, Any]:
        given = self._clean(body)
        blank = [f"{label}: can't be blank" for key, label in (("name", "Name"),
                                                               ("primary_contact_id", "Primary contact"))
                 if given.get(key) in (None, "")]
        if blank:
            raise _invalid(*blank)
        rec = dict(given)
        rec.setdefault("status", "Open")
        rec.setdefault("priority", "None")
        rec.setdefault("tags", [])
        stage = self._stages.get(rec.get("pipeline_stage_id"))  # type: ignore[arg-type]
        if stage is not None and rec.get("pipeline_id") is None:
            rec["pipeline_id"] = stage["pipeline_id"]
        if rec.get("pipeline_id") is None:
            pipelines = self.lookups.get("pipelines") or []
            default = next((p for p in pipelines if p.get("is_default")), pipelines[0] if pipelines else None)
            if default is not None:
                rec["pipeline_id"] = default["id"]
        if rec.get("pipeline_stage_id") is None and rec.get("pipeline_id") is not None:
            first = self._first_stage(rec["pipeline_id"])
            if first is not None:
                rec["pipeline_stage_id"] = first["id"]
        if rec.get("win_probability") is None:
            stage = self._stages.get(rec.get("pipeline_stage_id"))  # type: ignore[arg-type]
            if stage is not None and stage.get("win_probability") is not None:
                rec["win_probability"] = stage["win_probability"]
        if rec.get("company_id") is None:
            person = next((p for p in self.lookups.get("people") or []
                           if p["id"] == rec["primary_contact_id"]), None)
            if person is not None and person.get("company_id") is not None:
                rec["company_id"] = person["company_id"]
        rec["custom_fields"] = self._merge_cf([], given.get("custom_fields") or [])
        self._check_stage(rec)
        self._derive(rec)
        now = int(time.time())
        # The read-only extras Copper fills on a new deal: no interactions, the stage entered
        # now, no contact, no lead; realistic, the currency and conversion fields too.
        rec.update(interaction_count=0, date_stage_changed=now, date_last_contacted=None,
                   date_lead_created=None)
        if self.realistic:
            value = rec.get("monetary_value")
            rec.update(monetary_unit="USD", converted_unit=None if value is None else "USD",
                       converted_value=None if value is None else str(float(value)),
                       leads_converted_from=[])
        with self._lock:
            new_id = max(self._next_id, max(self.records, default=0) + 1)
            self._next_id = new_id + 1
            rec.update(id=new_id, date_created=now, date_modified=now)
            rec = self._canonical(rec)
            self.records[new_id] = rec
            self._version += 1
        return rec

    def _update(self, opp_id: int, body: dict[str, Any]) -> dict[str, Any]:
        changes = self._clean(body)
        with self._lock:
            current = self.records.get(opp_id)
            if current is None:
                raise ApiError(404, NOT_FOUND)
            rec = copy.deepcopy(current)
            for key, value in changes.items():
                if key == "custom_fields":
                    rec[key] = self._merge_cf(rec.get("custom_fields") or [], value)
                else:
                    rec[key] = copy.deepcopy(value)
            if "pipeline_id" in changes and "pipeline_stage_id" not in changes:
                stage = self._stages.get(rec.get("pipeline_stage_id"))  # type: ignore[arg-type]
                if stage is None or stage["pipeline_id"] != rec["pipeline_id"]:
                    first = self._first_stage(rec["pipeline_id"])
                    rec["pipeline_stage_id"] = first["id"] if first else None
            if "pipeline_stage_id" in changes and "pipeline_id" not in changes:
                stage = self._stages.get(rec["pipeline_stage_id"])
                if stage is not None:
                    rec["pipeline_id"] = stage["pipeline_id"]
            if rec.get("pipeline_stage_id") != current.get("pipeline_stage_id") \
                    and "win_probability" not in changes:
                stage = self._stages.get(rec.get("pipeline_stage_id"))  # type: ignore[arg-type]
                if stage is not None and stage.get("win_probability") is not None:
                    rec["win_probability"] = stage["win_probability"]
            self._check_stage(rec)
            self._derive(rec)
            rec["date_modified"] = max(int(time.time()), int(current.get("date_modified") or 0) + 1)
            if rec.get("pipeline_stage_id") != current.get("pipeline_stage_id"):
                rec["date_stage_changed"] = rec["date_modified"]
            if self.realistic:
                if "monetary_value" in changes and "converted_value" in rec:
                    value = rec["monetary_value"]
                    rec["converted_value"] = None if value is None else str(float(value))
            rec = self._canonical(rec)
            self.records[opp_id] = rec
            self._version += 1
        return rec

    def _first_stage(self, pipeline_id: int) -> dict[str, Any] | None:
        return next((s for s in self._stages.values() if s["pipeline_id"] == pipeline_id), None)

    def _check_stage(self, rec: Mapping[str, Any]) -> None:
        stage = self._stages.get(rec.get("pipeline_stage_id"))  # type: ignore[arg-type]
        if stage is not None and rec.get("pipeline_id") is not None \
                and stage["pipeline_id"] != rec["pipeline_id"]:
            raise _invalid(f"pipeline_stage_id {stage['id']} does not belong to "
                           f"pipeline_id {rec['pipeline_id']}")

    def _derive(self, rec: dict[str, Any]) -> None:
        companies = {c["id"]: c for c in self.lookups.get("companies") or []}
        company = companies.get(rec.get("company_id"))  # type: ignore[arg-type]
        if company is not None:
            rec["company_name"] = company["name"]
        elif rec.get("company_id") is None:
            rec["company_name"] = None
        else:
            rec.setdefault("company_name", None)
        pipeline = self._pipelines.get(rec.get("pipeline_id"))  # type: ignore[arg-type]
        if pipeline is not None:  # (a write answers as the current API does, older records too)
            rec["pipeline_is_revenue"] = bool(pipeline.get("is_revenue", True))
            rec["pipeline_type"] = pipeline.get("type") or "opportunity"
        else:
            rec.setdefault("pipeline_is_revenue", None)
            rec.setdefault("pipeline_type", None)

    def _canonical(self, rec: Mapping[str, Any]) -> dict[str, Any]:
        """A new dict with Copper's keys in order (all present), extras after them. Realistic:
        only the keys the record has, in the order Copper's answers have them."""
        if self.realistic:
            out = {k: rec[k] for k in REAL_KEY_ORDER if k in rec}
            out.update({k: v for k, v in rec.items() if k not in out})
            return out
        if tuple(rec)[:len(FIELD_NAMES)] == FIELD_NAMES:
            return dict(rec)
        out = {k: rec.get(k) for k in FIELD_NAMES}
        out.update({k: v for k, v in rec.items() if k not in out})
        return out

    def _merge_cf(self, current: list[Mapping[str, Any]], changes: list[Mapping[str, Any]]
                  ) -> list[dict[str, Any]]:
        """The record's custom fields with the changes: its entries keep their order, every
        definition for opportunities missing from it is added (a new record: in the
        definitions' order), unset as Copper leaves that type unset."""
        values: dict[int, Any] = {cf["custom_field_definition_id"]: copy.deepcopy(cf.get("value"))
                                  for cf in current}
        for d in self._opp_defs:
            values.setdefault(d["id"], self._unset(d))
        for cf in changes:
            value = copy.deepcopy(cf.get("value"))
            defn = self._cf_defs.get(cf["custom_field_definition_id"])
            values[cf["custom_field_definition_id"]] = \
                self._unset(defn) if value is None and defn is not None else value
        return [{"custom_field_definition_id": k, "value": v} for k, v in values.items()]

    def _unset(self, defn: Mapping[str, Any]) -> Any:
        """An unset custom field's value: null; realistic, as Copper has it: a Checkbox false,
        a MultiSelect or Connect []."""
        if not self.realistic:
            return None
        kind = defn.get("data_type")
        return False if kind == "Checkbox" else [] if kind in ("MultiSelect", "Connect") else None

    def _clean(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """A create/update body checked as Copper would: 422 naming the first bad key."""
        out: dict[str, Any] = {}
        for key, value in body.items():
            if key in IGNORED_ON_WRITE:
                continue
            if key not in WRITABLE:
                raise _invalid(f"unknown field {key}")
            out[key] = self._check_value(key, value)
        return out

    def _check_value(self, key: str, value: Any) -> Any:
        bad = f"invalid {key}"
        if value is None:
            if key == "name":
                raise _invalid("Name: can't be blank")
            if key == "primary_contact_id":
                raise _invalid("Primary contact: can't be blank")
            if key == "tags":
                return []
            if key in NOT_NULLABLE:
                raise _invalid(f"{key} cannot be null")
            return None
        table = WRITABLE[key]
        if table is not None:
            if not _is_int(value):
                raise _invalid(f"{bad}: must be an integer id")
            known = self._tables.get(table) or set()
            if known and value not in known:
                raise _invalid(f"unknown {key} {value}")
            return value
        if key == "name":
            if not isinstance(value, str) or not value.strip():
                raise _invalid("Name: can't be blank")
            return value
        if key == "details":
            if not isinstance(value, str):
                raise _invalid(f"{bad}: must be a string")
            return value
        if key == "close_date":
            day = read_close_date(value, self.date_order)
            if day is None:
                shape = "M/D/YYYY" if self.date_order == "MDY" else "D/M/YYYY"
                raise _invalid(f"{bad}: {value!r} is not a date written {shape}")
            return f"{day.month}/{day.day}/{day.year}" if self.date_order == "MDY" \
                else f"{day.day}/{day.month}/{day.year}"
        if key == "monetary_value":
            if not _is_number(value):
                raise _invalid(f"{bad}: must be a number")
            return value
        if key == "win_probability":
            if not _is_number(value) or value != int(value) or not 0 <= value <= 100:
                raise _invalid(f"{bad}: must be a whole number from 0 to 100")
            return int(value)
        if key in ("status", "priority"):
            choices = STATUSES if key == "status" else PRIORITIES
            if value not in choices:
                raise _invalid(f"{bad}: {value!r} is not one of {', '.join(choices)}")
            return value
        if key == "tags":
            if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
                raise _invalid(f"{bad}: must be a list of strings")
            return list(value)
        assert key == "custom_fields"
        if not isinstance(value, list):
            raise _invalid(f"{bad}: must be a list")
        return [self._check_cf(item) for item in value]

    def _check_cf(self, item: Any) -> dict[str, Any]:
        if not isinstance(item, dict) or not _is_int(item.get("custom_field_definition_id")):
            raise _invalid("custom_fields entries need a custom_field_definition_id")
        defn = self._cf_defs.get(item["custom_field_definition_id"])
        if defn is None or defn not in self._opp_defs:
            raise _invalid(f"unknown custom field {item['custom_field_definition_id']}")
        value = item.get("value")
        kind = defn.get("data_type", "String")
        options = {o["id"] for o in defn.get("options") or []}
        bad = _invalid(f"invalid value {value!r} for custom field {defn['id']} ({kind})")
        if value is None:
            pass
        elif kind in TEXT_TYPES:
            if not isinstance(value, str):
                raise bad
        elif kind in NUMBER_TYPES:
            if not _is_number(value):
                raise bad
        elif kind == "Date":
            if not _is_int(value):
                raise bad
        elif kind == "Checkbox":
            if not isinstance(value, bool):
                raise bad
        elif kind == "Dropdown":
            if not _is_int(value) or value not in options:
                raise bad
        elif kind == "MultiSelect":
            if not isinstance(value, list) or not all(_is_int(v) and v in options for v in value):
                raise bad
        return {"custom_field_definition_id": defn["id"], "value": value}

    # ---- opportunities: search --------------------------------------------------------------
    def _search(self, body: dict[str, Any]) -> Response:
        unknown = [key for key in body if key not in SEARCH_KEYS]
        if unknown:  # Copper rejects them (it does not ignore them)
            raise _invalid(f"Base: Unrecognized attributes specified: {', '.join(unknown)}")
        number, size = self._page_params(body)
        sort_by = body.get("sort_by", "name")
        if sort_by not in SORT_KEYS:
            raise _invalid(f"Invalid sort_by: {sort_by!r}")
        direction = body.get("sort_direction", "asc")
        if direction not in ("asc", "desc"):
            raise _invalid(f"Invalid sort_direction: {direction!r}")
        # Sorted by date_modified, the modification bounds are applied to the cached order, so
        # a client paging from the last time seen (keyset) is served as fast as by page number.
        bounds: dict[str, Any] = {}
        if sort_by == "date_modified":
            bounds = {k: body[k] for k in ("minimum_modified_date", "maximum_modified_date")
                      if body.get(k) is not None}
        base = {k: v for k, v in body.items() if k not in bounds}
        tests = self._criteria(base)
        if bounds:
            self._criteria(body)  # still validated
        criteria = {k: v for k, v in base.items() if k not in ("page_number", "page_size")}
        key = f"{self._version}:{len(self.records)}:{dumps(criteria).decode()}"
        with self._lock:
            ordered_ids = self._cache.get(key)
            snapshot = list(self.records.values()) if ordered_ids is None else []
        if ordered_ids is None:
            hits = [r for r in snapshot if all(t(r) for t in tests)] if tests else snapshot
            ordered_ids = [r["id"] for r in self._order(hits, SORT_KEYS[sort_by], direction == "desc")]
            if len(snapshot) >= CACHE_FROM:
                with self._lock:
                    if len(self._cache) >= 16:
                        self._cache.clear()
                    self._cache[key] = ordered_ids
        if bounds:
            lo = bounds.get("minimum_modified_date")
            hi = bounds.get("maximum_modified_date")
            with self._lock:
                stamps = {i: self.records[i].get("date_modified") for i in ordered_ids
                          if i in self.records}
            ordered_ids = [i for i in ordered_ids if isinstance(stamps.get(i), int)
                           and (lo is None or stamps[i] >= lo) and (hi is None or stamps[i] <= hi)]
        if self.shuffle_ties:
            ordered_ids = self._shuffled_ties(ordered_ids, SORT_KEYS[sort_by])
        start = (number - 1) * size
        wanted = [] if start >= self.window else ordered_ids[start:min(start + size, self.window)]
        with self._lock:  # a record deleted since the search was cached is left out
            page = [self.records[i] for i in wanted if i in self.records]
        return self._ok(page, {self.total_header: str(len(ordered_ids) + self.total_slack)})

    def _shuffled_ties(self, ordered_ids: list[int], field: str) -> list[int]:
        """The order with each run of equal sort values shuffled (anew on every call)."""
        value = self._sort_value(field)
        with self._lock:
            values = [value(self.records[i]) if i in self.records else None for i in ordered_ids]
            rnd = self._random
            out: list[int] = []
            start = 0
            for end in range(1, len(ordered_ids) + 1):
                if end == len(ordered_ids) or values[end] != values[start]:
                    run = ordered_ids[start:end]
                    rnd.shuffle(run)
                    out.extend(run)
                    start = end
        return out

    def invalidate(self) -> None:
        """Forget cached search results and re-read the lookup tables: call after editing
        srv.records or srv.lookups directly."""
        with self._lock:
            self._version += 1
            self._cache.clear()
            self._index()

    def _criteria(self, body: Mapping[str, Any]) -> list[Any]:
        tests: list[Any] = []
        for key, field in ID_LIST_KEYS.items():
            wanted = body.get(key)
            if wanted is None:
                continue
            if not isinstance(wanted, list) or not all(_is_int(w) for w in wanted):
                raise _invalid(f"{key} must be an array of integer ids")
            if wanted:
                allowed = {None if (w == NONE_ID and key in NONE_ALLOWED) else w for w in wanted}
                tests.append(lambda r, f=field, a=allowed: r.get(f) in a)
        if body.get("status_ids") is not None:
            ids = body["status_ids"]
            if not isinstance(ids, list) or not all(_is_int(i) and 0 <= i < len(STATUSES) for i in ids):
                raise _invalid("status_ids must be an array of 0 (Open), 1 (Won), 2 (Lost), 3 (Abandoned)")
            if ids:
                names = {STATUSES[i] for i in ids}
                tests.append(lambda r: r.get("status") in names)
        if body.get("name") is not None:
            if not isinstance(body["name"], str):
                raise _invalid("name must be a string")
            exact = body["name"].casefold()
            tests.append(lambda r: str(r.get("name") or "").casefold() == exact)
        if body.get("tags") is not None:
            tags = body["tags"]
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise _invalid("tags must be an array of strings")
            if tags:
                wanted_tags = {t.casefold() for t in tags}
                tests.append(lambda r: any(str(t).casefold() in wanted_tags for t in r.get("tags") or ()))
        for name, field in RANGE_KEYS.items():
            lo, hi = body.get(f"minimum_{name}"), body.get(f"maximum_{name}")
            for key, bound in ((f"minimum_{name}", lo), (f"maximum_{name}", hi)):
                ok = _is_number(bound) if name == "monetary_value" else _is_int(bound)
                if bound is not None and not ok:
                    what = {"monetary_value": "a number", "interaction_count": "a whole number"
                            }.get(name, "whole Unix seconds")
                    raise _invalid(f"{key} must be {what}")
            if lo is None and hi is None:
                continue
            if field == "close_date":
                def value(r: Mapping[str, Any]) -> Any:
                    day = read_close_date(r.get("close_date"), self.date_order)
                    return None if day is None else midnight_utc(day)
            else:
                def value(r: Mapping[str, Any], f: str = field) -> Any:
                    v = r.get(f)
                    return v if _is_number(v) else None
            tests.append(lambda r, v=value, lo=lo, hi=hi: (x := v(r)) is not None
                         and (lo is None or x >= lo) and (hi is None or x <= hi))
        if body.get("custom_fields") is not None:
            crits = body["custom_fields"]
            if not isinstance(crits, list):
                raise _invalid("custom_fields must be an array")
            tests.extend(self._cf_test(c) for c in crits)
        return tests

    def _cf_test(self, crit: Any) -> Any:
        if not isinstance(crit, dict) or not _is_int(crit.get("custom_field_definition_id")):
            raise _invalid("custom_fields criteria need a custom_field_definition_id")
        unknown = [key for key in crit if key not in CF_CRITERION_KEYS]
        if unknown:
            raise _invalid(f"Base: Unrecognized attributes specified: {', '.join(unknown)}")
        def_id = crit["custom_field_definition_id"]
        defn = self._cf_defs.get(def_id)
        if defn is None:
            raise _invalid(f"Unknown custom field {def_id}")
        kind = defn.get("data_type", "String")
        if kind in TEXT_TYPES or defn.get("is_filterable") is False:
            raise _invalid(f"Custom field {def_id} ({kind}) cannot be searched")
        want = crit.get("value")
        lo, hi = crit.get("minimum_value"), crit.get("maximum_value")
        allow_empty = crit.get("allow_empty", False)
        option = crit.get("option", "ANY")
        if want is not None and not (isinstance(want, bool) or _is_number(want)
                                     or (isinstance(want, list) and all(_is_int(w) for w in want))):
            raise _invalid(f"custom field {def_id}: value must be option ids, a boolean or a number")
        if any(b is not None and not _is_number(b) for b in (lo, hi)):
            raise _invalid(f"custom field {def_id}: minimum_value and maximum_value must be numbers")
        if not isinstance(allow_empty, bool):
            raise _invalid(f"custom field {def_id}: allow_empty must be a boolean")
        if option not in ("ANY", "ALL", "NONE"):
            raise _invalid(f"custom field {def_id}: option must be ANY, ALL or NONE")

        def test(rec: Mapping[str, Any]) -> bool:
            v = next((cf.get("value") for cf in rec.get("custom_fields") or ()
                      if cf.get("custom_field_definition_id") == def_id), None)
            if v is None or v == []:
                if allow_empty:
                    return True
                if kind == "Checkbox" and want is False:
                    return True  # an unset checkbox is unchecked
                return isinstance(want, list) and option == "NONE"
            if want is not None:
                if isinstance(want, list):
                    have = v if isinstance(v, list) else [v]
                    if option == "ALL":
                        ok = all(w in have for w in want)
                    elif option == "NONE":
                        ok = not any(h in want for h in have)
                    else:
                        ok = any(h in want for h in have)
                elif isinstance(want, bool):
                    ok = isinstance(v, bool) and v is want
                else:
                    ok = _is_number(v) and v == want
                if not ok:
                    return False
            if lo is not None or hi is not None:
                if not _is_number(v):
                    return False
                if (lo is not None and v < lo) or (hi is not None and v > hi):
                    return False
            return True
        return test

    def _sort_value(self, field: str) -> Any:
        """The function giving the value a record sorts by (None: no value, sorted last)."""
        if field in ("status", "priority"):
            rank = {c: i for i, c in enumerate(STATUSES if field == "status" else PRIORITIES)}
            return lambda r: None if (v := r.get(field)) is None else rank.get(v, len(rank))
        if field == "close_date":
            def close(r: Mapping[str, Any]) -> int | None:
                day = read_close_date(r.get("close_date"), self.date_order)
                return None if day is None else day.toordinal()
            return close

        def plain(r: Mapping[str, Any]) -> Any:
            v = r.get(field)
            if isinstance(v, str):
                return v.casefold()
            if isinstance(v, bool):
                return int(v)
            return v
        return plain

    def _order(self, recs: list[dict[str, Any]], field: str, descending: bool) -> list[dict[str, Any]]:
        """By (value, id), both reversed for desc. Records without a value sort as the lowest,
        as real Copper does: first ascending (by id), last descending (by id, reversed)."""
        value = self._sort_value(field)
        keyed = [(value(r), r["id"], r) for r in recs]
        present = [t for t in keyed if t[0] is not None]
        missing = [t for t in keyed if t[0] is None]
        present.sort(key=lambda t: (t[0], t[1]), reverse=descending)
        missing.sort(key=lambda t: t[1], reverse=descending)
        return [t[2] for t in (present + missing if descending else missing + present)]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up (timeout, dropped connection) is normal here: stay quiet.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "FakeCopper/1"

    @property
    def fake(self) -> FakeCopper:
        return self.server.fake  # type: ignore[attr-defined,no-any-return]

    def setup(self) -> None:
        super().setup()
        with self.fake._lock:
            self.fake._conns.add(self.connection)

    def finish(self) -> None:
        with self.fake._lock:
            self.fake._conns.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def do_GET(self) -> None:  # noqa: N802
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle("PATCH")

    def _handle(self, method: str) -> None:
        fake = self.fake
        started = time.time()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        try:
            logged_body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant) if raw else None
        except (ValueError, UnicodeDecodeError):
            logged_body = None
        headers = dict(self.headers.items())
        path = self.path.split("?", 1)[0]
        admitted = fake._admit(fake.clock())
        rule = fake._take_rule(method, path) if admitted else None
        delay = fake.latency + (rule.latency if rule else 0.0)
        if delay > 0:
            time.sleep(delay)  # outside any lock: other connections go on
        if rule is not None and rule.hold is not None:
            rule.hold.wait(HOLD_LIMIT)
        drop = False
        if not admitted:
            resp: Response | None = fake._rate_limited()
        elif rule is not None and rule.drop and not rule.after:
            resp, drop = None, True
        elif rule is not None and rule.status is not None and not rule.after:
            resp = fake._fault_response(rule)
            if rule.truncate:
                resp.body = resp.body[: len(resp.body) // 2]
        else:
            resp = fake._dispatch(method, self.path, headers, raw)
            if rule is not None:
                if rule.drop:
                    resp, drop = None, True
                else:
                    resp = fake._apply_after(rule, resp)
        entry = LoggedRequest(method, self.path, headers, logged_body,
                              None if resp is None else resp.status, started, time.time())
        fake._log(entry)
        if drop or resp is None:
            self._hang_up()
            return
        self.send_response(resp.status)
        for name, value in resp.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if rule is not None and rule.cut:  # the connection dies half-way through the body
            self.wfile.write(resp.body[: len(resp.body) // 2])
            self.wfile.flush()
            self._hang_up()
            return
        self.wfile.write(resp.body)

    def _hang_up(self) -> None:
        """Close the connection without (the rest of) an answer."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A fake Copper API on 127.0.0.1 (for benchmarks).")
    parser.add_argument("--records", type=int, default=36, help="seed sample_records(N)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument("--rate-limit", default=None, help="N/SECONDS, e.g. 180/60")
    parser.add_argument("--retry-after", default=None, help="Retry-After value sent with 429s")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--api-key", default="k-test-123")
    parser.add_argument("--user-email", default="ada.park@example.com")
    parser.add_argument("--date-order", default="MDY", choices=("MDY", "DMY"))
    parser.add_argument("--window", type=int, default=100_000)
    parser.add_argument("--shuffle-ties", action="store_true",
                        help="serve records with equal sort values in a new order every time")
    parser.add_argument("--total-slack", type=int, default=0,
                        help="add this to every X-PW-TOTAL (an upper bound, as Copper's is)")
    parser.add_argument("--realistic", action="store_true",
                        help="serve real_records(N) and REAL_LOOKUPS, shaped as real accounts' are")
    args = parser.parse_args(argv)
    lookups, records = ((REAL_LOOKUPS, real_records(args.records, args.date_order)) if args.realistic
                        else (SAMPLE_LOOKUPS, sample_records(args.records, args.date_order)))
    srv = FakeCopper(lookups, records, realistic=args.realistic,
                     api_key=args.api_key, user_email=args.user_email, date_order=args.date_order,
                     window=args.window, latency=args.latency, host=args.host, port=args.port,
                     shuffle_ties=args.shuffle_ties, total_slack=args.total_slack)
    if args.rate_limit:
        n, _, secs = args.rate_limit.partition("/")
        srv.set_rate_limit(int(n), float(secs or 60))
    srv.rate_limit_retry_after = args.retry_after
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    srv.start()
    print(srv.url, flush=True)
    print(f"fakecopper: {len(srv.records)} records; api key {args.api_key!r}, "
          f"email {args.user_email!r}", file=sys.stderr, flush=True)
    while not stopped.wait(0.5):
        pass
    srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
