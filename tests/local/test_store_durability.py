"""The local store under stress: parallel writers, SIGKILLed writers, torn tails, corrupt files,
permissions, and writes that fail half way (a full disk).

What must hold: a killed process never leaves a corrupt store; processes writing at the same
time never lose a record or reuse an id; a corrupt store (a damaged header, a misshapen
lookups.json, a line not shaped like a record) is a one-line error that changes nothing.
"""

from __future__ import annotations

import copy
import errno
import json
import os
import random
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from checks import one_error_line, snapshot
from conftest import build_store, derived_records, oppcli_exe
from oppcli.backends import local as local_module
from oppcli.backends.local import DATA, LOOKUPS, META, LocalStore
from oppcli.domain.sample import SAMPLE_LOOKUPS, sample_records
from oppcli.util import files as files_module

# The modules that call os for the store: its own and the shared file helpers.
STORE_OS_USERS = (files_module, local_module.datafile, local_module.rewrite, local_module.scan,
                  local_module.store)

SAMPLE_IDS = {r["id"] for r in sample_records()}


# ---- helpers ------------------------------------------------------------------------------------
def lines_of(store: Path) -> list[dict[str, Any]]:
    """The data file, parsed line by line; every line must be a whole record."""
    raw = (store / DATA).read_bytes()
    assert raw == b"" or raw.endswith(b"\n"), "the data file ends in a torn line"
    out = []
    for n, line in enumerate(raw.split(b"\n")[:-1], 1):
        rec = orjson.loads(line)
        assert isinstance(rec, dict) and isinstance(rec["id"], int), f"line {n}: {line[:80]!r}"
        out.append(rec)
    return out


def temp_files(store: Path) -> list[str]:
    return sorted(p.name for p in store.iterdir() if p.name.endswith(".tmp"))


def assert_clean_error(proc: subprocess.CompletedProcess[str], code: int = 3) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("oppcli: error: "), proc.stderr
    assert proc.stdout == ""


# ---- 1. concurrency ----------------------------------------------------------------------------
# The start of every worker script: the real CLI run in-process, stdout and stderr captured.
IN_PROCESS_CLI = r'''
import io, json, random, sys
from typer.main import get_command
from oppcli.cli.app import app

command = get_command(app)

def run(args):
    out, errs = io.BytesIO(), io.BytesIO()
    saved = sys.stdout, sys.stderr
    sys.stdout = io.TextIOWrapper(out, encoding="utf-8")
    sys.stderr = io.TextIOWrapper(errs, encoding="utf-8")
    try:
        code = command.main(args=args, prog_name="oppcli", standalone_mode=False)
    finally:
        sys.stdout.flush(); sys.stderr.flush()
        sys.stdout.detach(); sys.stderr.detach()
        sys.stdout, sys.stderr = saved
    return code, out.getvalue().decode(), errs.getvalue().decode()
'''


# Each worker is its own Python process running the real CLI (OppcliGroup.main) in-process 50
# times, so many operations overlap without paying 50 interpreter start-ups per worker.
WORKER = IN_PROCESS_CLI + r'''

k, ops, shared = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(k)
mine, created, deleted, updated, tags, errors = [], {}, [], {}, [], []
print("ready", flush=True)
sys.stdin.readline()  # the start line: every worker begins at the same moment
for j in range(ops):
    roll = rng.random()
    if mine and roll < 0.2:
        opp = rng.choice(mine)
        args = ["update", str(opp), "--details", f"w{k} u{j}", "-o", "json"]
    elif len(mine) > 2 and roll < 0.3:
        opp = rng.choice(mine)
        args = ["delete", str(opp), "--yes", "-o", "json"]
    elif roll < 0.4:
        args = ["update", str(shared), "--add-tag", f"w{k}t{j}", "-o", "json"]
    else:
        args = ["create", "--name", f"worker {k} op {j}", "--primary-contact-id", "601",
                "--monetary-value", str(1000 * k + j), "-o", "json"]
    code, out, err = run(args)
    if code != 0:
        errors.append({"args": args, "code": code, "stderr": err})
        continue
    doc = json.loads(out)
    if args[0] == "create":
        created[doc["id"]] = doc["name"]
        mine.append(doc["id"])
    elif args[0] == "delete":
        deleted.extend(d["id"] for d in doc)
        mine.remove(opp)
    elif args[1] == str(shared):
        tags.append(args[3])
    else:
        updated[opp] = doc["details"]
json.dump({"created": created, "deleted": deleted, "updated": updated, "tags": tags,
           "errors": errors}, sys.stdout)
'''


