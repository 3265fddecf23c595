"""LocalStore: the local JSON store, the embedded default backend (the format: format.py).

Opening and creating a store directory, its header (meta.json) and lookup tables, the store's
lock, and the Backend's reads and writes: creates append a line, updates and deletes rewrite the
data file (rewrite.py), searches stream it (scan.py).
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from oppcli.backends import base
from oppcli.backends.base import Record, describe_local
from oppcli.backends.local.datafile import os_error, read_json
from oppcli.backends.local.format import (
    DATA,
    FORMAT,
    ID_AT_START,
    LINE_IDS,
    LOCK,
    LOOKUPS,
    META,
    NEXT_IDS,
    VERSION,
    dump_line,
    stamp,
    uniform,
)
from oppcli.backends.local.rewrite import Rewriting
from oppcli.backends.local.scan import search as search_file
from oppcli.domain import fields as F
from oppcli.domain.changes import check_create
from oppcli.domain.lookups import Lookups, lookups_problem
from oppcli.domain.query import Query
from oppcli.domain.records import (
    apply_changes,
    canonical,
    changed_fields,
    check_refs,
    refs_to_check,
    trimmed,
    with_defaults,
)
from oppcli.domain.values import check_date_order
from oppcli.errors import NotFoundError, OppcliError, ServiceError, StoreError, UsageError
from oppcli.util.files import atomic_write
from oppcli.util.locks import flock_within

if TYPE_CHECKING:
    import datetime as dt


ID_HERE = re.compile(rb'\{"id":(\d+)[,}]')  # ID_AT_START without ^ (match(chunk, pos) needs it)
BISECT_AT_MOST = 32  # ids found by binary search each; more by one pass over the file

LOCK_TIMEOUT: float | None = None  # tests may set it; else OPPCLI_LOCK_TIMEOUT, else 30 s


def lock_timeout() -> float:
    """Seconds a write waits for the store's lock: OPPCLI_LOCK_TIMEOUT, read when used (a bad
    value is exit 3 naming the variable), else 30."""
    if LOCK_TIMEOUT is not None:
        return LOCK_TIMEOUT
    raw = os.environ.get("OPPCLI_LOCK_TIMEOUT")
    if raw is None or not raw.strip():
        return 30.0
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (0 <= value <= 86400):
        raise StoreError(f"OPPCLI_LOCK_TIMEOUT={raw!r} is not a number of seconds from 0 to "
                         "86400", "unset it (30 s) or give e.g. OPPCLI_LOCK_TIMEOUT=60")
    return value


class LocalStore(Rewriting):
    """The Backend for a store directory."""

    name = "local"
    # The order export streams in: the file's own, so memory stays constant at any size.
    stream_order = ("id", False)
    remote = False  # a read costs a look in a file: bulk changes read the store's own records
    last_before: Record | None = None  # the record as it was before the last update

    def __init__(self, path: Path, meta: Mapping[str, Any]) -> None:
        super().__init__(path, meta)
        self._lookups: Lookups | None = None
        self._lock_depth = 0  # _locked() blocks entered: the flock is held while > 0

    # ---- opening and creating -------------------------------------------------------------
    @classmethod
    def open(cls, path: Path) -> LocalStore:
        path = Path(path).expanduser()
        meta_path = path / META
        if not path.exists():
            raise StoreError(f"no store at {path}",
                             "run `oppcli init` (or `oppcli init --sample` for demo data), "
                             "or point --store / OPPCLI_STORE at an existing store")
        if not path.is_dir():
            raise StoreError(f"{path} is not a store directory",
                             "point --store at the directory `oppcli init` created")
        if not meta_path.exists():
            raise StoreError(f"{path} is not an oppcli store (no {META})",
                             "run `oppcli init --store PATH` to create one")
        meta = read_json(meta_path)
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise StoreError(f"{meta_path} is not an oppcli store header",
                             "restore it from a backup; oppcli leaves it untouched")
        version = meta.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise StoreError(f"{meta_path} has no valid format version ({version!r})",
                             "restore it from a backup; oppcli leaves it untouched")
        if version > VERSION:
            raise StoreError(f"store format version {version} is newer than this oppcli "
                             f"understands ({VERSION})", "upgrade oppcli")
        if meta.get("date_order", "MDY") not in F.DATE_ORDERS:
            raise StoreError(f"{meta_path} has an unknown date_order {meta.get('date_order')!r}",
                             "it must be MDY or DMY")
        if not isinstance(meta.get("next_id"), int):
            raise StoreError(f"{meta_path} has no valid next_id",
                             "restore it from a backup; oppcli leaves it untouched")
        return cls(path, meta)

    @classmethod
    def exists(cls, path: Path) -> bool:
        return (Path(path).expanduser() / META).exists()

    @classmethod
    def create_store(cls, path: Path, *, lookups: Mapping[str, Any], date_order: str = "MDY",
                     records: list[Record] | None = None,
                     extra: Mapping[str, Any] | None = None) -> LocalStore:
        """Make a new store directory; refuses to touch an existing one."""
        path = Path(path).expanduser()
        if cls.exists(path):
            raise StoreError(f"a store already exists at {path}")
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise StoreError(f"{path} exists and is not an empty directory",
                             "choose another --store path")
        order = check_date_order(date_order)
        records = sorted(records or [], key=lambda r: r["id"])
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(path, 0o700)
            atomic_write(path / LOOKUPS, orjson.dumps(dict(lookups), option=orjson.OPT_INDENT_2))
            atomic_write(path / DATA, b"".join(dump_line(r) for r in records))
            next_id = (records[-1]["id"] + 1) if records else 1
            meta = {"format": FORMAT, "version": VERSION, "next_id": next_id,
                    "date_order": order, "created": int(time.time()), **(extra or {})}
            if len({r["id"] for r in records}) == len(records):  # else: the first create checks
                meta["data_stamp"] = stamp(os.stat(path / DATA))
            # meta.json last: a store counts as existing only once it is complete.
            atomic_write(path / META, orjson.dumps(meta, option=orjson.OPT_INDENT_2))
        except OSError as exc:
            raise os_error(exc, path, "create the store in") from exc
        return cls(path, meta)

    # ---- Backend: reading -------------------------------------------------------------------
    def describe(self) -> str:
        """The store, by its absolute path: "./deals" and "/home/me/deals" are one store (the
        audit log and export state files compare this)."""
        return describe_local(self.path)

    def date_order(self) -> str:
        return str(self.meta.get("date_order") or "MDY")

    def timezone(self) -> dt.tzinfo:
        """The zone the store's Date custom fields are midnights in: meta.json's "timezone"
        (`init --timezone`; a mirror takes copper.timezone), UTC when absent."""
        from oppcli.domain.values import parse_timezone

        mirror = self.meta.get("mirror")
        zone = self.meta.get("timezone") or (mirror.get("timezone") if isinstance(mirror, dict)
                                             else None)
        if not zone:
            import datetime as dt

            return dt.UTC
        try:
            return parse_timezone(str(zone), f"{META} timezone")
        except UsageError as exc:
            raise StoreError(exc.message, "fix meta.json's timezone (an IANA name or +HH:MM)"
                             ) from None

    def lookups(self) -> Lookups:
        if self._lookups is None:
            data = read_json(self.path / LOOKUPS)
            problem = lookups_problem(data)
            if problem:
                raise StoreError(f"{self.path / LOOKUPS} is corrupt ({problem})",
                                 "restore it from a backup; oppcli leaves it untouched")
            self._lookups = Lookups(data, self.timezone())
        return self._lookups

    def search(self, query: Query) -> Iterator[Record]:
        return search_file(self, query, self.date_order(), raw=False)

    def search_raw(self, query: Query) -> Iterator[bytes]:
        """Like search, but each record as its stored JSON line (no newline), unparsed:
        the fast path for JSON output with no --fields."""
        return search_file(self, query, self.date_order(), raw=True)

    def search_report(self) -> base.SearchReport:
        """A search of the store reads every line: its passes are always complete."""
        return base.SearchReport()

    def get(self, opp_id: int) -> Record:
        with self.open_data() as f:
            found = self._find(f, opp_id)
        if found is None:
            raise NotFoundError(f"no opportunity with id {opp_id}",
                                "`oppcli list` or `oppcli search` shows the ids")
        return found[2]

    # ---- Backend: writing -------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the store's flock for the block. Reentrant: a block inside another one (create
        inside exclusive(), say) neither locks again nor re-reads the header."""
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        lock_path = self.path / LOCK
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise os_error(exc, lock_path, "lock") from exc
        try:
            timeout = lock_timeout()
            if not flock_within(fd, timeout):
                raise ServiceError(f"the store {self.path} stayed locked by another process "
                                   f"for {timeout:g}s", "try again when the other oppcli has "
                                   "finished")
            self._lock_depth = 1
            try:
                # Another process may have changed the header while we waited.
                self.meta = self.open(self.path).meta
                self._remove_stale_temps()
                yield
            finally:
                self._lock_depth = 0
        finally:
            os.close(fd)  # releases the lock

    def exclusive(self) -> contextlib.AbstractContextManager[None]:
        """Hold the store's lock for a block: no other process writes the store until it ends,
        so a check and the write it decides (undo's "changed since?", an import's find then
        create) see the same store. Reentrant: create, update and delete inside the block (on
        this object) join the lock rather than wait for it. Blocks up to OPPCLI_LOCK_TIMEOUT
        seconds for another holder (then ServiceError, exit 5)."""
        return self._locked()

    def _remove_stale_temps(self) -> None:
        """Temp files of writers killed mid-write: safe to remove while we hold the lock."""
        for name in os.listdir(self.path):
            if name.startswith((f".{DATA}.", f".{META}.")) and name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    os.unlink(self.path / name)

    def _issuable_id(self, fd: int, size: int, before: os.stat_result) -> tuple[int, bool]:
        """(the id a create issues next, whether the file is in id order).

        Hold the lock. `before`: the data file's stat before this writer touched it. O(1) while
        meta's data_stamp says the file is as oppcli left it (in id order, every id below
        next_id); otherwise the file's ids are read once (dropping lines that are not records:
        create does not judge them) and a file holding an id twice is refused."""
        last = self._last_id(fd, size) if size else 0
        next_id = int(self.meta["next_id"])
        if self._stamped(before) and next_id > last:
            return next_id, True
        with open(fd, "rb", closefd=False) as f:
            top, ascending = self._survey(f, strict=False)
            if not ascending:
                self._index(f, strict=False)  # refuses duplicates
        return max(next_id, top + 1, last + 1), ascending

    def next_id(self) -> int:
        """The id `create` (without keep_id) would issue next: above every id the store holds
        or ever issued. Read under the store's lock, from meta.json's next_id, checked against
        the data file as create checks it (a file changed outside oppcli is read once). Exact
        for as long as the caller holds exclusive(); otherwise another writer may move it on."""
        with self._locked():
            try:
                fd = os.open(self.data_path, os.O_RDONLY)
            except OSError as exc:
                raise os_error(exc, self.data_path, "open") from exc
            try:
                before = os.fstat(fd)
                return self._issuable_id(fd, self._committed_size(fd)[1], before)[0]
            finally:
                os.close(fd)

    def check_writable(self) -> None:
        mirror = self.meta.get("mirror")
        if isinstance(mirror, dict):
            raise UsageError(f"{self.path} is a mirror of Copper at {mirror.get('url')}, "
                             "refreshed by `oppcli sync pull`",
                             "change deals in Copper (--backend copper), then pull again")

    def create(self, payload: Mapping[str, Any], *, keep_id: int | None = None) -> Record:
        """Store a new opportunity under the next id (appending one line; see _issuable_id).

        keep_id: store it under that id instead (`import --keep-ids`), unless a record holds it
        (ConflictError, exit 6, nothing changed). Its line goes where the id order puts it: an
        append above the last id, else a rewrite of the file (as update's). next_id moves past
        it. Which ids may be kept (not ones issued before, say) is the caller's to decide."""
        self.check_writable()
        check_create(payload)
        if keep_id is not None and (type(keep_id) is not int or keep_id < 1):
            raise UsageError(f"cannot keep id {keep_id!r}: ids are whole numbers from 1")
        lookups = self.lookups()
        now = int(time.time())
        record = with_defaults(dict(payload), lookups)
        record.update(date_created=now, date_modified=now)
        # The read-only extras Copper keeps on a new deal: no interactions yet, the stage
        # entered now, no contact and no lead.
        # (An import restoring a record passes its own values, which are kept.)
        for key, value in (("interaction_count", 0), ("date_stage_changed", now),
                           ("date_last_contacted", None), ("date_lead_created", None)):
            record.setdefault(key, value)
        with self._locked():
            try:
                fd = os.open(self.data_path, os.O_RDWR | os.O_APPEND)
            except OSError as exc:
                raise os_error(exc, self.data_path, "open") from exc
            try:
                before = os.fstat(fd)
                size = self._set_torn_tail_aside(fd)
                if size != before.st_size:
                    os.ftruncate(fd, size)
                new_id, in_order = self._issuable_id(fd, size, before)
                if keep_id is not None:
                    in_order = in_order and keep_id >= new_id  # above every id: an append
                    new_id = keep_id
                record["id"] = new_id
                check_refs(record, lookups)
                if not in_order:  # a rewrite puts the line in its place, and the file in order
                    return self._insert(record)
                line = dump_line(record)
                try:
                    written = os.write(fd, line)
                    if written != len(line):
                        raise OSError(errno.ENOSPC, "short write")
                    os.fsync(fd)
                except OSError as exc:
                    os.ftruncate(fd, size)  # take back a partial line
                    raise os_error(exc, self.data_path, "write") from exc
                try:
                    self._note_data(new_id)
                except StoreError:
                    os.ftruncate(fd, size)  # the header could not say so: take the line back
                    raise
            finally:
                os.close(fd)
        return orjson.loads(line)  # type: ignore[no-any-return]

    def _insert(self, record: Record) -> Record:
        """Write a record with a kept id where the id order puts it (hold the lock)."""
        line = dump_line(record)
        with self.open_data() as f:
            self._survey_and_rewrite(f, [], insert=(record["id"], line))
        return orjson.loads(line)  # type: ignore[no-any-return]

    def update(self, opp_id: int, changes: Mapping[str, Any],
               current: Record | None = None) -> Record:
        self.check_writable()
        lookups = self.lookups()
        with self._locked(), self.open_data() as f:
            found = self._find(f, opp_id)
            if found is None:
                raise NotFoundError(f"no opportunity with id {opp_id}",
                                    "`oppcli list` or `oppcli search` shows the ids")
            offset, length, current = found
            self.last_before = current
            changed = self._changed(current, changes, lookups)
            if changed is None:  # nothing changes: nothing is written
                return current
            line = changed[1]
            self._survey_and_rewrite(f, [(offset, length, line)])
        return orjson.loads(line)  # type: ignore[no-any-return]

    @staticmethod
    def _changed(current: Record, changes: Mapping[str, Any],
                 lookups: Lookups) -> tuple[Record, bytes, Mapping[str, Any]] | None:
        """(the record after the change, its line, the fields that change), or None when
        nothing changes."""
        record = apply_changes(current, changes, lookups)
        body = changed_fields(current, record)
        # Only what changes is checked: a reference the change leaves alone (a user since
        # removed from the lookups) is not this change's problem, as on Copper.
        check_refs(refs_to_check(body, record), lookups)
        if not body and canonical(record) == canonical(current):
            return None
        return LocalStore._written(current, record, body)

    @staticmethod
    def _written(current: Record, record: Record,
                 body: Mapping[str, Any]) -> tuple[Record, bytes, Mapping[str, Any]]:
        """A changed record as it is written: modified now (after its last change), its stage
        change dated."""
        record["date_modified"] = max(int(time.time()), int(current.get("date_modified") or 0) + 1)
        if record.get("pipeline_stage_id") != current.get("pipeline_stage_id"):
            record["date_stage_changed"] = record["date_modified"]
        return record, dump_line(record), body

    def delete(self, ids: list[int]) -> list[Record]:
        self.check_writable()
        with self._locked(), self.open_data() as f:
            found = self._find_many(f, list(dict.fromkeys(ids)))
            missing = [i for i in dict.fromkeys(ids) if i not in found]
            if missing:
                raise NotFoundError(
                    f"no opportunit{'ies' if len(missing) > 1 else 'y'} with id "
                    f"{', '.join(map(str, missing))}; nothing was deleted",
                    "`oppcli list` or `oppcli search` shows the ids")
            hits = [found[i] for i in dict.fromkeys(ids)]
            self._survey_and_rewrite(f, [(off, ln, b"") for off, ln, _ in hits])
        return [rec for _, _, rec in hits]

    # ---- Backend: many deals at once ---------------------------------------------------------
    def _find_many(self, f: BinaryIO, ids: list[int]) -> dict[int, tuple[int, int, Record]]:
        """(offset, length, record) of each id's line, by id; absent ids left out. A few ids
        by binary search each; many (or any not found that way: absent, or in a file out of
        order) by one pass that parses only the lines of the ids looked for."""
        found: dict[int, tuple[int, int, Record]] = {}
        rest = list(ids)
        if len(ids) <= BISECT_AT_MOST:
            rest = []
            for opp_id in ids:
                hit = self._bisect(f, opp_id)
                if hit is None:
                    rest.append(opp_id)
                else:
                    found[opp_id] = hit
        if rest:
            self._pass_for(f, set(rest), found)
        return found

    def _pass_for(self, f: BinaryIO, wanted: set[int],
                  found: dict[int, tuple[int, int, Record]], *, in_order: bool | None = None) -> None:
        """One pass over the file, a chunk at a time: the lines of the wanted ids parsed, the
        others not (a file in id order, as oppcli leaves it: each chunk's wanted ids found in
        turn by a byte search from the last one; else a uniform chunk's ids read by one regex
        and the wanted ones picked by a set intersection; else line by line)."""
        if in_order is None:
            in_order = self._stamped(os.fstat(f.fileno()))
        todo = sorted(wanted)
        keys = {b"%d" % i for i in wanted}
        every_line_seen = True  # each chunk uniform, or parsed line by line
        f.seek(0)
        for offset, chunk in self.chunks(f):
            shaped = uniform(chunk)
            if in_order and shaped:  # as oppcli wrote it: every line {"id":N,... in id order
                self._in_order_chunk(chunk, offset, todo, found)
            elif shaped:  # every line starts {"id":N: the ids by one regex
                ids = LINE_IDS.findall(chunk, 0, 32) + NEXT_IDS.findall(chunk)
                present = keys.intersection(ids)
                if not present:
                    continue
                lines = chunk.split(b"\n")
                at = dict(zip(ids, range(len(ids)), strict=False))
                starts = list(itertools.accumulate(map((1).__add__, map(len, lines)), initial=0))
                for key in present:
                    i = at[key]
                    rec = self.parse_in(lines[i], chunk, offset)
                    if rec is not None and rec["id"] in wanted and rec["id"] not in found:
                        found[rec["id"]] = (offset + starts[i], len(lines[i]) + 1, rec)
            else:
                every_line_seen = False
                pos = 0
                for line in chunk.split(b"\n")[:-1]:
                    head = ID_AT_START.match(line)
                    if head is None or int(head[1]) in wanted:
                        rec = self.parse_in(line, chunk, offset) if line else None
                        if rec is not None and rec["id"] in wanted and rec["id"] not in found:
                            found[rec["id"]] = (offset + pos, len(line) + 1, rec)
                    pos += len(line) + 1
        if every_line_seen:
            self.verified(f)
        if in_order and len(found) < len(wanted):  # a line the byte search cannot see
            self._pass_for(f, wanted - found.keys(), found, in_order=False)

    def _in_order_chunk(self, chunk: bytes, offset: int, todo: list[int],
                        found: dict[int, tuple[int, int, Record]]) -> None:
        """The wanted ids within this chunk's id range, found in id order by bytes.find from
        where the last one was (so the chunk is scanned about once, in C)."""
        import bisect

        first = ID_HERE.match(chunk)
        last = ID_HERE.match(chunk, chunk.rfind(b"\n", 0, len(chunk) - 1) + 1)
        if first is None or last is None:
            return
        pos = 0
        for rid in todo[bisect.bisect_left(todo, int(first[1])):
                        bisect.bisect_right(todo, int(last[1]))]:
            head = b'{"id":%d,' % rid
            if pos == 0 and chunk.startswith(head):
                start = 0
            else:
                at = chunk.find(b"\n" + head, pos)
                if at < 0:
                    continue  # absent (or not where the order puts it): the next pass looks
                start = at + 1
            end = chunk.index(b"\n", start) + 1
            rec = self.parse_in(chunk[start:end - 1], chunk, offset)
            if rec is not None and rec["id"] == rid:
                found[rid] = (offset + start, end - start, rec)
            pos = end - 1

    def get_many(self, ids: list[int]) -> dict[int, Record]:
        with self.open_data() as f:
            found = self._find_many(f, ids)
            self.remember(f, {i: (hit[0], hit[1]) for i, hit in found.items()})
            return {i: hit[2] for i, hit in found.items()}

    def _at_hand(self, f: BinaryIO, items: list[base.Change]
                 ) -> tuple[dict[int, tuple[int, int, Record]], bool]:
        """Each item's (offset, length, record), and whether those are the records the caller
        has: read from this very file (get_many or a search in id order moments ago, the file
        unchanged since: its lines are where they were), taken without another look; else
        found in the file."""
        if all(item.current is not None for item in items):
            where = self.located(f, (item.id for item in items))
            if where is not None:
                return {item.id: (*where[item.id], item.current)  # type: ignore[misc]
                        for item in items}, True
        return self._find_many(f, [item.id for item in items]), False

    def update_many(self, items: list[base.Change], done: base.Done,
                    stopping: base.Stopping) -> None:
        """Every change in one pass and one atomic replace (all or none), then every outcome.
        `stopping` is not asked: there is one write, and it is whole or not at all."""
        self.check_writable()
        lookups = self.lookups()
        outcomes: list[base.Outcome] = []
        with self._locked(), self.open_data() as f:
            found, theirs = self._at_hand(f, items)
            edits: list[tuple[int, int, bytes]] = []
            for item in items:
                hit = found.pop(item.id, None)
                if hit is None:
                    outcomes.append(base.Outcome(item.id, item.current, error=NotFoundError(
                        f"no opportunity with id {item.id} (deleted meanwhile?)")))
                    continue
                offset, length, current = hit
                changed: tuple[Record, bytes, Mapping[str, Any]] | None
                try:
                    if theirs and item.planned is not None:  # planned from this very record
                        changed = self._written(current, dict(item.planned[0]), item.planned[1])
                    else:
                        changed = self._changed(current, item.changes, lookups)
                except OppcliError as exc:
                    outcomes.append(base.Outcome(item.id, trimmed(current, current)[0], error=exc))
                    continue
                if changed is None:
                    kept = trimmed(current, current)[0]
                    outcomes.append(base.Outcome(item.id, kept, kept, written=False))
                    continue
                edits.append((offset, length, changed[1]))
                before, after = trimmed(current, changed[0], changed[2])
                outcomes.append(base.Outcome(item.id, before, after))
            if edits:
                self._survey_and_rewrite(f, edits)
        for outcome in outcomes:
            done(outcome)

    def delete_many(self, items: list[base.Change], done: base.Done,
                    stopping: base.Stopping) -> None:
        """Every deal in one pass and one atomic replace; a deal already gone is an outcome
        with a NotFoundError."""
        self.check_writable()
        outcomes: list[base.Outcome] = []
        with self._locked(), self.open_data() as f:
            ids = list(dict.fromkeys(item.id for item in items))
            found = self._at_hand(f, items)[0]
            for opp_id in ids:
                hit = found.get(opp_id)
                outcomes.append(base.Outcome(opp_id, hit[2], None) if hit is not None else
                                base.Outcome(opp_id, error=NotFoundError(
                                    f"no opportunity with id {opp_id} (deleted already?)")))
            if found:
                self._survey_and_rewrite(f, [(off, ln, b"") for off, ln, _ in found.values()])
        for outcome in outcomes:
            done(outcome)

    # ---- a mirror of Copper (sync pull) --------------------------------------------------------
    def merge_mirror(self, records: Mapping[int, Record], *, lookups: Mapping[str, Any],
                     mirror: Mapping[str, Any], drop_missing: bool = False,
                     ) -> tuple[int, int, int]:
        """Write pulled records in (replacing those with the same id, keeping the id order),
        then the lookup tables, then the header with the mirror's state, each atomically.
        With drop_missing, records not pulled are removed (a full pull: they were deleted in
        Copper). Returns (changed, added, removed)."""
        new_lines = {rid: dump_line(r) for rid, r in records.items()}
        with self._locked(), self.open_data() as f:
            changed, added, removed = self._merge(f, new_lines, drop_missing=drop_missing)
            try:
                atomic_write(self.path / LOOKUPS, orjson.dumps(dict(lookups),
                                                                option=orjson.OPT_INDENT_2))
            except OSError as exc:
                raise os_error(exc, self.path / LOOKUPS, "write") from exc
            self._lookups = None
            top = max(new_lines, default=0)
            self.meta["next_id"] = max(int(self.meta["next_id"]), top + 1)
            self.meta["mirror"] = dict(mirror)
            self._note_data(top)
        return changed, added, removed

    def record_confirmed_create(self, record: Record) -> None:
        """Nothing to do: the audit wrapper records a create found made after all."""
