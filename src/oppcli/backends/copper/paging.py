"""Paging a Copper search: every matching record, in order, each once, or a warning saying why not.

Sorted by date_modified (the default, and what export and sync use), a search is paged by
keyset: each page a new search from the last modification time given. Records sharing one
second are read as a search of their own until all are seen (Pager._tie); the bulk of a long
ascending search is fetched several pages at a time from a frozen slice (Pager._concurrent).
Any other order pages by number, and can only warn past Copper's window of 100,000 results.
What a search found about itself is in Pager.report (a base.SearchReport).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from oppcli.backends.base import SearchReport
from oppcli.backends.copper.http import _int_header
from oppcli.backends.copper.pool import PagePool
from oppcli.domain import fields as F
from oppcli.errors import ServiceError

if TYPE_CHECKING:
    from oppcli.backends.copper.http import HttpClient
    from oppcli.domain.query import Query

Record = dict[str, Any]
PAGE_SIZE = 200  # Copper's maximum
SEARCH_WINDOW = 100_000  # Copper serves only the first 100,000 matches of a search
FROZEN_MARGIN = 60  # seconds below the newest modification time that no edit can still reach
TIE_MISS_ODDS = 1e-6  # how unlikely a tie's record still unseen after _patience idle reads is


def normalise(record: Mapping[str, Any]) -> Record:
    """Copper's record with every field present (null when Copper left it out), in field order."""
    out: Record = dict.fromkeys(F.FIELD_NAMES)
    out.update(record)
    return out


def _patience(size: int, page_size: int) -> int:
    """Reads in a row that add nothing new before a tie of `size` records is given up: enough
    that a record still unseen would have shown up with odds 1 - TIE_MISS_ODDS, had each page
    been a fresh random draw of the tie."""
    if size <= page_size:
        return 10
    return max(10, math.ceil(math.log(TIE_MISS_ODDS) / math.log(1 - page_size / size)))


class _GivenIds:
    """The ids a search has given, to tell a repeat: the latest in a set, older ones merged
    into a sorted array of 8-byte ints (a million ids in about 8 MB, where a set of them takes
    about 70), so a long export's memory stays small."""

    FLUSH = 1 << 16

    def __init__(self) -> None:
        from array import array

        self._recent: set[int] = set()
        self._old = array("q")
        self._other: set[Any] = set()  # ids that are not 64-bit ints, as they are

    def __contains__(self, ident: Any) -> bool:
        if ident in self._recent or ident in self._other:
            return True
        if _int64(ident) and self._old:
            from bisect import bisect_left

            i = bisect_left(self._old, ident)
            return i < len(self._old) and self._old[i] == ident
        return False

    def add(self, ident: Any) -> None:
        if not _int64(ident):
            self._other.add(ident)
            return
        self._recent.add(ident)
        if len(self._recent) >= self.FLUSH:
            import heapq
            from array import array

            self._old = array("q", heapq.merge(self._old, sorted(self._recent)))
            self._recent.clear()


