"""Short writes in the store's rewrite (update, delete): continued while the disk takes bytes,
and a full disk is exit 3 with the store unchanged: nothing is lost.

os.write may write fewer bytes than asked (a full disk, a signal); the rewrite's new lines and
the pread/write fallback of its copy (where sendfile is not supported) must not drop the rest.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from oppcli.backends import local as local_module
from oppcli.backends.local import DATA
from oppcli.util import files as files_module

# The modules that call os for the store: its own and the shared file helpers.
STORE_OS_USERS = (files_module, local_module.datafile, local_module.rewrite, local_module.scan,
                  local_module.store)


def snapshot(store: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(store.iterdir()) if p.is_file() and p.name != ".lock"}


class ShortOs:
    """The os module with a write() that is short. With a `budget` (a disk with that many bytes
    free): writes what still fits, short, then fails with ENOSPC. Without: writes half of what
    it is given (at least a byte) every time, making progress. sendfile() is unsupported
    (EINVAL) when `no_sendfile`, so the copy takes its pread/write fallback."""

    def __init__(self, *, budget: int | None, no_sendfile: bool) -> None:
        self.budget = budget
        self.no_sendfile = no_sendfile
        self.short = 0

    def __getattr__(self, attr: str) -> Any:
        return getattr(os, attr)

    def write(self, fd: int, data: Any) -> int:
        data = bytes(data)
        if self.budget is None:
            n = max(1, len(data) // 2)
        else:
            if self.budget == 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            n = min(len(data), self.budget)
            self.budget -= n
        self.short += n < len(data)
        return os.write(fd, data[:n])

    def sendfile(self, *args: Any) -> int:
        if self.no_sendfile:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return os.sendfile(*args)


@pytest.fixture
def short_os(monkeypatch: pytest.MonkeyPatch):
    def install(**kw: Any) -> ShortOs:
        fake = ShortOs(**kw)
        for module in STORE_OS_USERS:
            monkeypatch.setattr(module, "os", fake)
        return fake
    return install


WRITES = {
    "update": ["update", "1010", "--details", "x" * 5000],
    "delete": ["delete", "1010", "1020", "--yes"],
}
# Which write runs short: an update's new line, or the copy of the rest (without sendfile, by
# pread/write). A delete writes no new line: only its copy can be short.
CASES = [("update", False), ("update", True), ("delete", True)]
CASE_IDS = ["update-new-line", "update-copy-fallback", "delete-copy-fallback"]


@pytest.mark.parametrize("op, no_sendfile", CASES, ids=CASE_IDS)
def test_a_full_disk_mid_rewrite_is_exit_3_and_the_store_is_unchanged(run, sample, short_os, op,
                                                                      no_sendfile):
    before = snapshot(sample)
    # The disk fills during the last write: of the new line (sent with sendfile around it), or
    # of the copied tail of the file (pread/write).
    gone = sum(len(x) + 1 for x in before[DATA].splitlines()
               if op == "delete" and orjson.loads(x)["id"] in (1010, 1020))
    budget = 2000 if not no_sendfile else len(before[DATA]) - gone - 100
    fake = short_os(budget=budget, no_sendfile=no_sendfile)
    result = run(*WRITES[op], expect=None)
    assert fake.short >= 1
    assert result.exit_code == 3, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    assert "No space left on device" in result.stderr and "the store is unchanged" in result.stderr
    assert snapshot(sample) == before  # no partial file, no temp file


@pytest.mark.parametrize("op, no_sendfile", CASES, ids=CASE_IDS)
def test_short_writes_that_make_progress_are_continued(run, sample, short_os, monkeypatch, op,
                                                      no_sendfile):
    fake = short_os(budget=None, no_sendfile=no_sendfile)
    run(*WRITES[op])
    assert fake.short >= 1
    for module in STORE_OS_USERS:
        monkeypatch.setattr(module, "os", os)
    lines = (sample / DATA).read_bytes().splitlines()
    records = {r["id"]: r for r in map(orjson.loads, lines)}  # every line whole
    if op == "update":
        assert len(records) == 36 and records[1010]["details"] == "x" * 5000
    else:
        assert len(records) == 34 and 1010 not in records and 1020 not in records
