"""End to end: the installed `oppcli` console script in real subprocesses, real pipes, real jq.

Every command here runs with no terminal (stdin closed or a pipe, stdout a pipe), the way
scripts and cron run it, so the default output is JSON. Errors are one clean line with the
documented exit code, a bare group prints its help, and output cut short by a reader that has
had enough (`| head`) ends quietly.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

import oppcli
from checks import make_store
from conftest import build_store, derived_records, jq_available, oppcli_exe, pipe_to_jq
from oppcli.backends.local import DATA
from oppcli.domain import fields as F
from oppcli.domain.sample import SAMPLE_LOOKUPS, sample_records

needs_jq = pytest.mark.skipif(not jq_available(), reason="jq is not installed")
SAMPLE_IDS = {r["id"] for r in sample_records()}


def snapshot(store: Path) -> dict[str, bytes]:
    """Every file of a store except the lock file, which carries no data."""
    return {p.name: p.read_bytes() for p in sorted(store.iterdir()) if p.name != ".lock"}


def assert_clean_error(proc: subprocess.CompletedProcess[str]) -> None:
    """One `oppcli: error: ...` line on stderr, no traceback, nothing on stdout."""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("oppcli: error: "), proc.stderr
    assert proc.stdout == "", proc.stdout


def jq(args: list[str], stdin: str | None = None) -> str:
    proc = subprocess.run(["jq", *args], input=stdin, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# ---- init, list, piped output --------------------------------------------------------------
def test_init_sample_then_list_piped_is_json_and_nothing_else(sh, store_path):
    init = sh("init", "--sample")
    assert init.stdout == ""  # notices go to stderr
    assert "created a store" in init.stderr and "36 sample" in init.stderr
    assert (store_path / "meta.json").is_file()

    listed = sh("list")
    assert listed.stderr == ""
    records = orjson.loads(listed.stdout)  # raises if anything but one JSON document is there
    assert isinstance(records, list) and len(records) == 36
    assert {r["id"] for r in records} == SAMPLE_IDS
    assert all(set(F.FIELD_NAMES) <= set(r) for r in records)
    modified = [r["date_modified"] for r in records]
    assert modified == sorted(modified, reverse=True)  # the default order: newest first


@needs_jq
def test_list_piped_into_jq(sh, sample):
    assert pipe_to_jq(["list"], "length").strip() == "36"
    ids = pipe_to_jq(["list"], ".[].id").split()
    assert {int(i) for i in ids} == SAMPLE_IDS


@needs_jq
def test_search_jsonl_piped_into_jq_streams_one_record_per_line(sh, sample):
    out = pipe_to_jq(["search", "--status", "open", "--min-value", "20000", "-o", "jsonl"],
                     "[.id, .status, .monetary_value]")
    rows = [orjson.loads(line) for line in out.splitlines()]
    assert len(rows) >= 3
    assert all(status == "Open" and value >= 20000 for _, status, value in rows)
    own = orjson.loads(sh("search", "--status", "open", "--min-value", "20000", "-o", "json").stdout)
    assert [r[0] for r in rows] == [r["id"] for r in own]


@needs_jq
def test_jq_filter_equals_oppcli_search(sh, sample):
    jq_filter = ('[.[] | select(.status == "Open" and .monetary_value != null '
                 'and .monetary_value >= 20000 and any(.tags[]; . == "enterprise" or . == "hot"))]')
    by_jq = orjson.loads(pipe_to_jq(["list", "-o", "json"], jq_filter))
    by_oppcli = orjson.loads(sh("search", "--status", "Open", "--min-value", "20000",
                                "--tag", "enterprise,hot").stdout)
    assert len(by_oppcli) >= 2
    assert by_jq == by_oppcli  # same records, same order, same bytes of JSON


@needs_jq
def test_the_store_file_itself_is_jq_readable_and_agrees_with_search(sh, sample):
    data = sample / DATA
    assert jq(["-s", "length", str(data)]).strip() == "36"
    won = [int(i) for i in jq(["-c", 'select(.status == "Won") | .id', str(data)]).split()]
    by_oppcli = orjson.loads(sh("search", "--status", "won", "--sort", "id", "--asc").stdout)
    assert won and won == [r["id"] for r in by_oppcli]

    lines = jq(["-c", 'select(.pipeline_id == 2 and .status == "Open")', str(data)]).splitlines()
    from_file = [orjson.loads(x) for x in lines]
    searched = sh("search", "--pipeline", "Renewals", "--status", "open", "--sort", "id",
                  "-o", "jsonl").stdout.splitlines()
    assert len(from_file) >= 2
    assert from_file == [orjson.loads(x) for x in searched]


# ---- create from piped JSON, clone through a pipe --------------------------------------------
def test_create_from_json_on_a_pipe(sh, sample):
    payload = {"name": "Piped Deal", "primary_contact_id": 602, "monetary_value": 4200,
               "tags": ["piped"], "close_date": "2026-03-04"}
    created = sh("create", "--from-json", "-", "-o", "json", input=orjson.dumps(payload).decode())
    assert "created opportunity" in created.stderr
    record = orjson.loads(created.stdout)
    assert record["id"] not in SAMPLE_IDS
    assert record["name"] == "Piped Deal" and record["monetary_value"] == 4200
    assert record["tags"] == ["piped"] and record["company_id"] == 502  # the contact's company
    assert record["status"] == "Open"
    shown = orjson.loads(sh("show", str(record["id"]), "-o", "json").stdout)
    assert shown == record


def test_malformed_json_on_a_pipe_is_a_clean_usage_error(sh, sample):
    before = snapshot(sample)
    proc = sh("create", "--from-json", "-", input='{"name": "broken', expect=2)
    assert_clean_error(proc)
    assert "malformed JSON" in proc.stderr
    assert snapshot(sample) == before


def test_show_piped_into_create_clones_a_deal(sample):
    exe = oppcli_exe()
    show = subprocess.Popen([exe, "show", "1005", "-o", "json"], stdout=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    create = subprocess.run([exe, "create", "--from-json", "-", "-o", "json"], stdin=show.stdout,
                            capture_output=True, text=True, timeout=60)
    assert show.stdout is not None and show.stderr is not None
    show.stdout.close()
    show_err = show.stderr.read()
    assert show.wait(timeout=60) == 0, show_err
    assert create.returncode == 0, create.stderr
    clone = orjson.loads(create.stdout)
    original = {r["id"]: r for r in sample_records()}[1005]
    # Read-only fields were ignored: the store assigned its own.
    assert clone["id"] not in SAMPLE_IDS
    assert clone["date_created"] != original["date_created"]
    assert clone["date_modified"] == clone["date_created"]
    writable = [f.name for f in F.FIELDS if f.writable]
    assert {k: clone[k] for k in writable} == {k: original[k] for k in writable}
    assert clone["company_name"] == original["company_name"]


# ---- exit codes and error lines of the installed script ---------------------------------------
@pytest.mark.parametrize(("args", "code", "words"), [
    (["frobnicate"], 2, "No such command"),
    (["list", "-o", "yaml"], 2, "unknown output format"),
    (["search", "--status", "bogus"], 2, "Open, Won, Lost, Abandoned"),
    (["create", "--name", "No Contact"], 2, "primary"),
    (["update", "1001", "--win-probability", "140"], 2, "win"),
    (["show", "99999"], 4, "no opportunity with id 99999"),
    (["update", "99999", "--details", "x"], 4, "99999"),
    (["delete", "1001", "99999", "--yes"], 4, "99999"),
    (["show", "No Such Deal"], 4, "no opportunity named"),
])
def test_error_exit_codes_with_one_clean_line(sh, sample, args, code, words):
    before = snapshot(sample)
    proc = sh(*args, expect=code)
    assert_clean_error(proc)
    assert words in proc.stderr
    assert snapshot(sample) == before


def test_missing_store_exits_3_with_a_hint_to_init(sh, isolated):
    proc = sh("--store", str(isolated / "nowhere"), "list", expect=3)
    assert_clean_error(proc)
    assert "oppcli init" in proc.stderr
    assert not (isolated / "nowhere").exists()  # reading does not create a store


def test_ambiguous_name_exits_6_and_lists_the_ids(sh, run, sample):
    first = run.json("create", "--name", "Twin Deal", "--primary-contact-id", "601")
    second = run.json("create", "--name", "Twin Deal", "--primary-contact-id", "602")
    proc = sh("show", "twin deal", expect=6)
    assert_clean_error(proc)
    assert str(first["id"]) in proc.stderr and str(second["id"]) in proc.stderr
    proc = sh("delete", "Twin Deal", "--yes", expect=6)
    assert_clean_error(proc)
    assert len(orjson.loads(sh("search", "--name", "Twin Deal").stdout)) == 2


def test_debug_shows_the_traceback(sh, sample):
    plain = sh("show", "99999", expect=4)
    assert "Traceback" not in plain.stderr
    debug = sh("--debug", "show", "99999", expect=4)
    assert "Traceback (most recent call last)" in debug.stderr
    assert "NotFoundError" in debug.stderr
    assert debug.stderr.rstrip().splitlines()[-1] == plain.stderr.strip()


def test_delete_without_yes_and_without_a_terminal_refuses(sh, sample):
    before = snapshot(sample)
    proc = sh("delete", "1001", "1002", expect=2)
    assert_clean_error(proc)
    assert "refusing" in proc.stderr and "--yes" in proc.stderr
    assert snapshot(sample) == before
    assert len(orjson.loads(sh("list").stdout)) == 36
    # The same with a (non-terminal) pipe on stdin that says yes.
    proc = sh("delete", "1001", input="y\n", expect=2)
    assert_clean_error(proc)
    assert snapshot(sample) == before
    deleted = orjson.loads(sh("delete", "1001", "--yes").stdout)
    assert deleted == [{"id": 1001, "is_deleted": True}]
    sh("show", "1001", expect=4)


def test_python_dash_m_version():
    proc = subprocess.run([sys.executable, "-m", "oppcli", "--version"], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"oppcli {oppcli.__version__}\n"
    script = subprocess.run([oppcli_exe(), "--version"], capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, timeout=60)
    assert script.stdout == proc.stdout


def test_python_dash_m_runs_commands_with_exit_codes(sh, sample):
    proc = subprocess.run([sys.executable, "-m", "oppcli", "show", "99999"], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert proc.returncode == 4
    assert_clean_error(proc)


# A bare group (`oppcli`, `oppcli config`) prints its help, never an empty error.
@pytest.mark.parametrize("args", [[], ["config"]], ids=["oppcli", "oppcli config"])
def test_a_bare_group_prints_help_without_an_error_line(sh, args):
    proc = sh(*args, expect=None)
    assert proc.returncode in (0, 2), proc
    assert "Usage:" in proc.stdout + proc.stderr
    assert "error" not in proc.stderr.lower(), proc.stderr
    assert "Traceback" not in proc.stderr


# ---- broken pipe ------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_list_into_head_exits_quietly_on_a_broken_pipe(store_path, fmt):
    # ~2.5 MB of output: far more than a pipe holds, so oppcli is still writing when head exits.
    build_store(store_path, derived_records(3000))
    producer = subprocess.Popen([oppcli_exe(), "list", "-o", fmt], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = subprocess.run(["head", "-1"], stdin=producer.stdout, capture_output=True, timeout=60)
    assert producer.stdout is not None and producer.stderr is not None
    producer.stdout.close()
    stderr = producer.stderr.read().decode()
    code = producer.wait(timeout=60)
    assert head.returncode == 0
    first = head.stdout.decode()
    if fmt == "json":
        assert first == "[\n"
    else:
        assert first.endswith("\n") and len(first) > 20
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert stderr == ""
    assert code == 0  # the reader having had enough is not an error


def test_a_big_table_piped_into_head_ends_quietly(isolated):
    store = make_store(isolated / "big", SAMPLE_LOOKUPS, sample_records(count=2000))
    env = dict(os.environ, OPPCLI_STORE=str(store))
    runs = []
    for _ in range(4):  # timing dependent: several at once, each racing its own head
        producer = subprocess.Popen([oppcli_exe(), "list", "-o", "table", "--all"],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=env)
        head = subprocess.Popen(["head", "-1"], stdin=producer.stdout, stdout=subprocess.PIPE)
        assert producer.stdout is not None
        producer.stdout.close()  # only head holds the read end
        runs.append((producer, head))
    for producer, head in runs:
        first, _ = head.communicate(timeout=60)
        err = producer.stderr.read().decode() if producer.stderr else ""
        code = producer.wait(timeout=60)
        if producer.stderr:
            producer.stderr.close()
        assert code == 0, (code, err)
        assert "Traceback" not in err and "error" not in err.lower(), err
        assert head.returncode == 0 and first.count(b"\n") == 1


# ---- the quick start on a fresh machine -------------------------------------------------------
def _fresh_env(isolated: Path, monkeypatch: pytest.MonkeyPatch, *, xdg: bool) -> dict[str, str]:
    home = isolated / "home"
    home.mkdir()
    monkeypatch.delenv("OPPCLI_STORE")
    if not xdg:
        monkeypatch.delenv("XDG_DATA_HOME")
    env = dict(os.environ)
    env["HOME"] = str(home)
    env["PATH"] = str(Path(oppcli_exe()).parent) + os.pathsep + env.get("PATH", "")
    return env


def test_quick_start_in_a_fresh_home_uses_xdg_data_home(isolated, monkeypatch):
    env = _fresh_env(isolated, monkeypatch, xdg=True)
    proc = subprocess.run(["/bin/sh", "-c", "oppcli init --sample && oppcli list"], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert len(orjson.loads(proc.stdout)) == 36
    store = isolated / "xdg-data" / "oppcli" / "store"
    assert (store / "meta.json").is_file() and (store / DATA).is_file()
    assert str(store) in proc.stderr
    assert list((isolated / "home").iterdir()) == []  # nothing written outside the given dirs


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the XDG default is Linux's")
def test_quick_start_without_xdg_data_home_uses_home_local_share(isolated, monkeypatch):
    env = _fresh_env(isolated, monkeypatch, xdg=False)
    proc = subprocess.run(["/bin/sh", "-c", "oppcli init --sample && oppcli list -o jsonl"],
                          env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 36
    store = isolated / "home" / ".local" / "share" / "oppcli" / "store"
    assert (store / "meta.json").is_file()
    again = subprocess.run(["/bin/sh", "-c", "oppcli init --sample"], env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "already exists" in again.stderr
