"""The Backend protocol every data source implements, and the factory that picks one.

The library (oppcli.api, oppcli.ops) talks only to this interface: it never opens the store's
files or makes HTTP requests itself. mypy checks it strictly (pyproject [[tool.mypy.overrides]]).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from oppcli.errors import ConfigError, OppcliError

if TYPE_CHECKING:
    from oppcli.config import Settings
    from oppcli.domain.lookups import Lookups
    from oppcli.domain.query import Query

Record = dict[str, Any]
Notice = Callable[[str], None]  # where a backend reports what a person should know (io.Streams)


@dataclass
class Change:
    """One deal of a bulk change: its id, the changes (as update() takes them; unused by
    delete_many) and the record as the caller has it (None: the backend reads it).

    `planned`: (the record after the change, records.changed_fields(current, it)) as the
    caller computed them from `current`; a backend may write that as it is when `current` is
    what it holds (the local store: read from its file, unchanged since), rather than apply
    the changes a second time."""

    id: int
    changes: Mapping[str, Any] = field(default_factory=dict)
    current: Record | None = None
    planned: tuple[Record, Mapping[str, Any]] | None = None


@dataclass
class Outcome:
    """What a bulk change did to one deal: `before` and `after` the write (after None: deleted;
    `written` False: it already had the values, nothing was sent), or the error that stopped
    it (before as far as known)."""

    id: int
    before: Record | None = None
    after: Record | None = None
    error: OppcliError | None = None
    written: bool = True

    @property
    def state(self) -> str:
        """changed, unchanged, deleted or failed."""
        if self.error is not None:
            return "failed"
        if self.after is None:
            return "deleted"
        return "changed" if self.written else "unchanged"


Done = Callable[[Outcome], None]  # told each deal's outcome as soon as it is final
Stopping = Callable[[], bool]  # asked between writes: True means send no more


class SearchReport:
    """What a search found about itself: whether its pass was provably complete (a paging
    method that an edit or delete meanwhile can make skip a record, or a window that cut it,
    makes it not), and the lowest date_modified among newer versions left out as repeats.
    The local store's searches are always complete."""

    def __init__(self) -> None:
        self.complete = True
        self.problems: list[str] = []
        self.repeats = 0
        self.earliest_repeat: int | None = None
        self.total: int | None = None  # how many match, as the service said at the start

    def repeated(self, record: Mapping[str, Any]) -> None:
        self.repeats += 1
        stamp = record.get("date_modified")
        if isinstance(stamp, int) and not isinstance(stamp, bool) and (
                self.earliest_repeat is None or stamp < self.earliest_repeat):
            self.earliest_repeat = stamp


