"""The local JSON store: the embedded default backend.

A store is a directory (created 0700, files 0600):

    meta.json           {"format": "oppcli-store", "version": 1, "next_id": N, "date_order": "MDY",
                         "data_stamp": [size, mtime_ns, inode]}
    lookups.json        pipelines (with stages), users, customer_sources, loss_reasons,
                        custom_field_definitions, companies, people: Copper's shapes
    opportunities.jsonl one opportunity per line, exactly the API's JSON, in ascending id order
    .lock               flock()ed around every read-modify-write

Why JSON Lines (chosen with benchmarks/bench_store.py in hand): a search streams the file in
constant memory, one orjson parse per line; a create appends one line, so its cost does not grow
with the store; `jq 'select(.status == "Open")' opportunities.jsonl` works as it is.
An update or delete rewrites the file by copying the untouched byte ranges (no parsing) into a
temp file that is fsynced and renamed over the old one, so a crash leaves the old file or the new
one, never a mix. Creates append one whole line with a single write(); a line without its
newline (a torn tail, e.g. after a power cut) is never read as data and is moved aside to
`opportunities.jsonl.torn-*` by the next writer.

Ids are never reused, whatever order the file is in. meta.json's next_id is above every id the
store holds or ever issued: every create persists it, and update and delete (which read the whole
file anyway) raise it past the highest id they see. `data_stamp` is the data file's (size,
mtime_ns, inode) as oppcli last wrote it: while it matches, the file is as oppcli left it, and
create trusts next_id without reading the file; when it does not (the file was edited,
sorted by hand, or written by an older oppcli that did not advance next_id), the next create
scans the file's ids once, and records the result. A file found out of id order is rewritten in
id order by the next write under the lock; a file holding an id twice is refused (exit 3).
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import operator
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from oppcli import fields as F
from oppcli.backends.base import describe_local
from oppcli.errors import ConflictError, NotFoundError, ServiceError, StoreError, UsageError
from oppcli.locking import flock_within
from oppcli.lookups import Lookups, lookups_problem
from oppcli.models import check_create, check_date_order
from oppcli.query import NONE_ID, Query, order
from oppcli.records import (
    apply_changes,
    canonical,
    changed_fields,
    check_refs,
    refs_to_check,
    with_defaults,
)

FORMAT = "oppcli-store"
VERSION = 1
META = "meta.json"
LOOKUPS = "lookups.json"
DATA = "opportunities.jsonl"
LOCK = ".lock"
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
Record = dict[str, Any]


def dump_line(record: Mapping[str, Any]) -> bytes:
    return orjson.dumps(canonical(record)) + b"\n"


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def replacing(path: Path, *, prefix: str | None = None, mode: int = 0o600,
              buffering: int = 1 << 20) -> Iterator[BinaryIO]:
    """A temporary file beside PATH that replaces it, fsynced, when the block succeeds, and is
    removed when it fails: readers see the old or the new content, never a part. OSError
    propagates for the caller to name."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=prefix or f".{path.name}.", suffix=".tmp",
                               dir=path.parent if str(path.parent) else ".")
    done = False
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb", buffering=buffering) as out:
            fd = -1
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        done = True
    finally:
        if fd >= 0:
            os.close(fd)
        if not done:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    _fsync_dir(path.parent)


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write a whole file so that readers see the old or the new content, never a part."""
    with replacing(path, mode=mode, buffering=0) as out:
        _write_all(out.fileno(), data)


def _write_all(fd: int, data: bytes) -> None:
    """Write all of data: a short write is continued; one that writes nothing is a full disk
    (OSError ENOSPC, for the caller to name)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if not written:
            raise OSError(errno.ENOSPC, "short write")
        view = view[written:]


def _copy_range(src: int, dst: int, offset: int, count: int) -> None:
    while count > 0:
        try:
            sent = os.sendfile(dst, src, offset, min(count, 1 << 30))
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise
            sent = len(data := os.pread(src, min(count, 1 << 20), offset))
            if sent:
                _write_all(dst, data)
        if sent == 0:
            raise OSError(errno.EIO, "store file shrank while being copied")
        offset += sent
        count -= sent


def _stamp(st: os.stat_result) -> list[int]:
    """What tells whether the data file is as oppcli left it (meta.json's data_stamp)."""
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _os_error(exc: OSError, path: Path, doing: str) -> StoreError:
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StoreError(f"cannot {doing} {path}: {reason}", "free some disk space; the store is unchanged")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StoreError(f"cannot {doing} {path}: {reason}", "check the file's owner and permissions")
    return StoreError(f"cannot {doing} {path}: {reason}")


