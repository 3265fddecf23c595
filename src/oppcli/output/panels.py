"""The titled, boxed tables that are not records: the audit log (`history`), the lookup tables
(`lookups`) and the settings (`config show`). Laid out and drawn as tables.py draws records:
every cell shown literally, Rich imported only to draw.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import IO, Any

from oppcli.domain.lookups import Lookups
from oppcli.output.tables import _Col, _console, _print_table
from oppcli.output.text import visible


def write_history_table(entries: Sequence[dict[str, Any]], out: IO[str], title: str, *,
                        style: Mapping[str, Any] | None = None) -> None:
    """The audit log for people: one row per entry, newest first as given."""
    from oppcli.ops.audit import changed_keys

    if not entries:
        _console(out, style=style).print("No changes recorded.", style="dim")
        return
    rows = []
    for e in entries:
        when = dt.datetime.fromtimestamp(float(e.get("at") or 0), dt.UTC).strftime(
            "%Y-%m-%d %H:%M:%S")
        change = str(e.get("op")) + (f" (undo of {e['undo_of']})" if e.get("undo_of") else "")
        if "deals" in e:  # a bulk change: one line (ops.audit.by_batch)
            deals = e["deals"]
            change = f"bulk {change}"
            first = f"{deals[0].get('id')} {deals[0].get('name')}" if deals else ""
            name = f"{e.get('count')} deals: {first}" + (", ..." if len(deals) > 1 else "")
            fields = ", ".join(e.get("fields") or [])
        else:
            rec = e.get("after") or e.get("before") or {}
            name = f"{e.get('id')} {rec['name']}" if rec.get("name") else str(e.get("id"))
            fields = ", ".join(changed_keys(e.get("before"), e.get("after")))
        rows.append([visible(str(c)) for c in (e.get("audit_id"), when, change, name, fields,
                                               e.get("profile"))])
    heads = ("audit id", "when (UTC)", "change", "opportunity", "fields", "profile")
    cols = [_Col(h, [r[i] for r in rows], whole=i < 2) for i, h in enumerate(heads)]
    _print_table(out, cols, wrap=True, boxed=True, title=title, style=style)


def write_lookup_tables(lookups: Lookups, tables: Sequence[str], out: IO[str], *,
                        style: Mapping[str, Any] | None = None) -> None:
    """Lookup tables for people: id, name and a detail for each row."""
    for name in tables:
        ids, names_, details = [], [], []
        for r in lookups.rows(name):
            detail = ""
            if name == "stages":
                detail = f"{r['pipeline_name']}, {r.get('win_probability')}%"
            elif name in ("users", "people") and r.get("email"):
                detail = str(r["email"])
            elif name == "custom_field_definitions":
                opts = ", ".join(str(o["name"]) for o in r.get("options") or [])
                detail = str(r.get("data_type", "")) + (f": {opts}" if opts else "")
            ids.append(visible(str(r["id"])))
            names_.append(visible(str(r.get("name"))))
            details.append(visible(detail))
        _print_table(out, [_Col("id", ids, whole=True), _Col("name", names_),
                           _Col("detail", details)], wrap=True, boxed=True, title=name,
                     style=style)


def write_pairs_table(pairs: Sequence[tuple[str, str]], heads: tuple[str, str], title: str,
                      out: IO[str], *, style: Mapping[str, Any] | None = None) -> None:
    """Two columns, names and what they stand for (`saved list`), shown literally."""
    cols = [_Col(heads[0], [visible(a) for a, _ in pairs], whole=True),
            _Col(heads[1], [visible(b) for _, b in pairs])]
    _print_table(out, cols, wrap=True, boxed=True, title=visible(title), style=style)


def write_settings_table(rows: Sequence[Mapping[str, Any]], title: str, out: IO[str], *,
                         style: Mapping[str, Any] | None = None) -> None:
    """`config show`: key, value and where it came from, shown literally."""
    cols = [_Col("key", [visible(str(r["key"])) for r in rows], whole=True),
            _Col("value", [visible("" if r["value"] is None else str(r["value"])) for r in rows]),
            _Col("source", [visible(str(r["source"])) for r in rows])]
    _print_table(out, cols, wrap=True, boxed=True, title=visible(title), style=style)
