"""Writing a store's data file anew: an update, a delete or a kept id's insert copies the
untouched byte ranges (no parsing) into a temporary file that is fsynced and renamed over the
old one, in id order (a file sorted by hand is put back in order); a mirror's pull merges
pulled records in. Then the header records next_id and the data file's stamp.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Iterator, Mapping
from typing import BinaryIO

import orjson

from oppcli.backends.local.datafile import DataFile, os_error, read_all
from oppcli.backends.local.format import DATA, ID_AT_START, META, stamp
from oppcli.errors import ConflictError
from oppcli.util.files import atomic_write, replacing, write_all


def _copy_range(src: int, dst: int, offset: int, count: int) -> None:
    while count > 0:
        try:
            sent = os.sendfile(dst, src, offset, min(count, 1 << 30))
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise
            sent = len(data := os.pread(src, min(count, 1 << 20), offset))
            if sent:
                write_all(dst, data)
        if sent == 0:
            raise OSError(errno.EIO, "store file shrank while being copied")
        offset += sent
        count -= sent


MANY_EDITS = 64  # more edits than this: copied through a buffer (one syscall per few MB)
BLOCK = 4 << 20
IOV_MAX = 512  # pieces per writev (POSIX guarantees at least 16; Linux takes 1024)


def _copy_with_edits(src: int, dst: int, edits: list[tuple[int, int, bytes]],
                     committed: int) -> None:
    """The source up to `committed` with the (sorted) edits applied, read and written a few
    megabytes at a time: thousands of edits cost a few dozen system calls, not one copy
    and one write each."""
    pieces: list[bytes | memoryview] = []
    held = 0
    block_at, block = 0, b""

    def flush() -> None:
        nonlocal held
        for at in range(0, len(pieces), IOV_MAX):  # gathered by the kernel, not copied here
            group = pieces[at:at + IOV_MAX]
            written = os.writev(dst, group)
            wanted = sum(map(len, group))
            if written < wanted:  # a short write: the rest the plain way (a full disk says so)
                write_all(dst, b"".join(group)[written:])
        pieces.clear()
        held = 0

    def copy(a: int, b: int) -> None:
        nonlocal block_at, block, held
        while a < b:
            if not block_at <= a < block_at + len(block):
                block_at, block = a, os.pread(src, BLOCK, a)
                if not block:
                    raise OSError(errno.EIO, "store file shrank while being copied")
            end = min(b, block_at + len(block))
            pieces.append(memoryview(block)[a - block_at:end - block_at])
            held += end - a
            a = end
            if held >= BLOCK:
                flush()

    pos = 0
    for offset, length, new in edits:
        copy(pos, offset)
        if new:
            pieces.append(new)
            held += len(new)
        pos = offset + length
    copy(pos, committed)
    flush()


class Rewriting(DataFile):
    """The data file's rewrites and the header's updates; hold the store's lock for each."""

    def _write_meta(self) -> None:
        try:
            atomic_write(self.path / META, orjson.dumps(self.meta, option=orjson.OPT_INDENT_2))
        except OSError as exc:
            raise os_error(exc, self.path / META, "write") from exc

    def _note_data(self, top: int) -> None:
        """After a write of the data file: next_id past `top` and every id before, and the
        file's stamp, in meta.json (atomically). Hold the lock."""
        self.meta["next_id"] = max(int(self.meta["next_id"]), top + 1)
        try:
            self.meta["data_stamp"] = stamp(os.stat(self.data_path))
        except OSError as exc:
            raise os_error(exc, self.data_path, "read") from exc
        self._write_meta()

    def _set_torn_tail_aside(self, fd: int) -> int:
        """Copy a torn last line (no newline) aside; returns the size of the committed data."""
        size, start = self._committed_size(fd)
        if start == size:
            return size
        torn = os.pread(fd, size - start, start)
        aside = self.path / f"{DATA}.torn-{int(time.time())}-{os.getpid()}"
        atomic_write(aside, torn)
        self.warn(f"moved an incomplete last line ({len(torn)} bytes) left by an "
                  f"interrupted write to {aside}")
        return start

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
            self.warn(f"{self.data_path} was not in id order (line {index[first][1]} holds id "
                      f"{index[first][0]}, after id {index[first - 1][0]}: sorted by hand?); it "
                      "is written back in id order")
        self._rewrite_in_order(f, sorted(index), edits, insert)
        self._note_data(top)

    def _merge(self, f: BinaryIO, new_lines: Mapping[int, bytes], *,
               drop_missing: bool) -> tuple[int, int, int]:
        """Write the data file anew with the pulled lines (id -> line) in, replacing those with
        the same id, in id order; with drop_missing, lines not pulled are left out. Returns
        (changed, added, removed). Hold the lock."""
        changed = added = removed = 0
        data = read_all(f)
        lines = data.splitlines(keepends=True)
        if not self._survey(f, strict=False)[1]:  # sorted by hand: merge in id order
            lines = [data[o:o + n] for _, _, o, n in sorted(self._index(f, strict=True))]
        with self._new_data_file() as out:
            pending = sorted(new_lines)
            i = 0
            for line in lines:
                if not line.endswith(b"\n"):
                    break  # a torn tail is left out
                m = ID_AT_START.match(line)
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
        return changed, added, removed

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
                head = ID_AT_START.match(m[start:start + 32])
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
            if len(edits) > MANY_EDITS:
                _copy_with_edits(src, dst, sorted(edits), committed)
                return
            pos = 0
            for offset, length, new in sorted(edits):
                _copy_range(src, dst, pos, offset - pos)
                if new:
                    write_all(dst, new)
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
                    write_all(dst, insert[1])
                    insert = None
                if offset in replaced:
                    flush()
                    run_from = run_to = 0
                    if replaced[offset]:
                        write_all(dst, replaced[offset])
                elif offset == run_to and run_to > run_from:
                    run_to += length
                else:
                    flush()
                    run_from, run_to = offset, offset + length
            flush()
            if insert is not None:
                write_all(dst, insert[1])

    @contextlib.contextmanager
    def _new_data_file(self, buffering: int = 1 << 20) -> Iterator[BinaryIO]:
        """The data file's replacement (see replacing()); hold the lock."""
        try:
            with replacing(self.data_path, prefix=f".{DATA}.", buffering=buffering) as out:
                yield out
        except OSError as exc:
            raise os_error(exc, self.data_path, "rewrite") from exc
