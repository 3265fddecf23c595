"""Import never loses, duplicates or silently drops a deal: matching only deals that existed
before the run, --on-missing and --keep-ids, and runs stopped by signals, Ctrl-C, closed outputs,
an unwritable failed-rows path or a lost Copper answer, with every row reported exactly once and
every deal it made in the audit log."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from conftest import API_KEY, USER_EMAIL, copper_env, oppcli_exe
from fakecopper import FakeCopper, FaultRule
from oppcli.domain.sample import SAMPLE_LOOKUPS, sample_records


def _jsonl(records: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


def _lines(data: bytes | str) -> list[dict[str, Any]]:
    raw = data.encode() if isinstance(data, str) else data
    return [orjson.loads(x) for x in raw.splitlines() if x.strip()]


def _emptied_sample(run) -> None:
    """A store that knows the sample's pipelines, people and fields but holds no deals."""
    run("init", "--sample")
    ids = [str(r["id"]) for r in run.json("list", "--all")]
    run("delete", *ids, "--yes")


# ---- a row matches only a deal that existed before the import started ---------------------------
def test_restoring_an_export_into_an_emptied_store_keeps_every_deal(run, tmp_path, monkeypatch):
    run("init", "--sample")
    export = tmp_path / "deals.jsonl"
    run("export", "-o", "jsonl", "--output-file", str(export))
    originals = _lines(export.read_bytes())
    count = len(originals)
    assert count == 36 and originals[-1]["id"] == 1036
    monkeypatch.setenv("OPPCLI_STORE", str(tmp_path / "other"))
    _emptied_sample(run)
    r = run("import", str(export), "-o", "json")
    report = orjson.loads(r.stdout)
    assert [x["action"] for x in report] == ["created"] * count
    new_ids = [x["id"] for x in report]
    assert len(set(new_ids)) == count  # no row overwrote a deal another row had just created
    assert [x["row_id"] for x in report] == [o["id"] for o in originals]
    names = sorted(x["name"] for x in run.json("list", "--all"))
    assert names == sorted(o["name"] for o in originals)


def test_the_text_report_names_the_new_id_beside_the_rows_id(run, tmp_path, monkeypatch):
    run("init", "--sample")
    export = tmp_path / "deals.jsonl"
    run("export", "-o", "jsonl", "--id", "1001", "--output-file", str(export))
    monkeypatch.setenv("OPPCLI_STORE", str(tmp_path / "other"))
    _emptied_sample(run)
    r = run("import", str(export))
    assert "line 1: created 1037 (row id 1001)" in r.stderr


def test_rows_sharing_an_id_are_one_deal(run, tmp_path, monkeypatch):
    monkeypatch.setenv("OPPCLI_STORE", str(tmp_path / "s"))
    _emptied_sample(run)
    path = tmp_path / "rows.jsonl"
    path.write_bytes(_jsonl([{"id": 5001, "name": "Twice", "primary_contact_id": 601},
                             {"id": 7, "name": "Other", "primary_contact_id": 601},
                             {"id": 5001, "name": "Twice", "primary_contact_id": 601,
                              "monetary_value": 42}]))
    report = orjson.loads(run("import", str(path), "-o", "json").stdout)
    assert [x["action"] for x in report] == ["created", "created", "updated"]
    assert report[2]["id"] == report[0]["id"] != report[1]["id"]
    deals = run.json("list", "--all")
    assert sorted(d["name"] for d in deals) == ["Other", "Twice"]
    assert next(d for d in deals if d["name"] == "Twice")["monetary_value"] == 42


def test_a_row_id_equal_to_a_deal_this_run_created_does_not_match_it(run, tmp_path, monkeypatch):
    """Row 1 (id 1001, unknown) becomes 1037; row 2 has id 1037: a different deal, created."""
    monkeypatch.setenv("OPPCLI_STORE", str(tmp_path / "s"))
    _emptied_sample(run)
    path = tmp_path / "rows.jsonl"
    path.write_bytes(_jsonl([{"id": 1001, "name": "First", "primary_contact_id": 601},
                             {"id": 1037, "name": "Second", "primary_contact_id": 602}]))
    report = orjson.loads(run("import", str(path), "-o", "json").stdout)
    assert report[0]["id"] == 1037 and [x["action"] for x in report] == ["created", "created"]
    assert sorted(d["name"] for d in run.json("list", "--all")) == ["First", "Second"]