class LocalStore:
    """The Backend for a store directory."""

    name = "local"
    # The order export streams in: the file's own, so memory stays constant at any size.
    stream_order = ("id", False)
    last_before: Record | None = None  # the record as it was before the last update

    def __init__(self, path: Path, meta: Mapping[str, Any]) -> None:
        self.path = path
        self.meta = dict(meta)
        self.data_path = path / DATA
        self._lookups: Lookups | None = None
        self._warned_torn = False
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
        meta = cls._read_json(meta_path)
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

    @staticmethod
    def _read_json(path: Path) -> Any:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise _os_error(exc, path, "read") from exc
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise StoreError(f"{path} is corrupt ({exc})",
                             "restore it from a backup; oppcli leaves it untouched") from exc

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
                meta["data_stamp"] = _stamp(os.stat(path / DATA))
            # meta.json last: a store counts as existing only once it is complete.
            atomic_write(path / META, orjson.dumps(meta, option=orjson.OPT_INDENT_2))
        except OSError as exc:
            raise _os_error(exc, path, "create the store in") from exc
        return cls(path, meta)

    # ---- Backend: reading -------------------------------------------------------------------
    def describe(self) -> str:
        """The store, by its absolute path: "./deals" and "/home/me/deals" are one store (the
        audit log and export state files compare this)."""
        return describe_local(self.path)

    def date_order(self) -> str:
        return str(self.meta.get("date_order") or "MDY")

    def timezone(self) -> Any:
        """The zone the store's Date custom fields are midnights in: meta.json's "timezone"
        (`init --timezone`; a mirror takes copper.timezone), UTC when absent."""
        from oppcli.models import parse_timezone

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
            data = self._read_json(self.path / LOOKUPS)
            problem = lookups_problem(data)
            if problem:
                raise StoreError(f"{self.path / LOOKUPS} is corrupt ({problem})",
                                 "restore it from a backup; oppcli leaves it untouched")
            self._lookups = Lookups(data, self.timezone())
        return self._lookups

    def _open_data(self) -> BinaryIO:
        try:
            return open(self.data_path, "rb")
        except FileNotFoundError:
            raise StoreError(f"{self.data_path} is missing",
                             "restore it from a backup, or run `oppcli init` on a new path") from None
        except OSError as exc:
            raise _os_error(exc, self.data_path, "read") from exc

    def _corrupt(self, lineno: int, why: str) -> StoreError:
        """lineno < 0: the last line (counting the lines would mean reading the whole file)."""
        where = "the last line" if lineno < 0 else f"line {lineno}"
        return StoreError(f"{self.data_path} {where} is corrupt ({why})",
                          "restore the store from a backup; oppcli leaves it untouched")

    def _torn(self, size: int) -> None:
        if not self._warned_torn:
            self._warned_torn = True
            print(f"oppcli: warning: ignoring an incomplete last line ({size} bytes) in "
                  f"{self.data_path}, left by an interrupted write; the next change moves it aside",
                  file=sys.stderr)

    def _chunks(self, f: BinaryIO, warn_torn: bool = True) -> Iterator[tuple[int, bytes]]:
        """(byte offset, data) pieces of the file, each ending at a newline.

        A torn tail (a last line without its newline) is never yielded.
        """
        offset = 0
        rest = b""
        while True:
            block = f.read(CHUNK)
            if not block:
                if rest and warn_torn:
                    self._torn(len(rest))
                return
            data = rest + block if rest else block
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                rest = data
                continue
            piece = data[:cut] if cut < len(data) else data
            rest = data[cut:]
            yield offset, piece
            offset += cut

    def _line_number(self, offset: int) -> int:
        """The 1-based number of the line starting at a byte offset (for error messages)."""
        count = 0
        with self._open_data() as f:
            while offset > 0:
                block = f.read(min(CHUNK, offset))
                if not block:
                    break
                count += block.count(b"\n")
                offset -= len(block)
        return count + 1

    def _parse_in(self, line: bytes, chunk: bytes, offset: int) -> Record | None:
        """Parse a line found in a chunk read at `offset`; None for a blank line."""
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            if not line.strip():
                return None
            where = self._line_number(offset + max(0, chunk.find(line)))
            raise self._corrupt(where, str(exc)) from None
        if not isinstance(rec, dict) or not isinstance(rec.get("id"), int):
            where = self._line_number(offset + max(0, chunk.find(line)))
            raise self._corrupt(where, "not an opportunity object with an integer id")
        return rec

    def scan(self) -> Iterator[Record]:
        """Every record in file (id) order."""
        with self._open_data() as f:
            for offset, chunk in self._chunks(f):
                for line in chunk.split(b"\n"):
                    if line:
                        rec = self._parse_in(line, chunk, offset)
                        if rec is not None:
                            yield rec

    def search(self, query: Query) -> Iterator[Record]:
        return self._search(query, raw=False)  # type: ignore[return-value]

    def search_raw(self, query: Query) -> Iterator[bytes]:
        """Like search, but each record as its stored JSON line (no newline), unparsed:
        the fast path for JSON output with no --fields."""
        return self._search(query, raw=True)  # type: ignore[return-value]

    def _search(self, query: Query, *, raw: bool) -> Iterator[Record | bytes]:
        limit = query.limit
        if limit is not None and limit <= 0:
            return
        match = query.compile(self.date_order())
        narrow = Narrower(query)
        parse = self._parse_in
        in_file_order = query.sort_by == "id" and not query.descending
        # Sorted output keeps per match its sort value, its id and where its line is: the line
        # itself (an index into `kept`) while the kept lines stay under KEEP_BYTES, else its
        # place in the file, so memory is bounded at any store size. See _SortedHits.
        hits = _SortedHits(query.sort_key_as_stored(), query.sort_value(self.date_order()))
        kept: list[bytes] = []
        kept_bytes = 0
        count = 0
        with self._open_data() as f:
            for offset, chunk in self._chunks(f):
                narrowed = bool(narrow) and _uniform(chunk)
                if narrowed:
                    lines = narrow.lines(chunk)
                else:  # nothing to narrow by, or a line that is not a record: parse them all
                    lines = chunk.split(b"\n")
                pos = 0  # where the line starts in the chunk (narrowed: where to look from)
                for line in lines:
                    start = pos
                    if not narrowed:
                        pos += len(line) + 1
                    if not line:
                        continue
                    rec = parse(line, chunk, offset)
                    if rec is None or not match(rec):
                        continue
                    if in_file_order:
                        yield line if raw else rec
                        count += 1
                        if limit is not None and count >= limit:
                            return
                        continue
                    if kept_bytes < KEEP_BYTES:
                        kept_bytes += len(line)
                        where: int | tuple[int, int] = _KEPT | len(kept)
                        kept.append(line)
                    else:
                        if narrowed:
                            start = pos = chunk.index(line, pos)
                        where = _packed(offset + start, len(line))
                    hits.add(rec, where)
            if in_file_order:
                return
            fd = f.fileno()
            for where in hits.ordered(query.descending, limit):
                at = 0
                if type(where) is int and where & _KEPT:
                    line = kept[where ^ _KEPT]
                else:  # past KEEP_BYTES: read back (pread, not a memory map, whose pages
                    at, length = _unpacked(where)  # would count in the process's memory)
                    line = os.pread(fd, length, at)
                if raw:
                    yield line
                    continue
                rec = parse(line, line, at)
                if rec is not None:
                    yield rec

    def get(self, opp_id: int) -> Record:
        with self._open_data() as f:
            found = self._find(f, opp_id)
        if found is None:
            raise NotFoundError(f"no opportunity with id {opp_id}",
                                "`oppcli list` or `oppcli search` shows the ids")
        return found[2]

    def _find(self, f: BinaryIO, opp_id: int) -> tuple[int, int, Record] | None:
        """(offset, length, record) of the line holding opp_id, or None."""
        found = self._bisect(f, opp_id)
        if found is None:  # not where the id order puts it: look at every line
            found = self._locate(_read_all(f), opp_id)
        return found

    def _bisect(self, f: BinaryIO, opp_id: int) -> tuple[int, int, Record] | None:
        """(offset, length, record) of opp_id's line by binary search over the file's id
        order, reading a few lines through a memory map (so finding a record costs the same
        at a million records as at a hundred); None when it is not found that way (absent, or
        a hand-edited file out of order or with a line not shaped like a record), for the
        caller to look at every line.
        """
        import mmap

        if os.fstat(f.fileno()).st_size == 0:
            return None
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            lo, hi = 0, m.rfind(b"\n") + 1  # a torn tail is not committed
            while lo < hi:
                start = m.rfind(b"\n", 0, (lo + hi) // 2) + 1  # the line holding the middle
                end = m.find(b"\n", start, hi) + 1
                head = _ID_AT_START.match(m[start:start + 32])
                if head is None:
                    return None
                line_id = int(head[1])
                if line_id == opp_id:
                    try:
                        rec = orjson.loads(m[start:end])
                    except orjson.JSONDecodeError:
                        return None  # the full look reports the line and its number
                    ok = isinstance(rec, dict) and rec.get("id") == opp_id
                    return (start, end - start, rec) if ok else None
                if line_id < opp_id:
                    lo = end
                else:
                    hi = start
        return None

    def _locate(self, data: bytes, opp_id: int) -> tuple[int, int, Record] | None:
        """(offset, length, record) of the line holding opp_id, or None.

        Fast path: the store writes every line as `{"id":N,...`, so a byte search finds it
        without parsing; the hit is confirmed by parsing. A hand-edited line that does not
        start that way is still found by the slow path, a full parse.
        """
        committed = data[:data.rfind(b"\n") + 1]  # a torn tail is not committed
        if _uniform(committed):
            needle = b'{"id":%d,' % opp_id
            pos = committed.find(needle)
            while pos != -1:
                if pos == 0 or committed[pos - 1:pos] == b"\n":
                    end = committed.index(b"\n", pos) + 1
                    rec = self._parse_in(committed[pos:end], committed, 0)
                    if rec is not None and rec["id"] == opp_id:
                        return pos, end - pos, rec
                pos = committed.find(needle, pos + 1)
        # Slow path: parse every line, so a line that is not a record is reported even when
        # the id is found before it (update and delete must not copy it into a new file).
        found = None
        offset = 0
        for line in committed.split(b"\n")[:-1]:
            rec = self._parse_in(line, committed, 0)
            if rec is not None and rec["id"] == opp_id and found is None:
                found = (offset, len(line) + 1, rec)
            offset += len(line) + 1
        return found

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
            raise _os_error(exc, lock_path, "lock") from exc
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

    @staticmethod
    def _committed_size(fd: int) -> tuple[int, int]:
        """(size, where a torn last line (no newline) starts: the size when there is none)."""
        size = os.fstat(fd).st_size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return size, size
        pos = size
        while pos > 0:
            read_from = max(0, pos - (1 << 16))
            nl = os.pread(fd, pos - read_from, read_from).rfind(b"\n")
            if nl != -1:
                return size, read_from + nl + 1
            pos = read_from
        return size, 0

    def _set_torn_tail_aside(self, fd: int) -> int:
        """Copy a torn last line (no newline) aside; returns the size of the committed data."""
        size, start = self._committed_size(fd)
        if start == size:
            return size
        torn = os.pread(fd, size - start, start)
        aside = self.path / f"{DATA}.torn-{int(time.time())}-{os.getpid()}"
        atomic_write(aside, torn)
        print(f"oppcli: warning: moved an incomplete last line ({len(torn)} bytes) left by an "
              f"interrupted write to {aside}", file=sys.stderr)
        return start

    def _last_id(self, fd: int, size: int) -> int:
        """The id on the last complete line: the highest when the lines are in id order."""
        read_from = max(0, size - (1 << 16))
        block = os.pread(fd, size - read_from, read_from)
        pieces = block[:block.rfind(b"\n") + 1].split(b"\n")
        # Readers skip blank lines (also all-space ones): so does finding the last id.
        at = next((i for i in range(len(pieces) - 1, -1, -1) if pieces[i].strip()), None)
        if at is None:
            if read_from == 0:
                return 0
            return max((r["id"] for r in self.scan()), default=0)
        if at == 0 and read_from > 0:  # one huge line (maybe cut at the start): parse the file
            return max((r["id"] for r in self.scan()), default=0)
        last = pieces[at]
        try:
            return int(orjson.loads(last)["id"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise self._corrupt(-1, "not an opportunity") from None

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

    def in_id_order(self) -> bool:
        """Whether the data file is known to be in id order, each id once (meta's data_stamp
        matches it: oppcli wrote it last), without reading it."""
        try:
            return self._stamped(os.stat(self.data_path))
        except OSError:
            return False

    def _stamped(self, st: os.stat_result) -> bool:
        """The data file is as oppcli left it (meta's data_stamp): in id order, each id once,
        all below next_id."""
        return bool(self.meta.get("data_stamp") == _stamp(st))

    def next_id(self) -> int:
        """The id `create` (without keep_id) would issue next: above every id the store holds
        or ever issued. Read under the store's lock, from meta.json's next_id, checked against
        the data file as create checks it (a file changed outside oppcli is read once). Exact
        for as long as the caller holds exclusive(); otherwise another writer may move it on."""
        with self._locked():
            try:
                fd = os.open(self.data_path, os.O_RDONLY)
            except OSError as exc:
                raise _os_error(exc, self.data_path, "open") from exc
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

    def _note_data(self, top: int) -> None:
        """After a write of the data file: next_id past `top` and every id before, and the
        file's stamp, in meta.json (atomically). Hold the lock."""
        self.meta["next_id"] = max(int(self.meta["next_id"]), top + 1)
        try:
            self.meta["data_stamp"] = _stamp(os.stat(self.data_path))
        except OSError as exc:
            raise _os_error(exc, self.data_path, "read") from exc
        self._write_meta()

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
                raise _os_error(exc, self.data_path, "open") from exc
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
                    raise _os_error(exc, self.data_path, "write") from exc
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
        with self._open_data() as f:
            self._survey_and_rewrite(f, [], insert=(record["id"], line))
        return orjson.loads(line)  # type: ignore[no-any-return]

    def update(self, opp_id: int, changes: Mapping[str, Any],
               current: Record | None = None) -> Record:
        self.check_writable()
        lookups = self.lookups()
        with self._locked(), self._open_data() as f:
            found = self._find(f, opp_id)
            if found is None:
                raise NotFoundError(f"no opportunity with id {opp_id}",
                                    "`oppcli list` or `oppcli search` shows the ids")
            offset, length, current = found
            self.last_before = current
            record = apply_changes(current, changes, lookups)
            # Only what changes is checked: a reference the change leaves alone (a user since
            # removed from the lookups) is not this change's problem, as on Copper.
            check_refs(refs_to_check(changed_fields(current, record), record), lookups)
            if canonical(record) == canonical(current):  # nothing changes: nothing is written
                return current
            record["date_modified"] = max(int(time.time()), int(current.get("date_modified") or 0) + 1)
            if record.get("pipeline_stage_id") != current.get("pipeline_stage_id"):
                record["date_stage_changed"] = record["date_modified"]
            line = dump_line(record)
            self._survey_and_rewrite(f, [(offset, length, line)])
        return orjson.loads(line)  # type: ignore[no-any-return]

    def delete(self, ids: list[int]) -> list[Record]:
        self.check_writable()
        with self._locked(), self._open_data() as f:
            hits: list[tuple[int, int, Record]] = []
            missing: list[int] = []
            for opp_id in dict.fromkeys(ids):
                found = self._find(f, opp_id)
                if found is None:
                    missing.append(opp_id)
                else:
                    hits.append(found)
            if missing:
                raise NotFoundError(
                    f"no opportunit{'ies' if len(missing) > 1 else 'y'} with id "
                    f"{', '.join(map(str, missing))}; nothing was deleted",
                    "`oppcli list` or `oppcli search` shows the ids")
            self._survey_and_rewrite(f, [(off, ln, b"") for off, ln, _ in hits])
        return [rec for _, _, rec in hits]

    def _survey_and_rewrite(self, f: BinaryIO, edits: list[tuple[int, int, bytes]],
                            insert: tuple[int, bytes] | None = None) -> None:
        """Check every line (StoreError, nothing changed, for a line that is not a record or an
        id held twice), then write the file anew with the edits (offset, length, new bytes)
        and the inserted (id, line), in id order (a file found out of order is put back in
        order), and record next_id and the stamp in the header. Hold the lock.

        A file as oppcli left it (stamped) is known to be in order, each id once, below next_id:
        its lines are only checked for their shape (no ids read), as before ids were checked."""
        if self._stamped(os.fstat(f.fileno())):
            self._check_lines(f)
            top, ascending = int(self.meta["next_id"]) - 1, True
        else:
            top, ascending = self._survey(f, strict=True)
        if insert is not None:
            top = max(top, insert[0])
            if self._find(f, insert[0]) is not None:
                raise ConflictError(f"cannot keep id {insert[0]}: opportunity {insert[0]} "
                                    "exists in the store",
                                    "ids are never reused; import it under a new id")
        # Never hand out a deleted id again, even the highest one: the header says so before
        # the data file loses it.
        if top + 1 > int(self.meta["next_id"]):
            self.meta["next_id"] = top + 1
            self._write_meta()
        if ascending:
            at = None if insert is None else self._insert_offset(f, insert[0])
            if insert is None or at is not None:
                if insert is not None and at is not None:
                    edits = [*edits, (at, 0, insert[1])]
                self._rewrite(f, edits)
                self._note_data(top)
                return
        index = self._index(f, strict=True)  # refuses an id held twice
        if not ascending:
            first = next(i for i in range(1, len(index)) if index[i][0] <= index[i - 1][0])
            print(f"oppcli: warning: {self.data_path} was not in id order (line {index[first][1]} "
                  f"holds id {index[first][0]}, after id {index[first - 1][0]}: sorted by hand?); "
                  "it is written back in id order", file=sys.stderr)
        self._rewrite_in_order(f, sorted(index), edits, insert)
        self._note_data(top)

    # ---- a mirror of Copper (sync pull) --------------------------------------------------------
    def merge_mirror(self, records: Mapping[int, Record], *, lookups: Mapping[str, Any],
                     mirror: Mapping[str, Any], drop_missing: bool = False,
                     ) -> tuple[int, int, int]:
        """Write pulled records in (replacing those with the same id, keeping the id order),
        then the lookup tables, then the header with the mirror's state, each atomically.
        With drop_missing, records not pulled are removed (a full pull: they were deleted in
        Copper). Returns (changed, added, removed)."""
        new_lines = {rid: dump_line(r) for rid, r in records.items()}
        changed = added = removed = 0
        with self._locked(), self._open_data() as f:
            data = _read_all(f)
            lines = data.splitlines(keepends=True)
            if not self._survey(f, strict=False)[1]:  # sorted by hand: merge in id order
                lines = [data[o:o + n] for _, _, o, n in sorted(self._index(f, strict=True))]
            with self._new_data_file() as out:
                pending = sorted(new_lines)
                i = 0
                for line in lines:
                    if not line.endswith(b"\n"):
                        break  # a torn tail is left out
                    m = _ID_AT_START.match(line)
                    try:
                        rid = int(m[1]) if m else int(orjson.loads(line)["id"])
                    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                        raise self._corrupt(-1, "a line without an id") from None
                    while i < len(pending) and pending[i] < rid:
                        out.write(new_lines[pending[i]])
                        added += 1
                        i += 1
                    if i < len(pending) and pending[i] == rid:
                        if new_lines[rid] != line:
                            changed += 1
                        out.write(new_lines[rid])
                        i += 1
                    elif drop_missing:
                        removed += 1
                    else:
                        out.write(line)
                for rid in pending[i:]:
                    out.write(new_lines[rid])
                    added += 1
            try:
                atomic_write(self.path / LOOKUPS, orjson.dumps(dict(lookups),
                                                                option=orjson.OPT_INDENT_2))
            except OSError as exc:
                raise _os_error(exc, self.path / LOOKUPS, "write") from exc
            self._lookups = None
            top = max(new_lines, default=0)
            self.meta["next_id"] = max(int(self.meta["next_id"]), top + 1)
            self.meta["mirror"] = dict(mirror)
            self._note_data(top)
        return changed, added, removed

    def _write_meta(self) -> None:
        try:
            atomic_write(self.path / META, orjson.dumps(self.meta, option=orjson.OPT_INDENT_2))
        except OSError as exc:
            raise _os_error(exc, self.path / META, "write") from exc

    def _check_lines(self, f: BinaryIO) -> None:
        """Refuse (StoreError, nothing changed) a file with a line that is not a record.

        _rewrite copies the lines it does not change without parsing them: this makes sure
        each is at least shaped like a record, a chunk at a time (constant memory). A chunk
        that is not, say one written with spaces, is parsed line by line, which names the
        line that is broken, if any."""
        f.seek(0)
        for offset, chunk in self._chunks(f, warn_torn=False):
            if not _uniform(chunk):
                for line in chunk.split(b"\n"):
                    if line:
                        self._parse_in(line, chunk, offset)

    def _line_id(self, line: bytes, chunk: bytes, offset: int, strict: bool) -> int | None:
        """A line's id; None for a blank line, and (not strict) for a line that is not a
        record. Strict: StoreError naming a line that is not a record."""
        if strict:
            rec = self._parse_in(line, chunk, offset)
            return None if rec is None else int(rec["id"])
        head = _ID_AT_START.match(line)
        if head is not None:
            return int(head[1])
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None
        return rec["id"] if isinstance(rec, dict) and type(rec.get("id")) is int else None

    def _survey(self, f: BinaryIO, *, strict: bool) -> tuple[int, bool]:
        """(the highest id, whether the ids ascend strictly through the file): one pass in
        constant memory, a chunk at a time.

        Strict (update and delete, which copy lines they do not parse): refuse (StoreError,
        nothing changed) a file with a line that is not a record. A chunk of lines shaped like
        records (see _uniform) has its ids read by one regex, unparsed; a chunk that is not,
        say one written with spaces, is parsed line by line, which names the broken line."""
        f.seek(0)
        top = 0
        prev: int | None = None
        ascending = True
        for offset, chunk in self._chunks(f, warn_torn=False):
            if _uniform(chunk):  # each line starts `{"id":N`: the first, then after each newline
                ids = list(map(int, _LINE_IDS.findall(chunk, 0, 32) + _NEXT_IDS.findall(chunk)))
            else:
                ids = [i for line in chunk.split(b"\n") if line
                       and (i := self._line_id(line, chunk, offset, strict)) is not None]
            if not ids:
                continue
            if ascending and ((prev is not None and ids[0] <= prev)
                              or not all(map(operator.lt, ids, itertools.islice(ids, 1, None)))):
                ascending = False
            top = max(top, max(ids))
            prev = ids[-1]
        return top, ascending

    def _index(self, f: BinaryIO, *, strict: bool) -> list[tuple[int, int, int, int]]:
        """(id, line number, offset, length) of every record line, in file order: for a file
        out of id order (memory grows with the file: a repair, not the common path). Refuses
        (StoreError) a file holding an id more than once, naming the id and its lines."""
        out: list[tuple[int, int, int, int]] = []
        lineno = 0
        f.seek(0)
        for offset, chunk in self._chunks(f, warn_torn=False):
            pos = 0
            for line in chunk.split(b"\n")[:-1]:
                lineno += 1
                if line:
                    rid = self._line_id(line, chunk, offset, strict)
                    if rid is not None:
                        out.append((rid, lineno, offset + pos, len(line) + 1))
                pos += len(line) + 1
        by_id = sorted(out)
        twice: dict[int, list[int]] = {}
        for a, b in zip(by_id, by_id[1:], strict=False):
            if a[0] == b[0]:
                lines = twice.setdefault(a[0], [a[1]])
                lines.append(b[1])
        if twice:
            named = "; ".join(f"id {rid} on lines {', '.join(map(str, lines))}"
                              for rid, lines in list(twice.items())[:5])
            more = f" (and {len(twice) - 5} more ids)" if len(twice) > 5 else ""
            raise StoreError(f"{self.data_path} holds an id more than once: {named}{more}",
                             "edit the file by hand to keep one line per id (give the others "
                             "new ids above meta.json's next_id); oppcli leaves it untouched")
        return out

    def _insert_offset(self, f: BinaryIO, new_id: int) -> int | None:
        """Where a line for new_id goes in a file in id order (the start of the first line with
        a higher id), by binary search; None when a line is not shaped like a record."""
        import mmap

        if os.fstat(f.fileno()).st_size == 0:
            return 0
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            lo, hi = 0, m.rfind(b"\n") + 1  # a torn tail is not committed
            while lo < hi:
                start = m.rfind(b"\n", 0, (lo + hi) // 2) + 1
                end = m.find(b"\n", start, hi) + 1
                head = _ID_AT_START.match(m[start:start + 32])
                if head is None:
                    return None
                if int(head[1]) < new_id:
                    lo = end
                else:
                    hi = start
            return lo

    def _rewrite(self, f: BinaryIO, edits: list[tuple[int, int, bytes]]) -> None:
        """Replace byte ranges (offset, length) with new bytes, atomically, by copy and rename."""
        src = f.fileno()
        committed = self._set_torn_tail_aside(src)  # a torn tail is left out
        with self._new_data_file(buffering=0) as out:
            dst = out.fileno()
            pos = 0
            for offset, length, new in sorted(edits):
                _copy_range(src, dst, pos, offset - pos)
                if new:
                    _write_all(dst, new)
                pos = offset + length
            _copy_range(src, dst, pos, committed - pos)

    def _rewrite_in_order(self, f: BinaryIO, index: list[tuple[int, int, int, int]],
                          edits: list[tuple[int, int, bytes]],
                          insert: tuple[int, bytes] | None) -> None:
        """Write the lines of `index` (sorted by id) in that order, atomically, with the edits
        (offset -> new bytes) applied and the inserted (id, line) in its place. Runs of lines
        that follow each other in the file are copied in one piece."""
        src = f.fileno()
        self._set_torn_tail_aside(src)
        replaced = {offset: new for offset, _, new in edits}
        with self._new_data_file(buffering=0) as out:
            dst = out.fileno()
            run_from = run_to = 0

            def flush() -> None:
                _copy_range(src, dst, run_from, run_to - run_from)

            for rid, _, offset, length in index:
                if insert is not None and insert[0] < rid:
                    flush()
                    run_from = run_to = 0
                    _write_all(dst, insert[1])
                    insert = None
                if offset in replaced:
                    flush()
                    run_from = run_to = 0
                    if replaced[offset]:
                        _write_all(dst, replaced[offset])
                elif offset == run_to and run_to > run_from:
                    run_to += length
                else:
                    flush()
                    run_from, run_to = offset, offset + length
            flush()
            if insert is not None:
                _write_all(dst, insert[1])

    @contextlib.contextmanager
    def _new_data_file(self, buffering: int = 1 << 20) -> Iterator[BinaryIO]:
        """The data file's replacement (see replacing()); hold the lock."""
        try:
            with replacing(self.data_path, prefix=f".{DATA}.", buffering=buffering) as out:
                yield out
        except OSError as exc:
            raise _os_error(exc, self.data_path, "rewrite") from exc


_ID_AT_START = re.compile(rb'^\{"id":(\d+)[,}]')
# The ids of a chunk that is _uniform: the first line's, then the ids after a newline (a
# pattern led by literal bytes is found by a fast scan; `(?m)^` would be tried at every byte).
_LINE_IDS = re.compile(rb'^\{"id":(-?\d+)')
_NEXT_IDS = re.compile(rb'\n\{"id":(-?\d+)')
KEEP_BYTES = 32 << 20
CHUNK = 4 << 20


class Narrower:
    """Finds the lines of a chunk that may match a query, by bytes, before any parsing.

    Safe because of facts of JSON, checked per chunk rather than assumed:
    - ids, status, priority: a line whose top-level `"status":` is followed directly by its
      value holds the bytes `"status":"Open"`; a quote inside a string value is escaped, so
      these bytes cannot come from text. A line without the key is null there and cannot match
      (criteria that ask for null, Copper's -2, are not narrowed). In a chunk where the key is
      followed by white space anywhere (JSON written with spaces), that key is not used.
      Tokens may match more than they should (`"id":15` is in `"id":150`): such lines are
      parsed and judged by the real predicate, so only speed depends on the tokens' precision.
    - tags, name: printable-ASCII text that an all-ASCII line matches appears in it,
      lower-cased; lines holding other bytes are kept.
    The one spelling this misses is a value hand-written with \\u escapes for plain ASCII
    letters ("Op\\u0065n"), which no JSON writer we know produces.
    The key whose tokens are rarest in the first chunk is searched with bytes.find, so only the
    lines holding it are touched at all; the other keys filter those lines.
    """

    def __init__(self, query: Query) -> None:
        id_criteria = (("id", query.ids), ("pipeline_stage_id", query.stage_ids),
                       ("primary_contact_id", query.primary_contact_ids),
                       ("company_id", query.company_ids), ("assignee_id", query.assignee_ids),
                       ("customer_source_id", query.source_ids),
                       ("loss_reason_id", query.loss_reason_ids),
                       ("pipeline_id", query.pipeline_ids))
        self.keyed: list[tuple[bytes, tuple[bytes, ...]]] = []
        for key, ids in id_criteria:
            if ids and NONE_ID not in ids:
                head = b'"%s":' % key.encode()
                self.keyed.append((head, tuple(head + str(i).encode() for i in ids)))
        for key, wanted in (("status", query.statuses), ("priority", query.priorities)):
            if wanted:
                head = b'"%s":' % key.encode()
                self.keyed.append((head, tuple(head + b'"' + w.encode() + b'"' for w in wanted)))
        self.texts: list[tuple[bytes, ...]] = []
        if query.tags and all(_plain(t) for t in query.tags):
            self.texts.append(tuple(t.lower().encode() for t in query.tags))
        for text in (query.name, query.name_contains):
            if text and _plain(text):
                self.texts.append((text.lower().encode(),))
        self._ordered = False

    def __bool__(self) -> bool:
        return bool(self.keyed or self.texts)

    def lines(self, chunk: bytes) -> list[bytes]:
        if not self._ordered and self.keyed:  # rarest first, judged on the first chunk
            self.keyed.sort(key=lambda ht: sum(chunk.count(t) for t in ht[1]))
            self._ordered = True
        # The primary key is checked on the whole chunk (long needles: quick scans); the
        # others only on the lines it leaves.
        lines: list[bytes] | None = None
        rest = self.keyed
        for i, (head, tokens) in enumerate(self.keyed):
            if not (head + b" " in chunk or head + b"\t" in chunk or head + b"\r" in chunk):
                lines = _lines_holding(chunk, tokens)
                rest = self.keyed[:i] + self.keyed[i + 1:]
                break
        if lines is None:
            lines = chunk.split(b"\n")
        for head, tokens in rest:
            lines = _holding_any(lines, head, tokens)
        for needles in self.texts:
            lines = [x for x in lines if not x.isascii() or any(n in x.lower() for n in needles)]
        return lines


def _lines_holding(chunk: bytes, tokens: tuple[bytes, ...]) -> list[bytes]:
    """The lines of a chunk (which ends with a newline) holding any of the tokens, in order."""
    spans: list[tuple[int, int]] = []
    find, rfind = chunk.find, chunk.rfind
    for tok in tokens:
        pos = find(tok)
        while pos != -1:
            start = rfind(b"\n", 0, pos) + 1
            end = find(b"\n", pos)
            spans.append((start, end))
            pos = find(tok, end)
    if len(tokens) > 1:
        spans = sorted(set(spans))
    return [chunk[a:b] for a, b in spans]


def _holding_any(lines: list[bytes], head: bytes, tokens: tuple[bytes, ...]) -> list[bytes]:
    """The lines holding a token, or holding the key followed by white space (judged later)."""
    sp, tab, cr = head + b" ", head + b"\t", head + b"\r"
    if len(tokens) == 1:
        t1 = tokens[0]
        return [x for x in lines if t1 in x or sp in x or tab in x or cr in x]
    return [x for x in lines if any(t in x for t in tokens) or sp in x or tab in x or cr in x]


def _plain(text: str) -> bool:
    """Text that JSON writes as is: printable ASCII without quotes or backslashes."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


# A newline that ends a line not closed by `}`, or starts a line that does not begin with
# `{"id":` and a number: one regex pass (its literal `\n` prefix makes the scan fast).
_NOT_A_RECORD_LINE = re.compile(rb'\n(?:(?<=[^}]\n)|(?!\{"id":[-0-9]|\Z))')


def _uniform(chunk: bytes) -> bool:
    """Every line of the chunk is shaped like a stored record: it starts with `{"id":` and a
    number and ends with `}`. One regex pass, no parsing.

    Narrowing skips lines without parsing them, and update/delete copy lines they do not touch;
    this makes sure such a line is at least shaped like a record, so that a garbage or truncated
    line is parsed, and reported, rather than skipped or copied. (A line that is shaped right but
    broken inside is still only caught where it is parsed.)
    """
    if not chunk:
        return True
    if not chunk.startswith(b'{"id":') or chunk[6:7] not in b"-0123456789":
        return False
    return _NOT_A_RECORD_LINE.search(chunk) is None


# Where a line is, for a sorted search past KEEP_BYTES: one int (offset, then 24 bits of
# length) instead of a pair, ~90 bytes less per match (a million matches: ~90 MB less).
_LENGTH_BITS = 24


def _packed(offset: int, length: int) -> int | tuple[int, int]:
    packed = (offset << _LENGTH_BITS) | length
    return packed if length < (1 << _LENGTH_BITS) and packed < _KEPT else (offset, length)


def _unpacked(where: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(where, tuple):
        return where
    return where >> _LENGTH_BITS, where & ((1 << _LENGTH_BITS) - 1)


# A line kept in memory by a sorted search: where = _KEPT | its index in the kept lines.
_KEPT = 1 << 63
_ID_BITS = 40
_WHERE_BITS = 64
_VALUE_SHIFT = _ID_BITS + _WHERE_BITS
_ID_MASK = (1 << _ID_BITS) - 1
_WHERE_MASK = (1 << _WHERE_BITS) - 1


class _SortedHits:
    """The matches of a sorted search: (sort value, id, where) each, put in `order()`'s order.

    When the query sorts by a stored integer (ids, timestamps, amounts: the default
    date_modified among them) each match is one int, value << 104 | id << 64 | where. Python
    sorts a list of ints about 3x faster than tuples (a million: ~0.5 s against ~1.8 s) and
    holds it in less memory (`list` on a million records: 141 MB peak, was 255 MB). The first
    match that does not fit (a negative or non-integer value in a hand-edited store, an id of
    2**40 or more, a line of 16 MB or more) turns the ints kept so far into triples, and the
    search goes on with those.
    """

    def __init__(self, as_stored: str | None, value_of: Callable[[Record], Any]) -> None:
        self.as_stored = as_stored
        self.value_of = value_of
        self.keys: list[int] = []  # as_stored: the matches with a value
        self.missing: list[int] = []  # as_stored: id << 64 | where, the matches without one
        self.triples: list[tuple[Any, int, Any]] = []

    def add(self, rec: Record, where: int | tuple[int, int]) -> None:
        name = self.as_stored
        if name is not None:
            value = rec.get(name)
            opp_id = rec["id"]
            if type(where) is int and 0 <= opp_id <= _ID_MASK:
                if type(value) is int and value >= 0:
                    self.keys.append((value << _VALUE_SHIFT) | (opp_id << _WHERE_BITS) | where)
                    return
                if value is None:
                    self.missing.append((opp_id << _WHERE_BITS) | where)
                    return
            self._to_triples()
        self.triples.append((self.value_of(rec), rec["id"], where))

    def _to_triples(self) -> None:
        self.triples = [(k >> _VALUE_SHIFT, (k >> _WHERE_BITS) & _ID_MASK, k & _WHERE_MASK)
                        for k in self.keys]
        self.triples += [(None, k >> _WHERE_BITS, k & _WHERE_MASK) for k in self.missing]
        self.keys, self.missing, self.as_stored = [], [], None

    def ordered(self, descending: bool, limit: int | None) -> Iterator[int | tuple[int, int]]:
        """Where each match is, in order: by value then id, missing values last either way."""
        if self.as_stored is None:
            ordered = order(self.triples, descending)
            self.triples = []
            yield from (w for _, _, w in itertools.islice(ordered, limit))
            return
        self.keys.sort(reverse=descending)
        self.missing.sort(reverse=descending)
        both = itertools.chain(self.keys, self.missing)
        yield from (k & _WHERE_MASK for k in itertools.islice(both, limit))


def _read_all(f: BinaryIO) -> bytes:
    f.seek(0)
    return f.read()


