"""`oppcli api METHOD PATH`: a raw Copper request with the profile's credentials, pacing and
retries, run as the installed script against the Copper test server.

- The answer's body on stdout as JSON (an object indented, an array one element per line;
  -o jsonl one element per line); a body that is not JSON as it is; nothing else on stdout.
- GET and POST .../search are retried on 429/5xx; any other method is sent exactly once.
- --data takes JSON text, @FILE or - (stdin); bad JSON, a bad METHOD or PATH, --paginate off a
  search endpoint and the local backend exit 2 with nothing sent.
- --paginate asks page 1, 2, ... until a short page: one request per page.
- An error status maps to oppcli's exit codes (401 3, 404 4, 422 6, 5xx/429 5, other 4xx 2),
  Copper's words on one stderr line, stdout empty.
- --include shows the answers' status lines and headers on stderr; the key never appears.
"""

from __future__ import annotations

import json

import orjson
import pytest

from checks import one_error_line
from conftest import API_KEY


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line]


def _one_error_line(proc, *words: str) -> None:
    """stdout empty; stderr one `oppcli: error: ...` line holding the words (the exit code
    is checked by sh's `expect`)."""
    line = one_error_line(proc, proc.returncode)
    for word in words:
        assert word in line, (word, line)


# ---- reading --------------------------------------------------------------------------------
def test_get_prints_the_answer_as_indented_json(copper, sh):
    proc = sh("api", "GET", "/account")
    assert json.loads(proc.stdout) == {"id": 500123, "name": "Sample Account"}
    assert proc.stdout.startswith("{\n  ")  # one object: indented, as `show -o json` prints one
    assert proc.stderr == ""
    [call] = copper.calls("/account$")
    assert call.method == "GET" and call.body is None


def test_method_is_case_insensitive_and_a_query_string_goes_with_the_path(copper, sh):
    proc = sh("api", "get", "/opportunities/1001?custom_field_computed_values=true")
    assert json.loads(proc.stdout)["id"] == 1001
    [call] = copper.calls(r"/opportunities/1001$")
    assert call.path.endswith("?custom_field_computed_values=true")


def test_an_array_is_one_element_per_line_and_jsonl_one_line_each(copper, sh):
    as_json = sh("api", "GET", "/pipelines").stdout
    pipelines = json.loads(as_json)
    assert [p["name"] for p in pipelines] == ["Sales", "Renewals"]
    assert _lines(as_json)[0] == "[" and _lines(as_json)[-1] == "]"
    assert len(_lines(as_json)) == len(pipelines) + 2
    as_jsonl = sh("api", "GET", "/pipelines", "-o", "jsonl").stdout
    assert [json.loads(line) for line in _lines(as_jsonl)] == pipelines


def test_a_body_that_is_not_json_is_written_as_it_is(copper, sh):
    copper.fail("/account$", content_type="text/plain", body="plain words, not JSON\n", after=True)
    assert sh("api", "GET", "/account").stdout == "plain words, not JSON\n"


# ---- request bodies -------------------------------------------------------------------------
def test_post_search_with_data_sends_exactly_that_body(copper, sh):
    proc = sh("api", "POST", "/people/search", "--data", '{"name": "Laura", "page_size": 5}')
    assert [p["name"] for p in json.loads(proc.stdout)] == ["Laura Callahan"]
    [call] = copper.calls("/people/search$")
    assert call.method == "POST" and call.body == {"name": "Laura", "page_size": 5}


def test_data_from_a_file_and_from_stdin(copper, sh, tmp_path):
    body = tmp_path / "body.json"
    body.write_text('{"name": "Nancy"}')
    from_file = sh("api", "POST", "/people/search", "--data", f"@{body}").stdout
    from_stdin = sh("api", "POST", "/people/search", "--data", "-", input='{"name": "Nancy"}').stdout
    assert json.loads(from_file) == json.loads(from_stdin)
    assert [p["name"] for p in json.loads(from_file)] == ["Nancy Davolio"]
    assert [c.body for c in copper.calls("/people/search$")] == [{"name": "Nancy"}] * 2


