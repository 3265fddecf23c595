"""Cron-ready exports, bulk import and the offline mirror (sync pull), through the real CLI.

Exports stream every format, replace their file atomically, hold exactly what changed since the
state file's mark (never hiding a change, one run per state file at a time) and are silent
without a terminal; what export writes imports back unchanged; bad import rows fail alone; a
pull makes a read-only mirror that gives the same answers as Copper, and a failed pull changes
nothing and can be run again.

Most cases run on both backends (`be`: the local sample store, or the Copper test server seeded
with the same sample data). Processes, signals and cron-shaped runs use the installed `oppcli`
in real subprocesses; Copper is tests/fakecopper.py on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import errno
import io
import os
import pty
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from conftest import API_KEY, USER_EMAIL, build_store, copper_env, derived_records, oppcli_exe
from fakecopper import FakeCopper
from oppcli.backends.local import DATA, LocalStore
from oppcli.domain import fields as F
from oppcli.domain.sample import SAMPLE_LOOKUPS, sample_records
from oppcli.errors import StoreError

SEARCH = "/opportunities/search"
FORMATS = ["jsonl", "json", "csv", "tsv"]
# Set by the backend when a record is written: not expected to survive an export and import.
OWNED = ("id", "date_created", "date_modified", "company_name", "pipeline_is_revenue",
         "pipeline_type",
         # the read-only extras Copper (and the local store) give a new deal
         "interaction_count", "date_stage_changed", "date_last_contacted", "date_lead_created")
CF_HEADERS = ["cf:Region", "cf:Contract Months", "cf:Signed NDA", "cf:Competitors",
              "cf:Champion Notes"]
T = 1_780_000_000  # a fixed date_modified for hand-made records (2026-05-28)


# ---- helpers ------------------------------------------------------------------------------------
def wait_for(condition: Callable[[], Any], timeout: float = 20.0, what: str = "a condition") -> Any:
    """Poll until condition() is truthy (never a fixed sleep); returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def rows(text: str | bytes) -> list[dict[str, Any]]:
    """JSON Lines as records."""
    return [orjson.loads(line) for line in (text.encode() if isinstance(text, str) else text)
            .splitlines() if line.strip()]


