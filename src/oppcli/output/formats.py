"""The machine formats (json, jsonl, csv, tsv) and the entry points that pick a format.

Rules (documented in the README):
- json: an array of records, one compact record per line (`[]` when empty); a single record
  (show, create, update) is one indented object. Exactly the API's field names and types.
- jsonl: one compact record per line, streamed as records arrive.
- csv/tsv: a header row; null is an empty cell; tags are joined with ";"; custom fields become
  one column each, headed "cf:<definition name>", holding option names, ISO dates and
  true/false; ids stay ids. The read-only extras (F.EXTRAS) are always columns, between the
  fields and the cf: columns: numbers as digits, leads_converted_from as JSON text. In CSV a
  text cell starting with = + - @ (or tab/CR) gets a leading ' so a spreadsheet does not run
  it (--raw turns that off). In TSV, backslash, tab, newline and carriage return inside a cell
  are written as \\\\, \\t, \\n, \\r.
- table: drawn by tables.py (Rich, imported only then).
stdout carries data only.
"""

from __future__ import annotations

import csv
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

import orjson

from oppcli.domain import fields as F
from oppcli.output.display import TAG_SEPARATOR, Context, Record
from oppcli.output.tables import write_record_table, write_table
from oppcli.output.text import DANGER_FIRST, neutralise

if TYPE_CHECKING:
    from oppcli.io import Streams

FORMATS = ("table", "json", "jsonl", "csv", "tsv")
CF_PREFIX = "cf:"
BOM = "\ufeff".encode()  # --excel: the UTF-8 byte order mark Excel reads a CSV's encoding from


def project(record: Record, names: Sequence[str] | None) -> Record:
    if not names:
        return record
    return {n: record.get(n) for n in names}


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
    """(header, field name or custom field definition) for each column. Without `names`:
    every field, then every extra (F.EXTRAS, whether or not a record has it: export streams,
    so the header cannot wait to see the records), then the cf: columns."""
    if names:
        chosen = list(names)
    else:
        chosen = [n for n in F.FIELD_NAMES if n != "custom_fields"]
        chosen += [*F.EXTRA_NAMES, "custom_fields"]
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
    danger = frozenset() if raw else DANGER_FIRST

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


def write_rows(rows: Iterable[Mapping[str, Any]], columns: Sequence[str], fmt: str,
               out: IO[bytes], *, raw: bool = False, bom: bool = False) -> int:
    """Rows that are not records (a report's groups) in a machine format, keyed by `columns`
    in that order: json and jsonl as for records; csv/tsv with a header row, null as an
    empty cell, text neutralised in CSV unless `raw` (the rules above); `bom`: a CSV for
    Excel starts with the byte order mark."""
    picked = ({c: row.get(c) for c in columns} for row in rows)
    if fmt in ("json", "jsonl"):
        return (write_json if fmt == "json" else write_jsonl)(picked, out, None)
    import io

    if bom and fmt == "csv":
        out.write(BOM)
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    danger = frozenset() if raw or fmt == "tsv" else DANGER_FIRST

    def cell(value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, str):
            return neutralise(value) if value[:1] in danger else value
        return value
    count = 0
    try:
        if fmt == "tsv":
            text.write("\t".join(_tsv_escape(c) for c in columns) + "\n")
            for row in picked:
                text.write("\t".join(_tsv_escape(cell(row[c])) for c in columns) + "\n")
                count += 1
            return count
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(columns)
        for row in picked:
            writer.writerow([cell(row[c]) for c in columns])
            count += 1
        return count
    finally:
        text.flush()
        text.detach()


# ---- the entry points commands use --------------------------------------------------------
def emit_many(records: Iterator[Record], fmt: str, ctx: Context, streams: Streams, *,
              names: Sequence[str] | None = None, raw: bool = False, more: bool = False,
              extra: Sequence[tuple[str, Any]] = (), omit: Sequence[str] = (),
              bom: bool = False) -> int:
    """Write a list of records to the streams' stdout in the format; returns how many.
    `extra`, `omit`: computed columns a table adds, default ones it leaves out
    (tables.write_table)."""
    if fmt == "table":
        return write_table(records, streams.stdout, names, ctx, more=more,
                           style=streams.console_style(), extra=extra, omit=omit)
    return int(_bin(streams, lambda b: write_many(records, fmt, b, ctx, names=names, raw=raw,
                                                  bom=bom)))


def write_many(records: Iterator[Record], fmt: str, out: IO[bytes], ctx: Context, *,
               names: Sequence[str] | None = None, raw: bool = False, bom: bool = False) -> int:
    """Write records to a binary file in a machine format (json, jsonl, csv, tsv), streaming:
    constant memory whatever the count. Returns how many. `bom`: a CSV for Excel starts
    with the byte order mark."""
    if fmt == "json":
        return write_json(records, out, names)
    if fmt == "jsonl":
        return write_jsonl(records, out, names)
    import io

    if bom and fmt == "csv":
        out.write(BOM)
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    try:
        return write_delimited(records, text, names, ctx, tsv=fmt == "tsv", raw=raw)
    finally:
        text.flush()
        text.detach()


def emit_one(record: Record, fmt: str, ctx: Context, streams: Streams, *,
             names: Sequence[str] | None = None, raw: bool = False) -> None:
    """Write one record: an object in json, a line in jsonl, one row in csv/tsv."""
    if fmt == "json":
        _bin(streams, lambda b: write_one_json(record, b, names))
    elif fmt == "table":
        write_record_table(record, streams.stdout, names, ctx, style=streams.console_style())
    else:
        emit_many(iter([record]), fmt, ctx, streams, names=names, raw=raw)


def _bin(streams: Streams, write: Any) -> Any:
    """Bytes to stdout (orjson writes bytes), after what was written there as text."""
    streams.stdout.flush()
    out = streams.stdout_bytes
    result = write(out)
    out.flush()
    return result
