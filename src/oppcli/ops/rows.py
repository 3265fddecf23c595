"""Import files read back into rows: JSON Lines, JSON, CSV and TSV as export writes them; each
row's values turned into a payload; and the rows not imported written out again, in the
input's format, to run again.
"""
from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from oppcli.domain import fields as F
from oppcli.domain.lookups import Lookups
from oppcli.domain.records import UNCLEARABLE
from oppcli.errors import UsageError, ValidationError
from oppcli.output import CF_PREFIX, TAG_SEPARATOR
from oppcli.output import unneutralise as _unneutralise
from oppcli.util.files import atomic_output as atomic_output  # re-exported: callers import it here
from oppcli.util.files import can_create_in as can_create_in  # re-exported
from oppcli.util.files import write_new_file as write_new_file  # re-exported


@dataclass
class Row:
    """One input row: where it is (for messages), its raw form (for the failed-rows file), and
    the values it holds (None when it could not be read)."""

    where: str
    raw: Any
    values: dict[str, Any] | None
    error: str | None = None


@dataclass
class InputFile:
    fmt: str  # json, jsonl or csv
    rows: list[Row]
    header: list[str] = field(default_factory=list)  # csv


def detect_format(name: str, data: bytes) -> str:
    low = name.lower()
    for ext, fmt in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "json"),
                     (".csv", "csv"), (".tsv", "tsv"), (".tab", "tsv")):
        if low.endswith(ext):
            return fmt
    head = data.lstrip()[:1]
    if head == b"[":
        return "json"
    if head == b"{":
        return "jsonl"
    first = data.split(b"\n", 1)[0]
    if b"\t" in first and b"," not in first:
        return "tsv"
    return "csv"


