"""The Copper backend: every command through Copper's developer API.

    backend.py   CopperBackend, the Backend protocol over Copper: records, search, lookups
    paging.py    Pager: a search's pages by keyset, ties, frozen slices fetched ahead
    pool.py      PagePool: the daemon threads that fetch those pages
    http.py      HttpClient: headers, retries, errors mapped to exit codes (requests)
    pacing.py    Pacer, SharedPacer: the rolling rate limit, shared by every process
    lookups.py   LookupTables, CopperLookups: the lookup tables, names resolved in Copper
    cache.py     LookupCache: the lookup tables on disk

The names below are imported from their modules on first use, so that `cache` (which shell
completion reads) can be imported without requests.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from oppcli.backends.copper.backend import CopperBackend
    from oppcli.backends.copper.cache import LookupCache
    from oppcli.backends.copper.http import Answer, HttpClient, error_message, one_line
    from oppcli.backends.copper.lookups import CopperLookups, LookupTables, _person
    from oppcli.backends.copper.pacing import Pacer, SharedPacer, pacing_path
    from oppcli.backends.copper.paging import Pager, _GivenIds, normalise

_HOME = {
    "CopperBackend": "backend",
    "LookupCache": "cache",
    "Answer": "http", "HttpClient": "http", "error_message": "http", "one_line": "http",
    "CopperLookups": "lookups", "LookupTables": "lookups", "_person": "lookups",
    "Pacer": "pacing", "SharedPacer": "pacing", "pacing_path": "pacing",
    "Pager": "paging", "_GivenIds": "paging", "normalise": "paging",
}

__all__ = ["Answer", "CopperBackend", "CopperLookups", "HttpClient", "LookupCache", "LookupTables",
           "Pacer", "Pager", "SharedPacer", "_GivenIds", "_person", "error_message", "normalise",
           "one_line", "pacing_path"]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
