"""A bulk change for people and for scripts: per deal, each field as it is and as it would be
(or was made). JSON: {"id", "name", "changes": {field: [before, after]}} per deal (and
"result", "error" after a run); a table: one row per changed field, values by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any

from oppcli.output.display import Context
from oppcli.output.tables import _Col, _print_table
from oppcli.output.text import visible

ARROW = "->"


def write_change_rows(rows: Iterable[Mapping[str, Any]], fmt: str, out: IO[bytes]) -> None:
    """json (one array, streamed) or jsonl (an object per line)."""
    import orjson

    if fmt == "jsonl":
        for row in rows:
            out.write(orjson.dumps(row) + b"\n")
        out.flush()
        return
    out.write(b"[")
    first = True
    for row in rows:
        out.write((b"\n  " if first else b",\n  ") + orjson.dumps(row))
        first = False
    out.write(b"]\n" if first else b"\n]\n")
    out.flush()


def cell(ctx: Context, name: str, value: Any) -> str:
    """A changed field's value for people: names for ids, custom fields by name."""
    if name == "custom_fields" and isinstance(value, list):
        pairs = ctx.custom_cells(value)
        return "; ".join(f"{label}: {text}" for label, text in pairs) or "(empty)"
    text = ctx.display(name, value, with_id=name == "pipeline_stage_id")
    return text if text != "" else "(empty)"


def write_changes_table(previews: Sequence[Any], out: IO[str], ctx: Context, *, title: str,
                        limit: int | None = None, style: Mapping[str, Any] | None = None) -> None:
    """One row per changed field (the deal's id and name on its first row): field, now,
    would be. At most `limit` deals, then a line saying how many more."""
    ids, names, fields, was, now = [], [], [], [], []
    shown = previews if limit is None else previews[:limit]
    for p in shown:
        first = True
        items = list(p.changes.items()) or [("", ["", ""])]
        for name, (before, after) in items:
            ids.append(str(p.id) if first else "")
            names.append(visible(str(p.name or "")) if first else "")
            fields.append(name)
            was.append(visible(cell(ctx, name, before)) if name else "")
            now.append(visible(cell(ctx, name, after)) if name else "")
            first = False
    if len(shown) < len(previews):
        ids.append("...")
        names.append(f"and {len(previews) - len(shown):,} more")
        fields.append("")
        was.append("")
        now.append("")
    cols = [_Col("id", ids, whole=True), _Col("name", names), _Col("field", fields, whole=True),
            _Col("now", was), _Col("after", now)]
    _print_table(out, cols, wrap=True, boxed=True, title=visible(title), style=style)