def test_on_copper_a_row_never_matches_a_deal_the_run_created(run, tmp_path, monkeypatch):
    records = sample_records()
    server = FakeCopper(lookups=SAMPLE_LOOKUPS, records=[], api_key=API_KEY,
                        user_email=USER_EMAIL)
    server._next_id = 1010  # the account's new ids overlap the file's
    with server:
        for k, v in copper_env(server.url).items():
            monkeypatch.setenv(k, v)
        path = tmp_path / "deals.jsonl"
        path.write_bytes(_jsonl(records))
        report = orjson.loads(run("import", str(path), "-o", "json").stdout)
        assert [x["action"] for x in report] == ["created"] * len(records)
        assert sorted(r["name"] for r in server.records.values()) == \
            sorted(r["name"] for r in records)


@pytest.mark.parametrize("choice, action, code", [("skip", "skipped", 0), ("error", "failed", 7)])
def test_on_missing_skips_or_fails_rows_whose_id_is_unknown(run, sample, tmp_path, choice,
                                                          action, code):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(_jsonl([{"id": 99999, "name": "Ghost", "primary_contact_id": 601},
                             {"name": "No id", "primary_contact_id": 601}]))
    r = run("import", str(path), "--on-missing", choice, "-o", "json", expect=code)
    report = orjson.loads(r.stdout)
    assert report[0]["action"] == action and report[0]["row_id"] == 99999
    assert report[1]["action"] == "created"  # a row without an id is always new
    assert run.json("search", "--name", "Ghost") == []