@pytest.mark.parametrize("data,words", [
    ('{"name": }', ["--data is not valid JSON", "fix it"]),
    ("", ["--data is empty"]),
    ("@/nonexistent/body.json", ["cannot read the request body from /nonexistent/body.json"]),
])
def test_bad_data_exits_2_and_sends_nothing(copper, sh, data, words):
    proc = sh("api", "POST", "/people/search", "--data", data, expect=2)
    _one_error_line(proc, *words)
    assert copper.calls() == []


def test_bad_json_on_stdin_exits_2_and_sends_nothing(copper, sh):
    proc = sh("api", "POST", "/people/search", "--data", "-", input="{'name': 'Ada'}", expect=2)
    _one_error_line(proc, "stdin", "not valid JSON")
    assert copper.calls() == []


# ---- paging ---------------------------------------------------------------------------------
def test_paginate_asks_every_page_once_and_prints_one_array(copper, sh):
    proc = sh("api", "POST", "/opportunities/search", "--paginate",
              "--data", '{"page_size": 10, "sort_by": "name"}')
    deals = json.loads(proc.stdout)
    assert len(deals) == 36 and len({d["id"] for d in deals}) == 36
    assert [d["name"] for d in deals] == sorted((d["name"] for d in deals), key=str.casefold)
    calls = copper.calls("/opportunities/search$")
    assert [c.body["page_number"] for c in calls] == [1, 2, 3, 4]  # 10, 10, 10, 6
    assert all(c.body["page_size"] == 10 and c.body["sort_by"] == "name" for c in calls)


def test_paginate_jsonl_with_the_default_page_size(copper, sh):
    proc = sh("api", "POST", "/people/search", "--paginate", "-o", "jsonl")
    people = [json.loads(line) for line in _lines(proc.stdout)]
    assert len(people) == 12
    [call] = copper.calls("/people/search$")
    assert call.body == {"page_size": 200, "page_number": 1}


def test_paginate_stops_on_an_empty_page_after_full_ones(copper, sh):
    proc = sh("api", "POST", "/people/search", "--paginate", "-o", "jsonl",
              "--data", '{"page_size": 6}')
    assert len(_lines(proc.stdout)) == 12
    assert len(copper.calls("/people/search$")) == 3  # 6, 6, then an empty page


@pytest.mark.parametrize("args", [
    ("POST", "/opportunities"),
    ("GET", "/account"),
    ("GET", "/people/search"),
])
def test_paginate_off_a_post_search_endpoint_exits_2(copper, sh, args):
    proc = sh("api", *args, "--paginate", expect=2)
    _one_error_line(proc, "--paginate", "search")
    assert copper.calls() == []


def test_paginate_needs_an_object_body(copper, sh):
    proc = sh("api", "POST", "/people/search", "--paginate", "--data", "[1, 2]", expect=2)
    _one_error_line(proc, "JSON object")
    assert copper.calls() == []


# ---- retries: only what is safe to send twice ----------------------------------------------
def test_get_is_retried_on_500(copper, sh):
    copper.fail("/account$", status=500, times=2)
    assert json.loads(sh("api", "GET", "/account").stdout)["name"] == "Sample Account"
    assert [c.status for c in copper.calls("/account$")] == [500, 500, 200]


def test_a_search_is_retried_on_429_and_500(copper, sh):
    copper.fail("/people/search$", status=429, retry_after=0, times=1)
    copper.fail("/people/search$", status=500, times=1)
    proc = sh("api", "POST", "/people/search", "--data", '{"name": "Pat"}')
    assert [p["name"] for p in json.loads(proc.stdout)] == ["Pat Lee"]
    assert [c.status for c in copper.calls("/people/search$")] == [429, 500, 200]