def test_parallel_writer_processes_lose_nothing_and_never_reuse_an_id(sample, tmp_path):
    workers, ops = 6, 50
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    procs = [subprocess.Popen([sys.executable, str(script), str(k), str(ops), "1001"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for k in range(workers)]
    try:
        for p in procs:  # wait until every worker has imported everything
            assert p.stdout is not None and p.stdout.readline() == "ready\n"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        results = []
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            results.append(json.loads(out))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    assert [r["errors"] for r in results] == [[]] * workers
    told: list[int] = [int(i) for r in results for i in r["created"]]
    assert len(told) == len(set(told)), "an id was handed out twice"
    assert not set(told) & SAMPLE_IDS
    names = {int(i): n for r in results for i, n in r["created"].items()}
    deleted = {i for r in results for i in r["deleted"]}
    updated = {int(i): d for r in results for i, d in r["updated"].items()}
    tags = [t for r in results for t in r["tags"]]
    assert len(told) >= workers * ops // 2 and deleted and updated and tags  # every kind ran
    # The workers really ran at the same time: their ids interleave rather than come in blocks.
    owner = {int(i): k for k, r in enumerate(results) for i in r["created"]}
    in_order = [owner[i] for i in sorted(owner)]
    switches = sum(a != b for a, b in zip(in_order[:-1], in_order[1:], strict=True))
    assert switches > 2 * workers, f"only {switches} switches between workers"

    records = lines_of(sample)
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids))
    assert ids == sorted(ids), "lines are no longer in id order"
    assert set(ids) == (SAMPLE_IDS | set(told)) - deleted  # no lost create, no undead delete
    by_id = {r["id"]: r for r in records}
    for opp, name in names.items():
        if opp not in deleted:
            assert by_id[opp]["name"] == name
    for opp, details in updated.items():
        if opp not in deleted:
            assert by_id[opp]["details"] == details  # no lost update
    shared_tags = set(by_id[1001]["tags"])
    assert set(tags) <= shared_tags, "a read-modify-write lost another process's tag"
    assert temp_files(sample) == []

    # The audit log, appended to by every process at once, holds one whole entry per write.
    audit = [orjson.loads(line) for line in
             (Path(os.environ["OPPCLI_CONFIG_DIR"]) / "audit.jsonl").read_bytes().splitlines()]
    assert sorted(e["id"] for e in audit if e["op"] == "create") == sorted(told)
    assert sorted(e["id"] for e in audit if e["op"] == "delete") == sorted(deleted)
    assert sum(e["op"] == "update" and e["id"] == 1001 for e in audit) == len(tags)

    # The id the store will hand out next is above every id it ever handed out, deleted or not.
    meta = orjson.loads((sample / META).read_bytes())
    top = max(SAMPLE_IDS | set(told))
    assert max(meta["next_id"], ids[-1] + 1) > top
    exe = oppcli_exe()
    gone = subprocess.run([exe, "delete", str(ids[-1]), "--yes"], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60)
    assert gone.returncode == 0, gone.stderr
    assert orjson.loads((sample / META).read_bytes())["next_id"] > top  # the floor is raised
    new = subprocess.run([exe, "create", "--name", "after", "--primary-contact-id", "602",
                          "-o", "json"], capture_output=True, text=True,
                         stdin=subprocess.DEVNULL, timeout=60)
    assert new.returncode == 0, new.stderr
    assert orjson.loads(new.stdout)["id"] > top


