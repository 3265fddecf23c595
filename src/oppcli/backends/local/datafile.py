"""Reading a store's data file (opportunities.jsonl): in chunks that end at a newline, a
line's record or its id, a record found by id (binary search over the id order, else a look at
every line), and the checks a writer makes before it copies lines it does not parse.
"""

from __future__ import annotations

import errno
import itertools
import operator
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from oppcli.backends.base import Record
from oppcli.backends.local.format import DATA, ID_AT_START, LINE_IDS, NEXT_IDS, stamp, uniform
from oppcli.errors import StoreError
from oppcli.io import warn

CHUNK = 4 << 20


def os_error(exc: OSError, path: Path, doing: str) -> StoreError:
    """The StoreError (exit 3) for a failed file operation, with what to do about it."""
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StoreError(f"cannot {doing} {path}: {reason}", "free some disk space; the store is unchanged")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StoreError(f"cannot {doing} {path}: {reason}", "check the file's owner and permissions")
    return StoreError(f"cannot {doing} {path}: {reason}")


def read_json(path: Path) -> Any:
    """A JSON file of the store (meta.json, lookups.json); StoreError when unreadable."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise os_error(exc, path, "read") from exc
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise StoreError(f"{path} is corrupt ({exc})",
                         "restore it from a backup; oppcli leaves it untouched") from exc


def read_all(f: BinaryIO) -> bytes:
    f.seek(0)
    return f.read()


class DataFile:
    """A store directory and its data file, for reading; LocalStore adds the writes."""

    def __init__(self, path: Path, meta: Mapping[str, Any]) -> None:
        self.path = path
        self.meta = dict(meta)
        self.data_path = path / DATA
        self._warned_torn = False
        # Where warnings for a person go (the I/O seam's warn; open_backend sets it).
        self.warn: Callable[[str], None] = warn
        # Where the lines of records read lately are, while the file is as it was then
        # (its signature): a bulk write finds them there without another pass.
        self._located: tuple[tuple[int, int, int], dict[int, tuple[int, int]]] | None = None
        self._verified: tuple[int, int, int] | None = None

    @staticmethod
    def signature(f: BinaryIO) -> tuple[int, int, int]:
        """The data file as opened: inode, size, modification time. Every write changes it
        (a rewrite is a new file renamed in, an append grows it)."""
        st = os.fstat(f.fileno())
        return st.st_ino, st.st_size, st.st_mtime_ns

    def verified(self, f: BinaryIO) -> None:
        """A pass just looked at every line of the file as `f` has it and found each a record
        (parsed, or shaped like one: uniform): a rewrite of this very file need not check its
        lines again (_check_lines)."""
        self._verified = self.signature(f)

    def remember(self, f: BinaryIO, located: Mapping[int, tuple[int, int]]) -> None:
        """Keep where these ids' lines are (offset, length) in the file as `f` has it."""
        self._located = (self.signature(f), dict(located))

    def located(self, f: BinaryIO, ids: Iterable[int]) -> dict[int, tuple[int, int]] | None:
        """Where these ids' lines are, when all were remembered from this very file; else
        None (then look)."""
        if self._located is None or self._located[0] != self.signature(f):
            return None
        known = self._located[1]
        out = {}
        for i in ids:
            where = known.get(i)
            if where is None:
                return None
            out[i] = where
        return out

    def open_data(self) -> BinaryIO:
        try:
            return open(self.data_path, "rb")
        except FileNotFoundError:
            raise StoreError(f"{self.data_path} is missing",
                             "restore it from a backup, or run `oppcli init` on a new path") from None
        except OSError as exc:
            raise os_error(exc, self.data_path, "read") from exc

    def _corrupt(self, lineno: int, why: str) -> StoreError:
        """lineno < 0: the last line (counting the lines would mean reading the whole file)."""
        where = "the last line" if lineno < 0 else f"line {lineno}"
        return StoreError(f"{self.data_path} {where} is corrupt ({why})",
                          "restore the store from a backup; oppcli leaves it untouched")

    def _torn(self, size: int) -> None:
        if not self._warned_torn:
            self._warned_torn = True
            self.warn(f"ignoring an incomplete last line ({size} bytes) in {self.data_path}, "
                      "left by an interrupted write; the next change moves it aside")

    def chunks(self, f: BinaryIO, warn_torn: bool = True) -> Iterator[tuple[int, bytes]]:
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
        with self.open_data() as f:
            while offset > 0:
                block = f.read(min(CHUNK, offset))
                if not block:
                    break
                count += block.count(b"\n")
                offset -= len(block)
        return count + 1

    def parse_in(self, line: bytes, chunk: bytes, offset: int) -> Record | None:
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
        with self.open_data() as f:
            for offset, chunk in self.chunks(f):
                for line in chunk.split(b"\n"):
                    if line:
                        rec = self.parse_in(line, chunk, offset)
                        if rec is not None:
                            yield rec

    def _find(self, f: BinaryIO, opp_id: int) -> tuple[int, int, Record] | None:
        """(offset, length, record) of the line holding opp_id, or None."""
        found = self._bisect(f, opp_id)
        if found is None:  # not where the id order puts it: look at every line
            found = self._locate(read_all(f), opp_id)
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
                head = ID_AT_START.match(m[start:start + 32])
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
        if uniform(committed):
            needle = b'{"id":%d,' % opp_id
            pos = committed.find(needle)
            while pos != -1:
                if pos == 0 or committed[pos - 1:pos] == b"\n":
                    end = committed.index(b"\n", pos) + 1
                    rec = self.parse_in(committed[pos:end], committed, 0)
                    if rec is not None and rec["id"] == opp_id:
                        return pos, end - pos, rec
                pos = committed.find(needle, pos + 1)
        # Slow path: parse every line, so a line that is not a record is reported even when
        # the id is found before it (update and delete must not copy it into a new file).
        found = None
        offset = 0
        for line in committed.split(b"\n")[:-1]:
            rec = self.parse_in(line, committed, 0)
            if rec is not None and rec["id"] == opp_id and found is None:
                found = (offset, len(line) + 1, rec)
            offset += len(line) + 1
        return found

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
        return bool(self.meta.get("data_stamp") == stamp(st))

    def _check_lines(self, f: BinaryIO) -> None:
        """Refuse (StoreError, nothing changed) a file with a line that is not a record.

        _rewrite copies the lines it does not change without parsing them: this makes sure
        each is at least shaped like a record, a chunk at a time (constant memory). A chunk
        that is not, say one written with spaces, is parsed line by line, which names the
        line that is broken, if any."""
        if self._verified == self.signature(f):  # a pass moments ago saw every line
            return
        f.seek(0)
        for offset, chunk in self.chunks(f, warn_torn=False):
            if not uniform(chunk):
                for line in chunk.split(b"\n"):
                    if line:
                        self.parse_in(line, chunk, offset)

    def _line_id(self, line: bytes, chunk: bytes, offset: int, strict: bool) -> int | None:
        """A line's id; None for a blank line, and (not strict) for a line that is not a
        record. Strict: StoreError naming a line that is not a record."""
        if strict:
            rec = self.parse_in(line, chunk, offset)
            return None if rec is None else int(rec["id"])
        head = ID_AT_START.match(line)
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
        records (see uniform) has its ids read by one regex, unparsed; a chunk that is not,
        say one written with spaces, is parsed line by line, which names the broken line."""
        f.seek(0)
        top = 0
        prev: int | None = None
        ascending = True
        for offset, chunk in self.chunks(f, warn_torn=False):
            if uniform(chunk):  # each line starts `{"id":N`: the first, then after each newline
                ids = list(map(int, LINE_IDS.findall(chunk, 0, 32) + NEXT_IDS.findall(chunk)))
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
        for offset, chunk in self.chunks(f, warn_torn=False):
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