def test_a_page_of_paginate_is_retried(copper, sh):
    copper.fail("/people/search$", status=502, times=1)
    proc = sh("api", "POST", "/people/search", "--paginate", "--data", '{"page_size": 5}')
    assert len(json.loads(proc.stdout)) == 12
    assert [c.status for c in copper.calls("/people/search$")] == [502, 200, 200, 200]


@pytest.mark.parametrize("method,path,data", [
    ("POST", "/opportunities", '{"name": "Raw deal", "primary_contact_id": 601}'),
    ("PUT", "/opportunities/1001", '{"details": "raw"}'),
    ("DELETE", "/opportunities/1001", None),
])
def test_anything_else_is_sent_exactly_once_on_500(copper, sh, method, path, data):
    copper.fail(path + "$", method=method, status=500, times=None)
    args = ["api", method, path] + (["--data", data] if data else [])
    proc = sh(*args, expect=5)
    _one_error_line(proc, f"{method} {path}", "not retried")
    assert len(copper.calls(path + "$", method)) == 1


def test_retries_run_out_with_exit_5(copper, sh):
    copper.fail("/account$", status=503, times=None)
    proc = sh("api", "GET", "/account", expect=5, env={"OPPCLI_COPPER_RETRIES": "2"})
    _one_error_line(proc, "GET /account", "503", "after 3 attempts")
    assert len(copper.calls("/account$")) == 3


def test_a_raw_write_is_not_audited(copper, sh):
    sh("api", "PUT", "/opportunities/1001", "--data", '{"details": "changed raw"}')
    assert copper.records[1001]["details"] == "changed raw"
    assert json.loads(sh("history", "-o", "json").stdout) == []


# ---- errors: the usual exit codes, Copper's words, nothing on stdout -----------------------
def test_401_exits_3(copper, sh):
    proc = sh("api", "GET", "/account", expect=3, env={"COPPER_API_KEY": "k-wrong"})
    _one_error_line(proc, "401", "API Key and/or Email are invalid")
    assert "k-wrong" not in proc.stderr


def test_404_exits_4(copper, sh):
    proc = sh("api", "GET", "/opportunities/999999", expect=4)
    _one_error_line(proc, "GET /opportunities/999999", "not found")


def test_422_exits_6_with_coppers_message(copper, sh):
    proc = sh("api", "POST", "/opportunities", "--data", '{"details": "no name"}', expect=6)
    _one_error_line(proc, "Name: can't be blank; Primary contact: can't be blank")
    assert len(copper.calls("/opportunities$", "POST")) == 1


def test_another_4xx_exits_2(copper, sh):
    copper.fail("/tags$", status=400,
                body='{"success": false, "status": 400, "message": "page_size is wrong"}')
    proc = sh("api", "GET", "/tags", expect=2)
    _one_error_line(proc, "GET /tags", "400", "page_size is wrong")
    assert len(copper.calls("/tags$")) == 1


# ---- what is refused before anything is sent ------------------------------------------------
@pytest.mark.parametrize("method,path,words", [
    ("FETCH", "/account", ["unknown method 'FETCH'", "GET, POST, PUT, PATCH, DELETE"]),
    ("HEAD", "/account", ["unknown method"]),
    ("GET", "account", ["PATH must start with one /", "/account"]),
    ("GET", "https://evil.example/developer_api/v1/account", ["not a URL"]),
    ("GET", "//evil.example/account", ["PATH must start with one /"]),
    ("GET", "/../../admin", ["'..'"]),
    ("GET", "/people/a b", ["space"]),
])
def test_a_bad_method_or_path_exits_2(copper, sh, method, path, words):
    proc = sh("api", method, path, expect=2)
    _one_error_line(proc, *words)
    assert copper.calls() == []


