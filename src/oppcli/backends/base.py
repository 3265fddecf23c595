"""The Backend protocol every data source implements, and the factory that picks one.

Commands talk only to this interface: they never open files or make HTTP requests.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from oppcli.errors import ConfigError

if TYPE_CHECKING:
    from oppcli.config import Settings
    from oppcli.lookups import Lookups
    from oppcli.query import Query

Record = dict[str, Any]


class Backend(Protocol):
    name: str

    def describe(self) -> str:
        """Where the data lives, for messages ("local store /path")."""

    def lookups(self) -> Lookups:
        """Pipelines with stages, users, sources, loss reasons, custom field definitions..."""

    def date_order(self) -> str:
        """MDY or DMY: the order close_date strings are written in."""

    def get(self, opp_id: int) -> Record:
        """One opportunity; NotFoundError when there is none."""

    def create(self, payload: Mapping[str, Any]) -> Record:
        """Create from checked field values; returns the stored record with its id."""

    def update(self, opp_id: int, changes: Mapping[str, Any],
               current: Record | None = None) -> Record:
        """Change only the given fields (None clears); returns the full updated record.

        `current`: the record as the caller just read it, so a remote backend need not fetch
        it again (the local store reads it under its lock anyway).

        `changes["tags"]` may be a models.TagEdit, applied to the current tags.
        `changes["custom_fields"]` lists only the definitions to change.
        """

    def delete(self, ids: list[int]) -> list[Record]:
        """Delete all or nothing: NotFoundError, before deleting any, if one id is unknown."""

    def search(self, query: Query) -> Iterator[Record]:
        """Matching records in the query's order, at most query.limit of them, streamed."""


def open_backend(settings: Settings, *, debug: bool = False, refresh: bool = False) -> Backend:
    """The backend the settings select; raises ConfigError naming where the choice came from.

    `debug` logs each Copper request to stderr; `refresh` re-fetches Copper's lookup tables.
    """
    kind = settings.backend
    if kind == "local":
        from oppcli.backends.local import LocalStore

        return LocalStore.open(settings.store_path)
    if kind == "copper":
        from oppcli.backends.copper import CopperBackend

        return CopperBackend.from_settings(settings, debug=debug, refresh=refresh)
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
