"""report, forecast and stale: one search through the backend (the same filters as `search`,
sent to Copper as its criteria), its records folded as they stream (domain/report.py).

Each reads in the backend's stream order, as export does: the local store's file order
(constant memory); on Copper oldest change first, by keyset, one request per page of 200 (a
deal edited during the fetch moves to the end and is still counted, once). A person at a
terminal sees a running count on stderr while the pages come (Streams.progress).
"""

from __future__ import annotations

import datetime as dt
import heapq
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from oppcli.domain import report as R
from oppcli.errors import UsageError

if TYPE_CHECKING:
    from oppcli.api import Session
    from oppcli.domain.query import Query

Record = dict[str, Any]


def _records(session: Session, query: Query, what: str) -> Iterator[Record]:
    """Every match, in the backend's stream order, counted on a terminal's stderr."""
    backend = session.backend
    query.sort_by, query.descending = backend.stream_order
    query.ahead = False  # requests = pages
    progress = session.streams.progress(what, delay=0.5)
    # The service's count of matches is the total only when it applies every criterion;
    # else it counts deals that a check after fetching leaves out.
    counted = backend.remote and not query.split_for_copper()[1].has_filters()
    told = False
    try:
        for rec in backend.search(query):
            if not told:
                told = True
                progress.total = backend.search_report().total if counted else None
            progress.step()
            yield rec
    finally:
        progress.done()


def report(session: Session, by: Sequence[str], filters: dict[str, Any]) -> R.Report:
    """The deals matching `filters` grouped by one or two dimensions (R.DIMENSIONS)."""
    if not by:
        raise UsageError("nothing to group by", "give --by DIM, e.g. --by stage; one of: "
                         + ", ".join(R.DIMENSIONS))
    backend = session.backend
    lookups = backend.lookups()
    dims = [R.dimension(d, lookups, backend.date_order()) for d in by]
    tally = R.Tally(dims)  # checks the dimensions before anything is read
    query = session.query(**filters)
    tally.add_all(_records(session, query, "reading"))
    zero = R.stages_in_scope(lookups, query.pipeline_ids, query.stage_ids) \
        if dims[0].key == "stage" else ()
    return tally.report(zero)


def today_in(session: Session) -> dt.date:
    """Today in the zone close dates are written in (the account's; the store's)."""
    return dt.datetime.now(session.backend.timezone()).date()


def forecast(session: Session, months: int, filters: dict[str, Any],
             today: dt.date | None = None) -> R.Forecast:
    """Open deals matching `filters` by expected close month, from this month on."""
    _no_status(session, filters, "forecast")
    if isinstance(months, bool) or not isinstance(months, int) or months < 1 or months > 120:
        raise UsageError(f"months must be a whole number from 1 to 120, not {months!r}",
                         "e.g. --months 6")
    query = session.query(**filters)
    query.statuses = ["Open"]
    day = today or today_in(session)
    return R.forecast(_records(session, query, "reading"), today=day, months=months,
                      date_order=session.backend.date_order())


@dataclass
class Stale:
    """Open deals idle for at least `days`: most valuable first, then longest idle."""

    days: int
    now: float
    deals: list[Record] = field(default_factory=list)
    more: bool = False  # a limit left some out

    def idle(self, rec: Record) -> int | None:
        return R.idle_days(rec, self.now)


def stale(session: Session, days: int, filters: dict[str, Any], *, limit: int | None = None,
          now: float | None = None) -> Stale:
    """Open deals matching `filters` with no activity (R.ACTIVITY) for `days` days. `limit`:
    the first that many (memory bounded by it)."""
    _no_status(session, filters, "stale")
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise UsageError(f"days must be a whole number at least 0, not {days!r}", "e.g. --days 30")
    at = time.time() if now is None else now
    cutoff = int(at - days * R.DAY)
    query = session.query(**filters)
    query.statuses = ["Open"]
    # Activity is at least date_modified: the search itself (on Copper, the server) leaves
    # out every deal modified since the cutoff; the other dates are checked here.
    query.modified_max = cutoff if query.modified_max is None else min(cutoff, query.modified_max)
    keep = limit
    query.limit = None
    hits = (r for r in _records(session, query, "reading")
            if (at_ := R.last_activity(r)) is not None and at_ <= cutoff)
    result = Stale(days, at)
    if keep is None:
        result.deals = sorted(hits, key=lambda r: R.stale_order(r, at))
        return result
    # The first `keep` of the order, and whether any more matched: keep + 1 at most in memory.
    counted = 0

    def seen() -> Iterator[tuple[tuple[Any, ...], int, Record]]:
        nonlocal counted
        for r in hits:
            counted += 1
            yield R.stale_order(r, at), counted, r
    best = heapq.nsmallest(keep, seen())
    result.deals = [r for _, _, r in best]
    result.more = counted > keep
    return result


def _no_status(session: Session, filters: dict[str, Any], what: str) -> None:
    if any(filters.get(k) for k in ("status", "statuses")):
        raise UsageError(f"{what} takes no status filter: it looks at open deals only",
                         "leave out --status; `oppcli report --by status` shows every status")
    name = filters.get("saved")
    if name is not None:
        from oppcli.domain.values import split_list

        entry = session.saved_search(name)
        status = entry.get("status") or entry.get("statuses") or []
        # As search reads it: one value or a list, each maybe comma-separated.
        statuses = split_list(str(s) for s in (status if isinstance(status, list) else [status]))
        if any(s.casefold() != "open" for s in statuses):
            raise UsageError(f"saved search {name!r} asks for status {', '.join(statuses)}, and "
                             f"{what} looks at open deals only",
                             "use a saved search without a status, or `oppcli report --saved`")