def unmarked(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Failed rows without the mark each carries (when the import started, an int)."""
    for r in records:
        assert isinstance(r.pop("oppcli_import_started"), int)
    return records


def ids_of(text: str | bytes) -> list[int]:
    return [r["id"] for r in rows(text)]


def snapshot(store: Path) -> dict[str, bytes]:
    """A store's files and their bytes (the lock file holds no data)."""
    return {p.name: p.read_bytes() for p in sorted(store.iterdir()) if p.name != ".lock"}


def temps(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    """A record without what the backend sets when writing it."""
    return {k: v for k, v in record.items() if k not in OWNED}


def multiselect_empty_as_null(record: dict[str, Any]) -> dict[str, Any]:
    """CSV has one empty cell for an empty MultiSelect: [] and null read back the same way."""
    out = copy.deepcopy(record)
    for cf in out.get("custom_fields") or ():
        if cf["value"] == []:
            cf["value"] = None
    return out


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


@dataclass
class Source:
    """Where the records live for a test: the local sample store, or the Copper test server."""

    name: str
    store: Path | None = None
    server: FakeCopper | None = None

    @property
    def order(self) -> str:
        """The order export streams in (README): the local store's ids, Copper's date_modified."""
        return "date_modified" if self.server is not None else "id"

    def args(self, *args: Any) -> list[str]:
        where = ["--store", str(self.store)] if self.store is not None else []
        return ["--backend", self.name, *where, *map(str, args)]

    def state(self) -> Any:
        """Everything a write could change: the store's bytes, or the server's records."""
        if self.server is not None:
            return copy.deepcopy(self.server.records)
        assert self.store is not None
        return snapshot(self.store)

    def writes(self) -> list[Any]:
        """Copper write requests so far (local: none to log)."""
        if self.server is None:
            return []
        return [r for r in self.server.requests if r.method in ("POST", "PUT", "DELETE")
                and "/search" not in r.path and "fetch_by_email" not in r.path]


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A directory of the test's own (tmp_path also holds the isolated config and cache)."""
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture(params=["local", "copper"])
def be(request: pytest.FixtureRequest) -> Source:
    if request.param == "local":
        return Source("local", store=request.getfixturevalue("sample"))
    return Source("copper", server=request.getfixturevalue("copper"))


@contextlib.contextmanager
def serve(monkeypatch: pytest.MonkeyPatch, records: list[dict[str, Any]], **options: Any
          ) -> Iterator[FakeCopper]:
    """A Copper test server holding these records, with the environment pointing at it."""
    server = FakeCopper(lookups=SAMPLE_LOOKUPS, records=records, api_key=API_KEY,
                        user_email=USER_EMAIL, **options)
    with server:
        for key, value in copper_env(server.url).items():
            monkeypatch.setenv(key, value)
        yield server


def export_bytes(run, be: Source, *args: Any) -> bytes:
    return run(*be.args("export", *args)).stdout_bytes


# ---- 1. export: formats, files, silence, filters, order --------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_export_streams_every_format_in_the_backends_order(run, be, fmt):
    r = run(*be.args("export", "-o", fmt))
    assert r.stderr == ""  # not a terminal: no progress, no summary
    same = run(*be.args("list", "--sort", be.order, "--asc", "-o", fmt)).stdout
    assert r.stdout == same
    if fmt == "jsonl":
        records = rows(r.stdout)
        assert len(records) == 36
        keys = [x[be.order] for x in records]
        assert keys == sorted(keys)
        assert {x["id"] for x in records} == set(range(1001, 1037))


def test_export_order_is_the_stores_on_local_and_oldest_change_first_on_copper(run, be):
    """Made visible: 1002, then 1001 modified last."""
    if be.server is not None:  # distinct seconds, whatever the clock does during the test
        latest = max(r["date_modified"] for r in be.server.records.values())
        for n, rid in enumerate((1002, 1001), 1):
            be.server.records[rid] = dict(be.server.records[rid], date_modified=latest + n)
        be.server.invalidate()
    else:
        run(*be.args("update", "1002", "--priority", "Low", "-o", "json"))
        run(*be.args("update", "1001", "--priority", "Low", "-o", "json"))
    exported = ids_of(export_bytes(run, be, "--id", "1001,1002,1003", "-o", "jsonl"))
    assert exported == ([1001, 1002, 1003] if be.name == "local" else [1003, 1002, 1001])
    assert exported == ids_of(run(*be.args("search", "--id", "1001,1002,1003", "--sort", be.order,
                                           "--asc", "-o", "jsonl")).stdout)


def test_export_defaults_to_jsonl_and_is_the_same_on_both_backends(run, sample, copper):
    for fmt in FORMATS:
        local = run("--backend", "local", "export", "-o", fmt).stdout
        remote = run("--backend", "copper", "export", "-o", fmt).stdout
        assert local == remote, fmt
    assert run("--backend", "copper", "export").stdout == run("--backend", "local", "export",
                                                               "-o", "jsonl").stdout


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_to_a_file_is_owner_only_and_quiet(run, be, fmt, work):
    out = work / "out" / f"deals.{fmt}"
    out.parent.mkdir()
    r = run(*be.args("export", "-o", fmt, "--output-file", out))
    assert r.stdout == "" and r.stderr == ""
    assert out.read_bytes() == export_bytes(run, be, "-o", fmt)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no temp file left


def test_an_unknown_export_format_exits_2(run, be, work):
    r = run(*be.args("export", "-o", "xml", "--output-file", work / "x"), expect=2)
    assert "unknown export format" in r.stderr and r.stdout == ""
    assert not (work / "x").exists()


@pytest.mark.parametrize("filters", [
    ["--status", "open"],
    ["--stage", "Sales/Negotiation"],
    ["--company", "Contoso Ltd"],
    ["--tag", "enterprise", "--min-value", "20000"],
    ["--custom-field", "Region=EMEA"],
    ["--priority", "high"],
    ["--name-contains", "licence"],
    ["--modified-after", "2026-03-01"],
], ids=" ".join)
def test_export_takes_the_same_filters_as_search(run, be, filters):
    exported = run(*be.args("export", *filters, "-o", "jsonl")).stdout
    searched = run(*be.args("search", *filters, "--sort", be.order, "--asc", "-o", "jsonl")).stdout
    assert exported == searched
    assert 0 < len(rows(exported)) < 36


def test_fail_empty_exits_4_and_leaves_file_and_state_as_they_were(run, be, work):
    out, state = work / "deals.csv", work / "deals.state"
    run(*be.args("export", "-o", "csv", "--output-file", out, "--state-file", state))
    before = out.read_bytes(), state.read_bytes()
    assert len(csv_rows(before[0])) == 37
    r = run(*be.args("export", "-o", "csv", "--output-file", out, "--state-file", state,
                     "--fail-empty"), expect=4)
    assert "nothing to export" in r.stderr and r.stdout == ""
    assert (out.read_bytes(), state.read_bytes()) == before
    assert temps(work) == []
    # Without --fail-empty an empty run is a success: the file holds the header only.
    run(*be.args("export", "-o", "csv", "--output-file", out, "--state-file", state))
    assert csv_rows(out.read_bytes()) == [csv_rows(before[0])[0]]
    # To stdout too.
    r = run(*be.args("export", "--name", "No such deal", "--fail-empty"), expect=4)
    assert r.stdout == ""


# ---- 2. atomicity: failed and killed runs ---------------------------------------------------
def test_a_copper_export_failing_midway_leaves_the_previous_file(run, monkeypatch, work):
    out, state = work / "deals.jsonl", work / "deals.state"
    out.write_bytes(b'{"previous": "export"}\n')
    with serve(monkeypatch, derived_records(1000)) as server:
        monkeypatch.setenv("OPPCLI_COPPER_RETRIES", "1")
        server.fail(SEARCH, times=1)  # page 1 answers normally...
        server.fail(SEARCH, times=None, status=500)  # ...every later page fails
        r = run("export", "--output-file", str(out), "--state-file", str(state), expect=5)
        assert "500" in r.stderr and "search (" in r.stderr
        statuses = [c.status for c in server.calls(SEARCH, "POST")]
        assert statuses[0] == 200 and set(statuses[1:]) == {500}
    assert out.read_bytes() == b'{"previous": "export"}\n'
    assert not state.exists()  # the state moves only after a successful export
    assert sorted(p.name for p in work.iterdir() if not p.name.endswith(".lock")) == ["deals.jsonl"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_copper_export_killed_while_streaming_leaves_the_previous_file(monkeypatch, work,
                                                                         sig):
    import threading

    out = work / "deals.jsonl"
    out.write_bytes(b"yesterday's export\n")
    with serve(monkeypatch, derived_records(3000), latency=0.02) as server:
        # The first searches are answered (over half the records: past the export's 1 MB
        # write buffer, so the temp file has bytes); every later one is held until the signal
        # has been sent, so the export cannot finish first, however the machine schedules it.
        release = threading.Event()
        server.fail(SEARCH, times=13)  # answered as usual
        server.fail(SEARCH, times=None, hold=release)
        proc = subprocess.Popen([oppcli_exe(), "export", "--output-file", str(out)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=dict(os.environ))
        try:
            # Killed once part of the export is in its temporary file, pages still to come.
            tmp = wait_for(lambda: [p for p in work.glob(".deals.jsonl.oppcli-*.tmp")
                                    if p.stat().st_size > 0], what="a partly written temp file")
            assert proc.poll() is None
            proc.send_signal(sig)
            release.set()
            _, stderr = proc.communicate(timeout=20)
        finally:
            release.set()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert out.read_bytes() == b"yesterday's export\n"
        if sig == signal.SIGTERM:
            assert proc.returncode == 143
            assert b"Traceback" not in stderr
            assert temps(work) == []
            return
        assert proc.returncode == -signal.SIGKILL
        assert [p.name for p in tmp] == temps(work)
        assert tmp[0].name.startswith(f".deals.jsonl.oppcli-{proc.pid}-")
        # The next run removes what the killed one left, and writes the whole export.
        server.latency = 0.0
        proc2 = subprocess.run([oppcli_exe(), "export", "--output-file", str(out)],
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        assert proc2.returncode == 0, proc2.stderr
    assert temps(work) == []
    exported = ids_of(out.read_bytes())
    assert len(exported) == len(set(exported)) == 3000


def _unread(fd: int) -> int:
    """Bytes written to a pipe that its reader has not read yet."""
    import array
    import fcntl
    import termios

    buf = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, buf, True)
    return buf[0]


def _state(pid: int) -> str:
    """A process's scheduler state (R running, S sleeping...), from /proc."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_local_export_killed_while_reading_leaves_the_previous_file(run, work, sig):
    """The store's data file is a FIFO fed by the test: the export is held half way through
    reading it, so the kill lands mid-run every time."""
    store, out = work / "store", work / "deals.csv"
    build_store(store, derived_records(40))
    data = (store / DATA).read_bytes()
    (store / DATA).unlink()
    os.mkfifo(store / DATA)
    out.write_bytes(b"previous\r\n")
    proc = subprocess.Popen([oppcli_exe(), "--backend", "local", "--store", str(store), "export",
                             "-o", "csv", "--output-file", str(out)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    fd = -1
    try:
        def writer() -> int:
            try:
                return os.open(store / DATA, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # the export has not opened it yet
                    return 0
                raise
        fd = wait_for(writer, what="the export to open the data file")
        os.set_blocking(fd, True)
        os.write(fd, data[:len(data) // 2])
        # Signalled once it has read that half and sleeps waiting for the rest (a signal that
        # lands between two read() calls of CPython's buffered reader waits for the next one).
        wait_for(lambda: _unread(fd) == 0 and _state(proc.pid) == "S",
                 what="the export to wait for more data")
        assert len(temps(work)) == 1 and proc.poll() is None
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=20)
    finally:
        if fd > 0:
            os.close(fd)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert out.read_bytes() == b"previous\r\n"
    if sig == signal.SIGTERM:
        assert proc.returncode == 143 and b"Traceback" not in stderr
        assert temps(work) == []
        return
    assert proc.returncode == -signal.SIGKILL
    assert len(temps(work)) == 1
    (store / DATA).unlink()
    (store / DATA).write_bytes(data)
    run("--backend", "local", "--store", str(store), "export", "-o", "csv", "--output-file", str(out))
    assert temps(work) == []
    assert len(csv_rows(out.read_bytes())) == 41


def test_only_the_temp_files_of_dead_processes_are_removed(run, be, work):
    out = work / "deals.jsonl"
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = work / f".deals.jsonl.oppcli-{dead.pid}-abc123.tmp"
    live = work / f".deals.jsonl.oppcli-{os.getpid()}-def456.tmp"  # this test's own process
    other = work / f".other.jsonl.oppcli-{dead.pid}-abc123.tmp"  # beside another file
    for p in (stale, live, other):
        p.write_bytes(b"partial")
    run(*be.args("export", "--output-file", out))
    assert not stale.exists() and live.exists() and other.exists()
    assert len(rows(out.read_bytes())) == 36


# ---- 3. incremental exports ---------------------------------------------------------------------
def test_incremental_export_holds_exactly_what_changed(run, be, work):
    out, state = work / "deals.jsonl", work / "deals.state"

    def export() -> list[dict[str, Any]]:
        run(*be.args("export", "--output-file", out, "--state-file", state))
        return rows(out.read_bytes())

    assert len(export()) == 36
    assert export() == []
    run(*be.args("update", "1003", "--monetary-value", "1234", "-o", "json"))
    run(*be.args("update", "1020", "--add-tag", "nightly", "-o", "json"))
    created = run.json(*be.args("create", "--name", "Night Deal", "--primary-contact-id", "601"))
    searches_before = len(be.server.calls(SEARCH, "POST")) if be.server else 0
    changed = export()
    assert sorted(r["id"] for r in changed) == sorted([1003, 1020, created["id"]])
    assert changed == [run.json(*be.args("show", r["id"])) for r in changed]
    if be.server is not None:  # one search, filtered and sorted by Copper itself
        searches = be.server.calls(SEARCH, "POST")[searches_before:]
        assert len(searches) == 1
        body = searches[0].body
        assert body["sort_by"] == "date_modified" and body["sort_direction"] == "asc"
        assert isinstance(body["minimum_modified_date"], int)
        assert body["minimum_modified_date"] <= min(r["date_modified"] for r in changed)
    assert export() == []


@pytest.mark.parametrize("where", ["local", "copper"])
def test_records_sharing_the_high_water_mark_are_not_missed(run, monkeypatch, work, where):
    base = derived_records(7)
    stamps = {1: T - 500, 2: T - 20, 3: T, 4: T}
    first = [dict(r, date_modified=stamps[r["id"]]) for r in base[:4]]
    late = [dict(base[4], date_modified=T),  # same second as the high-water mark, seen late
            dict(base[5], date_modified=T - 30)]  # committed late, inside the overlap
    out, state = work / "deals.jsonl", work / "deals.state"
    store = work / "store"
    with contextlib.ExitStack() as stack:
        if where == "local":
            build_store(store, first)
        else:
            server = stack.enter_context(serve(monkeypatch, first))

        def export() -> list[int]:
            run("--backend", where, "--store", str(store), "export", "--output-file", str(out),
                "--state-file", str(state))
            return ids_of(out.read_bytes())

        assert export() == [1, 2, 3, 4]
        if where == "local":
            shutil.rmtree(store)
            build_store(store, first + late)
        else:
            for r in late:
                server.records[r["id"]] = r
            server.invalidate()
        # Copper: oldest change first; the local store: its id order.
        assert export() == ([5, 6] if where == "local" else [6, 5])
        assert export() == []


def test_a_busy_record_does_not_hide_other_changes_from_the_incremental_export(run, store_path,
                                                                                 tmp_path):
    """An update is stamped max(now, previous + 1), so a record updated N times within a few
    seconds is stamped up to N seconds ahead. The export's high-water mark must not let such a
    record hide a change made to another record after the export ran."""
    build_store(store_path, derived_records(5))
    store = LocalStore.open(store_path)
    for i in range(90):  # e.g. a script or an import file touching one deal 90 times
        store.update(1, {"monetary_value": 1000 + i})
    state = tmp_path / "deals.state"
    run("export", "--state-file", str(state))
    store.update(2, {"monetary_value": 4242})  # a real change, made after that export
    out = run("export", "--state-file", str(state)).stdout
    ids = [orjson.loads(x)["id"] for x in out.splitlines() if x.strip()]
    assert 2 in ids, "record 2 was modified after the last export but is never exported"


def test_two_exports_with_one_state_file_do_not_run_at_once(run, sample, tmp_path):
    import fcntl

    state, out = tmp_path / "deals.state", tmp_path / "deals.jsonl"
    out.write_bytes(b"previous\n")
    fd = os.open(str(state) + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another export holds it
        r = run("--backend", "local", "export", "--state-file", str(state), "--output-file",
                str(out), expect=5)
        assert "another export is running" in r.stderr
        assert out.read_bytes() == b"previous\n" and not state.exists()
    finally:
        os.close(fd)
    run("--backend", "local", "export", "--state-file", str(state), "--output-file", str(out))
    assert state.exists() and len(out.read_bytes().splitlines()) == 36


def test_since_a_date_or_a_duration(run, be, work):
    everything = rows(export_bytes(run, be))
    march = 1772323200  # 2026-03-01T00:00:00Z
    r = run(*be.args("export", "--since", "2026-03-01"))
    assert ids_of(r.stdout) == [x["id"] for x in everything if x["date_modified"] >= march]
    assert 0 < len(rows(r.stdout)) < 36
    if be.server is not None:
        assert be.server.calls(SEARCH, "POST")[-1].body["minimum_modified_date"] == march
    run(*be.args("update", "1007", "--priority", "Low", "-o", "json"))
    day_ago = time.time() - 86400
    stamps = {x["id"]: x["date_modified"] for x in rows(export_bytes(run, be))}
    got = ids_of(run(*be.args("export", "--since", "24h")).stdout)
    assert 1007 in got
    assert {i for i, t in stamps.items() if t >= day_ago + 5} <= set(got)  # a few seconds'
    assert set(got) <= {i for i, t in stamps.items() if t >= day_ago - 5}  # leeway each way
    assert ids_of(run(*be.args("export", "--since", "1d")).stdout) == got
    # With a state file, --since applies to the first run only.
    state = work / "s.state"
    assert ids_of(run(*be.args("export", "--since", "24h", "--state-file", state)).stdout) == got
    assert run(*be.args("export", "--since", "24h", "--state-file", state)).stdout == ""


@pytest.mark.parametrize("bad", ["yesterday", "24x", "2026-13-01", "-5h", ""])
def test_a_bad_since_exits_2_and_writes_nothing(run, be, work, bad):
    out, state = work / "deals.jsonl", work / "s.state"
    r = run(*be.args("export", "--since", bad, "--output-file", out, "--state-file", state),
            expect=2)
    assert "--since" in r.stderr and r.stdout == ""
    assert sorted(work.iterdir()) == []


@pytest.mark.parametrize("damage", [b"", b"{not json", b"[]", b'{"format": "something-else"}',
                                    b'{"format": "oppcli-export-state", "high_water": "soon"}',
                                    b'{"format": "oppcli-export-state", "recent": {"x": 1}}'],
                         ids=["empty", "garbage", "array", "other format", "bad mark",
                              "bad recent"])
def test_a_damaged_state_file_exits_3_and_changes_nothing(run, be, work, damage):
    out, state = work / "deals.jsonl", work / "deals.state"
    out.write_bytes(b"previous\n")
    state.write_bytes(damage)
    before = be.state()
    r = run(*be.args("export", "--output-file", out, "--state-file", state), expect=3)
    assert "state file" in r.stderr and r.stdout == ""
    assert (out.read_bytes(), state.read_bytes()) == (b"previous\n", damage)
    assert sorted(p.name for p in work.iterdir()
                  if not p.name.endswith(".lock")) == ["deals.jsonl", "deals.state"]
    assert be.state() == before


def test_a_state_file_of_another_store_or_backend_exits_3(run, sample, copper, work):
    state, out = work / "deals.state", work / "deals.jsonl"
    run("--backend", "local", "export", "--state-file", str(state), "--output-file", str(out))
    saved, exported = state.read_bytes(), out.read_bytes()
    r = run("--backend", "copper", "export", "--state-file", str(state), "--output-file", str(out),
            expect=3)
    assert "belongs to local store" in r.stderr
    other = work / "other-store"
    build_store(other, derived_records(3))
    run("--backend", "local", "--store", str(other), "export", "--state-file", str(state),
        "--output-file", str(out), expect=3)
    assert (state.read_bytes(), out.read_bytes()) == (saved, exported)


def test_a_state_file_of_another_copper_account_exits_3(run, copper, monkeypatch, work):
    state, out = work / "deals.state", work / "deals.jsonl"
    run("export", "--state-file", str(state), "--output-file", str(out))
    saved = state.read_bytes()
    # The same API address, another account: another key and its owner's email.
    copper.api_key, copper.user_email = "k-other-account", "zed@other.example"
    monkeypatch.setenv("COPPER_API_KEY", "k-other-account")
    monkeypatch.setenv("COPPER_USER_EMAIL", "zed@other.example")
    run("export", "--state-file", str(state), "--output-file", str(out), expect=3)
    assert state.read_bytes() == saved


# ---- 4. CSV -------------------------------------------------------------------------------------
def test_csv_has_the_documented_fixed_columns(run, be):
    header = csv_rows(export_bytes(run, be, "-o", "csv"))[0]
    assert header == [n for n in F.FIELD_NAMES if n != "custom_fields"] + list(F.EXTRA_NAMES) \
        + CF_HEADERS
    # --fields keeps its order; custom_fields expands in place.
    header = csv_rows(export_bytes(run, be, "-o", "csv", "--fields", "tags,custom_fields,id"))[0]
    assert header == ["tags", *CF_HEADERS, "id"]


def test_csv_custom_field_columns_follow_the_definitions(run, work):
    lookups = copy.deepcopy(SAMPLE_LOOKUPS)
    defs = lookups["custom_field_definitions"]
    defs.reverse()
    defs.insert(2, {"id": 499, "name": "Person Only", "data_type": "Text",
                    "available_on": ["person"], "is_filterable": False})
    LocalStore.create_store(work / "s", lookups=lookups, records=sample_records(3))
    out = run("--backend", "local", "--store", str(work / "s"), "export", "-o", "csv").stdout
    assert csv_rows(out.encode())[0][-5:] == list(reversed(CF_HEADERS))


DANGEROUS = {"name": "=HYPERLINK(\"http://evil.example\",\"click\")",
             "details": "+1 call me", "tags": ["-rf", "ok"], "Champion Notes": "@SUM(A1:A9)"}


def _create_tricky(run, be: Source) -> tuple[int, int]:
    plain = run.json(*be.args(
        "create", "--name", "Zoë's Café, «Ünïcode» 東京", "--primary-contact-id", "601",
        "--details", 'He said "yes, sure",\nthen left', "--tag", "a,b",
        "--custom-field", "Competitors=Globex,Initech"))
    danger = run.json(*be.args(
        "create", "--name", DANGEROUS["name"], "--primary-contact-id", "602",
        "--details", DANGEROUS["details"], "--tag", "-rf,ok",
        "--custom-field", f"Champion Notes={DANGEROUS['Champion Notes']}"))
    return plain["id"], danger["id"]


def test_csv_quotes_keeps_utf8_joins_tags_and_neutralises_formulas(run, be):
    plain, danger = _create_tricky(run, be)
    data = export_bytes(run, be, "-o", "csv", "--id", f"{plain},{danger}")
    assert 'Zoë\'s Café, «Ünïcode» 東京'.encode() in data  # UTF-8, no BOM
    assert not data.startswith(b"\xef\xbb\xbf")
    assert b'"He said ""yes, sure"",\nthen left"' in data  # RFC 4180 quoting
    assert data.endswith(b"\r\n")
    header, *body = csv_rows(data)
    by_id = {int(row[0]): dict(zip(header, row, strict=True)) for row in body}
    assert by_id[plain]["name"] == "Zoë's Café, «Ünïcode» 東京"
    assert by_id[plain]["details"] == 'He said "yes, sure",\nthen left'
    assert by_id[plain]["tags"] == "a;b"
    assert by_id[plain]["cf:Competitors"] == "Globex;Initech"
    d = by_id[danger]
    assert d["name"] == "'" + DANGEROUS["name"]
    assert d["details"] == "'+1 call me"
    assert d["tags"] == "'-rf;ok"
    assert d["cf:Champion Notes"] == "'@SUM(A1:A9)"
    raw = dict(zip(header, csv_rows(export_bytes(run, be, "-o", "csv", "--raw", "--id",
                                                 danger))[1], strict=True))
    assert raw["name"] == DANGEROUS["name"] and raw["details"] == "+1 call me"
    assert raw["tags"] == "-rf;ok" and raw["cf:Champion Notes"] == "@SUM(A1:A9)"


def test_csv_does_not_neutralise_negative_numbers(run, be, work):
    run(*be.args("update", "1001", "--custom-field", "Contract Months=-3", "--monetary-value",
                 "-5", "-o", "json"))
    data = export_bytes(run, be, "-o", "csv", "--id", "1001")
    header, row = csv_rows(data)
    cells = dict(zip(header, row, strict=True))
    assert cells["monetary_value"] == "-5"
    assert cells["cf:Contract Months"] == "-3"


def test_a_neutralised_csv_cell_imports_as_the_original_text(run, be, work):
    _, danger = _create_tricky(run, be)
    before = run.json(*be.args("show", danger))
    path = work / "deals.csv"
    run(*be.args("export", "-o", "csv", "--id", danger, "--output-file", path))
    r = run(*be.args("import", path))
    assert "unchanged" in r.stderr
    assert run.json(*be.args("show", danger)) == before


def test_csv_export_of_a_custom_field_with_an_odd_definition_id(run, isolated):
    """A hand-edited record whose custom_field_definition_id is a list (or a dict) exports to
    CSV with that cell empty (exit 0), not an "unexpected error"."""
    recs = derived_records(3)
    recs[1]["custom_fields"] = [{"custom_field_definition_id": [401], "value": "x"}]
    store = isolated / "odd"
    build_store(store, recs)
    r = run("--store", str(store), "export", "-o", "csv", "--fields", "id,custom_fields",
            expect=None)
    assert r.exit_code == 0, r.stderr
    assert len(r.stdout.splitlines()) == 4


# ---- 5. import ----------------------------------------------------------------------------------
def _round_trip(run, be: Source, work: Path, fmt: str) -> tuple[list[dict], list[dict]]:
    """Export from be, import into an empty store with the sample lookups; both record lists
    in the export's order."""
    path = work / f"deals.{fmt}"
    run(*be.args("export", "-o", fmt, "--output-file", path))
    original = rows(export_bytes(run, be))
    empty = work / "empty"
    build_store(empty, [])
    r = run("--backend", "local", "--store", str(empty), "import", str(path), expect=None)
    assert r.exit_code in (0, 7), r.stderr
    copied = rows(run("--backend", "local", "--store", str(empty), "list", "--sort", "id",
                      "-o", "jsonl").stdout)
    return original, copied


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_export_then_import_reproduces_the_records(run, be, work, fmt):
    original, copied = _round_trip(run, be, work, fmt)
    assert len(copied) == 36
    assert [comparable(r) for r in copied] == [comparable(r) for r in original]


def test_csv_export_then_import_reproduces_records_with_single_choices(run, work):
    """Everything a CSV cell holds comes back, on records whose MultiSelect has at most one
    option (the full round trip is the test after it)."""
    single = [r for r in sample_records()
              if all(not isinstance(cf["value"], list) or len(cf["value"]) < 2
                     for cf in r["custom_fields"])]
    src = Source("local", store=work / "src")
    build_store(work / "src", single)
    original, copied = _round_trip(run, src, work, "csv")
    assert len(copied) == len(single) == 27
    assert [multiselect_empty_as_null(comparable(r)) for r in copied] == \
        [multiselect_empty_as_null(comparable(r)) for r in original]


def test_csv_export_then_import_reproduces_the_records(run, be, work):
    original, copied = _round_trip(run, be, work, "csv")
    assert [multiselect_empty_as_null(comparable(r)) for r in copied] == \
        [multiselect_empty_as_null(comparable(r)) for r in original]


def test_csv_export_then_import_of_an_untouched_store_changes_nothing(run, sample, tmp_path):
    """What export writes imports back unchanged: cells are not stripped of their white space
    and an empty MultiSelect stays [], so a nightly round trip updates nothing (no new
    date_modified, nothing in the audit log)."""
    run("update", "1001", "--details", "notes\n", "-o", "json")
    out = tmp_path / "deals.csv"
    run("export", "-o", "csv", "--output-file", str(out))
    r = run("import", str(out))
    changed = [line for line in r.stderr.splitlines() if ": updated" in line]
    assert changed == [], changed


def test_import_into_copper_reproduces_the_records(run, sample, monkeypatch, work):
    path = work / "deals.jsonl"
    run("--backend", "local", "export", "--output-file", str(path))
    original = rows(path.read_bytes())
    with serve(monkeypatch, []) as server:
        r = run("--backend", "copper", "import", str(path))
        assert "36 rows: 36 created" in r.stderr
        copied = sorted(server.records.values(), key=lambda x: x["id"])
    assert [comparable(x) for x in copied] == [comparable(x) for x in original]


def _jsonl(*records: dict[str, Any]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


def test_import_by_id_updates_skips_or_fails_on_conflict(run, be, work):
    first, second = rows(export_bytes(run, be, "--id", "1001,1002"))
    path = work / "deals.jsonl"
    path.write_bytes(_jsonl(dict(first, monetary_value=999), dict(second, name="Renamed"),
                            {"name": "Fresh", "primary_contact_id": 603}))
    r = run(*be.args("import", path))
    lines = r.stderr.splitlines()
    assert any(f"updated {first['id']} (monetary_value)" in x for x in lines), r.stderr
    assert any(f"updated {second['id']} (name)" in x for x in lines), r.stderr
    assert "1 created" in lines[-1] and "2 updated" in lines[-1]
    assert run.json(*be.args("show", "1001"))["monetary_value"] == 999
    assert run.json(*be.args("show", "1002"))["name"] == "Renamed"
    assert len(run.json(*be.args("search", "--name", "Fresh"))) == 1

    path.write_bytes(_jsonl(dict(first, monetary_value=1), dict(second, name="Skipped")))
    before = be.state()
    r = run(*be.args("import", path, "--on-conflict", "skip"))
    assert "2 skipped" in r.stderr and be.state() == before

    r = run(*be.args("import", path, "--on-conflict", "error"), expect=7)
    assert "2 of 2 rows failed" in r.stderr and be.state() == before
    assert unmarked(rows((work / "deals.failed.jsonl").read_bytes())) == rows(path.read_bytes())
    # A row whose id is not in this store (another store's id) is created.
    path.write_bytes(_jsonl({"id": 999999, "name": "Elsewhere", "primary_contact_id": 601}))
    created = rows(run(*be.args("import", path, "-o", "jsonl")).stdout)
    assert created[0]["action"] == "created" and created[0]["id"] != 999999


def test_import_matching_on_name(run, be, work):
    names = [r["name"] for r in rows(export_bytes(run, be))]
    unique = "Contoso Ltd - Analytics Add-on"
    assert names.count(unique) == 1 and names.count("Northwind Traders - Annual Licence") == 2
    (target,) = run.json(*be.args("search", "--name", unique))
    path = work / "deals.csv"
    path.write_text("name,monetary_value,primary_contact_id\r\n"
                    f"{unique.lower()},77777,{target['primary_contact_id']}\r\n"
                    "Brand New Deal,5,601\r\n"
                    "Northwind Traders - Annual Licence,1,601\r\n", encoding="utf-8")
    r = run(*be.args("import", path, "--match", "name", "-o", "json"), expect=7)
    results = orjson.loads(r.stdout)
    assert [x["action"] for x in results] == ["updated", "created", "failed"]
    assert "2 opportunities are named" in results[2]["error"]
    hit = run.json(*be.args("search", "--name", unique))
    assert [h["monetary_value"] for h in hit] == [77777]
    assert len(run.json(*be.args("search", "--name", "Brand New Deal"))) == 1
    # Again with skip: the created row now matches by name, so nothing is made twice.
    before = be.state()
    path.write_text("name,monetary_value,primary_contact_id\r\nBrand New Deal,6,601\r\n",
                    encoding="utf-8")
    assert "1 skipped" in run(*be.args("import", path, "--match", "name", "--on-conflict",
                                       "skip")).stderr
    assert be.state() == before


def test_dry_run_changes_nothing_and_says_what_would_happen(run, be, work):
    (first,) = rows(export_bytes(run, be, "--id", "1001"))
    path = work / "deals.jsonl"
    path.write_bytes(_jsonl(dict(first, monetary_value=1), first | {"id": 1002},
                            {"name": "New", "primary_contact_id": 601}))
    before, writes = be.state(), len(be.writes())
    r = run(*be.args("import", path, "--dry-run"))
    assert "would update 1001 (monetary_value)" in r.stderr
    assert "would update 1002" in r.stderr and "would create" in r.stderr
    assert "dry run, nothing changed" in r.stderr
    assert be.state() == before and len(be.writes()) == writes
    path.write_bytes(_jsonl({"name": "New", "primary_contact_id": 601},
                            {"name": "No contact"}, {"id": 1001, "status": "Sold"}))
    r = run(*be.args("import", path, "--dry-run", "-o", "json"), expect=7)
    assert [x["action"] for x in orjson.loads(r.stdout)] == ["would create", "would fail",
                                                             "would fail"]
    assert "2 of 3 rows would fail" in r.stderr
    assert be.state() == before and len(be.writes()) == writes
    assert sorted(p.name for p in work.iterdir()) == ["deals.jsonl"]  # no failed-rows file


def test_dry_run_checks_ids_like_the_real_run(run, be, work):
    path = work / "deals.jsonl"
    path.write_bytes(_jsonl({"name": "Bad stage", "primary_contact_id": 601,
                             "pipeline_stage_id": 99999},
                            {"id": 1001, "assignee_id": 999}))
    real = orjson.loads(run(*be.args("import", path, "--dry-run", "-o", "json"),
                            expect=None).stdout)
    assert [x["action"] for x in real] == ["would fail", "would fail"]


# Every row holds every column, so the CSV form has no empty cell where a value matters.
COLUMNS = ["id", "name", "primary_contact_id", "pipeline_stage_id", "status", "monetary_value"]


def _row(**values: Any) -> dict[str, Any]:
    return {c: values.get(c) for c in COLUMNS}


BAD_ROWS = {  # (a bad row, its fixed version)
    "no contact": (_row(name="Bad 1", pipeline_stage_id=11, status="Open"),
                   _row(name="Bad 1", primary_contact_id=601, pipeline_stage_id=11, status="Open")),
    "bad stage": (_row(name="Bad 2", primary_contact_id=602, pipeline_stage_id=99999, status="Open"),
                  _row(name="Bad 2", primary_contact_id=602, pipeline_stage_id=13, status="Open")),
    "bad status": (_row(name="Bad 3", primary_contact_id=603, pipeline_stage_id=11, status="Sold"),
                   _row(name="Bad 3", primary_contact_id=603, pipeline_stage_id=11, status="Won",
                        monetary_value=10)),
}


def _write_rows(path: Path, fmt: str, records: list[dict[str, Any]]) -> None:
    if fmt == "jsonl":
        path.write_bytes(_jsonl(*records))
    elif fmt == "json":
        path.write_bytes(orjson.dumps(records))
    else:
        buf = io.StringIO(newline="")
        writer = csv.writer(buf, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        for r in records:
            writer.writerow(["" if r.get(c) is None else r[c] for c in COLUMNS])
        path.write_bytes(buf.getvalue().encode())


def _read_rows(path: Path, fmt: str) -> list[dict[str, Any]]:
    if fmt == "jsonl":
        return rows(path.read_bytes())
    if fmt == "json":
        return orjson.loads(path.read_bytes())
    header, *body = csv_rows(path.read_bytes())
    return [{k: (int(v) if v.isdigit() else v or None) for k, v in zip(header, row, strict=True)}
            for row in body]


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_bad_rows_fail_alone_and_can_be_fixed_and_run_again(run, be, work, fmt):
    good = [_row(name="Good 1", primary_contact_id=604, pipeline_stage_id=12, status="Open"),
            _row(id=1001, name="Northwind renamed", primary_contact_id=601, pipeline_stage_id=11,
                 status="Open", monetary_value=4242)]
    bad = [b for b, _ in BAD_ROWS.values()]
    path = work / f"deals.{fmt}"
    _write_rows(path, fmt, [bad[0], good[0], bad[1], good[1], bad[2]])
    r = run(*be.args("import", path), expect=7)
    assert "3 of 5 rows failed" in r.stderr and f"deals.failed.{fmt}" in r.stderr
    assert len(run.json(*be.args("search", "--name", "Good 1"))) == 1
    assert run.json(*be.args("show", "1001"))["monetary_value"] == 4242
    failed = work / f"deals.failed.{fmt}"
    assert stat.S_IMODE(failed.stat().st_mode) == 0o600
    assert unmarked(_read_rows(failed, fmt)) == bad
    _write_rows(failed, fmt, [fixed for _, fixed in BAD_ROWS.values()])
    r = run(*be.args("import", failed))
    assert "3 rows: 3 created" in r.stderr
    for _, fixed in BAD_ROWS.values():
        (hit,) = run.json(*be.args("search", "--name", fixed["name"]))
        assert {k: hit[k] for k in fixed if k != "id"} == {k: v for k, v in fixed.items()
                                                          if k != "id"}


def test_an_unreadable_jsonl_line_fails_alone(run, be, work):
    path = work / "deals.jsonl"
    path.write_bytes(b'{"name": "Fine", "primary_contact_id": 601}\n{"name": "cut\n[1, 2]\n')
    r = run(*be.args("import", path, "-o", "json"), expect=7)
    assert [x["action"] for x in orjson.loads(r.stdout)] == ["created", "failed", "failed"]
    assert (work / "deals.failed.jsonl").read_bytes() == b'{"name": "cut\n[1, 2]\n'


def test_import_cannot_clear_the_contact_or_the_stage(run, be, work):
    path = work / "deals.csv"
    path.write_text("id,primary_contact_id\r\n1001,\r\n", encoding="utf-8")
    json_path = work / "deals.jsonl"
    json_path.write_bytes(_jsonl({"id": 1002, "pipeline_stage_id": None}))
    before = [run.json(*be.args("show", i)) for i in ("1001", "1002")]
    # An empty CSV cell of a field that cannot be empty leaves it as it is; an explicit
    # JSON null asks to clear it, which is refused.
    run(*be.args("import", path), expect=0)
    run(*be.args("import", json_path), expect=7)
    assert [run.json(*be.args("show", i)) for i in ("1001", "1002")] == before


def test_an_empty_stage_cell_creates_in_the_default_stage_on_both(run, be, work):
    path = work / "deals.csv"
    path.write_text("name,primary_contact_id,pipeline_id,pipeline_stage_id\r\n"
                    "Default Stage Deal,601,,\r\n", encoding="utf-8")
    run(*be.args("import", path))
    (made,) = run.json(*be.args("search", "--name", "Default Stage Deal"))
    assert (made["pipeline_id"], made["pipeline_stage_id"]) == (1, 11)


def test_the_json_report_goes_to_stdout(run, be, work):
    path = work / "deals.json"
    path.write_bytes(orjson.dumps([{"name": "R1", "primary_contact_id": 601},
                                   {"id": 1002, "priority": "High"}]))
    r = run(*be.args("import", path, "-o", "json"))
    report = orjson.loads(r.stdout)
    assert report[0]["row"] == "item 1" and report[0]["action"] == "created"
    assert isinstance(report[0]["id"], int)
    assert report[1] == {"row": "item 2", "action": "updated", "id": 1002, "detail": "priority"}
    assert r.stderr.splitlines() == ["oppcli: 2 rows: 1 created, 1 updated"]


def test_import_reads_stdin(run, be, work, monkeypatch):
    monkeypatch.chdir(work)
    data = _jsonl({"name": "From stdin", "primary_contact_id": 601}, {"name": "No contact"})
    r = run(*be.args("import", "-"), input=data, expect=7)
    assert len(run.json(*be.args("search", "--name", "From stdin"))) == 1
    (failed,) = work.glob("oppcli-import-failed-*.jsonl")
    assert unmarked(rows(failed.read_bytes())) == [{"name": "No contact"}]
    assert str(failed.name) in r.stderr


def test_import_reads_a_real_pipe(sh, be, work):
    proc = sh(*be.args("import", "-", "--format", "csv"),
              input="name,primary_contact_id\nPiped,605\n")
    assert proc.stdout == "" and "1 rows: 1 created" in proc.stderr
    assert len(orjson.loads(sh(*be.args("search", "--name", "Piped")).stdout)) == 1


@pytest.mark.parametrize("name,content", [
    ("deals.json", b'[{"name": "x", "primary_contact_id": 601},'),
    ("deals.json", b'{"not": "an array"} trailing'),
    ("deals.json", b'"a string"'),
    ("deals.csv", "name\r\nCafé\r\n".encode("latin-1")),
    ("deals.jsonl", b""),
    ("missing.jsonl", None),
], ids=["cut JSON array", "trailing garbage", "not an array", "not UTF-8", "empty", "missing"])
def test_unreadable_input_exits_2_and_changes_nothing(run, be, work, name, content):
    path = work / name
    if content is not None:
        path.write_bytes(content)
    before = be.state()
    r = run(*be.args("import", path), expect=2)
    assert r.stderr.startswith("oppcli: error: ") and r.stdout == ""
    assert be.state() == before and be.writes() == []
    assert [p.name for p in work.iterdir()] == ([name] if content is not None else [])


def test_a_copper_create_whose_answer_is_lost_is_confirmed_not_repeated(run, copper, work):
    copper.fail("/opportunities$", method="POST", after=True, status=502)
    path = work / "deals.jsonl"
    path.write_bytes(_jsonl({"name": "Lost Answer Deal", "primary_contact_id": 605}))
    r = run("import", str(path), "-o", "json")
    (result,) = orjson.loads(r.stdout)
    assert result["action"] == "created" and result["id"] == 1037
    assert "confirmed after a lost answer" in result["detail"]
    made = [x for x in copper.records.values() if x["name"] == "Lost Answer Deal"]
    assert [x["id"] for x in made] == [1037]
    assert len(copper.calls("/opportunities$", "POST")) == 1
    # Running the file again matching on name finds it: still exactly one.
    r = run("import", str(path), "--match", "name")
    assert "unchanged 1037" in r.stderr
    assert len([x for x in copper.records.values() if x["name"] == "Lost Answer Deal"]) == 1


def test_a_copper_import_paces_itself_under_the_rate_limit(run, copper, monkeypatch, work):
    copper.set_rate_limit(10, 1.0)
    monkeypatch.setenv("OPPCLI_COPPER_RATE_LIMIT", "10")
    # The client's window is longer than the server's: on a loaded 2-core machine the server
    # can see a request hundreds of milliseconds late, more than a 1-second window's margin.
    monkeypatch.setenv("OPPCLI_COPPER_RATE_WINDOW", "1.3")
    monkeypatch.setenv("OPPCLI_COPPER_RETRIES", "0")  # a 429 would fail the row
    path = work / "deals.jsonl"
    path.write_bytes(_jsonl(*({"name": f"Paced {i}", "primary_contact_id": 601 + i % 12}
                              for i in range(15))))
    r = run("import", str(path))
    assert "15 rows: 15 created" in r.stderr
    assert [x for x in copper.requests if x.status == 429] == []
    assert len(copper.calls("/opportunities$", "POST")) == 15


# ---- 6. cron-shaped runs ------------------------------------------------------------------------
def cron(args: list[str], work: Path, **env: str) -> subprocess.CompletedProcess[bytes]:
    """The installed oppcli as cron runs it: a bare environment, stdin closed, no terminal."""
    home = work / "home"
    home.mkdir(exist_ok=True)
    return subprocess.run([oppcli_exe(), *args], stdin=subprocess.DEVNULL, capture_output=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(home), **env}, cwd=home,
                          timeout=60)


def cron_env(be: Source) -> dict[str, str]:
    if be.server is not None:
        env = copper_env(be.server.url)
        return {k: v for k, v in env.items() if k != "OPPCLI_COPPER_RATE_LIMIT"}
    assert be.store is not None
    return {"OPPCLI_STORE": str(be.store)}


def test_a_cron_export_is_silent_and_writes_its_files(be, work):
    out, state = work / "deals.csv", work / "deals.state"
    env = cron_env(be)
    first = cron(["export", "-o", "csv", "--output-file", str(out), "--state-file", str(state)],
                 work, **env)
    assert (first.returncode, first.stdout, first.stderr) == (0, b"", b"")
    assert len(csv_rows(out.read_bytes())) == 37 and state.exists()
    again = cron(["export", "-o", "csv", "--output-file", str(out), "--state-file", str(state)],
                 work, **env)
    assert (again.returncode, again.stdout, again.stderr) == (0, b"", b"")
    assert len(csv_rows(out.read_bytes())) == 1  # nothing changed: the header only
    piped = cron(["export"], work, **env)
    assert piped.returncode == 0 and piped.stderr == b"" and len(rows(piped.stdout)) == 36


def test_cron_failures_exit_non_zero_with_one_line(copper, work):
    out = work / "deals.jsonl"
    out.write_bytes(b"previous\n")
    env = {**copper_env(copper.url), "OPPCLI_COPPER_RETRIES": "1"}
    empty = cron(["export", "--output-file", str(out), "--fail-empty", "--name", "Nope"],
                 work, **env)
    assert empty.returncode == 4
    copper.stop()
    down = cron(["export", "--output-file", str(out)], work, **env)
    assert down.returncode == 5 and down.stdout == b""
    assert down.stderr.decode().startswith("oppcli: error: ") and len(down.stderr.splitlines()) == 1
    no_store = cron(["export", "--output-file", str(out)], work,
                    OPPCLI_STORE=str(work / "nowhere"))
    assert no_store.returncode == 3 and b"no store" in no_store.stderr
    no_key = cron(["--backend", "copper", "export"], work)
    assert no_key.returncode == 3 and no_key.stdout == b""
    assert out.read_bytes() == b"previous\n" and temps(work) == []


def test_progress_and_a_summary_only_on_a_terminal(sample, work):
    out = work / "deals.jsonl"
    leader, follower = pty.openpty()
    said = b""
    try:
        with os.fdopen(follower, "wb") as terminal:  # stderr only: stdout stays a pipe
            proc = subprocess.run([oppcli_exe(), "--backend", "local", "export", "--output-file",
                                   str(out)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=terminal, timeout=60)
        with contextlib.suppress(OSError):  # EIO once the terminal's other end is closed
            while chunk := os.read(leader, 4096):
                said += chunk
    finally:
        os.close(leader)
    assert proc.returncode == 0 and proc.stdout == b""
    assert b"exported 36 opportunities to " in said
    assert len(rows(out.read_bytes())) == 36


def test_sync_pull_is_silent_on_success_in_cron(run, copper, tmp_path):
    """Without a terminal a successful pull prints nothing (README "Cron": silent unless
    something fails; cron mails what they print on stderr), so an hourly pull mails no one."""
    mirror = tmp_path / "mirror"
    run("--store", str(mirror), "sync", "pull")
    r = run("--store", str(mirror), "sync", "pull")
    assert r.stderr == "", r.stderr


# ---- 7. sync pull: the offline mirror -----------------------------------------------------------
@pytest.fixture
def mirror(run, copper, work) -> Path:
    path = work / "mirror"
    r = run("--store", str(path), "sync", "pull", "--verbose")
    assert r.stdout == ""
    assert "first pull into" in r.stderr and "36 fetched, 36 new" in r.stderr
    return path


MIRROR_SEARCHES = [
    ["list"],
    ["search", "--company", "Contoso Ltd"],
    ["search", "--stage", "Sales/Negotiation"],
    ["search", "--pipeline", "Renewals", "--stage", "Qualified"],
    ["search", "--custom-field", "Region=EMEA,APAC", "--status", "open"],
    ["search", "--custom-field", "Signed NDA=no"],
    ["search", "--tag", "enterprise"],
    ["search", "--primary-contact", "Nancy Davolio"],
    ["search", "--assignee", "Ada Park", "--min-value", "20000"],
    ["search", "--name-contains", "licence", "--sort", "name"],
    ["show", "1001"],
    ["lookups", "stages"],
]


def same_on_both(run, mirror: Path, *args: str) -> str:
    remote = run("--backend", "copper", *args, "-o", "json")
    local = run("--backend", "local", "--store", str(mirror), *args, "-o", "json")
    assert local.stdout == remote.stdout, f"oppcli {' '.join(args)}"
    return local.stdout


def test_after_a_pull_the_same_searches_give_the_same_json(run, copper, mirror):
    for args in MIRROR_SEARCHES:
        assert orjson.loads(same_on_both(run, mirror, *args)), f"{args} found nothing"
    assert run("--backend", "local", "--store", str(mirror), "export").stdout == \
        run("--backend", "copper", "export").stdout


def test_an_incremental_pull_brings_exactly_the_changes(run, copper, mirror):
    run("--backend", "copper", "update", "1001", "--status", "Won", "-o", "json")
    run("--backend", "copper", "update", "1002", "--add-tag", "pulled", "-o", "json")
    new = run.json("--backend", "copper", "create", "--name", "Pulled Deal",
                   "--primary-contact-id", "612", "--custom-field", "Region=APAC")
    before = len(copper.requests)
    r = run("--store", str(mirror), "sync", "pull", "-v")
    assert "1 new, 2 changed" in r.stderr
    sent = copper.requests[before:]
    searches = [x for x in sent if x.path.endswith(SEARCH)]
    assert len(searches) == 1 and len(sent) <= 8  # the lookup tables, then one page
    assert searches[0].body["sort_by"] == "date_modified"
    assert searches[0].body["minimum_modified_date"] < new["date_modified"]
    same_on_both(run, mirror, "list")
    assert orjson.loads(same_on_both(run, mirror, "search", "--tag", "pulled"))[0]["id"] == 1002
    # Nothing changed: nothing new or changed.
    assert "0 new, 0 changed" in run("--store", str(mirror), "sync", "pull", "-v").stderr


def test_a_full_pull_drops_what_was_deleted_in_copper(run, copper, mirror):
    run("--backend", "copper", "delete", "1002", "1017", "--yes")
    run("--store", str(mirror), "sync", "pull")
    assert run("--backend", "local", "--store", str(mirror), "show", "1002", "-o", "json")
    r = run("--store", str(mirror), "sync", "pull", "--full", "-v")
    assert "2 removed" in r.stderr
    run("--backend", "local", "--store", str(mirror), "show", "1002", expect=4)
    same_on_both(run, mirror, "list")


def test_the_mirror_refuses_writes(run, copper, mirror):
    before = snapshot(mirror)
    for args in (["create", "--name", "X", "--primary-contact-id", "601"],
                 ["update", "1001", "--status", "Won"],
                 ["delete", "1001", "--yes"]):
        r = run("--backend", "local", "--store", str(mirror), *args, expect=2)
        assert "is a mirror of Copper" in r.stderr and r.stdout == ""
    assert snapshot(mirror) == before


def test_import_into_the_mirror_is_refused(run, copper, mirror, work):
    path = work / "deals.jsonl"
    path.write_bytes(_jsonl({"id": 1001, "monetary_value": 1}))
    before = snapshot(mirror)
    r = run("--backend", "local", "--store", str(mirror), "import", str(path), "--dry-run",
            expect=None)
    assert r.exit_code == 2 and "mirror" in r.stderr
    r = run("--backend", "local", "--store", str(mirror), "import", str(path), expect=None)
    assert r.exit_code == 2 and "mirror" in r.stderr
    assert snapshot(mirror) == before
    assert not (work / "deals.failed.jsonl").exists()


def test_pulling_into_a_local_store_or_another_accounts_mirror_exits_3(run, sample, copper,
                                                                       monkeypatch, mirror):
    before = snapshot(sample)
    r = run("--store", str(sample), "sync", "pull", expect=3)
    assert "not a mirror" in r.stderr
    assert snapshot(sample) == before
    mirrored = snapshot(mirror)
    with serve(monkeypatch, sample_records(3)):
        r = run("--store", str(mirror), "sync", "pull", expect=3)
        assert "mirrors http://127.0.0.1" in r.stderr
    assert snapshot(mirror) == mirrored


def test_a_failed_pull_changes_nothing(run, copper, mirror, monkeypatch):
    run("--backend", "copper", "update", "1001", "--status", "Won", "-o", "json")
    before = snapshot(mirror)
    monkeypatch.setenv("OPPCLI_COPPER_RETRIES", "1")
    copper.fail(SEARCH, times=None, status=500)
    run("--store", str(mirror), "sync", "pull", expect=5)
    assert snapshot(mirror) == before and temps(mirror) == []


# The first pull creates the store and marks it a mirror last: a first pull that fails or is
# stopped in between (a full disk, SIGTERM during a large merge) can simply be run again, and
# the half-made store meanwhile refuses local writes as a mirror does.
def test_a_failed_first_pull_can_be_retried(run, copper, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    real = LocalStore.merge_mirror
    calls = {"n": 0}

    def flaky(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 1:
            raise StoreError("cannot rewrite opportunities.jsonl: No space left on device")
        return real(self, *a, **kw)

    monkeypatch.setattr(LocalStore, "merge_mirror", flaky)
    run("--store", str(mirror), "sync", "pull", expect=3)
    # the disk has room again: the cron job's next run
    r = run("--store", str(mirror), "sync", "pull", expect=None)
    assert r.exit_code == 0, r.stderr


def test_a_half_made_mirror_is_not_writable(run, copper, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    monkeypatch.setattr(LocalStore, "merge_mirror",
                        lambda self, *a, **kw: (_ for _ in ()).throw(StoreError("disk full")))
    run("--store", str(mirror), "sync", "pull", expect=3)
    r = run("--backend", "local", "--store", str(mirror), "create", "--name", "X",
            "--primary-contact-id", "601", expect=None)
    assert r.exit_code == 2, "a store made by sync pull accepted a local write"


def test_import_by_name_on_copper_costs_a_search_and_a_put_per_row(run, copper, work):
    path = work / "rows.csv"
    path.write_text("name,status\nNorthwind Traders - Onboarding Package,Won\n"
                    "Contoso Ltd - Analytics Add-on,Lost\n")
    run("lookups", "-o", "json")
    copper.requests.clear()
    run("import", str(path), "--match", "name")
    kinds = [(c.method, c.path.rsplit("/", 1)[-1]) for c in copper.requests]
    assert [k[0] for k in kinds] == ["POST", "PUT", "POST", "PUT"]  # no GET of what was found


def test_sigterm_turned_into_another_exception_still_exits_143():
    """SIGTERM landing inside library code that catches and re-raises (threading.Thread.start
    turns it into KeyError) is still the termination: exit 143, not a crash with exit 1."""
    from oppcli.util.interrupts import terminate_cleanly

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as exc, terminate_cleanly():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this ends
        except BaseException:
            raise KeyError("what Thread.start() re-raises") from None
    assert exc.value.code == 143
    assert signal.getsignal(signal.SIGTERM) is before


def test_an_error_without_sigterm_is_left_as_it_is():
    from oppcli.util.interrupts import terminate_cleanly

    with pytest.raises(KeyError), terminate_cleanly():
        raise KeyError("a real bug")
