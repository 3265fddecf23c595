"""Saved searches: search's filters (and sort) kept under a name in the profile, in the config
file beside its settings:

    [profiles.default.searches.my-pipeline]
    status = ["Open"]
    assignee = ["Ada Park"]
    min_value = "50000"
    sort = "monetary_value"
    asc = false

Filters are kept as typed (names, not ids), so a saved search follows renames in the account,
and one naming a stage or owner that is gone fails (exit 4) saying which. Used with more
filters, a filter given replaces the saved one of its kind; the others are ANDed (merge()).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from oppcli.errors import ConfigError, NotFoundError, UsageError

SECTION = "searches"
SORT_KEYS = ("sort", "asc")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_name(name: str) -> str:
    name = name.strip()
    if not _NAME.match(name):
        raise UsageError(f"cannot save a search as {name!r}",
                         "use letters, digits, - _ and . (at most 64, starting with a letter or "
                         "digit)")
    return name


def all_saved(profile: str) -> dict[str, dict[str, Any]]:
    """The profile's saved searches by name, each {filter name: value, sort, asc}."""
    from oppcli.config import read_config

    table = read_config().get("profiles", {}).get(profile, {}).get(SECTION, {})
    if not isinstance(table, dict):
        raise ConfigError(f"[profiles.{profile}.{SECTION}] in the config is not a table",
                          "fix it by hand (`oppcli config path` shows the file)")
    return {str(k): dict(v) for k, v in table.items() if isinstance(v, dict)}


def get(profile: str, name: str) -> dict[str, Any]:
    saved = all_saved(profile)
    found = saved.get(name.strip())
    if found is None:
        known = ", ".join(sorted(saved)) or "none yet"
        raise NotFoundError(f"no saved search {name.strip()!r} in profile {profile!r}",
                            f"saved searches: {known}; save one with `oppcli search FILTERS "
                            "--save NAME`")
    return found


def save(profile: str, name: str, filters: Mapping[str, Any], sort: str | None,
         asc: bool | None) -> None:
    """Keep `filters` (options.gather's {name: value}) and the sort as `name`, replacing a
    search saved under it before (under the config's lock)."""
    from oppcli.config import config_locked, read_config, write_config

    entry: dict[str, Any] = {k: v for k, v in filters.items() if v is not None}
    if sort is not None:
        entry["sort"] = sort
    if asc is not None:
        entry["asc"] = asc
    with config_locked() as path:
        doc = read_config(path)
        table = doc.setdefault("profiles", {}).setdefault(profile, {})
        searches = table.setdefault(SECTION, {})
        if not isinstance(searches, dict):
            raise ConfigError(f"[profiles.{profile}.{SECTION}] in {path} is not a table",
                              "fix it by hand")
        searches[name] = entry
        write_config(doc, path)


def delete(profile: str, name: str) -> None:
    from oppcli.config import config_locked, read_config, write_config

    get(profile, name)  # NotFoundError naming the known ones
    with config_locked() as path:
        doc = read_config(path)
        table = doc.get("profiles", {}).get(profile, {})
        searches = table.get(SECTION, {})
        searches.pop(name.strip(), None)
        if not searches:
            table.pop(SECTION, None)
        write_config(doc, path)


def filters_of(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k not in SORT_KEYS}


def merge(saved: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """The saved filters with those given: a given filter replaces the saved one of its kind
    (both as options.gather gives them), the others stay (all are ANDed)."""
    out = dict(filters_of(saved))
    out.update({k: v for k, v in given.items() if v is not None})
    return out
