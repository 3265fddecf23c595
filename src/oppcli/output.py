"""Every output format in one place: table (Rich), json, jsonl, csv, tsv.

stdout carries data only; Rich is imported only when a table is drawn.
Rules (documented in the README):
- json: an array of records, one compact record per line (`[]` when empty); a single record
  (show, create, update) is one indented object. Exactly the API's field names and types.
- jsonl: one compact record per line, streamed as records arrive.
- csv/tsv: a header row; null is an empty cell; tags are joined with ";"; custom fields become
  one column each, headed "cf:<definition name>", holding option names, ISO dates and
  true/false; ids stay ids. In CSV a text cell starting with = + - @ (or tab/CR) gets a leading
  ' so a spreadsheet does not run it (--raw turns that off). In TSV, backslash, tab, newline and
  carriage return inside a cell are written as \\\\, \\t, \\n, \\r.
"""

from __future__ import annotations

import csv
import datetime as dt
import sys
from collections.abc import Hashable, Iterable, Iterator, Sequence
from typing import IO, Any

import orjson

from oppcli import fields as F
from oppcli.lookups import Lookups
from oppcli.models import stored_close_date

FORMATS = ("table", "json", "jsonl", "csv", "tsv")
TAG_SEPARATOR = ";"
CF_PREFIX = "cf:"
_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
Record = dict[str, Any]


def default_format(stream: IO[str] | None = None) -> str:
    stream = stream or sys.stdout
    try:
        return "table" if stream.isatty() else "json"
    except (AttributeError, ValueError):
        return "json"


def project(record: Record, names: Sequence[str] | None) -> Record:
    if not names:
        return record
    return {n: record.get(n) for n in names}


class Context:
    """What formatters need besides the records: lookups for names, the date order."""

    def __init__(self, lookups: Lookups | None, date_order: str = "MDY") -> None:
        self.lookups = lookups or Lookups()
        self.date_order = date_order

    # ---- human-readable cells ------------------------------------------------------------
    def display(self, name: str, value: Any, *, with_id: bool = False) -> str:
        if value is None:
            return ""
        fld = F.BY_NAME.get(name)
        kind = fld.kind if fld else F.STR
        if kind == F.REF and fld and fld.lookup:
            label = self.lookups.name_of(fld.lookup, value)
            if label is None:
                return str(value)
            return f"{label} ({value})" if with_id else label
        if kind == F.DATE:
            day = stored_close_date(value, self.date_order)
            return day.isoformat() if day else str(value)
        if kind == F.TIMESTAMP and isinstance(value, (int, float)):
            return dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        if kind == F.MONEY and isinstance(value, (int, float)):
            if isinstance(value, float) and not value.is_integer():
                return f"{value:,.2f}"
            return f"{int(value):,}"
        if kind == F.TAGS and isinstance(value, list):
            return ", ".join(map(str, value))
        if kind == F.CUSTOM and isinstance(value, list):
            return "; ".join(f"{n}={v}" for n, v in self.custom_cells(value) if v != "")
        if isinstance(value, bool):
            return "yes" if value else "no"
        return str(value)

    def custom_cells(self, values: list[Any]) -> list[tuple[str, str]]:
        """(definition name, readable value) for each custom field of a record."""
        out = []
        for cf in values:
            ident = cf.get("custom_field_definition_id")
            defn = next((d for d in self.lookups.data["custom_field_definitions"]
                         if d["id"] == ident), None)
            name = defn["name"] if defn else str(ident)
            out.append((name, self.custom_value(defn, cf.get("value"))))
        return out

    def custom_value(self, defn: dict[str, Any] | None, value: Any) -> str:
        if value is None:
            return ""
        kind = defn.get("data_type") if defn else None
        if defn and kind == "Dropdown":
            return self.lookups.option_name(defn, value)
        if defn and kind == "MultiSelect" and isinstance(value, list):
            return TAG_SEPARATOR.join(self.lookups.option_name(defn, v) for v in value)
        if kind == "Date" and isinstance(value, (int, float)):
            return dt.datetime.fromtimestamp(value, dt.UTC).date().isoformat()
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, list):
            return TAG_SEPARATOR.join(map(str, value))
        return str(value)


