"""Copper's lookup tables: fetched (or read from the cache) on first use, and names resolved.

LookupTables fetches the tables and keeps them in the cache (cache.LookupCache); CopperLookups is
the domain's Lookups over them, searching Copper for companies and people by name.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from oppcli.backends.copper.paging import PAGE_SIZE
from oppcli.domain.lookups import LABELS, Lookups, _norm
from oppcli.errors import NotFoundError, ServiceError

if TYPE_CHECKING:
    from oppcli.backends.copper.cache import LookupCache
    from oppcli.backends.copper.http import HttpClient


class LookupTables:
    """Where the lookup tables come from: the cache when fresh, else Copper (then cached).

    `refresh`: fetch from Copper the first time, whatever the cache holds (`--refresh`).
    """

    def __init__(self, client: HttpClient, cache: LookupCache | None = None,
                 refresh: bool = False) -> None:
        self.client = client
        self.cache = cache
        self.refresh = refresh

    def load(self, *, refresh: bool = False) -> tuple[dict[str, Any], bool]:
        """(tables, fetched now): from the cache when fresh, else from Copper (then cached)."""
        if self.cache is not None and not (refresh or self.refresh):
            tables = self.cache.load()
            if tables is not None:
                self.client.log(f"lookups from the cache {self.cache.path}")
                return tables, False
        tables = self.fetch()
        if self.cache is not None:
            self.cache.save(tables)
        self.refresh = False
        return tables, True

    def fetch(self) -> dict[str, Any]:
        """Every table from Copper (companies and people are searched by name instead)."""
        c = self.client
        tables: dict[str, Any] = {
            "pipelines": _rows(c.call("GET", "/pipelines").body),
            "users": list(self._paged("/users/search", {})),
            "customer_sources": _rows(c.call("GET", "/customer_sources").body),
            "loss_reasons": _rows(c.call("GET", "/loss_reasons").body),
            "custom_field_definitions": _rows(c.call("GET", "/custom_field_definitions").body),
            "companies": [], "people": [],
        }
        from oppcli.domain.lookups import lookups_problem

        problem = lookups_problem(tables)
        if problem:
            raise ServiceError(f"Copper's lookup tables are not as expected: {problem}")
        return tables

    def find_named(self, table: str, text: str) -> list[dict[str, Any]]:
        """Companies or people Copper finds for a name (or, for people, an email)."""
        if table == "people" and "@" in text:
            try:
                person = self.client.call("POST", "/people/fetch_by_email", {"email": text}).body
            except NotFoundError:
                return []
            return [_person(person)] if isinstance(person, dict) else []
        rows = self.client.call("POST", f"/{table}/search",
                                {"name": text, "page_size": PAGE_SIZE, "page_number": 1}).body
        rows = [r for r in _rows(rows) if isinstance(r.get("id"), int)]
        if table == "people":
            rows = [_person(r) for r in rows]
        exact = [r for r in rows if _norm(str(r.get("name", ""))) == _norm(text)]
        return exact or rows

    def _paged(self, path: str, body: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            rows = _rows(self.client.call("POST", path, {**body, "page_size": PAGE_SIZE,
                                                         "page_number": page}).body)
            yield from rows
            if len(rows) < PAGE_SIZE:
                return
            page += 1


class CopperLookups(Lookups):
    """Lookups fetched (or read from the cache) on first use.

    Companies and people are too many to fetch: names are searched in Copper when resolved.
    A name that the cached tables do not know refreshes them once before failing, so a stage
    added in Copper's app since the last fetch is found.
    """

    def __init__(self, tables: LookupTables, tz: dt.tzinfo) -> None:  # noqa: D107 -- loaded lazily
        self._tables = tables
        self._refreshed = False
        self.tz = tz

    def __getattr__(self, name: str) -> Any:
        if name in ("data", "stages", "_by_id"):
            tables, self._refreshed = self._tables.load()
            Lookups.__init__(self, tables, self.tz)
            return self.__dict__[name]
        raise AttributeError(name)

    def _reload(self) -> bool:
        if self._refreshed:
            return False
        tables, _ = self._tables.load(refresh=True)
        Lookups.__init__(self, tables, self.tz)
        self._refreshed = True
        return True

    def resolve(self, table: str, text: str | int, *, pipeline_ids: Any = ()) -> int:
        if table in ("companies", "people") and isinstance(text, str):
            raw = text.strip()
            if raw and not raw.lstrip("-").isdigit():
                rows = self._tables.find_named(table, raw)
                if not rows:
                    raise NotFoundError(f"no {LABELS[table]} named {raw!r} in Copper",
                                        "check the spelling, or give the id")
                return Lookups({table: rows}).resolve(table, raw)
        try:
            return super().resolve(table, text, pipeline_ids=pipeline_ids)
        except NotFoundError:
            if self._reload():
                return super().resolve(table, text, pipeline_ids=pipeline_ids)
            raise

    def has(self, table: str, ident: int) -> bool:
        """An id the cached tables lack refreshes them once: it may be new in Copper."""
        return super().has(table, ident) or (self._reload() and super().has(table, ident))

    def custom_field(self, text: str) -> dict[str, Any]:
        try:
            return super().custom_field(text)
        except NotFoundError:
            if self._reload():
                return super().custom_field(text)
            raise


def _rows(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, list):
        raise ServiceError("Copper answered a list request with something else")
    return [r for r in body if isinstance(r, dict)]


def _person(row: Mapping[str, Any]) -> dict[str, Any]:
    """A Copper person as the lookup tables hold people: id, name, email, company_id."""
    emails = row.get("emails") or []
    email = next((e.get("email") for e in emails if isinstance(e, dict) and e.get("email")), None)
    return {"id": row.get("id"), "name": row.get("name") or "", "email": email or row.get("email"),
            "company_id": row.get("company_id")}