def test_on_missing_is_checked(run, sample, tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(_jsonl([{"name": "x", "primary_contact_id": 601}]))
    r = run("import", str(path), "--on-missing", "maybe", expect=2)
    assert "--on-missing" in r.stderr


# ---- --keep-ids ----------------------------------------------------------------------------
def test_export_then_import_keep_ids_into_a_fresh_store_gives_back_the_same_deals(
        run, tmp_path, monkeypatch):
    run("init", "--sample")
    export = tmp_path / "deals.jsonl"
    run("export", "-o", "jsonl", "--output-file", str(export))
    originals = {r["id"]: r for r in _lines(export.read_bytes())}
    monkeypatch.setenv("OPPCLI_STORE", str(tmp_path / "fresh"))
    run("init")
    fresh = tmp_path / "fresh" / "lookups.json"
    fresh.write_bytes((tmp_path / "store" / "lookups.json").read_bytes())
    # Copper exports are in date_modified order: the ids arrive in any order
    originals[1003].update(interaction_count=7, date_stage_changed=1700000000,
                           leads_converted_from=[{"lead_id": 9, "converted_timestamp": 1690000000}])
    shuffled = tmp_path / "shuffled.jsonl"
    shuffled.write_bytes(_jsonl(sorted(originals.values(), key=lambda r: r["name"])))
    report = orjson.loads(run("import", str(shuffled), "--keep-ids", "-o", "json").stdout)
    assert all(x["action"] == "created" and "row_id" not in x for x in report), report
    restored = {r["id"]: r for r in run.json("list", "--all")}
    assert set(restored) == set(originals)
    # the README: an import stamps the dates anew, and gives a deal the extras it lacks
    dates = ("date_created", "date_modified")
    extras = ("interaction_count", "date_stage_changed", "date_last_contacted", "date_lead_created")
    for rid, rec in originals.items():
        got = {k: v for k, v in restored[rid].items()
               if k not in dates and (k in rec or k not in extras)}
        assert got == {k: v for k, v in rec.items() if k not in dates}
    assert restored[1003]["interaction_count"] == 7  # a row's own extras are kept
    assert restored[1003]["leads_converted_from"] == [{"lead_id": 9, "converted_timestamp": 1690000000}]
    made = run.json("create", "--name", "After", "--primary-contact", "601")
    assert made["id"] == max(originals) + 1  # ids are still never reused
    assert [int(x["id"]) for x in run.json("list", "--all", "--sort", "id", "--asc")] == \
        sorted([*originals, made["id"]])  # the file stays in id order


def test_keep_ids_keeps_only_ids_the_store_never_issued(run, sample, tmp_path):
    path = tmp_path / "rows.jsonl"
    run("delete", "1005", "--yes")  # 1005 was issued: it is never handed out again
    path.write_bytes(_jsonl([{"id": 5000, "name": "Kept", "primary_contact_id": 601},
                             {"id": 1005, "name": "Not kept", "primary_contact_id": 601}]))
    report = orjson.loads(run("import", str(path), "--keep-ids", "-o", "json").stdout)
    assert report[0]["id"] == 5000
    assert report[1]["id"] not in (1005, 5000) and report[1]["row_id"] == 1005
    assert run.json("create", "--name", "Next", "--primary-contact", "601")["id"] > 5000


def test_keep_ids_is_refused_on_copper(run, copper, tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(_jsonl([{"id": 5000, "name": "Kept", "primary_contact_id": 601}]))
    before = dict(copper.records)
    r = run("import", str(path), "--keep-ids", expect=2)
    assert "local store only" in r.stderr and copper.records == before


# ---- where the rows not imported go, whatever stops the run -------------------------------------
def test_an_existing_failed_rows_file_is_refused_before_any_row(run, sample, tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(_jsonl([{"name": "New", "primary_contact_id": 601}]))
    taken = tmp_path / "taken.jsonl"
    taken.write_bytes(b"precious\n")
    r = run("import", str(path), "--failed-rows", str(taken), expect=3)
    assert "already exists" in r.stderr and taken.read_bytes() == b"precious\n"
    assert run.json("search", "--name", "New") == []


def test_an_unwritable_failed_rows_path_is_refused_before_any_row(run, sample, tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(_jsonl([{"name": "New", "primary_contact_id": 601}]))
    r = run("import", str(path), "--failed-rows", str(tmp_path / "no" / "such" / "dir.jsonl"),
            expect=3)
    assert "failed-rows file" in r.stderr and "nothing was done" in r.stderr
    assert run.json("search", "--name", "New") == []


def test_a_default_failed_rows_file_is_never_overwritten(run, sample, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = _jsonl([{"name": "Bad", "primary_contact_id": 999999}])
    # the files a stdin import in the next few seconds would name: all taken
    stamps = {time.strftime("%Y%m%dT%H%M%S", time.gmtime(time.time() + d)) for d in range(-1, 8)}
    for stamp in stamps:
        (tmp_path / f"oppcli-import-failed-{stamp}.jsonl").write_bytes(b"earlier\n")
    run("import", "-", "--format", "jsonl", input=bad, expect=7)
    run("import", "-", "--format", "jsonl", input=bad, expect=7)
    files = sorted(tmp_path.glob("oppcli-import-failed-*.jsonl"))
    kept = [f for f in files if f.read_bytes() == b"earlier\n"]
    assert len(kept) == len(stamps)  # none overwritten
    assert len(files) == len(stamps) + 2  # each run's failed row in a file of its own
    path = tmp_path / "rows.jsonl"
    path.write_bytes(bad)
    run("import", str(path), expect=7)
    run("import", str(path), expect=7)
    assert (tmp_path / "rows.failed.jsonl").exists() and (tmp_path / "rows.failed-2.jsonl").exists()


def _accounting(run, names: list[str], tmp_path: Path, stem: str) -> dict[str, int]:
    """How often each row's deal is in the store, plus how often the row is in the
    failed-rows files (unknown rows count as in the store or not by what the store holds)."""
    seen = {n: 0 for n in names}
    for deal in run.json("search", "--name-contains", "row-", "--all"):
        seen[deal["name"]] += 1
    for failed in tmp_path.glob(f"{stem}.failed*.jsonl"):
        for row in _lines(failed.read_bytes()):
            seen[row["name"]] += 1
    return seen


def _audit_creates(tmp_path: Path) -> list[int]:
    log = tmp_path / "config" / "audit.jsonl"
    return [e["id"] for e in _lines(log.read_bytes()) if e["op"] == "create"] if log.exists() else []


def _rows_file(tmp_path: Path, count: int, stem: str = "rows") -> tuple[Path, list[str]]:
    names = [f"row-{i:05d}" for i in range(count)]
    path = tmp_path / f"{stem}.jsonl"
    path.write_bytes(_jsonl([{"name": n, "primary_contact_id": 601} for n in names]))
    return path, names


def _creates_logged(tmp_path: Path) -> int:
    """Create entries in the audit log, counted without parsing (polled every few ms)."""
    log = tmp_path / "config" / "audit.jsonl"
    return log.read_bytes().count(b'"op":"create"') if log.exists() else 0


def _wait_for_creates(tmp_path: Path, at_least: int, proc: subprocess.Popen[bytes]) -> None:
    """Until the import has created `at_least` deals (counted in the audit log from now)."""
    deadline = time.monotonic() + 60
    before = _creates_logged(tmp_path)
    while _creates_logged(tmp_path) - before < at_least:
        assert proc.poll() is None, "the import ended before the signal"
        assert time.monotonic() < deadline
        time.sleep(0.005)


# Real signals at many points: after 1, 7, 40, 90 and 160 rows, each signal.
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_at_any_point_reports_each_row_exactly_once(run, sample, tmp_path, signum, code):
    path, names = _rows_file(tmp_path, 400)  # rows to spare after the last point: the
    for point in (1, 7, 40, 90, 160):          # signal must land before the import ends
        proc = subprocess.Popen([oppcli_exe(), "import", str(path)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _wait_for_creates(tmp_path, point, proc)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == code, err
        seen = _accounting(run, names, tmp_path, "rows")
        assert set(seen.values()) == {1}, {n: c for n, c in seen.items() if c != 1}
        created = [d["id"] for d in run.json("search", "--name-contains", "row-", "--all")]
        log = _lines((tmp_path / "config" / "audit.jsonl").read_bytes())
        live = {e["id"] for e in log if e["op"] == "create"} - \
            {e["id"] for e in log if e["op"] == "delete"}
        assert live == set(created)  # every create audited
        assert b"not imported are in" in err and b"Traceback" not in err
        assert not list(tmp_path.glob("rows.unknown*"))  # a held signal leaves none unknown
        # go on from the failed rows, as the message says: each row once in the end
        failed = sorted(tmp_path.glob("rows.failed*.jsonl"))
        assert len(failed) == 1
        run("import", str(failed[0]))
        failed[0].unlink()
        seen = _accounting(run, names, tmp_path, "rows")
        assert set(seen.values()) == {1}
        run("delete", *map(str, _ids_named(run, "row-")), "--yes")


def _ids_named(run, prefix: str) -> list[int]:
    return [d["id"] for d in run.json("search", "--name-contains", prefix, "--all")]


def test_ctrl_c_while_stderr_is_blocked_keeps_the_rows_not_done(run, sample, tmp_path):
    """A paused pager: stderr fills and the import blocks writing its report; Ctrl-C then
    still saves the rows not done."""
    path, names = _rows_file(tmp_path, 3000)
    proc = subprocess.Popen([oppcli_exe(), "import", str(path)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # stderr is not read: the pipe's 64 KiB fill after about 2,000 rows and the import blocks
    last, still = -1, 0
    while still < 20:
        time.sleep(0.1)
        count = len(_audit_creates(tmp_path))
        still = still + 1 if count == last else 0
        last = count
        assert proc.poll() is None
    assert 0 < last < 3000
    proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 30
    while not list(tmp_path.glob("rows.failed*.jsonl")):
        assert time.monotonic() < deadline, "no failed-rows file while stderr is blocked"
        time.sleep(0.05)
    _, err = proc.communicate(timeout=60)  # the reader comes back
    assert proc.returncode == 130
    seen = _accounting(run, names, tmp_path, "rows")
    assert set(seen.values()) == {1}, sum(1 for c in seen.values() if c != 1)


def test_an_interrupted_import_keeps_the_rows_not_done(run, sample, tmp_path, monkeypatch):
    """Ctrl-C between rows: the rows not done go to the failed-rows file (each marked with when
    the import started), and running that file finishes the job with each row made once."""
    from oppcli.ops import importing

    rows = tmp_path / "rows.csv"
    rows.write_text("name,primary_contact_id\n" + "".join(f"deal {i},601\n" for i in range(6)))
    original = importing.Importer.one
    calls = {"n": 0}

    def one(self, row, started):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return original(self, row, started)

    monkeypatch.setattr(importing.Importer, "one", one)
    r = run("--backend", "local", "import", str(rows), expect=130)
    assert "interrupted at line 5" in r.stderr
    left = (tmp_path / "rows.failed.csv").read_text().splitlines()
    # (each row also carries when the import started: oppcli_import_started)
    assert [",".join(x.split(",")[:2]) for x in left] == \
        ["name,primary_contact_id", "deal 3,601", "deal 4,601", "deal 5,601"]
    assert left[0].split(",")[2:] == ["oppcli_import_started"]
    monkeypatch.setattr(importing.Importer, "one", original)
    run("--backend", "local", "import", str(tmp_path / "rows.failed.csv"))
    names = [x["name"] for x in run.json("--backend", "local", "search", "--name-contains", "deal ")]
    assert sorted(names) == [f"deal {i}" for i in range(6)]  # each row exactly once


def test_a_closed_stdout_stops_the_import_with_141_keeping_the_rest(run, sample, tmp_path):
    path, names = _rows_file(tmp_path, 3000)
    shell = f"'{oppcli_exe()}' import '{path}' -o jsonl | head -1; echo \"rc=${{PIPESTATUS[0]}}\""
    proc = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert proc.stdout.splitlines()[-1] == "rc=141", proc.stderr
    assert "output was closed" in proc.stderr and "not imported are in" in proc.stderr
    seen = _accounting(run, names, tmp_path, "rows")
    assert set(seen.values()) == {1}
    assert len(_ids_named(run, "row-")) < 3000


def test_the_json_report_is_printed_when_the_import_stops(run, copper, tmp_path):
    copper.fail("/opportunities$", method="POST", status=401, times=None, after=False)
    path, _ = _rows_file(tmp_path, 3)
    r = run("import", str(path), "-o", "json", expect=3)
    report = orjson.loads(r.stdout)
    assert [x["action"] for x in report] == ["not tried"] * 3
    assert "not imported are in" in r.stderr


# ---- Copper: a create whose outcome is unknown is never made twice ------------------------------
def test_a_lost_create_answer_with_a_failing_search_is_unknown_not_failed(run, copper, tmp_path):
    copper.fail("/opportunities$", method="POST", after=True, status=502)
    copper.fail("/opportunities/search", method="POST", status=500, times=30)
    path = tmp_path / "deals.jsonl"
    path.write_bytes(_jsonl([{"name": "Made Maybe", "primary_contact_id": 605}]))
    r = run("import", str(path), "-o", "json", expect=7)
    (result,) = orjson.loads(r.stdout)
    assert result["action"] == "unknown", result
    assert not (tmp_path / "deals.failed.jsonl").exists()
    unknown = tmp_path / "deals.unknown.jsonl"
    (row,) = _lines(unknown.read_bytes())
    assert row["name"] == "Made Maybe" and isinstance(row["oppcli_unconfirmed_since"], int)
    made = [x for x in copper.records.values() if x["name"] == "Made Maybe"]
    assert len(made) == 1  # Copper did make it
    copper.clear_faults()
    posts = sum(1 for q in copper.requests if q.method == "POST" and q.path.endswith("/opportunities"))
    r = run("import", str(unknown), "-o", "json")  # the rerun the message advises
    (again,) = orjson.loads(r.stdout)
    assert again["action"] == "created" and again["id"] == made[0]["id"]
    assert [x for x in copper.records.values() if x["name"] == "Made Maybe"] == made
    assert sum(1 for q in copper.requests
               if q.method == "POST" and q.path.endswith("/opportunities")) == posts  # no POST


def test_an_unknown_row_that_was_not_made_is_created_on_the_rerun(run, copper, tmp_path):
    path = tmp_path / "deals.unknown.jsonl"
    since = int(time.time()) - 60
    path.write_bytes(_jsonl([{"name": "Never Made", "primary_contact_id": 605,
                              "oppcli_unconfirmed_since": since}]))
    (result,) = orjson.loads(run("import", str(path), "-o", "json").stdout)
    assert result["action"] == "created"
    assert len([x for x in copper.records.values() if x["name"] == "Never Made"]) == 1


def test_an_unknown_csv_row_carries_its_marker_column(run, sample, tmp_path):
    path = tmp_path / "rows.unknown.csv"
    path.write_text("name,primary_contact_id,oppcli_unconfirmed_since\r\n"
                    f"Csv Row,601,{int(time.time()) - 60}\r\n")
    (result,) = orjson.loads(run("import", str(path), "-o", "json").stdout)
    assert result["action"] == "created"
    (again,) = orjson.loads(run("import", str(path), "-o", "json").stdout)
    assert again["action"] == "created" and again["id"] == result["id"]  # found, not made twice
    assert len(run.json("search", "--name", "Csv Row")) == 1


class SecondCreateFails(FakeCopper):
    """The 2nd POST /opportunities gets a 502 *before* Copper handles it: nothing is made."""

    posts = 0

    def _take_rule(self, method, path):
        if method == "POST" and path.endswith("/opportunities"):
            self.posts += 1
            if self.posts == 2:
                return FaultRule(".*", status=502)
        return super()._take_rule(method, path)


def test_a_lost_create_is_not_confirmed_by_an_earlier_row_of_the_same_run(run, monkeypatch,
                                                                          tmp_path):
    """A create that never reached Copper is not taken for made because an earlier row of the
    same run made a deal with the same name and contact: either both deals exist, or the row
    is reported failed or unknown (a lost answer is reported unknown: the rerun looks before it
    creates), never created with the earlier row's id."""
    srv = SecondCreateFails(lookups=SAMPLE_LOOKUPS, records=sample_records(), api_key=API_KEY,
                            user_email=USER_EMAIL)
    with srv:
        for k, v in copper_env(srv.url).items():
            monkeypatch.setenv(k, v)
        path = tmp_path / "deals.jsonl"
        # two deals for the same contact with the same name (e.g. two renewal quotes)
        path.write_bytes(_jsonl([{"name": "Renewal", "primary_contact_id": 605, "monetary_value": 1},
                                 {"name": "Renewal", "primary_contact_id": 605, "monetary_value": 2}]))
        r = run("import", str(path), "-o", "json", expect=None)
        results = orjson.loads(r.stdout)
        made = [x for x in srv.records.values() if x["name"] == "Renewal"]
    assert len(made) == 2 or results[1]["action"] in ("failed", "unknown"), (results, len(made))


def test_a_create_confirmed_after_a_lost_answer_is_in_the_audit_log(run, copper, tmp_path):
    """A create whose answer was lost and that the import then found made is audited like any
    other, so `oppcli undo` can take it back."""
    copper.fail("/opportunities$", method="POST", after=True, status=502)
    path = tmp_path / "deals.jsonl"
    path.write_bytes(_jsonl([{"name": "Lost Answer Deal", "primary_contact_id": 605}]))
    r = run("import", str(path), "-o", "json")
    (result,) = orjson.loads(r.stdout)
    assert result["action"] == "created"
    log = tmp_path / "config" / "audit.jsonl"
    entries = [orjson.loads(x) for x in log.read_bytes().splitlines()] if log.exists() else []
    assert [e["id"] for e in entries if e["op"] == "create"] == [result["id"]], \
        "import reported 'created' but the audit log has no entry: `oppcli undo` cannot take it back"


# ---- export: a closed stdout is a failure that keeps the state ----------------------------------
def test_an_export_whose_reader_dies_exits_141_and_keeps_the_state(run, tmp_path, store_path):
    from conftest import build_store, derived_records

    build_store(store_path, derived_records(3000, first_id=1))
    state = tmp_path / "deals.state"
    shell = (f"'{oppcli_exe()}' export --state-file '{state}' | head -c 100 >/dev/null; "
             "echo \"rc=${PIPESTATUS[0]}\"")
    proc = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, env=dict(os.environ))
    assert proc.stdout.strip() == "rc=141", proc.stderr
    assert "output was closed" in proc.stderr and "state file is unchanged" in proc.stderr
    assert not state.exists()


def test_a_read_command_whose_reader_leaves_stays_quiet(tmp_path, store_path):
    from conftest import build_store, derived_records

    build_store(store_path, derived_records(3000, first_id=1))
    shell = f"'{oppcli_exe()}' list --all -o jsonl | head -1 >/dev/null; echo \"rc=${{PIPESTATUS[0]}}\""
    proc = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert proc.stdout.strip() == "rc=0" and proc.stderr == ""


# ---- two imports by name at once create each deal once (local store) ----------------------------
def test_two_imports_by_name_at_once_create_each_deal_once(run, sample, tmp_path):
    path, names = _rows_file(tmp_path, 150)
    procs = [subprocess.Popen([oppcli_exe(), "import", str(path), "--match", "name",
                               "--on-conflict", "skip", "--failed-rows",
                               str(tmp_path / f"failed-{n}.jsonl")],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE) for n in range(3)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    deals = run.json("search", "--name-contains", "row-", "--all")
    assert sorted(d["name"] for d in deals) == names  # each once, none twice


def test_the_json_report_names_the_rows_done_before_copper_refused_the_key(run, copper, tmp_path):
    copper.fail("/opportunities$", method="POST", times=2)  # the first two pass
    copper.fail("/opportunities$", method="POST", status=401, times=None)
    path, _ = _rows_file(tmp_path, 5)
    r = run("import", str(path), "-o", "json", expect=3)
    report = orjson.loads(r.stdout)
    assert [x["action"] for x in report] == ["created", "created", "not tried", "not tried",
                                             "not tried"]
    left = _lines((tmp_path / "rows.failed.jsonl").read_bytes())
    assert [x["name"] for x in left] == ["row-00002", "row-00003", "row-00004"]


def test_a_row_finished_while_a_signal_was_held_is_reported_before_the_stop(run, sample, tmp_path,
                                                                            monkeypatch):
    from oppcli.backends.local import LocalStore

    original = LocalStore.create
    made = []

    def create(self, payload, **options):
        record = original(self, payload, **options)
        made.append(record["id"])
        if len(made) == 2:
            os.kill(os.getpid(), signal.SIGINT)  # lands while row 2 is being written
        return record

    monkeypatch.setattr(LocalStore, "create", create)
    path, _ = _rows_file(tmp_path, 5)
    r = run("import", str(path), "-o", "jsonl", expect=130)
    lines = _lines(r.stdout)
    assert [x["action"] for x in lines] == ["created", "created", "not tried", "not tried",
                                            "not tried"]
    assert [x["id"] for x in lines[:2]] == made


def test_running_the_failed_rows_never_matches_a_deal_the_first_run_made(run, tmp_path,
                                                                         monkeypatch):
    """Row 1 (id 1001, unknown) becomes 1037; row 2 (id 1037) fails on a bad date. Fixed and
    run again, row 2 must not update deal 1037: it was made by the first run for row 1."""
    monkeypatch.setenv("OPPCLI_STORE", str(tmp_path / "s"))
    _emptied_sample(run)
    path = tmp_path / "two.jsonl"
    path.write_bytes(_jsonl([{"id": 1001, "name": "First", "primary_contact_id": 601},
                             {"id": 1037, "name": "Second", "primary_contact_id": 602,
                              "close_date": "13/45/2026"}]))
    report = orjson.loads(run("import", str(path), "-o", "json", expect=7).stdout)
    assert report[0]["id"] == 1037
    failed = tmp_path / "two.failed.jsonl"
    (row,) = _lines(failed.read_bytes())
    assert isinstance(row["oppcli_import_started"], int)
    failed.write_bytes(failed.read_bytes().replace(b"13/45/2026", b"1/2/2026"))
    (again,) = orjson.loads(run("import", str(failed), "-o", "json").stdout)
    assert again["action"] == "created" and again["id"] != 1037
    assert sorted(d["name"] for d in run.json("list", "--all")) == ["First", "Second"]


def test_a_failed_row_that_matched_an_older_deal_still_updates_it_when_run_again(run, sample,
                                                                                 tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(_jsonl([{"id": 1002, "monetary_value": 5, "close_date": "13/45/2026"}]))
    run("import", str(path), expect=7)
    failed = tmp_path / "rows.failed.jsonl"
    failed.write_bytes(failed.read_bytes().replace(b"13/45/2026", b"1/2/2026"))
    (again,) = orjson.loads(run("import", str(failed), "-o", "json").stdout)
    assert again["action"] == "updated" and again["id"] == 1002