def _int64(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -(1 << 63) <= value < 1 << 63


class _Cursor:
    """Where a date_modified-sorted search has got to: the last modification time given
    (`boundary`) and the ids already given at exactly that time (`seen`); `closed` when
    every record at that time was given (the next search starts past it)."""

    def __init__(self, boundary: int | None = None, seen: set[Any] | None = None,
                 fetched: int = 0) -> None:
        self.boundary = boundary
        self.seen: set[Any] = seen if seen is not None else set()
        self.fetched = fetched  # pages fetched so far, for messages
        self.done = False
        self.closed = False

    def after(self, query: Query) -> Query:
        """The search for what comes from the cursor on, in the query's direction."""
        from dataclasses import replace

        b = self.boundary
        if b is None:
            return query
        if query.descending:
            return replace(query, modified_max=b - 1 if self.closed else b)
        return replace(query, modified_min=b + 1 if self.closed else b)

    def take(self, rows: list[dict[str, Any]]) -> Iterator[Record]:
        """The page's records not given yet, normalised."""
        for r in rows:
            if self.boundary is not None and r.get("date_modified") == self.boundary \
                    and r.get("id") in self.seen:
                continue
            yield normalise(r)

    def advance(self, rows: list[dict[str, Any]]) -> None:
        """Move past a page that was given (ascending order)."""
        if not rows:
            return
        last = rows[-1].get("date_modified")
        if not isinstance(last, int):
            return
        at_last = {r.get("id") for r in rows if r.get("date_modified") == last}
        if last == self.boundary:
            self.seen |= at_last
        else:
            self.boundary, self.seen, self.closed = last, at_last, False


class Pager:
    """Pages searches through an HttpClient: `records()` gives every record of one.

    `window`: how many matches Copper serves of one search (SEARCH_WINDOW); `concurrency`:
    pages in flight at once for a long ascending date_modified search; `notice` receives
    the warnings (why a search is not provably complete).
    """

    def __init__(self, client: HttpClient, *, notice: Callable[[str], None],
                 window: int | None = None, concurrency: int = 1) -> None:
        self.client = client
        self.notice = notice
        self.window = window or SEARCH_WINDOW
        self.concurrency = max(1, int(concurrency))
        self._pool: PagePool | None = None
        # What the latest search found about itself (complete? repeats?): sync pull reads it.
        self.report = SearchReport()

    def records(self, query: Query, page_size: int, want: int | None) -> Iterator[Record]:
        """Every record of the search, in order, each id once (`want`: how many the caller
        may take at most, None for all).

        A deal edited during the search moves to the end of the date_modified order and Copper
        serves it again, newer: the stream cannot take back the version already given, so the
        later one is left out (and noted in the report, so an incremental pull re-reads it;
        an export's state never passes the time the export began, so its next run does).
        """
        report = self.report = SearchReport()
        given = _GivenIds()
        for record in self._fetch(query, page_size, want):
            rid = record.get("id")
            if rid in given:
                report.repeated(record)
                continue
            given.add(rid)
            yield record

    def _gap(self, message: str) -> None:
        """Warn why this search is not provably complete, and note it in the report."""
        self.report.complete = False
        self.report.problems.append(message)
        self.notice(f"warning: {message}")

    def _fetch(self, query: Query, page_size: int, want: int | None) -> Iterator[Record]:
        """Every record of the search, in order.

        Sorted by date_modified (the default, and what export and sync use), every page is a
        new search starting at the last modification time seen (inclusive), skipping the
        records already given at exactly that time. So a deal edited during the run (it moves
        to the end of the order) cannot shift an unread one out of reach, as page numbers
        would; and Copper's window of 100,000 results never binds. A page whose records all
        share one time is a tie that may be longer than a page: _tie reads that second whole.
        Any other sort pages by number and can only warn past the window.
        """
        if query.sort_by != "date_modified":
            for page, rows, total in self._pages(query, page_size):
                if page == 1 and total is not None and total > self.window \
                        and (want is None or want > self.window):
                    self._warn_window(total, query)
                yield from (normalise(r) for r in rows)
            return
        cursor = _Cursor()
        if want is None and query.ahead and not query.descending and self.concurrency > 1:
            yield from self._concurrent(query, page_size, cursor)
            if cursor.done:
                return
        yield from self._keyset(query, page_size, cursor)

    def _keyset(self, query: Query, page_size: int, cursor: _Cursor) -> Iterator[Record]:
        """The rest of a date_modified-sorted search, one page at a time, from the cursor."""
        while True:
            bounded = cursor.after(query)
            cursor.fetched += 1
            rows, total = self._page(bounded, 1, page_size, number=cursor.fetched)
            last = rows[-1].get("date_modified") if rows else None
            if len(rows) == page_size and isinstance(last, int) \
                    and rows[0].get("date_modified") == last:
                # The whole page shares one time: that second may hold more than a page. (The
                # page is the first of that second's own search: nothing comes before it.)
                yield from self._tie(query, last, page_size, cursor, (rows, total))
                continue
            yield from cursor.take(rows)
            if len(rows) < page_size:
                cursor.advance(rows)  # a caller may go on from here
                return
            if not isinstance(last, int):
                yield from self._undated_rest(bounded, 2, page_size)
                return
            cursor.advance(rows)

    def _tie(self, query: Query, stamp: int, page_size: int, cursor: _Cursor,
             first: tuple[list[Record], int | None]) -> Iterator[Record]:
        """Every record modified at exactly `stamp` (a second holding a page or more), each
        once, then the cursor past that second.

        Copper does not promise an order among records sharing a time, and may serve them in
        another on each request: pages by number can then repeat some and never show others.
        So the second is read as its own search (minimum = maximum = stamp), pass after pass,
        until its records seen since its size last changed number its size: the size is
        exact from the first short page (X-PW-TOTAL is only an upper bound; a full page
        reaching it also ends a pass). Reads that keep adding nothing new end in a
        ServiceError naming the problem, as does a second holding more than Copper's window:
        never a quiet gap.
        """
        from dataclasses import replace

        tied = replace(query, modified_min=stamp, modified_max=stamp)
        given = cursor.seen if cursor.boundary == stamp else set()
        observed: set[Any] = set()  # ids read since the second's size last changed
        size: int | None = None
        idle = reads = changes = 0
        pending: tuple[list[Record], int | None] | None = first
        while True:
            page, count = 1, None
            while count is None:
                if pending is not None:
                    (rows, total), pending = pending, None
                else:
                    if (page - 1) * page_size >= self.window:
                        raise ServiceError(
                            f"more than {self.window:,} opportunities share the modification "
                            f"time {stamp}; Copper cannot page past them, so the search cannot "
                            "be complete", "narrow the search (a filter) so fewer match")
                    cursor.fetched += 1
                    rows, total = self._page(tied, page, page_size, number=cursor.fetched)
                reads += 1
                fresh = False
                for r in rows:
                    if r.get("date_modified") != stamp:
                        continue
                    rid = r.get("id")
                    if rid not in observed:
                        observed.add(rid)
                        fresh = True
                    if rid not in given:
                        given.add(rid)
                        yield normalise(r)
                idle = 0 if fresh else idle + 1
                if len(rows) < page_size:
                    count = (page - 1) * page_size + len(rows)
                elif total is not None and page * page_size >= total:
                    count = page * page_size  # the bound is reached: no more can exist
                else:
                    page += 1
            if size is not None and count != size:  # deals left (or joined) the second
                changes += 1
                observed.clear()
                idle = 0
            size = count
            if len(observed) >= size:
                break
            if idle >= _patience(size, page_size) or changes > 10:
                raise ServiceError(
                    f"{size:,} opportunities share the modification time {stamp} and Copper "
                    f"served them in a different order on each request: after {reads} reads, "
                    f"{len(observed):,} of them were seen, so the search cannot be complete",
                    "try again later, or narrow the search (a filter) so fewer match")
        cursor.boundary, cursor.seen, cursor.closed = stamp, given, True

    def _concurrent(self, query: Query, page_size: int, cursor: _Cursor) -> Iterator[Record]:
        """The bulk of a long ascending date_modified search, several pages in flight at once
        (latency, not the rate limit, bounds one page at a time), in order, leaving the cursor
        for _keyset to finish with.

        Keyset pages cannot be requested ahead (each starts where the last ended), so this
        pages a frozen slice by number: every record modified before the newest modification
        time Copper reports, less a minute of margin. Edits and deletes can only take records
        out of that slice, and each answer's X-PW-TOTAL says whether one did: pages are used in
        order only while every total matches the slice's first. At the first that does not,
        or a page that is short, the remaining pages are dropped and _keyset goes on from the
        last record used, so nothing is skipped. Copper's tie order is not documented: a page
        that repeats an id (ties reordered between requests, so one may be missing at that
        time too) is dropped the same way, and _keyset, re-reading from that time, finds it,
        still in order.
        """
        from dataclasses import replace

        cursor.fetched += 1
        rows, total = self._page(query, 1, page_size, number=cursor.fetched)
        yield from cursor.take(rows)
        if len(rows) == page_size and not isinstance(rows[-1].get("date_modified"), int):
            yield from self._undated_rest(query, 2, page_size)
            cursor.done = True
            return
        if len(rows) < page_size or total is None or total <= 2 * page_size:
            cursor.advance(rows)
            if len(rows) < page_size:
                cursor.done = True
            return
        cursor.advance(rows)
        newest = self._newest(query)
        if newest is None:
            return
        ceiling = newest - FROZEN_MARGIN
        while cursor.boundary is not None and cursor.boundary <= ceiling:
            started_at = cursor.boundary
            frozen = replace(query, modified_min=cursor.boundary, modified_max=ceiling)
            cursor.fetched += 1
            rows, total = self._page(frozen, 1, page_size, number=cursor.fetched)
            given: set[Any] = set()  # the ids this slice gave
            for row in cursor.take(rows):
                given.add(row.get("id"))
                yield row
            if total is None or len(rows) < page_size:
                cursor.advance(rows)
                return
            cursor.advance(rows)
            count = min(total, self.window)
            pages = -(-count // page_size)
            complete = True  # every page used; False: the rest is left to _keyset
            ahead = self.pool().ordered(self._page, frozen, range(2, pages + 1), page_size,
                                             first_number=cursor.fetched + 1)
            try:
                for number, (got, got_total) in enumerate(ahead, start=2):
                    cursor.fetched += 1
                    expected = page_size if number < pages else count - (pages - 1) * page_size
                    taken = list(cursor.take(got))
                    ids = [row.get("id") for row in taken]
                    if (got_total != total or len(got) != expected or len(taken) < len(got)
                            or not given.isdisjoint(ids)):
                        # A record left the slice, or one came again (ties served in
                        # another order, so one may also be missing, at the same time): this
                        # page is not used; _keyset goes on from the last record given, in
                        # order, and finds it.
                        complete = False
                        break
                    given.update(ids)
                    yield from taken
                    cursor.advance(got)
            finally:
                ahead.close()  # pages not yet started are dropped now, not at collection
            if not complete or total <= self.window or cursor.boundary == started_at:
                return  # (the last: a whole window at one time; _keyset pages past it)

    def _newest(self, query: Query) -> int | None:
        """The newest date_modified among the search's matches (one small request)."""
        from dataclasses import replace

        rows, _ = self._page(replace(query, descending=True), 1, 1, number=None,
                             what="search (newest modification)")
        last = rows[0].get("date_modified") if rows else None
        return last if isinstance(last, int) else None

    def pool(self) -> PagePool:
        """The request pool (copper.concurrency threads), started on first use."""
        if self._pool is None:
            self._pool = PagePool(self.concurrency)
        return self._pool

    def _undated_rest(self, query: Query, page: int, page_size: int) -> Iterator[Record]:
        """After a page ending in a record without date_modified: no keyset to go on from.
        Paged by number, an edit or delete meanwhile can shift a record out of reach, so the
        search is not provably complete."""
        self._gap("a record without date_modified: the rest of the search is fetched by page "
                  "number, which an edit or delete meanwhile can make skip a record")
        yield from self._rest_by_number(query, page, page_size)

    def _rest_by_number(self, query: Query, page: int, page_size: int) -> Iterator[Record]:
        for _page, rows, _total in self._pages(query, page_size, first=page):
            yield from (normalise(r) for r in rows)

    def _warn_window(self, total: int, query: Query) -> None:
        self._gap(f"{total:,} opportunities match and Copper returns only the first "
                  f"{self.window:,} of a search sorted by {query.sort_by}; sort by "
                  "date_modified (the default) to get them all, or narrow the search")

    def _pages(self, query: Query, page_size: int, first: int = 1,
               ) -> Iterator[tuple[int, list[Record], int | None]]:
        page = first
        while True:
            if (page - 1) * page_size >= self.window:
                self.report.complete = False  # (warned about by the caller)
                return
            rows, total = self._page(query, page, page_size)
            yield page, rows, total
            if len(rows) < page_size:
                return
            page += 1

    def _page(self, query: Query, page: int, page_size: int, number: int | None = None,
              what: str | None = None) -> tuple[list[Record], int | None]:
        answer = self.client.call("POST", "/opportunities/search",
                                  query.to_copper_body(page, page_size),
                                  what=what or f"search (page {number or page})")
        rows = answer.body
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ServiceError(f"search page {page}: Copper's answer is not a list of "
                               "opportunities")
        total = _int_header(answer.headers.get("X-PW-TOTAL"))
        if self.report.total is None:  # the search's first page: how many match in all
            self.report.total = total
        return rows, total