# ---- machine formats ------------------------------------------------------------------------
def write_json(records: Iterable[Record | bytes], out: IO[bytes],
               names: Sequence[str] | None) -> int:
    """An array with one compact record per line. Records may come as their JSON bytes."""
    count = 0
    for rec in records:
        out.write(b"[\n" if count == 0 else b",\n")
        out.write(rec if isinstance(rec, bytes) else orjson.dumps(project(rec, names)))
        count += 1
    out.write(b"[]\n" if count == 0 else b"\n]\n")
    return count


def write_one_json(record: Record, out: IO[bytes], names: Sequence[str] | None) -> None:
    out.write(orjson.dumps(project(record, names), option=orjson.OPT_INDENT_2) + b"\n")


def write_jsonl(records: Iterable[Record | bytes], out: IO[bytes],
                names: Sequence[str] | None) -> int:
    """One compact record per line, flushed as it arrives. Records may come as JSON bytes."""
    count = 0
    for rec in records:
        out.write((rec if isinstance(rec, bytes) else orjson.dumps(project(rec, names))) + b"\n")
        count += 1
        if count % 256 == 0:
            out.flush()
    out.flush()
    return count


def csv_columns(names: Sequence[str] | None, ctx: Context) -> list[tuple[str, Any]]:
    """(header, field name or custom field definition) for each column."""
    chosen = list(names) if names else list(F.FIELD_NAMES)
    cols: list[tuple[str, Any]] = []
    for n in chosen:
        if n == "custom_fields":
            cols.extend((CF_PREFIX + d["name"], d) for d in ctx.lookups.opportunity_fields())
        else:
            cols.append((n, n))
    return cols


def _row_maker(cols: Sequence[tuple[str, Any]], ctx: Context, raw: bool) -> Any:
    """A function giving a record's cells, one per column, neutralised unless `raw`: the
    column dispatch is decided once here, not per cell (CSV export runs it for every cell of
    every record)."""
    danger = frozenset() if raw else _DANGER_FIRST

    def text(value: str) -> str:
        return value if value[:1] not in danger else neutralise(value)

    def field_cell(name: str) -> Any:
        def cell(rec: Record, _cfs: dict[Any, Any]) -> Any:
            value = rec.get(name)
            if type(value) is str:
                return text(value)
            if value is None:
                return ""
            if type(value) is int or type(value) is float:
                return value
            if isinstance(value, bool):
                return "true" if value else "false"
            if isinstance(value, list):
                if name == "tags":
                    return text(TAG_SEPARATOR.join(map(str, value)))
                return orjson.dumps(value).decode()
            if isinstance(value, dict):
                return orjson.dumps(value).decode()
            return text(value) if isinstance(value, str) else value
        return cell

    def custom_cell(defn: dict[str, Any]) -> Any:
        ident, number = defn["id"], defn.get("data_type") in F.CF_NUMBER_TYPES
        custom_value = ctx.custom_value

        def cell(_rec: Record, cfs: dict[Any, Any]) -> Any:
            if ident not in cfs:
                return ""
            value = cfs[ident]
            if number and isinstance(value, (int, float)) and not isinstance(value, bool):
                return value  # a number, not text: never neutralised
            return text(custom_value(defn, value))
        return cell

    cells = [custom_cell(c) if isinstance(c, dict) else field_cell(c) for _, c in cols]
    wants_custom = any(isinstance(c, dict) for _, c in cols)

    def row(rec: Record) -> list[Any]:
        cfs: dict[Any, Any] = {}
        if wants_custom:
            for cf in reversed(rec.get("custom_fields") or ()):  # the first of a repeat wins
                ident = cf.get("custom_field_definition_id")
                if isinstance(ident, Hashable):  # a hand-edited list or object id: no column
                    cfs[ident] = cf.get("value")
        return [cell(rec, cfs) for cell in cells]
    return row


