"""Helpers for the bulk tests against the test Copper server (tests/fakecopper.py): the installed
`oppcli` as a subprocess in a private working directory (the not-done files land there), real
pipes from one oppcli into another, and readings of the server's request log.

Imported by tests/bulk/test_bulk_copper*.py (pytest puts tests/bulk on sys.path for them).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from conftest import oppcli_exe
from fakecopper import FakeCopper, LoggedRequest

ONE = r"/opportunities/(\d+)$"  # GET, PUT or DELETE of one opportunity


def run(cwd: Path, *args: str, input: str | None = None, expect: int | None = 0,
        timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """`oppcli ARGS` with no terminal, in cwd; stdin is `input`, else closed."""
    proc = subprocess.run([oppcli_exe(), *args], input=input,
                          stdin=None if input is not None else subprocess.DEVNULL,
                          capture_output=True, text=True, cwd=cwd, env=dict(os.environ),
                          timeout=timeout)
    if expect is not None:
        assert proc.returncode == expect, (
            f"oppcli {' '.join(args)} exited {proc.returncode}, expected {expect}\n"
            f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
    return proc


def pipe(cwd: Path, producer: Iterable[str], consumer: Iterable[str], expect: int | None = 0,
         timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """`oppcli PRODUCER | oppcli CONSUMER` through a real OS pipe; the consumer's result."""
    exe = oppcli_exe()
    first = subprocess.Popen([exe, *producer], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, cwd=cwd, env=dict(os.environ))
    second = subprocess.Popen([exe, *consumer], stdin=first.stdout, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=cwd, env=dict(os.environ))
    assert first.stdout is not None
    first.stdout.close()  # the consumer holds the only reading end
    out, err = second.communicate(timeout=timeout)
    _, first_err = first.communicate(timeout=timeout)
    assert first.returncode == 0, first_err
    proc = subprocess.CompletedProcess(second.args, second.returncode, out, err)
    if expect is not None:
        assert proc.returncode == expect, (
            f"... | oppcli {' '.join(consumer)} exited {proc.returncode}, expected {expect}\n"
            f"stdout: {out}\nstderr: {err}")
    return proc


def jsonl_ids(text: str) -> list[int]:
    return [orjson.loads(line)["id"] for line in text.splitlines() if line.strip()]


def rows(proc: subprocess.CompletedProcess[str]) -> dict[int, dict[str, Any]]:
    """A bulk command's `-o json` output, by deal id."""
    parsed = orjson.loads(proc.stdout)
    assert isinstance(parsed, list), proc.stdout
    by_id = {r["id"]: r for r in parsed}
    assert len(by_id) == len(parsed), "a deal reported twice"
    return by_id


def results(proc: subprocess.CompletedProcess[str]) -> dict[int, str]:
    return {i: r["result"] for i, r in rows(proc).items()}


def one_deal(srv: FakeCopper, method: str) -> list[LoggedRequest]:
    """The requests of this method on one opportunity (GET/PUT/DELETE /opportunities/ID)."""
    return srv.calls(ONE, method)


def deal_id(request: LoggedRequest) -> int:
    m = re.search(ONE, request.path.split("?", 1)[0])
    assert m, request.path
    return int(m[1])


def ids_of(requests: Iterable[LoggedRequest], status: int | None = None) -> list[int]:
    return [deal_id(r) for r in requests if status is None or r.status == status]


def writes(srv: FakeCopper) -> list[LoggedRequest]:
    """Every request that could change a deal: PUT/DELETE of one, POST /opportunities."""
    return [r for r in srv.requests if r.method in ("PUT", "DELETE", "PATCH")
            or (r.method == "POST" and r.path.split("?", 1)[0].endswith("/opportunities"))]


def max_in_flight(requests: list[LoggedRequest]) -> int:
    """The most requests the server was answering at one moment."""
    events = sorted([(r.started, 1) for r in requests] + [(r.ended, -1) for r in requests])
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


def latest_batch(cwd: Path) -> dict[str, Any]:
    """The newest line of `oppcli history` (a batch folded into one line)."""
    return orjson.loads(run(cwd, "history", "-n", "1", "-o", "json").stdout)[0]


def batch_entries(cwd: Path, batch: str) -> list[dict[str, Any]]:
    """`oppcli history --batch BATCH -o json`: one audit entry per deal of the batch."""
    return orjson.loads(run(cwd, "history", "--batch", batch, "-n", "10000", "-o", "json").stdout)


def batch_named(stderr: str) -> str:
    """The batch a bulk command's report says `oppcli undo` takes back."""
    m = re.search(r"`oppcli undo ([0-9a-f]+)` takes it back", stderr)
    assert m, stderr
    return m[1]


def not_done_ids(path: Path) -> list[int]:
    text = path.read_text()
    assert text == "" or text.endswith("\n"), repr(text)
    return [int(line) for line in text.splitlines()]


def start_and_signal(cwd: Path, srv: FakeCopper, args: list[str], input: str, signum: int,
                     after_puts: int, timeout: float = 30) -> tuple[subprocess.CompletedProcess[str], float]:
    """Start `oppcli ARGS` with `input` on stdin, send `signum` once the server has answered
    `after_puts` more PUTs, wait for it; (its result, the time the signal was sent)."""
    after_puts += len(one_deal(srv, "PUT"))
    proc = subprocess.Popen([oppcli_exe(), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd, env=dict(os.environ))
    assert proc.stdin is not None
    proc.stdin.write(input)
    proc.stdin.close()
    proc.stdin = None  # (communicate() below must not touch it)
    deadline = time.monotonic() + timeout
    while len(one_deal(srv, "PUT")) < after_puts:
        assert proc.poll() is None, f"oppcli ended before {after_puts} PUTs: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "no PUTs came"
        time.sleep(0.005)
    sent = time.time()
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), sent


SIGNALS = [(signal.SIGINT, 130), (signal.SIGTERM, 143)]