def test_parallel_installed_scripts_lose_nothing(sample):
    """The same through the console script: 4 concurrent streams of `oppcli` processes."""
    exe = oppcli_exe()
    streams, per_stream = 4, 8
    results: dict[int, dict[str, Any]] = {}

    def stream(k: int) -> None:
        told, deleted, errors = [], [], []
        for j in range(per_stream):
            if j == per_stream - 1 and told:
                args = ["delete", str(told[0]), "--yes"]
            elif j == per_stream - 2 and told:
                args = ["update", str(told[-1]), "--details", f"s{k}"]
            else:
                args = ["create", "--name", f"stream {k} op {j}", "--primary-contact-id", "603"]
            proc = subprocess.run([exe, *args, "-o", "json"], capture_output=True, text=True,
                                  stdin=subprocess.DEVNULL, timeout=120)
            if proc.returncode != 0:
                errors.append((args, proc.returncode, proc.stderr))
                continue
            doc = orjson.loads(proc.stdout)
            if args[0] == "create":
                told.append(doc["id"])
            elif args[0] == "delete":
                deleted.append(doc[0]["id"])
        results[k] = {"told": told, "deleted": deleted, "errors": errors}

    threads = [threading.Thread(target=stream, args=(k,)) for k in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert len(results) == streams
    assert [r["errors"] for r in results.values()] == [[]] * streams
    told = [i for r in results.values() for i in r["told"]]
    deleted = {i for r in results.values() for i in r["deleted"]}
    assert len(told) == len(set(told)) == streams * (per_stream - 2)
    assert len(deleted) == streams
    owner = {i: k for k, r in results.items() for i in r["told"]}
    in_order = [owner[i] for i in sorted(owner)]
    assert sum(a != b for a, b in zip(in_order[:-1], in_order[1:], strict=True)) >= streams
    ids = [r["id"] for r in lines_of(sample)]
    assert len(ids) == len(set(ids))
    assert set(ids) == (SAMPLE_IDS | set(told)) - deleted


# ---- 2. crash safety ---------------------------------------------------------------------------
# A writer that loops over creates, updates and deletes until it is killed. It says what it is
# about to do before each operation and what the CLI answered after it, one flushed line each,
# so after a SIGKILL the parent knows every acknowledged write and the one that was in flight.
CRASH_WRITER = IN_PROCESS_CLI + r"""
real = sys.stdout

def say(doc):
    real.write(json.dumps(doc) + "\n")
    real.flush()

name, seed = sys.argv[1], int(sys.argv[2])
ids = [int(x) for x in sys.argv[3].split(",")]
rng = random.Random(seed)
say("ready")
sys.stdin.readline()
for j in range(400):
    roll = rng.random()
    tag = f"{name} op{j}"
    if roll < 0.45 or not ids:
        args = ["create", "--name", tag, "--primary-contact-id", "605", "--details", tag]
    elif roll < 0.9:
        args = ["update", str(rng.choice(ids)), "--details", tag]
    else:
        opp = rng.choice(ids)
        ids.remove(opp)
        args = ["delete", str(opp), "--yes"]
    say({"intent": args})
    code, out, err = run([*args, "-o", "json"])
    if code != 0:
        say({"error": args, "code": code, "stderr": err})
        break
    answer = json.loads(out)
    if isinstance(answer, dict):  # keep the pipe light: only what the checks need
        answer = {key: answer[key] for key in ("id", "name", "details")}
    say({"done": args, "answer": answer})
"""


class Model:
    """What the store must hold: id -> (name, details), kept exact round after round."""

    def __init__(self, records: dict[int, dict[str, Any]]) -> None:
        self.state = {i: (r["name"], r["details"]) for i, r in records.items()}
        self.landed_in_flight = 0

    def acked(self, args: list[str], answer: Any, by_id: dict[int, dict[str, Any]]) -> None:
        if args[0] == "create":
            tag = args[2]
            assert answer["name"] == tag
            assert answer["id"] in by_id, f"acknowledged create {answer['id']} is missing"
            self.state[answer["id"]] = (tag, tag)
        elif args[0] == "update":
            opp, tag = int(args[1]), args[3]
            assert answer["id"] == opp and answer["details"] == tag
            self.state[opp] = (self.state[opp][0], tag)
        else:
            opp = int(args[1])
            assert answer == [{"id": opp, "is_deleted": True}]
            assert opp not in by_id, f"acknowledged delete of {opp} did not happen"
            self.state.pop(opp)

    def in_flight(self, args: list[str], records: list[dict[str, Any]],
                  by_id: dict[int, dict[str, Any]]) -> None:
        """A write killed before it answered: it happened wholly or not at all."""
        if args[0] == "create":
            tag = args[2]
            hits = [r for r in records if r["name"] == tag]
            assert len(hits) <= 1
            if hits:
                assert hits[0]["details"] == tag
                self.state[hits[0]["id"]] = (tag, tag)
                self.landed_in_flight += 1
        elif args[0] == "update":
            opp, tag = int(args[1]), args[3]
            name, before = self.state[opp]
            assert by_id[opp]["details"] in (before, tag), "an update half happened"
            self.state[opp] = (name, by_id[opp]["details"])
            self.landed_in_flight += by_id[opp]["details"] == tag and before != tag
        elif int(args[1]) not in by_id:
            self.state.pop(int(args[1]))
            self.landed_in_flight += 1

    def check(self, by_id: dict[int, dict[str, Any]]) -> None:
        assert set(by_id) == set(self.state), (
            f"unexpected ids {sorted(set(by_id) - set(self.state))[:5]}, "
            f"missing ids {sorted(set(self.state) - set(by_id))[:5]}")
        wrong = [i for i, v in self.state.items() if (by_id[i]["name"], by_id[i]["details"]) != v]
        assert not wrong, f"records with unexpected content: {wrong[:5]}"


def test_sigkilled_writers_never_corrupt_the_store_or_lose_acknowledged_writes(store_path,
                                                                                tmp_path):
    """Each round: two looping writers (the CLI in-process, killed mid-stream) and two runs of
    the installed script (killed near the end of their run, where they write), all on one
    store of 2,000 records, all SIGKILLed at random moments; then the store must load and hold
    exactly the acknowledged writes, plus at most the killed ones, each whole or absent."""
    rounds = 30
    rng = random.Random(20261127)
    records = build_store(store_path, derived_records(2000))
    model = Model(records)
    pool = list(records)
    rng.shuffle(pool)  # each round's writers get records nobody else touches
    script = tmp_path / "crash_writer.py"
    script.write_text(CRASH_WRITER)
    exe = oppcli_exe()

    def installed(kind: str, tag: str) -> tuple[subprocess.Popen[bytes], list[str]]:
        if kind == "create":
            args = ["create", "--name", tag, "--primary-contact-id", "604", "--details", tag]
        else:
            args = ["update", str(pool.pop()), "--details", tag]
        proc = subprocess.Popen([exe, *args, "-o", "json"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return proc, args

    # How long one run of the script takes here, to aim its kills at the end, where it writes.
    began = time.monotonic()
    proc, args = installed("update", "calibration")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    span = time.monotonic() - began
    model.state[int(args[1])] = (model.state[int(args[1])][0], "calibration")

    stats = {"kills": 0, "in_flight": 0, "acked": 0, "torn": 0}
    for rnd in range(rounds):
        loopers = []
        for d in range(2):
            ids = ",".join(str(pool.pop()) for _ in range(4))
            p = subprocess.Popen([sys.executable, str(script), f"r{rnd} d{d}", str(rnd * 10 + d),
                                  ids], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            loopers.append(p)
        scripts = [installed(rng.choice(["create", "update"]), f"r{rnd} s{w}") + (time.monotonic(),)
                   for w in range(2)]
        for p in loopers:
            assert p.stdout is not None and p.stdout.readline() == '"ready"\n'
        go = time.monotonic()
        for p in loopers:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.close()
            p.stdin = None  # communicate() below must not touch it again
        deadlines = [(go + rng.uniform(0.02, 0.35), p) for p in loopers]
        deadlines += [(t0 + rng.uniform(0.6, 1.4) * span * (1 + w), p)
                      for w, (p, _, t0) in enumerate(scripts)]
        for deadline, p in sorted(deadlines, key=lambda x: x[0]):
            try:
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGKILL)
                stats["kills"] += 1

        # The store loads; its content is exactly what the writers' answers say.
        listed = subprocess.run([exe, "list", "-o", "jsonl"], capture_output=True,
                                stdin=subprocess.DEVNULL, timeout=60)
        assert listed.returncode == 0, listed.stderr
        assert b"Traceback" not in listed.stderr, listed.stderr
        stats["torn"] += b"incomplete last line" in listed.stderr
        now = [orjson.loads(x) for x in listed.stdout.splitlines()]
        by_id = {r["id"]: r for r in now}
        assert len(by_id) == len(now), "a record is listed twice (a temp file read as data?)"

        for p in loopers:
            out, err = p.communicate(timeout=60)
            assert "Traceback" not in err, err
            pending = None
            for line in out.splitlines():  # "ready" was read already
                try:
                    doc = json.loads(line)
                except ValueError:  # killed while saying it
                    continue
                assert "error" not in doc, doc
                if "intent" in doc:
                    pending = doc["intent"]
                else:
                    assert doc["done"] == pending
                    model.acked(pending, doc["answer"], by_id)
                    stats["acked"] += 1
                    pending = None
            assert p.returncode == -signal.SIGKILL, (p.returncode, err)
            if pending is not None:
                stats["in_flight"] += 1
                model.in_flight(pending, now, by_id)
        for p, args, _ in scripts:
            out, err = p.communicate(timeout=60)
            assert p.returncode in (0, -signal.SIGKILL), (args, p.returncode, err)
            assert "Traceback" not in err.decode()
            if p.returncode == 0:
                stats["acked"] += 1
                model.acked(args, orjson.loads(out), by_id)
            else:
                model.in_flight(args, now, by_id)
        model.check(by_id)

    # One more write sets any torn tail aside; then every line of the file is whole.
    final = subprocess.run([exe, "create", "--name", "final", "--primary-contact-id", "601"],
                           capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
    assert final.returncode == 0, final.stderr
    ids = [r["id"] for r in lines_of(store_path)]
    assert len(ids) == len(set(ids)) == len(model.state) + 1
    assert ids == sorted(ids)
    # Most kills must have hit a writer in the middle of an operation, or this proved little.
    assert stats["in_flight"] >= rounds
    print(f"\ncrash test: {rounds} rounds, {stats['kills']} SIGKILLs, {stats['in_flight']} "
          f"operations killed in flight ({model.landed_in_flight} of them had landed), "
          f"{stats['acked']} acknowledged writes checked, {stats['torn']} torn tails seen, "
          f"{len(temp_files(store_path))} temp files left over")


# ---- 3. torn tail ------------------------------------------------------------------------------
TORN = b'{"id":99999,"name":"half a rec'


def test_torn_tail_is_ignored_by_reads_and_set_aside_by_the_next_create(sh, sample):
    whole = (sample / DATA).read_bytes()
    with open(sample / DATA, "ab") as f:
        f.write(TORN)

    listed = sh("list", "-o", "jsonl")
    assert "warning" in listed.stderr and "incomplete last line" in listed.stderr
    assert "Traceback" not in listed.stderr
    assert {orjson.loads(x)["id"] for x in listed.stdout.splitlines()} == SAMPLE_IDS
    assert "99999" not in listed.stdout
    assert sh("search", "--name-contains", "half").stdout == "[]\n"
    sh("show", "99999", expect=4)
    assert (sample / DATA).read_bytes() == whole + TORN  # reading changes nothing

    created = sh("create", "--name", "After the cut", "--primary-contact-id", "601", "-o", "json")
    assert "moved an incomplete last line" in created.stderr
    new = orjson.loads(created.stdout)
    aside = sorted(sample.glob(f"{DATA}.torn-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == TORN
    assert stat.S_IMODE(aside[0].stat().st_mode) == 0o600
    assert (sample / DATA).read_bytes().startswith(whole)
    records = lines_of(sample)  # valid again: every line whole
    assert [r["id"] for r in records] == sorted(SAMPLE_IDS) + [new["id"]]
    again = sh("list", "-o", "jsonl")
    assert again.stderr == ""
    assert len(again.stdout.splitlines()) == 37


def test_torn_tail_is_set_aside_by_an_update_too(sh, sample):
    with open(sample / DATA, "ab") as f:
        f.write(TORN)
    updated = sh("update", "1036", "--details", "after the cut", "-o", "json")
    assert "moved an incomplete last line" in updated.stderr
    assert [p.read_bytes() for p in sample.glob(f"{DATA}.torn-*")] == [TORN]
    records = lines_of(sample)
    assert [r["id"] for r in records] == sorted(SAMPLE_IDS)
    assert records[-1]["details"] == "after the cut"


# ---- 4. corrupt stores -------------------------------------------------------------------------
def _truncated_meta(store: Path) -> None:
    raw = (store / META).read_bytes()
    (store / META).write_bytes(raw[: len(raw) // 2])


def _newer_version(store: Path) -> None:
    meta = orjson.loads((store / META).read_bytes())
    meta["version"] = 99
    (store / META).write_bytes(orjson.dumps(meta))


def _meta_not_a_store(store: Path) -> None:
    (store / META).write_bytes(b'["not", "a", "header"]')


def _missing_data(store: Path) -> None:
    (store / DATA).unlink()


def _data_is_a_directory(store: Path) -> None:
    (store / DATA).unlink()
    (store / DATA).mkdir()


def _meta_is_a_directory(store: Path) -> None:
    (store / META).unlink()
    (store / META).mkdir()


def _truncated_lookups(store: Path) -> None:
    raw = (store / LOOKUPS).read_bytes()
    (store / LOOKUPS).write_bytes(raw[:100])


def _lookups_is_a_directory(store: Path) -> None:
    (store / LOOKUPS).unlink()
    (store / LOOKUPS).mkdir()


CORRUPTIONS: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated meta.json": (_truncated_meta, "corrupt"),
    "newer format version": (_newer_version, "upgrade oppcli"),
    "meta.json not a header": (_meta_not_a_store, "not an oppcli store header"),
    "missing opportunities.jsonl": (_missing_data, "opportunities.jsonl"),
    "opportunities.jsonl is a directory": (_data_is_a_directory, "Is a directory"),
    "meta.json is a directory": (_meta_is_a_directory, "Is a directory"),
    "truncated lookups.json": (_truncated_lookups, "corrupt"),
    "lookups.json is a directory": (_lookups_is_a_directory, "Is a directory"),
}

EVERY_COMMAND = [
    ["list"],
    ["search", "--status", "open"],
    ["show", "1001"],
    ["create", "--name", "New", "--primary-contact-id", "601"],
    ["update", "1001", "--details", "changed"],
    ["delete", "1001", "--yes"],
]


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_a_corrupt_store_is_an_error_that_changes_nothing(sh, sample, case):
    corrupt, words = CORRUPTIONS[case]
    corrupt(sample)
    before = snapshot(sample)
    for args in EVERY_COMMAND:
        proc = sh(*args, expect=None)
        assert_clean_error(proc)
        assert words in proc.stderr, (args, proc.stderr)
        assert snapshot(sample) == before, f"`oppcli {' '.join(args)}` changed the store"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root reads files whatever their mode; the directory cases cover it")
def test_an_unreadable_data_file_is_an_error_that_changes_nothing(sh, sample):
    (sample / DATA).chmod(0)
    before = mtimes(sample)
    for args in EVERY_COMMAND:
        proc = sh(*args, expect=None)
        assert_clean_error(proc)
        assert "permission" in proc.stderr.lower()
    (sample / DATA).chmod(0o600)
    assert mtimes(sample) == before


def mtimes(store: Path) -> dict[str, int | float]:
    return {p.name: p.stat().st_mtime_ns for p in store.iterdir() if p.name != ".lock"}


def test_store_path_that_is_a_plain_file(sh, isolated):
    plain = isolated / "plain"
    plain.write_bytes(b"not a store\n")
    for args in EVERY_COMMAND:
        proc = sh("--store", str(plain), *args, expect=None)
        assert_clean_error(proc)
        assert "not a store directory" in proc.stderr
    assert plain.read_bytes() == b"not a store\n"
    proc = sh("--store", str(plain), "init", expect=None)
    assert_clean_error(proc)
    assert plain.read_bytes() == b"not a store\n"


def test_a_directory_without_meta_is_not_a_store(sh, isolated):
    other = isolated / "other"
    other.mkdir()
    (other / "notes.txt").write_bytes(b"mine")
    for args in EVERY_COMMAND:
        assert_clean_error(sh("--store", str(other), *args, expect=None))
    assert_clean_error(sh("--store", str(other), "init", expect=None))
    assert [p.name for p in other.iterdir()] == ["notes.txt"]


def _garbage_at_line(store: Path, lineno: int) -> bytes:
    lines = (store / DATA).read_bytes().split(b"\n")
    lines[lineno - 1] = b"this line is not JSON"
    raw = b"\n".join(lines)
    (store / DATA).write_bytes(raw)
    return raw


def test_garbage_line_in_the_middle_fails_reads_and_is_never_rewritten(sh, sample):
    _garbage_at_line(sample, 10)
    before = snapshot(sample)
    for args in (["list"], ["search", "--sort", "monetary_value", "-o", "jsonl"],
                 ["show", "99999"], ["update", "99999", "--details", "x"],
                 ["delete", "99999", "--yes"]):
        proc = sh(*args, expect=None)
        assert_clean_error(proc)
        assert "line 10 is corrupt" in proc.stderr, (args, proc.stderr)
        assert snapshot(sample) == before, args


def test_a_filtered_search_of_a_store_with_a_corrupt_line_is_an_error(sh, sample):
    """Narrowing skips lines unparsed only in chunks where every line starts like a record."""
    _garbage_at_line(sample, 10)
    proc = sh("search", "--priority", "high", "-o", "jsonl", expect=None)
    assert_clean_error(proc)
    assert "line 10 is corrupt" in proc.stderr


def test_writes_to_a_store_with_a_corrupt_middle_line(sh, sample):
    """Designed behaviour, pinned: update and delete read the whole file, notice the bad line and
    refuse (exit 3, nothing changed); create appends without reading the file (its cost must not
    grow with the store), so it succeeds, and the bad line survives verbatim."""
    raw = _garbage_at_line(sample, 10)
    before = snapshot(sample)
    for args in (["update", "1020", "--details", "x"], ["delete", "1030", "--yes"]):
        proc = sh(*args, expect=None)
        assert_clean_error(proc)
        assert "line 10 is corrupt" in proc.stderr, (args, proc.stderr)
        assert snapshot(sample) == before, args
    sh("create", "--name", "New", "--primary-contact-id", "601")
    after = (sample / DATA).read_bytes()
    assert after.startswith(raw) and b"\nthis line is not JSON\n" in after
    assert_clean_error(sh("list", expect=None))


def test_garbage_last_line_fails_reads_and_creates_without_changes(sh, sample):
    with open(sample / DATA, "ab") as f:
        f.write(b"garbage at the end\n")
    before = snapshot(sample)
    for args in (["list"], ["create", "--name", "New", "--primary-contact-id", "601"],
                 ["update", "99999", "--details", "x"]):
        proc = sh(*args, expect=None)
        assert_clean_error(proc)
        where = "the last line" if args[0] == "create" else "line 37"
        assert f"opportunities.jsonl {where} is corrupt" in proc.stderr, proc.stderr
        assert snapshot(sample) == before, args


# A line not shaped like a record, in the middle of the store: every reader and writer that
# reaches it stops, naming the line, and changes nothing.
CORRUPT_LINE = 10  # id 1010, a Won deal: no `"status":"Open"` for narrowing to find


def _garbage(line: bytes) -> bytes:
    return b"this line is not JSON"


def _non_numeric_id(line: bytes) -> bytes:
    return b'{"id":nope}'  # starts like a record; no "a", so --name-contains a skips it too


def _string_id(line: bytes) -> bytes:
    assert line.startswith(b'{"id":1010,')
    return b'{"id":"1010",' + line[len(b'{"id":1010,'):]


def _cut_short(line: bytes) -> bytes:
    cut = line[: len(line) // 2]
    assert not cut.endswith(b"}")
    return cut


CORRUPT_LINES = {"garbage": _garbage, "non-numeric id": _non_numeric_id,
                 "string id": _string_id, "cut short": _cut_short}

COMMANDS_ON_OTHER_RECORDS = [
    ["search", "--status", "open"],
    ["search", "--name-contains", "a"],
    ["update", "1020", "--details", "x"],
    ["delete", "1030", "--yes"],
]


@pytest.mark.parametrize("case", list(CORRUPT_LINES))
def test_a_line_not_shaped_like_a_record_stops_every_reader_and_writer(run, sample, case):
    lines = (sample / DATA).read_bytes().split(b"\n")
    lines[CORRUPT_LINE - 1] = CORRUPT_LINES[case](lines[CORRUPT_LINE - 1])
    (sample / DATA).write_bytes(b"\n".join(lines))
    before = snapshot(sample)
    for args in COMMANDS_ON_OTHER_RECORDS:
        message = one_error_line(run(*args, expect=None), 3)
        assert f"line {CORRUPT_LINE} is corrupt" in message, (args, message)
        assert snapshot(sample) == before, f"`oppcli {' '.join(args)}` changed the store"
    # show reads only the few lines its binary search over the ids lands on: another record
    # is still shown (a search names the broken line).
    assert orjson.loads(run("show", "1020", "-o", "json").stdout)["id"] == 1020


# lookups.json of the wrong shape: a one-line error from every command, nothing changed.
def _stage_without_id() -> dict[str, Any]:
    lookups = copy.deepcopy(SAMPLE_LOOKUPS)
    del lookups["pipelines"][1]["stages"][2]["id"]
    return lookups


BAD_LOOKUPS = {
    "pipeline without id": {"pipelines": [{"name": "x"}]},
    "pipelines a string": {"pipelines": "abc"},
    "users are numbers": {"users": [1, 2]},
    "stage without id": _stage_without_id(),
}


@pytest.mark.parametrize("case", list(BAD_LOOKUPS))
def test_a_misshapen_lookups_file_is_a_one_line_error(run, sample, case):
    (sample / LOOKUPS).write_bytes(orjson.dumps(BAD_LOOKUPS[case]))
    before = snapshot(sample)
    for args in (["list"], ["search", "--status", "open"], ["show", "1001"],
                 ["create", "--name", "New", "--primary-contact-id", "601"]):
        message = one_error_line(run(*args, expect=None), 3)
        assert "lookups.json" in message, (args, message)
        assert snapshot(sample) == before, args


# A damaged meta.json header is named as damaged, never taken for a newer format.
@pytest.mark.parametrize("key,value,words", [("version", "1", "version"),
                                             ("date_order", "XYZ", "date_order")])
def test_a_damaged_header_is_not_called_newer(run, sample, key, value, words):
    meta = orjson.loads((sample / META).read_bytes())
    meta[key] = value
    (sample / META).write_bytes(orjson.dumps(meta))
    before = snapshot(sample)
    for args in (["list"], ["show", "1001"], ["update", "1001", "--details", "x"]):
        message = one_error_line(run(*args, expect=None), 3)
        assert "newer" not in message and "upgrade" not in message, message
        assert words in message, message
        assert snapshot(sample) == before, args


# ---- 5. permissions ----------------------------------------------------------------------------
def modes(store: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in store.iterdir()}


def test_store_is_owner_only_even_with_a_permissive_umask(isolated, store_path):
    env = dict(os.environ)
    exe = oppcli_exe()

    def sh0(*args: str) -> subprocess.CompletedProcess[str]:
        # umask 000: whatever oppcli creates gets exactly the mode it asks for.
        cmd = "umask 000; exec \"$0\" \"$@\""
        proc = subprocess.run(["/bin/sh", "-c", cmd, exe, *args], env=env, capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc

    sh0("init", "--sample")
    assert stat.S_IMODE(store_path.stat().st_mode) == 0o700
    assert modes(store_path) == {META: 0o600, LOOKUPS: 0o600, DATA: 0o600}
    sh0("create", "--name", "Perm", "--primary-contact-id", "601")
    sh0("update", "1001", "--details", "rewritten")
    sh0("delete", "1002", "--yes")
    new_top = orjson.loads(sh0("create", "--name", "Top", "--primary-contact-id", "601",
                               "-o", "json").stdout)["id"]
    sh0("delete", str(new_top), "--yes")  # rewrites meta.json too (next_id)
    with open(store_path / DATA, "ab") as f:
        f.write(TORN)
    sh0("update", "1003", "--details", "sets the torn tail aside")
    found = modes(store_path)
    assert stat.S_IMODE(store_path.stat().st_mode) == 0o700
    torn = [n for n in found if n.startswith(f"{DATA}.torn-")]
    assert len(torn) == 1
    assert found == {META: 0o600, LOOKUPS: 0o600, DATA: 0o600, ".lock": 0o600, torn[0]: 0o600}
    assert orjson.loads((store_path / META).read_bytes())["next_id"] == new_top + 1


def test_init_tightens_an_existing_empty_directory(sh, store_path):
    store_path.mkdir(mode=0o755)
    store_path.chmod(0o755)
    sh("init")
    assert stat.S_IMODE(store_path.stat().st_mode) == 0o700


# ---- 6. failed writes change nothing -----------------------------------------------------------
class FaultyOs:
    """The os module as local.py sees it, with one function failing like a full disk."""

    def __init__(self, name: str, *, partial: bool = False) -> None:
        self.name = name
        self.partial = partial
        self.calls = 0

    def __getattr__(self, attr: str) -> Any:
        real = getattr(os, attr)
        if attr != self.name:
            return real

        def fail(*args: Any) -> Any:
            self.calls += 1
            if self.partial and attr == "write":
                fd, data = args
                return os.write(fd, bytes(data)[: len(data) // 2])  # a short write
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return fail


@pytest.fixture
def faulty(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FaultyOs]:
    def install(name: str, *, partial: bool = False) -> FaultyOs:
        fake = FaultyOs(name, partial=partial)
        for module in STORE_OS_USERS:
            monkeypatch.setattr(module, "os", fake)
        return fake
    return install


def assert_disk_full(result: Any) -> None:
    assert result.exit_code == 3, (result.exit_code, result.stdout, result.stderr, result.exception)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[-1].startswith("oppcli: error: "), result.stderr
    assert "No space left on device" in result.stderr or "short write" in result.stderr
    assert "free some disk space" in result.stderr and "the store is unchanged" in result.stderr


@pytest.mark.parametrize("partial", [False, True], ids=["nothing-written", "short-write"])
def test_create_on_a_full_disk_changes_nothing(run, sample, faulty, partial):
    before = snapshot(sample)
    fake = faulty("write", partial=partial)
    result = run("create", "--name", "Doomed", "--primary-contact-id", "601", expect=None)
    assert fake.calls >= 1
    assert_disk_full(result)
    assert snapshot(sample) == before


@pytest.mark.parametrize("fails", ["write", "sendfile", "fsync", "replace"])
def test_update_on_a_full_disk_changes_nothing(run, sample, faulty, fails):
    before = snapshot(sample)
    fake = faulty(fails)
    result = run("update", "1010", "--details", "doomed", expect=None)
    assert fake.calls >= 1
    assert_disk_full(result)
    assert snapshot(sample) == before  # no temp file left behind either


@pytest.mark.parametrize("fails", ["sendfile", "fsync", "replace"])
def test_delete_on_a_full_disk_changes_nothing(run, sample, faulty, fails):
    before = snapshot(sample)
    fake = faulty(fails)
    result = run("delete", "1010", "1020", "--yes", expect=None)
    assert fake.calls >= 1
    assert_disk_full(result)
    assert snapshot(sample) == before


def test_deleting_the_top_id_on_a_full_disk_keeps_the_data(run, sample, faulty, monkeypatch):
    """Deleting the highest id first raises meta's next_id floor, then rewrites the data (that
    order is what keeps the id from coming back after a crash). When the rewrite then fails,
    the data and lookups are unchanged and meta.json may only carry the raised floor, which
    names the id the store would hand out next anyway."""
    top = run.json("create", "--name", "Top", "--primary-contact-id", "601")["id"]
    before = snapshot(sample)
    # (every create advances the floor, so an id is never issued twice whatever order the
    # file is in)
    assert orjson.loads(before[META])["next_id"] == top + 1
    faulty("sendfile")
    assert_disk_full(run("delete", str(top), "--yes", expect=None))
    after = snapshot(sample)
    assert after.keys() == before.keys()
    assert after[DATA] == before[DATA] and after[LOOKUPS] == before[LOOKUPS]
    meta_before, meta_after = orjson.loads(before[META]), orjson.loads(after[META])
    assert meta_after.pop("next_id") in (meta_before.pop("next_id"), top + 1)
    assert meta_after == meta_before
    for module in STORE_OS_USERS:
        monkeypatch.setattr(module, "os", os)
    assert run.json("show", str(top))["name"] == "Top"
    assert run.json("create", "--name", "Next", "--primary-contact-id", "601")["id"] == top + 1


def test_init_on_a_full_disk_leaves_no_store_and_can_be_retried(run, store_path, faulty,
                                                                monkeypatch):
    faulty("write")
    assert_disk_full(run("init", "--sample", expect=None))
    assert not LocalStore.exists(store_path)
    assert list(store_path.iterdir()) == []  # no half-written files, no temp files
    for module in STORE_OS_USERS:
        monkeypatch.setattr(module, "os", os)
    run("init", "--sample")
    assert len(run.json("list")) == 36