_DANGER_FIRST = frozenset(c[0] for c in _DANGEROUS) | {"'"}


def neutralise(value: Any) -> Any:
    """A text cell a spreadsheet would run gets a leading '; so does one that already starts
    with quotes before such a character, so that import can take exactly one off again."""
    if isinstance(value, str) and value[:1] in _DANGER_FIRST \
            and value.lstrip("'").startswith(_DANGEROUS):
        return "'" + value
    return value


def unneutralise(text: str) -> str:
    """What neutralise() took: import reads back the text that was exported."""
    if text.startswith("'") and text.lstrip("'").startswith(_DANGEROUS):
        return text[1:]
    return text


def _tsv_escape(value: Any) -> str:
    text = str(value)
    return (text.replace("\\", "\\\\").replace("\t", "\\t")
            .replace("\n", "\\n").replace("\r", "\\r"))


def write_delimited(records: Iterable[Record], out: IO[str], names: Sequence[str] | None,
                    ctx: Context, *, tsv: bool = False, raw: bool = False) -> int:
    cols = csv_columns(names, ctx)
    headers = [h for h, _ in cols]
    cells = _row_maker(cols, ctx, raw=raw or tsv)
    count = 0
    if tsv:
        out.write("\t".join(_tsv_escape(h) for h in headers) + "\n")
        for rec in records:
            out.write("\t".join(_tsv_escape(v) for v in cells(rec)) + "\n")
            count += 1
        return count
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers)
    for rec in records:
        writer.writerow(cells(rec))
        count += 1
    return count


# ---- tables -----------------------------------------------------------------------------
def _console(stream: IO[str]) -> Any:
    from rich.console import Console

    class QuietPipeConsole(Console):
        def on_broken_pipe(self) -> None:  # Rich would exit 1 itself; the CLI ends quietly
            raise BrokenPipeError

    return QuietPipeConsole(file=stream, highlight=False, soft_wrap=False)


def write_table(records: Iterable[Record], out: IO[str], names: Sequence[str] | None,
                ctx: Context, *, more: bool = False) -> int:
    from rich import box
    from rich.table import Table

    cols = list(names) if names else list(F.TABLE_DEFAULT)
    rows: list[list[str]] = []
    count = 0
    total = 0.0
    weighted = 0.0
    for rec in records:
        rows.append([ctx.display(n, rec.get(n)) for n in cols])
        count += 1
        weighted += weighted_value(rec)
        value = rec.get("monetary_value")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            total += value
    console = _console(out)
    name_width = None
    if not names:  # default columns: drop the least useful ones until the rest fit
        cols, rows, name_width = _fit(cols, rows, console.width)
    table = Table(box=box.SIMPLE_HEAD, show_footer=False, pad_edge=False)
    numeric = {F.INT, F.MONEY, F.PERCENT}
    for n in cols:
        fld = F.BY_NAME[n]
        wraps = fld.kind in (F.STR, F.TEXT, F.TAGS, F.CUSTOM)
        table.add_column(fld.column or n, justify="right" if fld.kind in numeric else "left",
                         overflow="ellipsis" if wraps else "fold", no_wrap=True,
                         max_width=name_width if n == "name" else None,
                         min_width=min(16, name_width or 16) if wraps else None)
    for row in rows:
        table.add_row(*row)
    console = _console(out)
    if count == 0:
        console.print("No opportunities match.", style="dim")
        return 0
    console.print(table)
    noun = "opportunity" if count == 1 else "opportunities"
    shown = f"showing the first {count:,}; more match (use --all or --limit N)" if more else ""
    console.print(f"{count:,} {noun}   total value {_money(total)}   "
                  f"weighted {_money(weighted)}" + (f"   [dim]{shown}[/dim]" if shown else ""))
    return count


