"""`oppcli sync pull`: a local store that mirrors a Copper account, refreshed incrementally.

The first pull copies every opportunity and the lookup tables; later pulls ask Copper only for
what was modified since the last one (minimum_modified_date, sorted by date_modified, on the
server), re-reading an overlap so records sharing a timestamp are not missed. Companies and
people are fetched by id, only those the deals refer to and the mirror lacks. Copper's search
cannot show deletions: `--full` pulls everything again and drops what is gone, but only when
the pass was provably complete (else it keeps every record, warns, and says so in its result).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oppcli.domain.query import Query
from oppcli.errors import NotFoundError, StoreError

if TYPE_CHECKING:
    from oppcli.backends.copper import CopperBackend

OVERLAP = 60


@dataclass
class PullResult:
    path: Path
    pulled: int
    changed: int
    added: int
    removed: int
    first: bool
    requests: int
    complete: bool = True  # False: the pass may have missed records, so none were removed


def pull(copper: CopperBackend, path: Path, *, date_order: str, full: bool = False) -> PullResult:
    from oppcli.backends.local import LocalStore

    started = int(time.time())
    identity = {"source": "copper", "url": copper.client.base,
                "user_email": copper.client.session.headers.get("X-PW-UserEmail"),
                # the mirror shows Date custom fields as days in the account's zone
                "timezone": str(copper.timezone())}
    store: LocalStore | None = None
    since: int | None = None
    if LocalStore.exists(path):
        store = LocalStore.open(path)
        mirror = store.meta.get("mirror")
        if not isinstance(mirror, dict):
            raise StoreError(f"{path} is a local store, not a mirror made by `oppcli sync pull`",
                             "pull into another --store path (sync never overwrites local work)")
        if (mirror.get("url"), mirror.get("user_email")) != (identity["url"],
                                                             identity["user_email"]):
            raise StoreError(f"{path} mirrors {mirror.get('url')} as {mirror.get('user_email')}",
                             "pull into another --store path")
        high = mirror.get("high_water")
        if not full and isinstance(high, int):
            since = high - OVERLAP
    query = Query(sort_by="date_modified", descending=False, modified_min=since)
    records: dict[int, dict[str, Any]] = {}
    high_water = None
    for r in copper.search(query):
        records[int(r["id"])] = r
        stamp = r.get("date_modified")
        if isinstance(stamp, int) and (high_water is None or stamp > high_water):
            high_water = stamp
    report = copper.search_report()
    complete = report.complete
    repeat = report.earliest_repeat
    if isinstance(repeat, int) and high_water is not None:
        # A deal edited during the pull came again, newer, and was left out (the search gives
        # each id once): the next pull must still reach that version.
        high_water = min(high_water, repeat)
    prune = full and complete
    if full and not complete:
        copper.notice("warning: this full pull may have missed opportunities (see above), so "
                      "nothing was removed from the mirror; pull --full again to drop deleted "
                      "ones")
    # After the records: a stage or field created while they were fetched is in the tables.
    tables, _ = copper.lookup_tables(refresh=True)
    old = store.lookups().to_dict() if store is not None else {}
    tables = dict(tables)
    for table, key in (("companies", "company_id"), ("people", "primary_contact_id")):
        known = {row["id"]: row for row in old.get(table) or []}
        wanted = {int(r[key]) for r in records.values() if isinstance(r.get(key), int)}
        for ident in sorted(wanted - set(known)):
            row = _fetch(copper, table, ident)
            if row is not None:
                known[ident] = row
        tables[table] = sorted(known.values(), key=lambda row: row["id"])
    if store is None:  # a mirror from the start: a pull cut short is simply a first pull again
        store = LocalStore.create_store(path, lookups=tables, date_order=date_order,
                                        extra={"mirror": {**identity, "high_water": None}})
    previous = store.meta.get("mirror") or {}
    if high_water is None:
        high_water = previous.get("high_water")
    whole = (full or since is None) and complete
    mirror = {**identity, "high_water": high_water, "pulled_at": started,
              "full_pull_at": started if whole else previous.get("full_pull_at")}
    changed, added, removed = store.merge_mirror(records, lookups=tables, mirror=mirror,
                                                 drop_missing=prune)
    return PullResult(path, len(records), changed, added, removed, since is None and not full,
                      copper.client.requests_sent, complete)


def _fetch(copper: Any, table: str, ident: int) -> dict[str, Any] | None:
    from oppcli.backends.copper import _person

    try:
        row = copper.client.call("GET", f"/{table}/{ident}", what=f"GET {table} {ident}").body
    except NotFoundError:
        return None
    if not isinstance(row, dict) or not isinstance(row.get("id"), int):
        return None
    if table == "people":
        return _person(row)
    return {"id": row["id"], "name": str(row.get("name") or "")}