def read_input(data: bytes, fmt: str) -> InputFile:
    """Rows of an import file. A file that cannot be read at all is a UsageError; a row that
    cannot be read becomes a Row with an error (it fails alone)."""
    if fmt == "json":
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ValidationError(f"the input is not valid JSON ({exc})",
                                  "check it with jq ., or give --format") from None
        if isinstance(doc, dict):
            doc = [doc]
        if not isinstance(doc, list):
            raise ValidationError("the JSON input must be an array of opportunities")
        return InputFile("json", [_json_row(f"item {i}", item) for i, item in enumerate(doc, 1)])
    if fmt == "jsonl":
        rows = []
        for n, line in enumerate(data.splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                rows.append(Row(f"line {n}", line, None, f"not valid JSON ({exc})"))
                continue
            rows.append(_json_row(f"line {n}", item, raw=line))
        return InputFile("jsonl", rows)
    if fmt == "tsv":
        return _read_tsv(data)
    if fmt == "csv":
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError("the CSV input is not UTF-8", "save it as UTF-8") from None
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            header = next(reader)
        except StopIteration:
            return InputFile("csv", [], [])
        except csv.Error as exc:
            raise ValidationError(f"cannot read the CSV header ({exc})") from None
        header = [h.strip() for h in header]
        rows = []
        try:
            for cells in reader:
                where = f"line {reader.line_num}"
                if not any(c.strip() for c in cells):
                    continue
                if len(cells) != len(header):
                    rows.append(Row(where, cells, None, f"{len(cells)} cells for "
                                    f"{len(header)} columns"))
                    continue
                rows.append(_table_row(where, cells, header, neutralised=True))
        except csv.Error as exc:
            raise ValidationError(f"cannot read the CSV at line {reader.line_num} ({exc})") from None
        return InputFile("csv", rows, header)
    raise UsageError(f"unknown input format {fmt!r}", "valid: json, jsonl, csv, tsv")


_TSV_ESCAPES = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\r": "\r"}
_TSV_ESCAPE = re.compile(r"\\[\\tnr]")


def tsv_unescape(cell: str) -> str:
    """What export's TSV escaped (backslash, tab, newline, carriage return) read back."""
    return _TSV_ESCAPE.sub(lambda m: _TSV_ESCAPES[m[0]], cell) if "\\" in cell else cell


def tsv_escape(text: str) -> str:
    return (text.replace("\\", "\\\\").replace("\t", "\\t")
            .replace("\n", "\\n").replace("\r", "\\r"))


def _read_tsv(data: bytes) -> InputFile:
    """TSV as export writes it: one line per record, cells split on tabs, escapes read back."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError("the TSV input is not UTF-8", "save it as UTF-8") from None
    lines = text.split("\n")
    header = [tsv_unescape(h).strip() for h in lines[0].rstrip("\r").split("\t")] if lines else []
    rows = []
    for n, line in enumerate(lines[1:], 2):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        cells = [tsv_unescape(c) for c in line.split("\t")]
        if len(cells) != len(header):
            rows.append(Row(f"line {n}", cells, None, f"{len(cells)} cells for "
                            f"{len(header)} columns"))
            continue
        rows.append(_table_row(f"line {n}", cells, header, neutralised=False))
    return InputFile("tsv", rows, header)


def _table_row(where: str, cells: list[str], header: list[str], *, neutralised: bool) -> Row:
    """A CSV or TSV row: its cells by column, the extras' already read back to their JSON
    types (csv_extras; an empty one left out), so the importer gives a local create what a
    JSON row would."""
    cells_by_column = dict(zip(header, cells, strict=True))
    try:
        extras = csv_extras(cells_by_column, neutralised=neutralised)
    except ValidationError as exc:
        return Row(where, cells, None, str(exc))
    values: dict[str, Any] = {k: v for k, v in cells_by_column.items() if k not in F.EXTRA_BY_NAME}
    values.update(extras)
    return Row(where, cells, values)


def _json_row(where: str, item: Any, raw: bytes | None = None) -> Row:
    if not isinstance(item, dict):
        return Row(where, raw if raw is not None else item, None, "not a JSON object")
    return Row(where, raw if raw is not None else item, item)


def failed_rows_bytes(source: InputFile, failed: list[Row]) -> bytes:
    """The failed rows in the input's own format, so the file can be imported again."""
    if source.fmt == "tsv":
        return "".join("\t".join(tsv_escape(c) for c in cells) + "\n"
                       for cells in [source.header, *(r.raw for r in failed)]).encode("utf-8")
    if source.fmt == "csv":
        buf = io.StringIO(newline="")
        writer = csv.writer(buf, lineterminator="\r\n")
        writer.writerow(source.header)
        for row in failed:
            writer.writerow(row.raw)
        return buf.getvalue().encode("utf-8")
    if source.fmt == "jsonl":
        return b"".join((r.raw if isinstance(r.raw, bytes) else orjson.dumps(r.raw)) + b"\n"
                        for r in failed)
    return orjson.dumps([r.raw for r in failed], option=orjson.OPT_INDENT_2) + b"\n"


# The column (CSV) or key (JSON) an unknown-rows file adds to each row: Unix seconds from before
# the write that may or may not have happened. Import looks for a deal like the row made since
# then before creating it, so running the file never makes a deal twice.
UNCONFIRMED = "oppcli_unconfirmed_since"


# The column (CSV, TSV) or key (JSON) every row written to a failed-rows or unknown-rows file
# carries: when the import that could not finish it started. A row's id then matches only a
# deal made before that (never one that import, or a later one, created for another row).
STARTED = "oppcli_import_started"


def marked_rows_bytes(source: InputFile, rows: list[Row], marks: Mapping[str, int]) -> bytes:
    """Rows to run again, in the input's format, each carrying `marks` (a mark a row already
    holds, from an earlier run, is kept: it is the earlier). A row that could not be read is
    written as it was."""
    if source.fmt in ("csv", "tsv"):
        header = list(source.header)
        cells_of = [list(r.raw) for r in rows]
        for key, mark in marks.items():
            if key in header:
                at = header.index(key)
                for cells in cells_of:
                    if at < len(cells) and not str(cells[at]).strip():
                        cells[at] = str(mark)
            else:
                header.append(key)
                for cells in cells_of:
                    cells.append(str(mark))
        table = InputFile(source.fmt, [Row(r.where, c, None) for r, c in zip(rows, cells_of,
                                                                          strict=True)], header)
        return failed_rows_bytes(table, table.rows)
    marked = []
    for r in rows:
        if r.values is None:
            marked.append(r)
            continue
        values = dict(r.values)
        for key, mark in marks.items():
            values.setdefault(key, mark)
        marked.append(Row(r.where, orjson.dumps(values) if source.fmt == "jsonl" else values,
                          values))
    return failed_rows_bytes(source, marked)


def unknown_rows_bytes(source: InputFile, rows: list[Row], since: int | None = None) -> bytes:
    """Rows whose write may have happened, in the input's format, each marked UNCONFIRMED
    (and STARTED)."""
    started = int(time.time() if since is None else since)
    return marked_rows_bytes(source, rows, {STARTED: started, UNCONFIRMED: started - 60})


def csv_payload(values: Mapping[str, Any], lookups: Lookups, date_order: str,
                *, neutralised: bool = True) -> tuple[int | None, dict[str, Any]]:
    """(id, payload) from a CSV row with export's columns (cells as text; the extras' as
    read_input gives them, already read by csv_extras). Read-only columns are ignored, the
    extras' too; an empty cell is null; tags split on ";"; cf:NAME columns hold option names,
    ISO dates, true/false, numbers or text. Unknown columns are an error (a typo would lose
    data).
    `neutralised`: CSV cells had a ' put before a leading = + - @ (TSV cells are raw)."""
    from oppcli.domain.values import cf_from_text, from_text, parse_int, unique

    unneutralise = _unneutralise if neutralised else _same

    payload: dict[str, Any] = {}
    custom: list[dict[str, Any]] = []
    opp_id: int | None = None
    for column, cell in values.items():
        if column in F.EXTRA_BY_NAME:
            continue  # read-only: Copper owns them (a local create keeps them: _table_row)
        text = unneutralise(cell.strip())
        if column.startswith(CF_PREFIX):
            defn = lookups.custom_field(column[len(CF_PREFIX):])
            if defn.get("data_type") in F.CF_TEXT_TYPES and cell:
                text = unneutralise(cell)  # text keeps its spaces, as exported
            if not text:
                value: Any = None
            elif defn.get("data_type") == "MultiSelect":  # joined with ";" as export writes it
                value = unique(lookups.option_id(defn, part)
                               for part in text.split(TAG_SEPARATOR) if part.strip())
            else:
                value = cf_from_text(defn, text, lookups, date_order)
            custom.append({"custom_field_definition_id": defn["id"], "value": value})
            continue
        fld = F.BY_NAME.get(column)
        if fld is None:
            raise ValidationError(f"unknown column {column!r}",
                                  "columns are field names and cf:NAME for custom fields")
        if column == "id":
            opp_id = parse_int(text, "id") if text else None
            continue
        if not fld.writable or column == "custom_fields":
            continue  # derived or read-only: Copper owns them
        if column == "tags":
            payload["tags"] = [t.strip() for t in text.split(TAG_SEPARATOR) if t.strip()]
            continue
        if not text and column in UNCLEARABLE:
            continue  # an empty name, contact or stage cell: left as it is (or the default)
        if fld.kind == F.TEXT and cell:
            text = unneutralise(cell)  # details keep their spaces (also all spaces), as exported
        elif fld.kind == F.STR and text:
            text = unneutralise(cell)  # a name keeps its spaces, as exported
        # The close date is in the backend's order, as export wrote it (ISO also works).
        payload[column] = from_text(fld, text, date_order, date_order) if text else None
    if custom:
        payload["custom_fields"] = custom
    return opp_id, payload


def _same(text: str) -> str:
    return text


def csv_extras(values: Mapping[str, str], *, neutralised: bool = True) -> dict[str, Any]:
    """The read-only extras (F.EXTRAS) of a CSV or TSV row, read back to their JSON types as
    export wrote them: digits -> a number, leads_converted_from's JSON text -> its list, other
    text as it is. An empty cell is left out: CSV cannot tell null from a key the record
    lacks, and a deal created from the row then gets what the store gives any new deal.
    read_input applies it to every row, so the importer's create on the local store keeps a
    restored record's extras; an unreadable cell is a ValidationError (the row fails alone)."""
    unneutralise = _unneutralise if neutralised else _same
    out: dict[str, Any] = {}
    for column, cell in values.items():
        fld = F.EXTRA_BY_NAME.get(column)
        if fld is None:
            continue
        text = unneutralise(cell)
        if not text.strip():
            continue
        if fld.kind in (F.INT, F.TIMESTAMP, F.LEAD_CONVERSIONS):
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError:
                value = None
            wanted = (list,) if fld.kind == F.LEAD_CONVERSIONS else (int, float)
            if type(value) not in wanted:
                what = "a JSON list" if list in wanted else "a number"
                raise ValidationError(f"{column} must be {what}, got {cell!r}")
            out[column] = value
        else:
            out[column] = text  # monetary_unit, converted_unit, converted_value: strings
    return out


def json_payload(values: Mapping[str, Any], lookups: Lookups, date_order: str,
                 ) -> tuple[int | None, dict[str, Any]]:
    """(id, payload) from an object in the API's shape (what export and show -o json write)."""
    from oppcli.domain.changes import payload_from_json

    raw_id = values.get("id")
    if raw_id is not None and (not isinstance(raw_id, int) or isinstance(raw_id, bool)):
        raise ValidationError(f"id must be a whole number, got {raw_id!r}")
    return raw_id, payload_from_json(dict(values), lookups, date_order)
