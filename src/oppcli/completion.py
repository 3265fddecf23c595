"""Shell-completion candidates: static choices, and names and ids from the local store.

Completion never makes a network request: names come from the local store's lookups.json
(a small file) and ids from a byte scan of opportunities.jsonl. Any failure completes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import typer

from oppcli import fields as F

_ID_AT_LINE_START = re.compile(rb'(?:^|\n)\{"id":(\d+)[,}]')


def _root_params(ctx: Any) -> dict[str, Any]:
    while ctx is not None and ctx.parent is not None:
        ctx = ctx.parent
    return dict(ctx.params) if ctx is not None else {}


def _store(ctx: Any) -> Any:
    from oppcli.backends.local import LocalStore
    from oppcli.config import load_settings

    params = _root_params(ctx)
    flags = {"store": str(params["store"]) if params.get("store") else None,
             "backend": params.get("backend")}
    settings = load_settings(profile=params.get("profile"), flags=flags)
    if settings.backend != "local":
        return None
    return LocalStore.open(settings.store_path)


def _matching(values: list[str], incomplete: str) -> list[str]:
    low = incomplete.casefold()
    head, sep, last = incomplete.rpartition(",")
    if sep:  # comma-separated lists complete their last item
        return [f"{head},{v}" for v in values if v.casefold().startswith(last.casefold())]
    return [v for v in values if v.casefold().startswith(low)]


def choices(values: tuple[str, ...]) -> Callable[[str], list[str]]:
    def complete(incomplete: str) -> list[str]:
        return _matching(list(values), incomplete)
    return complete


def names(table: str) -> Callable[[typer.Context, str], list[str]]:
    """Names from a lookup table of the selected local store (stages also as Pipeline/Stage)."""
    def complete(ctx: typer.Context, incomplete: str) -> list[str]:
        try:
            store = _store(ctx)
            if store is None:
                return []
            lk = store.lookups()
        except Exception:
            return []
        rows = lk.rows(table)
        found = [str(r["name"]) for r in rows]
        if table == "stages":
            found += [f"{r['pipeline_name']}/{r['name']}" for r in rows]
        if table in ("users", "people"):
            found += [str(r["email"]) for r in rows if r.get("email")]
        return _matching(sorted(set(found), key=found.index), incomplete)
    return complete


def custom_fields(ctx: typer.Context, incomplete: str) -> list[str]:
    try:
        store = _store(ctx)
        defs = store.lookups().opportunity_fields() if store is not None else []
    except Exception:
        return []
    name, sep, value = incomplete.partition("=")
    if not sep:
        return [d["name"] + "=" for d in defs if d["name"].casefold().startswith(name.casefold())]
    for d in defs:
        if d["name"].casefold() == name.casefold():
            options = [o["name"] for o in d.get("options") or []]
            if d.get("data_type") == "Checkbox":
                options = ["true", "false"]
            return [f"{d['name']}={o}" for o in options if o.casefold().startswith(value.casefold())]
    return []


def ids(ctx: typer.Context, incomplete: str) -> list[str]:
    """Opportunity ids of the local store, by a byte scan (no parsing)."""
    try:
        store = _store(ctx)
        if store is None:
            return []
        data = store.data_path.read_bytes()
    except Exception:
        return []
    prefix = incomplete.encode()
    out = [m.decode() for m in _ID_AT_LINE_START.findall(data) if m.startswith(prefix)]
    return out[:500]


def field_names(incomplete: str) -> list[str]:
    return _matching(list(F.FIELD_NAMES), incomplete)