class Backend(Protocol):
    """Everything the library asks of a data source. Callers never probe for more."""

    #: "local" or "copper": what the audit log and export state record.
    name: str
    #: The order a whole-table stream comes fastest in: (field, descending). Export and sync
    #: stream in it, so an interrupted run can resume from a high-water mark.
    stream_order: tuple[str, bool]
    #: The record as it was before the latest update(): what the audit log records as "before".
    last_before: Record | None
    #: Whether each read is a request to a service (Copper): a bulk change then trusts the
    #: records the caller has in hand; the local store reads its own (a read costs nothing).
    remote: bool

    def describe(self) -> str:
        """Where the data lives, for messages ("local store /path")."""
        ...

    def lookups(self) -> Lookups:
        """Pipelines with stages, users, sources, loss reasons, custom field definitions..."""
        ...

    def date_order(self) -> str:
        """MDY or DMY: the order close_date strings are written in."""
        ...

    def timezone(self) -> dt.tzinfo:
        """The zone Date custom fields are midnights in (copper.timezone; the store's)."""
        ...

    def check_writable(self) -> None:
        """Raise (StoreError, ConfigError) before a change that could not be written."""
        ...

    def get(self, opp_id: int) -> Record:
        """One opportunity; NotFoundError when there is none."""
        ...

    def create(self, payload: Mapping[str, Any], *, keep_id: int | None = None) -> Record:
        """Create from checked field values; returns the stored record with its id.

        `keep_id`: give the deal this id (only where next_id() is not None, and only an id
        at or past it); a backend that issues its own ids raises UsageError.
        """
        ...

    def update(self, opp_id: int, changes: Mapping[str, Any],
               current: Record | None = None) -> Record:
        """Change only the given fields (None clears); returns the full updated record.

        `current`: the record as the caller just read it, so a remote backend need not fetch
        it again (the local store reads it under its lock anyway).

        `changes["tags"]` may be a domain.values.TagEdit, applied to the current tags.
        `changes["custom_fields"]` lists only the definitions to change.
        """
        ...

    def delete(self, ids: list[int]) -> list[Record]:
        """Delete all or nothing: NotFoundError, before deleting any, if one id is unknown."""
        ...

    def get_many(self, ids: list[int]) -> dict[int, Record]:
        """The deals with these ids, by id; an unknown id is left out (the caller says so).
        The local store reads them in one pass; Copper with requests in flight at once."""
        ...

    def update_many(self, items: list[Change], done: Done, stopping: Stopping) -> None:
        """Apply each item's changes to its deal, telling `done` every deal's Outcome (a deal
        that already has the values costs no write; a deal that fails, say gone meanwhile
        or refused by a 422, is an Outcome with its error, and the others go on).

        The local store writes all of them in one pass and one atomic replace (all or none,
        then every outcome); Copper sends one PUT per deal that changes, paced, several in
        flight, asking `stopping()` before each: when it says True, nothing more is sent, the
        requests in flight are waited for and told, and the call returns. An error that ends
        the whole run (Copper failing after its retries) is raised after the outcomes of the
        requests that were answered have been told."""
        ...

    def delete_many(self, items: list[Change], done: Done, stopping: Stopping) -> None:
        """Delete each item's deal, as update_many (Outcome.after None when deleted; a deal
        already gone is an Outcome with a NotFoundError)."""
        ...

    def search(self, query: Query) -> Iterator[Record]:
        """Matching records in the query's order, at most query.limit of them, streamed."""
        ...

    def search_raw(self, query: Query) -> Iterator[Record | bytes]:
        """search(), each record as the backend holds it: the local store's JSON line (bytes,
        unparsed: the fast path for JSON output) or a record."""
        ...

    def search_report(self) -> SearchReport:
        """What the latest search found about itself (complete? repeats left out?)."""
        ...

    def exclusive(self) -> AbstractContextManager[None]:
        """Hold off every other writer while a check and the write it decides are made (the
        local store's lock; Copper's API has none, so there it holds nothing)."""
        ...

    def next_id(self) -> int | None:
        """The id the next create gets; None where the service issues ids (Copper)."""
        ...

    def record_confirmed_create(self, record: Record) -> None:
        """A create whose answer was lost, found made after all. The audit wrapper records it
        like any create; a backend itself has nothing to do."""
        ...


def open_backend(settings: Settings, *, debug: bool = False, refresh: bool = False,
                 notice: Notice | None = None) -> Backend:
    """The backend the settings select; raises ConfigError naming where the choice came from.

    `debug` logs each Copper request through `notice`; `refresh` re-fetches Copper's lookup
    tables; `notice` receives what a person should know (a warning, a debug line).
    """
    kind = settings.backend
    if kind == "local":
        from oppcli.backends.local import LocalStore

        store = LocalStore.open(settings.store_path)
        if notice is not None:
            store.warn = lambda message: notice(f"warning: {message}")
        return store
    if kind == "copper":
        from oppcli.backends.copper import CopperBackend

        return CopperBackend.from_settings(settings, debug=debug, refresh=refresh, notice=notice)
    raise ConfigError(f"unknown backend {kind!r} (from {settings.source('backend')})",
                      "valid backends: local, copper")


def describe_local(path: Path) -> str:
    return f"local store {Path(path).expanduser().resolve()}"


def describe_copper(url: str, user_email: str) -> str:
    return f"Copper at {url.rstrip('/')} as {user_email.strip()}"


def describe(settings: Settings) -> tuple[str, str]:
    """(backend name, where its data lives) from the settings alone, without opening the
    backend: what the audit log and export state files record, and what `history` filters on."""
    if settings.backend == "copper":
        return "copper", describe_copper(str(settings.values["copper.url"]),
                                         str(settings.values.get("copper.user_email") or ""))
    return "local", describe_local(settings.store_path)
