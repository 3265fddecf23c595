"""CopperBackend: the Backend protocol (backends.base) over Copper's developer API.

A record is read or written with one request (http.HttpClient); a search is paged by
paging.Pager, with the criteria Copper lacks applied here; the lookup tables come from
lookups.LookupTables. Debug lines and warnings go to `notice` (stderr when none is given).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from oppcli.backends.base import Change, Done, SearchReport, Stopping, describe_copper
from oppcli.backends.copper.cache import LookupCache
from oppcli.backends.copper.http import HttpClient, _header_safe, _stderr
from oppcli.backends.copper.lookups import CopperLookups, LookupTables
from oppcli.backends.copper.pacing import SharedPacer, pacing_path
from oppcli.backends.copper.paging import PAGE_SIZE, Pager, normalise
from oppcli.domain import fields as F
from oppcli.domain.lookups import Lookups
from oppcli.domain.records import apply_changes, changed_fields, check_refs, refs_to_check
from oppcli.errors import (
    ConfigError,
    NotFoundError,
    OppcliError,
    PartialFailure,
    ServiceError,
    UsageError,
    ValidationError,
)

if TYPE_CHECKING:
    from oppcli.config import Settings
    from oppcli.domain.query import Query
    from oppcli.domain.records import ZoneCheck

Record = dict[str, Any]
FETCHED_KEEP = 256  # records a backend keeps from get() for the update/delete that follows


class CopperBackend:
    """Copper's opportunities, through its developer API."""

    name = "copper"
    # The order export streams in: Copper pages a date_modified-sorted search on the server.
    stream_order = ("date_modified", False)
    last_before: Record | None = None  # the record as it was before the last update
    remote = True  # a read is a request: bulk changes trust the records they are given

    def __init__(self, client: HttpClient, *, date_order: str = "MDY",
                 cache: LookupCache | None = None, refresh: bool = False,
                 notice: Callable[[str], None] = _stderr, window: int | None = None,
                 concurrency: int = 1, tz: dt.tzinfo = dt.UTC) -> None:
        self.client = client
        self.tz = tz  # copper.timezone: Date custom fields are midnights there
        self._zone_check: ZoneCheck | None = None
        self._date_order = date_order
        self.notice = notice
        self.tables = LookupTables(client, cache, refresh)
        self.pager = Pager(client, notice=lambda message: self.notice(message), window=window,
                           concurrency=concurrency)
        self._lookups: CopperLookups | None = None
        # Records fetched by this command, so an update or delete that the command prepared
        # with a GET (to read the record's pipeline, or check it exists) does not fetch it a
        # second time. Taken out when used; at most FETCHED_KEEP (the oldest go first), so an
        # import or dry run that reads thousands of deals does not keep them all.
        self._fetched: dict[int, Record] = {}

    @classmethod
    def from_settings(cls, settings: Settings, *, debug: bool = False, refresh: bool = False,
                      notice: Callable[[str], None] | None = None) -> CopperBackend:
        """The backend the settings describe; ConfigError, before any request, when they
        cannot work. `debug`: a line per request to `notice`; `refresh`: fetch the lookup
        tables again; `notice`: receives every debug line and warning (stderr when None)."""
        from oppcli.config import check_url

        say = notice or _stderr
        settings.resolve_api_key(warn=lambda message: say(f"warning: {message}"))
        values = settings.values
        url = str(values["copper.url"])
        try:
            check_url(url)
        except ValidationError as exc:
            raise ConfigError(f"{exc.message} (from {settings.source('copper.url')})",
                              exc.hint) from None
        key = str(values.get("copper.api_key") or "").strip()
        email = str(values.get("copper.user_email") or "").strip()
        if not key:
            why = f" ({settings.keyring_error})" if settings.keyring_error else ""
            raise ConfigError(f"no Copper API key{why}", "run `oppcli auth login`, set "
                              "COPPER_API_KEY, or run `oppcli config set copper.api_key KEY` "
                              "(kept 0600)")
        if not email:
            raise ConfigError("no email for the Copper API key", "set COPPER_USER_EMAIL, or "
                              "run `oppcli config set copper.user_email you@example.com`")
        for name, text in (("copper.api_key", key), ("copper.user_email", email)):
            if not _header_safe(text):  # never echo it: it may be the key
                raise ConfigError(f"{name} (from {settings.source(name)}) holds characters an "
                                  "HTTP header cannot carry (a line end, a pasted quote?)",
                                  "set it again without them")

        def pacing_log(message: str) -> None:
            if debug:
                say(f"debug: {message}")

        cache = LookupCache.for_settings(settings, notice=notice)
        pacer = SharedPacer(pacing_path(cache.path.parent, key, email),
                            settings.number("copper.rate_limit"),
                            settings.number("copper.rate_window"), log=pacing_log)
        client = HttpClient(url, key, email, timeout=settings.number("copper.timeout"),
                            retries=settings.number("copper.retries"),
                            backoff=settings.number("copper.backoff"), pacer=pacer, debug=debug,
                            notice=say)
        return cls(client, date_order=settings.date_order, cache=cache, refresh=refresh,
                   notice=say, concurrency=settings.number("copper.concurrency"),
                   tz=settings.timezone)

    def describe(self) -> str:
        """The account: one URL serves every Copper account, so the user names it."""
        return describe_copper(self.client.base, str(self.client.session.headers.get(
            "X-PW-UserEmail")))

    def check_writable(self) -> None:
        """Copper accepts writes (its own permissions apply)."""

    def date_order(self) -> str:
        return self._date_order

    def timezone(self) -> dt.tzinfo:
        """copper.timezone: the zone Date custom fields are midnights in."""
        return self.tz

    def exclusive(self) -> AbstractContextManager[None]:
        """Copper's API offers no lock or conditional write: this holds nothing."""
        return contextlib.nullcontext()

    def next_id(self) -> None:
        """Copper issues the ids."""
        return None

    # ---- lookups ----------------------------------------------------------------------------
    def lookups(self) -> Lookups:
        if self._lookups is None:
            self._lookups = CopperLookups(self.tables, self.tz)
        return self._lookups

    def lookup_tables(self, *, refresh: bool = False) -> tuple[dict[str, Any], bool]:
        """(tables, fetched now): from the cache when fresh, else from Copper (then cached)."""
        return self.tables.load(refresh=refresh)

    def whoami(self) -> dict[str, Any]:
        try:
            body = self.client.call("GET", "/users/me", what="GET /users/me").body
        except NotFoundError as exc:
            # Every account has /users/me: a 404 means copper.url does not lead to the API.
            raise NotFoundError(exc.message, f"is copper.url right? it is {_shown_url(self.client.base)}"
                                " (Copper's is https://api.copper.com/developer_api/v1)") from None
        if not isinstance(body, dict):
            raise ServiceError("GET /users/me did not answer with a user object")
        return body

    # ---- records ----------------------------------------------------------------------------
    def record(self, body: Any, what: str) -> Record:
        if not isinstance(body, dict) or not isinstance(body.get("id"), int):
            raise ServiceError(f"{what}: Copper's answer is not an opportunity")
        return normalise(body)

    def _zone_seen(self, records: Iterable[Record]) -> Iterator[Record]:
        """Records as they come, each shown to the time-zone check (a warning, once, when the
        Date custom fields are midnights in another zone than copper.timezone)."""
        from oppcli.domain.records import ZoneCheck

        for record in records:
            check = self._zone_check
            if check is None:
                # Only when the lookups are loaded anyway (dates shown as days, names): JSON
                # output needs none, and is not made to fetch them for this.
                loaded = self._lookups is not None and "data" in self._lookups.__dict__
                if not loaded:
                    yield record
                    continue
                check = self._zone_check = ZoneCheck(self.lookups())
            if not check.said and check.seen < check.LOOK_AT:
                message = check.look(record)
                if message:
                    self.notice(f"warning: {message}")
            yield record

    def get(self, opp_id: int) -> Record:
        record = self.read(opp_id)
        self._fetched.pop(opp_id, None)  # (re-inserted: the newest)
        self._fetched[opp_id] = record
        while len(self._fetched) > FETCHED_KEEP:
            del self._fetched[next(iter(self._fetched))]
        return record

    def read(self, opp_id: int) -> Record:
        """GET one opportunity (any thread; nothing kept)."""
        try:
            body = self.client.call("GET", f"/opportunities/{opp_id}",
                                    what=f"GET opportunity {opp_id}").body
        except NotFoundError:
            raise NotFoundError(f"no opportunity with id {opp_id}",
                                "`oppcli list` or `oppcli search` shows the ids") from None
        return self.record(body, f"GET opportunity {opp_id}")

    # ---- many deals: one request each, several in flight (bulk.py) ---------------------------
    def get_many(self, ids: list[int]) -> dict[int, Record]:
        from oppcli.backends.copper import bulk

        return bulk.get_many(self, self.pager.pool(), ids)

    def update_many(self, items: list[Change], done: Done, stopping: Stopping) -> None:
        from oppcli.backends.copper import bulk

        self.lookups()  # loaded here, not by the first worker
        bulk.fan_out(self.pager.pool(), lambda item: bulk.update_one(self, item), items, done,
                     stopping)

    def delete_many(self, items: list[Change], done: Done, stopping: Stopping) -> None:
        from oppcli.backends.copper import bulk

        bulk.fan_out(self.pager.pool(), lambda item: bulk.delete_one(self, item), items, done,
                     stopping)

    def create(self, payload: Mapping[str, Any], *, keep_id: int | None = None) -> Record:
        if keep_id is not None:
            raise UsageError("Copper gives every new deal its own id: keep_id cannot be used",
                             "leave keep_id out")
        from oppcli.domain.changes import check_create

        check_create(payload)
        # Left out rather than null: Copper fills its defaults (and may refuse a null).
        body = {k: v for k, v in payload.items() if k not in F.READ_ONLY and v is not None}
        check_refs(body, self.lookups())  # exit 4 like the local store, not Copper's 422
        answer = self.client.call("POST", "/opportunities", body, idempotent=False,
                                  what="create opportunity")
        return self.record(answer.body, "create opportunity")

    def update(self, opp_id: int, changes: Mapping[str, Any],
               current: Record | None = None) -> Record:
        fetched = self._fetched.pop(opp_id, None)  # used now (or superseded by `current`)
        if current is None:
            current = fetched if fetched is not None else self.get(opp_id)
            self._fetched.pop(opp_id, None)
        self.last_before = current
        lookups = self.lookups()
        new = apply_changes(current, changes, lookups)
        body = changed_fields(current, new)
        if not body:  # nothing changes: nothing is sent
            return current
        check_refs(refs_to_check(body, new), lookups)  # only what is sent
        try:
            answer = self.client.call("PUT", f"/opportunities/{opp_id}", body,
                                      what=f"update opportunity {opp_id}")
        except NotFoundError:
            raise NotFoundError(f"no opportunity with id {opp_id} (deleted meanwhile?)") from None
        return self.record(answer.body, f"update opportunity {opp_id}")

    def delete(self, ids: list[int]) -> list[Record]:
        done: list[Record] = []
        todo = list(dict.fromkeys(ids))
        for n, opp_id in enumerate(todo):
            try:
                before = self._fetched.pop(opp_id, None)
                if before is None:  # not fetched, or one of more than FETCHED_KEEP: read it now
                    before = self._before_delete(opp_id)
                self._delete_one(opp_id)
            except OppcliError as exc:
                if not done:
                    raise
                left = ", ".join(map(str, todo[n:]))
                raise PartialFailure(
                    f"deleted {', '.join(str(r['id']) for r in done)}, then failed on {opp_id} "
                    f"({exc}); not deleted: {left}", "run the delete again for those",
                    done=done) from None
            # The record as the command fetched it before deleting (for the audit log).
            done.append(before or {"id": opp_id})
        return done

    def _before_delete(self, opp_id: int) -> Record | None:
        """The record about to be deleted, for the audit log (None when it is gone already)."""
        try:
            record = self.get(opp_id)
        except NotFoundError:
            return None
        self._fetched.pop(opp_id, None)
        return record

    def _delete_one(self, opp_id: int) -> None:
        what = f"delete opportunity {opp_id}"
        try:
            self.client.call("DELETE", f"/opportunities/{opp_id}", what=what)
        except NotFoundError:
            # Gone: either never there (the command checked it was) or deleted by an attempt
            # whose answer was lost and that was then retried. Both mean it is deleted.
            self.client.log(f"{what}: 404, already deleted")

    def record_confirmed_create(self, record: Record) -> None:
        """Nothing to do: the audit wrapper records it."""

    # ---- search -----------------------------------------------------------------------------
    def search(self, query: Query) -> Iterator[Record]:
        """Pages of Copper's search, with criteria Copper lacks applied here.

        Stops as soon as `query.limit` records are found. A search past Copper's window of
        100,000 results continues in date_modified windows when sorted by date_modified, and
        warns otherwise.
        """
        from oppcli.domain.query import order

        if query.limit == 0:
            return
        server, client = query.split_for_copper()
        check = client.compile(self._date_order) if client.has_filters() else None
        if query.sort_by not in F.COPPER_SORT:  # sorted here, so every match is fetched first
            key = query.sort_value(self._date_order)
            hits = [(key(r), int(r["id"]), r)
                    for r in self._zone_seen(self.pager.records(server, PAGE_SIZE, None))
                    if check is None or check(r)]
            yield from (r for _, _, r in order(hits, query.descending)[:query.limit])
            return
        # Missing values sort last either way, by id, as on the local store (query.order). Copper
        # puts deals without a value first when ascending: those are held back and given after
        # every deal with one. (Full pages then: the held ones may fill the first pages.)
        value_of = query.sort_value(self._date_order) if F.BY_NAME[query.sort_by].nullable else None
        held: list[Record] = []
        page_size = PAGE_SIZE
        if check is None and value_of is None and query.limit is not None:
            page_size = max(1, min(PAGE_SIZE, query.limit))
        found = 0
        for record in self._zone_seen(self.pager.records(server, page_size,
                                                         query.limit if check is None else None)):
            if check is not None and not check(record):
                continue
            if value_of is not None and value_of(record) is None:
                held.append(record)
                continue
            yield record
            found += 1
            if query.limit is not None and found >= query.limit:
                return
        held.sort(key=lambda r: int(r["id"]), reverse=query.descending)
        yield from held[:None if query.limit is None else query.limit - found]

    def search_raw(self, query: Query) -> Iterator[Record]:
        """search(): Copper's answers are parsed anyway, so there are no stored bytes to give."""
        return self.search(query)

    def search_report(self) -> SearchReport:
        """What the latest search found about itself (complete? repeats left out?)."""
        return self.pager.report


def _shown_url(url: str) -> str:
    """The URL without any user:password@ it may hold, to show in a message."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
