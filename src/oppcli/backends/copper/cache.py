"""The Copper lookup tables cached on disk, so repeated searches by names cost no requests.

Separate from the Copper client so that shell completion can read the cache without
importing requests (and without ever touching the network).
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from oppcli.config import Settings

CACHE_FORMAT = "oppcli-copper-lookups"


class LookupCache:
    """Lookup tables on disk, one file per (URL, user), 0600 in a 0700 directory, with expiry."""

    def __init__(self, directory: Path, url: str, user_email: str, ttl: float,
                 api_key: str = "", notice: Callable[[str], None] | None = None) -> None:
        # One email can belong to two Copper accounts with two keys: the key is part of the
        # file's identity (hashed twice over; the key itself is never written anywhere).
        key_id = hashlib.sha256(api_key.encode()).hexdigest()
        ident = hashlib.sha256(f"{url.rstrip('/')}\n{user_email.casefold()}\n{key_id}".encode()
                               ).hexdigest()
        self.path = directory / f"copper-lookups-{ident[:16]}.json"
        self.url = url.rstrip("/")
        self.user_email = user_email
        self.ttl = ttl
        self.notice = notice  # receives the warning when the cache cannot be written (else stderr)

    @classmethod
    def for_settings(cls, settings: Settings, *,
                     notice: Callable[[str], None] | None = None) -> LookupCache:
        from oppcli.config import cache_dir

        settings.resolve_api_key()  # the key is part of the file's identity (see __init__)
        values = settings.values
        return cls(cache_dir(), str(values["copper.url"]),
                   str(values.get("copper.user_email") or "").strip(),
                   settings.number("copper.cache_ttl"),
                   str(values.get("copper.api_key") or "").strip(), notice)

    def load(self, *, fresh_only: bool = True) -> dict[str, Any] | None:
        """The cached tables, or None when missing, unreadable, for someone else, or stale."""
        from oppcli.domain.lookups import lookups_problem

        try:
            doc = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        if not isinstance(doc, dict) or doc.get("format") != CACHE_FORMAT:
            return None
        if doc.get("url") != self.url or str(doc.get("user_email", "")).casefold() != \
                self.user_email.casefold():
            return None
        fetched = doc.get("fetched_at")
        if not isinstance(fetched, (int, float)):
            return None
        if fresh_only and not (0 <= time.time() - fetched < self.ttl):
            return None
        tables = doc.get("tables")
        if lookups_problem(tables) is not None:
            return None
        return tables

    def save(self, tables: Mapping[str, Any]) -> None:
        from oppcli.util.files import atomic_write

        doc = {"format": CACHE_FORMAT, "version": 1, "url": self.url,
               "user_email": self.user_email, "fetched_at": time.time(), "tables": tables}
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.path.parent, 0o700)  # also when it existed with a looser mode
            atomic_write(self.path, orjson.dumps(doc), mode=0o600)
        except OSError as exc:  # a cache that cannot be written only costs speed
            message = f"warning: cannot write the lookup cache {self.path}: {exc.strerror}"
            if self.notice is not None:
                self.notice(message)
            else:
                print(f"oppcli: {message}", file=sys.stderr)
