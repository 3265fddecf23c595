"""The audit log: every change made through oppcli, on either backend, so it can be reviewed
(`oppcli history`) and taken back (`oppcli undo`).

One JSON object per line in `audit.jsonl` beside the config file (0600 in a 0700 directory),
append-only: each entry is written with one O_APPEND write under an exclusive lock and
fsynced. An entry holds when, the backend and where its data lives, the profile, the operation,
the opportunity id, and the record before and after. Never the API key.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from oppcli.backends.base import Backend, SearchReport
from oppcli.errors import ConfigError, PartialFailure
from oppcli.io import warn

if TYPE_CHECKING:
    from oppcli.domain.lookups import Lookups
    from oppcli.domain.query import Query

AUDIT_FILE = "audit.jsonl"
Record = dict[str, Any]


def audit_path() -> Path:
    from oppcli.config import config_dir

    return config_dir() / AUDIT_FILE


class AuditLog:
    def __init__(self, path: Path, *, backend: str, where: str, profile: str) -> None:
        self.path = path
        self.backend = backend
        self.where = where
        self.profile = profile
        self._checked = False

    def check(self) -> None:
        """Fail before a change (exit 3) when the log could not record it afterwards."""
        if self._checked:
            return
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.close(fd)
        except OSError as exc:
            raise ConfigError(f"cannot write the audit log {self.path}: {exc.strerror}",
                              "nothing was changed; fix its permissions (oppcli records every "
                              "change there so it can be undone)") from exc
        self._checked = True

    def append(self, op: str, opp_id: int, before: Record | None, after: Record | None,
               undo_of: str | None = None) -> str:
        entry: dict[str, Any] = {
            "audit_id": os.urandom(4).hex(), "at": round(time.time(), 3), "op": op,
            "backend": self.backend, "where": self.where, "profile": self.profile,
            "id": opp_id, "before": before, "after": after}
        if undo_of:
            entry["undo_of"] = undo_of
        line = orjson.dumps(entry) + b"\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.fchmod(fd, 0o600)  # customer data: owner-only, also if it was made looser
            size = os.fstat(fd).st_size
            if os.write(fd, line) != len(line):
                os.ftruncate(fd, size)  # a torn entry would swallow the next one
                raise OSError(28, "short write (disk full?)")
            os.fsync(fd)
        finally:
            os.close(fd)
        return str(entry["audit_id"])

    def holds(self, entry: Mapping[str, Any]) -> bool:
        """Whether an entry was made on this log's backend and store."""
        return bool(entry.get("backend") == self.backend and entry.get("where") == self.where)

    def entries(self) -> Iterator[dict[str, Any]]:
        """Every entry, oldest first; a damaged line (a torn write) is skipped."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ConfigError(f"cannot read the audit log {self.path}: {exc.strerror}") from exc
        for line in data.splitlines():
            with contextlib.suppress(orjson.JSONDecodeError):
                entry = orjson.loads(line)
                if isinstance(entry, dict) and "audit_id" in entry:
                    yield entry


class Audited(Backend):
    """A backend whose every change is written to the audit log; reads pass through. It
    implements the Backend protocol itself, member by member (no attribute forwarding)."""

    def __init__(self, inner: Backend, log: AuditLog,
                 notice: Callable[[str], None] | None = None) -> None:
        self.inner = inner
        self.log = log
        self.undo_of: str | None = None  # set by undo for the entries it writes
        self._notice = notice or warn

    # ---- reads and properties: the inner backend's -------------------------------------------
    @property
    def name(self) -> str:  # type: ignore[override]
        return self.inner.name

    @property
    def stream_order(self) -> tuple[str, bool]:  # type: ignore[override]
        return self.inner.stream_order

    @property
    def last_before(self) -> Record | None:  # type: ignore[override]
        return self.inner.last_before

    def describe(self) -> str:
        return self.inner.describe()

    def lookups(self) -> Lookups:
        return self.inner.lookups()

    def date_order(self) -> str:
        return self.inner.date_order()

    def timezone(self) -> dt.tzinfo:
        return self.inner.timezone()

    def check_writable(self) -> None:
        self.inner.check_writable()

    def get(self, opp_id: int) -> Record:
        return self.inner.get(opp_id)

    def search(self, query: Query) -> Iterator[Record]:
        return self.inner.search(query)

    def search_raw(self, query: Query) -> Iterator[Record | bytes]:
        return self.inner.search_raw(query)

    def search_report(self) -> SearchReport:
        return self.inner.search_report()

    def exclusive(self) -> AbstractContextManager[None]:
        return self.inner.exclusive()

    def next_id(self) -> int | None:
        return self.inner.next_id()

    # ---- changes: made, then recorded -----------------------------------------------------------
    def create(self, payload: Mapping[str, Any], *, keep_id: int | None = None) -> Record:
        self.log.check()
        record = self.inner.create(payload, keep_id=keep_id)
        self._append("create", record["id"], None, record)
        return record

    def record_confirmed_create(self, record: Record) -> None:
        """A create whose answer was lost, found made after all: recorded like any create."""
        self._append("create", record["id"], None, record)

    def update(self, opp_id: int, changes: Mapping[str, Any],
               current: Record | None = None) -> Record:
        self.log.check()
        record = self.inner.update(opp_id, changes, current)
        before = self.inner.last_before
        if before is not None and before != record:
            self._append("update", opp_id, before, record)
        return record

    def delete(self, ids: list[int]) -> list[Record]:
        self.log.check()
        try:
            deleted = self.inner.delete(ids)
        except PartialFailure as exc:
            for record in exc.done:
                self._append("delete", record["id"], record, None)
            raise
        for record in deleted:
            self._append("delete", record["id"], record, None)
        return deleted

    def _append(self, op: str, opp_id: int, before: Record | None, after: Record | None) -> None:
        try:
            self.log.append(op, opp_id, before, after, self.undo_of)
        except OSError as exc:  # the change is made; say loudly that it is not recorded
            self._notice(f"opportunity {opp_id} was changed ({op}) but the audit log "
                         f"{self.log.path} could not record it: {exc.strerror}")


def changed_keys(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[str]:
    """The writable fields an entry changed (custom fields as cf:ID)."""
    from oppcli.domain import fields as F

    if before is None or after is None:
        return []
    out = []
    for fld in F.WRITABLE:
        if fld.name == "custom_fields":
            b = {c.get("custom_field_definition_id"): c.get("value")
                 for c in before.get("custom_fields") or []}
            a = {c.get("custom_field_definition_id"): c.get("value")
                 for c in after.get("custom_fields") or []}
            out += [f"cf:{k}" for k in sorted(set(a) | set(b), key=str) if a.get(k) != b.get(k)]
        elif before.get(fld.name) != after.get(fld.name):
            out.append(fld.name)
    return out