def test_get_with_a_body_exits_2(copper, sh):
    proc = sh("api", "GET", "/account", "--data", "{}", expect=2)
    _one_error_line(proc, "GET", "no body")
    assert copper.calls() == []


def test_an_unknown_output_format_exits_2(copper, sh):
    _one_error_line(sh("api", "GET", "/account", "-o", "csv", expect=2), "csv", "json, jsonl")
    assert copper.calls() == []


@pytest.mark.parametrize("how", [["--backend", "local"], []])
def test_the_local_backend_is_refused(copper, sh, how):
    env = {} if how else {"OPPCLI_BACKEND": "local"}
    proc = sh(*how, "api", "GET", "/account", expect=2, env=env)
    _one_error_line(proc, "oppcli api talks to Copper", "backend is local", "--backend copper")
    assert copper.calls() == []


# ---- --include, and the key ----------------------------------------------------------------
def test_include_prints_the_status_and_headers_to_stderr(copper, sh):
    proc = sh("api", "GET", "/account", "--include")
    assert json.loads(proc.stdout)["id"] == 500123  # stdout: the body alone
    lines = proc.stderr.splitlines()
    assert lines[0] == "HTTP/1.1 200 OK"
    assert "Content-Type: application/json; charset=utf-8" in lines
    assert lines[-1] == ""  # a blank line ends each answer's headers


def test_include_shows_each_attempt_and_each_page(copper, sh):
    copper.fail("/people/search$", status=500, times=1)
    proc = sh("api", "POST", "/people/search", "-i", "--paginate", "--data", '{"page_size": 5}')
    statuses = [line for line in proc.stderr.splitlines() if line.startswith("HTTP/")]
    assert statuses == ["HTTP/1.1 500 Internal Server Error"] + ["HTTP/1.1 200 OK"] * 3
    assert "X-PW-TOTAL: 12" in proc.stderr


def test_the_key_is_never_printed(copper, sh):
    copper.fail("/account$", status=500, times=1)
    runs = [sh("--debug", "api", "GET", "/account", "-i"),
            sh("--debug", "api", "POST", "/people/search", "-i", "--paginate"),
            sh("--debug", "api", "GET", "/nope", "-i", expect=4),
            sh("--debug", "api", "POST", "/opportunities", "-i", "--data", "{}", expect=6)]
    for proc in runs:
        assert API_KEY not in proc.stdout and API_KEY not in proc.stderr
    assert all(c.headers.get("X-PW-AccessToken") == API_KEY for c in copper.calls())


def test_a_key_echoed_in_an_answer_header_is_masked(copper, sh):
    copper.fail("/account$", status=200, body='{"id": 1}', headers={"X-Echo": f"token={API_KEY}"})
    proc = sh("api", "GET", "/account", "--include")
    assert "X-Echo: token=****" in proc.stderr.splitlines()
    assert API_KEY not in proc.stderr


def test_an_error_answer_still_shows_its_headers_with_include(copper, sh):
    proc = sh("api", "GET", "/nope", "-i", expect=4)
    assert proc.stdout == ""
    assert proc.stderr.splitlines()[0] == "HTTP/1.1 404 Not Found"
    assert proc.stderr.splitlines()[-1] == "oppcli: error: GET /nope: not found"


# ---- the library under it --------------------------------------------------------------------
def test_the_session_api(copper):
    import oppcli
    from oppcli.errors import NotFoundError

    with oppcli.connect() as s:
        answer = s.api("GET", "/account")
        assert answer.status == 200 and answer.json() == {"id": 500123, "name": "Sample Account"}
        pages = list(s.api_pages("/people/search", {"page_size": 5}))
        assert [len(p) for p in pages] == [5, 5, 2]
        created = s.api("POST", "/opportunities", {"name": "Library deal", "primary_contact_id": 601})
        assert orjson.loads(created.content)["name"] == "Library deal"
        with pytest.raises(NotFoundError):
            s.api("GET", "/opportunities/999999")