def weighted_value(rec: Record) -> float:
    """Expected value: Won deals count in full, Lost and Abandoned not at all, Open ones at
    their win probability."""
    value = rec.get("monetary_value")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return 0.0
    status = rec.get("status")
    if status == "Won":
        return float(value)
    if status in ("Lost", "Abandoned"):
        return 0.0
    prob = rec.get("win_probability")
    return value * prob / 100 if isinstance(prob, (int, float)) else 0.0


DROP_ORDER = ("priority", "win_probability", "close_date", "assignee_id", "pipeline_stage_id")


def _fit(cols: list[str], rows: list[list[str]],
         width: int) -> tuple[list[str], list[list[str]], int | None]:
    """Drop columns in DROP_ORDER until the rest fit; returns the name column's width budget."""
    def col_width(n: str) -> int:
        i = cols.index(n)
        head = len(F.BY_NAME[n].column or n)
        return max(max((len(r[i]) for r in rows), default=0), head) + 3

    def need(c: list[str]) -> int:
        return sum(min(col_width(n), 24) if n == "name" else col_width(n) for n in c)

    keep = list(cols)
    for victim in DROP_ORDER:
        if need(keep) <= width:
            break
        if victim in keep:
            keep.remove(victim)
    index = [cols.index(n) for n in keep]
    others = sum(col_width(n) for n in keep if n != "name")
    name_width = max(12, width - others - 4) if "name" in keep else None
    return keep, [[r[i] for i in index] for r in rows], name_width


def _money(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def write_record_table(record: Record, out: IO[str], names: Sequence[str] | None,
                       ctx: Context) -> None:
    """One record as a two-column table: every field, custom fields by definition name."""
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE, show_header=False, pad_edge=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for n in (names or F.FIELD_NAMES):
        value = record.get(n)
        if n == "custom_fields":
            for cf_name, cf_value in ctx.custom_cells(value or []):
                table.add_row(cf_name, cf_value)
            continue
        table.add_row(n, ctx.display(n, value, with_id=True))
    extras = [k for k in record if k not in F.BY_NAME] if not names else []
    for k in extras:
        table.add_row(k, "" if record[k] is None else str(record[k]))
    _console(out).print(table)


# ---- the entry points commands use --------------------------------------------------------
def emit_many(records: Iterator[Record], fmt: str, ctx: Context, *,
              names: Sequence[str] | None = None, raw: bool = False, more: bool = False) -> int:
    """Write a list of records to stdout in the format; returns how many."""
    if fmt == "table":
        return write_table(records, sys.stdout, names, ctx, more=more)
    return int(_bin(lambda b: write_many(records, fmt, b, ctx, names=names, raw=raw)))


def write_many(records: Iterator[Record], fmt: str, out: IO[bytes], ctx: Context, *,
               names: Sequence[str] | None = None, raw: bool = False) -> int:
    """Write records to a binary file in a machine format (json, jsonl, csv, tsv), streaming:
    constant memory whatever the count. Returns how many."""
    if fmt == "json":
        return write_json(records, out, names)
    if fmt == "jsonl":
        return write_jsonl(records, out, names)
    import io

    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    try:
        return write_delimited(records, text, names, ctx, tsv=fmt == "tsv", raw=raw)
    finally:
        text.flush()
        text.detach()


def emit_one(record: Record, fmt: str, ctx: Context, *, names: Sequence[str] | None = None,
             raw: bool = False) -> None:
    """Write one record: an object in json, a line in jsonl, one row in csv/tsv."""
    if fmt == "json":
        _bin(lambda b: write_one_json(record, b, names))
    elif fmt == "table":
        write_record_table(record, sys.stdout, names, ctx)
    else:
        emit_many(iter([record]), fmt, ctx, names=names, raw=raw)


def _bin(write: Any) -> Any:
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # a text-only stream (some test runners): encode ourselves
        import io

        tmp = io.BytesIO()
        result = write(tmp)
        sys.stdout.write(tmp.getvalue().decode("utf-8"))
        return result
    result = write(buffer)
    buffer.flush()
    return result
