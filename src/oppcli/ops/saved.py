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
    """One saved search, its values checked (check_entry); NotFoundError naming the others."""
    found = _find(profile, name)
    check_entry(profile, name.strip(), found)
    return found


def _find(profile: str, name: str) -> dict[str, Any]:
    saved = all_saved(profile)
    found = saved.get(name.strip())
    if found is None:
        known = ", ".join(sorted(saved)) or "none yet"
        raise NotFoundError(f"no saved search {name.strip()!r} in profile {profile!r}",
                            f"saved searches: {known}; save one with `oppcli search FILTERS "
                            "--save NAME`")
    return found


def check_entry(profile: str, name: str, entry: Mapping[str, Any]) -> None:
    """ConfigError (exit 3) for what only editing the file by hand can put in a saved search:
    an unknown key, a sort that is not text, an asc that is not true/false, a filter that is
    not text (or a number), nor a list of them for a repeatable one. The values themselves
    are checked where they are used, as flags are."""
    from oppcli.domain import options as O

    by_keyword = {k: o for o in O.FILTERS for k in o.keywords()}
    where = f"saved search {name!r} in profile {profile!r}"
    table = ".".join(k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else f'"{k}"'
                     for k in ("profiles", profile, SECTION, name))
    hint = (f"fix [{table}] in the config file (`oppcli config path`), or `oppcli saved "
            f"delete {name}` and save it again")
    for key, value in entry.items():
        if key == "sort":
            ok, want = isinstance(value, str), "a field name in quotes"
        elif key == "asc":
            ok, want = isinstance(value, bool), "true or false"
        elif key in by_keyword:
            many = by_keyword[key].many
            ok = _scalar(value) or (many and isinstance(value, list)
                                    and all(_scalar(v) for v in value))
            want = "text in quotes" + (", or a list of them" if many else "")
        else:
            raise ConfigError(f"{where} has an unknown key {key!r}", hint)
        if not ok:
            raise ConfigError(f"{where}: {key} must be {want}, not {_toml(value)}", hint)


def _toml(value: Any) -> str:
    import datetime as dt

    if isinstance(value, (dt.date, dt.time)):
        return f"the TOML date/time {value.isoformat()} (put it in quotes)"
    return repr(value)


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


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

    _find(profile, name)  # NotFoundError naming the known ones (a broken one goes too)
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
    (both as options.gather gives them), the others stay (all are ANDed). Each custom field
    is a kind of its own: `--custom-field Region=EMEA` replaces the saved Region criteria and
    keeps those on other fields."""
    out = dict(filters_of(saved))
    for key, value in given.items():
        if value is None:
            continue
        if key == "custom_field" and isinstance(out.get(key), list):
            named = {_cf_name(v) for v in value}
            value = [v for v in out[key] if _cf_name(v) not in named] + list(value)
        out[key] = value
    return out


def _cf_name(criterion: Any) -> str:
    """The field a --custom-field criterion is on: the text before its =, >= or <=."""
    text = str(criterion)
    cut = min((i for i in (text.find(op) for op in ("=", ">", "<")) if i >= 0), default=len(text))
    return " ".join(text[:cut].split()).casefold()
