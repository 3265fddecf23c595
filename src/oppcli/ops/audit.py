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

from oppcli.backends.base import Backend, Change, Done, Outcome, SearchReport, Stopping
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

    def entry(self, op: str, opp_id: int, before: Record | None, after: Record | None,
              undo_of: str | None = None, batch: str | None = None) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "audit_id": os.urandom(4).hex(), "at": round(time.time(), 3), "op": op,
            "backend": self.backend, "where": self.where, "profile": self.profile,
            "id": opp_id, "before": before, "after": after}
        if undo_of:
            entry["undo_of"] = undo_of
        if batch:
            entry["batch"] = batch
        return entry

    def append(self, op: str, opp_id: int, before: Record | None, after: Record | None,
               undo_of: str | None = None) -> str:
        entry = self.entry(op, opp_id, before, after, undo_of)
        self.write([entry])
        return str(entry["audit_id"])

    def write(self, entries: list[dict[str, Any]]) -> None:
        """Append entries with one write and one fsync (a bulk change's entries go in groups,
        not one fsync per deal)."""
        if not entries:
            return
        data = b"".join(orjson.dumps(e) + b"\n" for e in entries)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.fchmod(fd, 0o600)  # customer data: owner-only, also if it was made looser
            size = os.fstat(fd).st_size
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    if written <= 0:
                        raise OSError(28, "short write (disk full?)")
                    view = view[written:]
                os.fsync(fd)
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)  # a torn entry would swallow the next one
                raise
        finally:
            os.close(fd)

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
        self.last_audit_id: str | None = None  # the entry of the latest change outside a batch
        self._notice = notice or warn
        self._batch: Batch | None = None

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

    @property
    def remote(self) -> bool:  # type: ignore[override]
        return self.inner.remote

    def get_many(self, ids: list[int]) -> dict[int, Record]:
        return self.inner.get_many(ids)

    # ---- a bulk change: one batch in the log ---------------------------------------------------
    @contextlib.contextmanager
    def batch(self, undo_of: Mapping[int, str] | None = None) -> Iterator[Batch]:
        """Every change made in the block is one batch: its entries share a batch id (what
        `history` shows as one line and `undo` takes back as one), written in groups as the
        deals are done, and all of them by the end of the block (also when it is stopped).
        `undo_of`: deal id -> the entry each change takes back (an undo of a batch)."""
        self.log.check()
        batch = self._batch = Batch(dict(undo_of or {}))
        try:
            yield batch
        finally:
            self._batch = None
            self._flush(batch)

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

    def update_many(self, items: list[Change], done: Done, stopping: Stopping) -> None:
        self._many(self.inner.update_many, items, done, stopping)

    def delete_many(self, items: list[Change], done: Done, stopping: Stopping) -> None:
        self._many(self.inner.delete_many, items, done, stopping)

    def _many(self, write: Callable[[list[Change], Done, Stopping], None], items: list[Change],
              done: Done, stopping: Stopping) -> None:
        """A bulk write: each outcome recorded (in the batch open, else one of its own) before
        the caller hears of it."""
        if self._batch is None:
            with self.batch():
                return self._many(write, items, done, stopping)

        def record(outcome: Outcome) -> None:
            if outcome.state == "changed":
                self._append("update", outcome.id, outcome.before, outcome.after)
            elif outcome.state == "deleted":
                self._append("delete", outcome.id, outcome.before, None)
            done(outcome)

        self.log.check()
        write(items, record, stopping)
        return None

    def _append(self, op: str, opp_id: int, before: Record | None, after: Record | None) -> None:
        batch = self._batch
        if batch is not None:
            batch.pending.append(self.log.entry(op, opp_id, before, after,
                                                batch.undo_of.get(opp_id) or self.undo_of,
                                                batch.id))
            if len(batch.pending) >= Batch.GROUP or time.monotonic() >= batch.due:
                self._flush(batch)
            return
        try:
            self.last_audit_id = self.log.append(op, opp_id, before, after, self.undo_of)
        except OSError as exc:  # the change is made; say loudly that it is not recorded
            self._notice(f"opportunity {opp_id} was changed ({op}) but the audit log "
                         f"{self.log.path} could not record it: {exc.strerror}")

    def _flush(self, batch: Batch) -> None:
        entries, batch.pending = batch.pending, []
        batch.due = time.monotonic() + Batch.EVERY
        try:
            self.log.write(entries)
        except OSError as exc:
            ids = ", ".join(str(e["id"]) for e in entries[:10])
            more = f" and {len(entries) - 10} more" if len(entries) > 10 else ""
            self._notice(f"{len(entries)} opportunities were changed (batch {batch.id}: {ids}"
                         f"{more}) but the audit log {self.log.path} could not record it: "
                         f"{exc.strerror}")


class Batch:
    """The entries of one bulk change, written in groups: GROUP entries or EVERY seconds,
    whichever comes first (so a stop loses none that were told, and 10,000 deals cost one
    fsync on the local store and one a second on Copper, not 10,000)."""

    GROUP = 10_000
    EVERY = 1.0

    def __init__(self, undo_of: dict[int, str]) -> None:
        self.id = os.urandom(4).hex()
        self.undo_of = undo_of
        self.pending: list[dict[str, Any]] = []
        self.due = time.monotonic() + self.EVERY


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



def by_batch(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entries newest first, each bulk change's entries folded into one line where its newest
    entry is: {"audit_id": the batch id, "batch", "at", "op", "backend", "where", "profile",
    "count", "fields" (every field it changed), "deals": [{"id", "name", "audit_id",
    "fields"}], and "undo_of" (the batch or entry it took back) when it was an undo}."""
    batch_of = {e["audit_id"]: e["batch"] for e in entries if e.get("batch")}
    out: list[dict[str, Any]] = []
    lines: dict[str, dict[str, Any]] = {}
    for e in entries:
        batch = e.get("batch")
        if not batch:
            out.append(e)
            continue
        line = lines.get(batch)
        if line is None:
            line = lines[batch] = {
                "audit_id": batch, "batch": batch, "at": e.get("at"), "op": e.get("op"),
                "backend": e.get("backend"), "where": e.get("where"),
                "profile": e.get("profile"), "count": 0, "fields": [], "deals": []}
            if e.get("undo_of"):
                line["undo_of"] = batch_of.get(e["undo_of"], e["undo_of"])
            out.append(line)
        fields = changed_keys(e.get("before"), e.get("after"))
        record = e.get("after") or e.get("before") or {}
        line["count"] += 1
        line["deals"].append({"id": e.get("id"), "name": record.get("name"),
                              "audit_id": e.get("audit_id"), "fields": fields})
        line["fields"] = list(dict.fromkeys([*line["fields"], *fields]))
    return out
