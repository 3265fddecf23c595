"""A search's pass over the data file: a chunk at a time, the lines that may match found by
bytes before any parsing (Narrower), each parsed and judged by the query, then streamed in file
order or put in the query's order (order.py) with bounded memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Literal, overload

from oppcli.backends.base import Record
from oppcli.backends.local.datafile import DataFile
from oppcli.backends.local.format import uniform
from oppcli.backends.local.order import KEPT, SortedHits, packed, unpacked
from oppcli.domain.query import NONE_ID, Query

KEEP_BYTES = 32 << 20


LOCATED_AT_MOST = 50_000  # matches whose lines a search in file order remembers (see below)


@overload
def search(data: DataFile, query: Query, date_order: str, *,
           raw: Literal[False]) -> Iterator[Record]: ...
@overload
def search(data: DataFile, query: Query, date_order: str, *,
           raw: Literal[True]) -> Iterator[bytes]: ...
def search(data: DataFile, query: Query, date_order: str, *,
           raw: bool) -> Iterator[Record | bytes]:
    """The records matching the query in its order, at most query.limit of them, streamed;
    raw: each as its stored line (no newline), unparsed. date_order: the store's.

    A whole pass in file order (id ascending: how a bulk change selects) also tells the store
    where each match's line is (up to LOCATED_AT_MOST of them; DataFile.remember), so the
    write that follows finds them without another pass."""
    limit = query.limit
    if limit is not None and limit <= 0:
        return
    match = query.compile(date_order)
    narrow = Narrower(query)
    parse = data.parse_in
    in_file_order = query.sort_by == "id" and not query.descending
    # Sorted output keeps per match its sort value, its id and where its line is: the line
    # itself (an index into `kept`) while the kept lines stay under KEEP_BYTES, else its
    # place in the file, so memory is bounded at any store size. See SortedHits.
    hits = SortedHits(query.sort_key_as_stored(), query.sort_value(date_order))
    kept: list[bytes] = []
    kept_bytes = 0
    count = 0
    located: dict[int, tuple[int, int]] | None = {} if in_file_order and limit is None else None
    with data.open_data() as f:
        for offset, chunk in data.chunks(f):
            narrowed = bool(narrow) and uniform(chunk)
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
                    if located is not None:
                        if narrowed:
                            start = pos = chunk.index(line, pos)
                            pos += len(line)
                        located[rec["id"]] = (offset + start, len(line) + 1)
                        if len(located) > LOCATED_AT_MOST:
                            located = None
                    yield line if raw else rec
                    count += 1
                    if limit is not None and count >= limit:
                        return
                    continue
                if kept_bytes < KEEP_BYTES:
                    kept_bytes += len(line)
                    where: int | tuple[int, int] = KEPT | len(kept)
                    kept.append(line)
                else:
                    if narrowed:
                        start = pos = chunk.index(line, pos)
                    where = packed(offset + start, len(line))
                hits.add(rec, where)
        data.verified(f)  # every line was parsed, or its chunk found shaped like records
        if in_file_order:
            if located is not None:
                data.remember(f, located)
            return
        fd = f.fileno()
        for where in hits.ordered(query.descending, limit):
            at = 0
            if type(where) is int and where & KEPT:
                line = kept[where ^ KEPT]
            else:  # past KEEP_BYTES: read back (pread, not a memory map, whose pages
                at, length = unpacked(where)  # would count in the process's memory)
                line = os.pread(fd, length, at)
            if raw:
                yield line
                continue
            rec = parse(line, line, at)
            if rec is not None:
                yield rec


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
