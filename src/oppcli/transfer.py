"""Moving records in and out in bulk: atomic output files, the incremental-export state, and
reading import files (JSON, JSON Lines, the CSV that export writes) back into payloads.

No backend I/O here: the commands (commands/transfer.py) call the backend; this module owns
the files.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import signal
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

import orjson

from oppcli import fields as F
from oppcli.errors import ConfigError, UsageError, ValidationError
from oppcli.lookups import Lookups
from oppcli.output import CF_PREFIX, TAG_SEPARATOR
from oppcli.output import unneutralise as _unneutralise
from oppcli.records import UNCLEARABLE

STATE_FORMAT = "oppcli-export-state"
DEFAULT_OVERLAP = 60  # seconds re-read before the high-water mark on each incremental run
_DURATION = re.compile(r"(\d+)\s*(min|s|h|d|w)")
_UNITS = {"s": 1, "min": 60, "h": 3600, "d": 86400, "w": 604800}
DURATION_HELP = "s, min, h, d, w: 24h, 7d, 90min, 2w, 1d12h"


# ---- --since DATE|DURATION -------------------------------------------------------------------
def parse_since(text: str, now: float | None = None) -> int:
    """Unix seconds: a duration back from now ("24h", "7d", "1d12h", "90min", "2w") or a date
    (YYYY-MM-DD, UTC) or an ISO date-time. "m" and "M" are refused: minutes or months?"""
    from oppcli.models import parse_filter_time

    raw = text.strip()
    if raw and _DURATION.sub("", raw).strip() == "" and _DURATION.search(raw):
        seconds = sum(int(n) * _UNITS[u] for n, u in _DURATION.findall(raw))
        return int((time.time() if now is None else now) - seconds)
    if re.fullmatch(r"(\d+\s*[a-zA-Z]+\s*)+", raw):
        raise ValidationError(f"cannot read --since {text!r}: the units are {DURATION_HELP}",
                              "minutes are `min` and there is no month (`m` or `M` could be "
                              "either): say 30d for about a month")
    try:
        return parse_filter_time(raw)
    except ValidationError:
        raise ValidationError(f"cannot read --since {text!r}",
                              f"give a duration ({DURATION_HELP}) or a date (YYYY-MM-DD, UTC) "
                              "or an ISO date-time") from None


# ---- files that appear whole or not at all ----------------------------------------------------
class _Terminated(Exception):
    """SIGTERM arrived: unwind, so the temporary file is removed."""


@contextlib.contextmanager
def terminate_cleanly() -> Iterator[None]:
    """Turn SIGTERM (cron's timeout, systemd, kill) into an exception while the block runs, so
    `finally` clauses remove temporary files; then exit 143 like a killed process.

    The exception can surface as another one: SIGTERM landing inside library code (say
    `threading.Thread.start()`, which catches and re-raises as KeyError) changes what
    propagates. So the handler also records that it ran, and any exception after that point
    is the termination."""
    terminated = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal terminated
        terminated = True
        raise _Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    except BaseException:
        if terminated:
            raise SystemExit(143) from None
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def _tmp_prefix(path: Path) -> str:
    return f".{path.name}.oppcli-"


def remove_stale_temps(path: Path) -> None:
    """Temporary files a killed run (SIGKILL, power cut) left beside PATH, if their process is
    gone."""
    with contextlib.suppress(OSError):
        for old in path.parent.glob(_tmp_prefix(path) + "*.tmp"):
            m = re.search(r"-(\d+)-[^.]*\.tmp$", old.name)
            if m and _alive(int(m[1])):
                continue
            with contextlib.suppress(OSError):
                old.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[IO[bytes]]:
    """A binary file that replaces PATH only when the block succeeds: written to a temporary
    file in the same directory (owner-only), fsynced, then renamed over PATH. A failed, killed
    or interrupted run leaves the previous PATH untouched and never a partial one; the temporary
    file carries the process id, so a later run can tell a killed run's leftovers."""
    from oppcli.backends.local import replacing

    path = Path(path)
    remove_stale_temps(path)
    try:
        with replacing(path, prefix=f"{_tmp_prefix(path)}{os.getpid()}-") as out:
            yield out
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}",
                          "check the directory exists and is writable; the previous file, if "
                          "any, is unchanged") from exc


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_output(path) as out:
        out.write(data)


def can_create_in(path: Path, what: str) -> None:
    """Fail now (exit 3) if a file could not be created beside PATH later: a temporary file is
    made there and removed."""
    import tempfile

    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{_tmp_prefix(path)}{os.getpid()}-", suffix=".tmp",
                                   dir=path.parent if str(path.parent) else ".")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise ConfigError(f"cannot write the {what} {path}: {exc.strerror}",
                          "choose a writable place for it; nothing was done") from exc


def write_new_file(path: Path, data: bytes) -> Path:
    """Write DATA to a file that did not exist, whole (written to a temporary file, fsynced,
    then linked into place), and return its path: PATH, or PATH with -2, -3, ... before the
    suffix when PATH exists. An existing file is never overwritten. OSError propagates."""
    import tempfile

    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f"{_tmp_prefix(path)}{os.getpid()}-", suffix=".tmp",
                               dir=directory)
    try:
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        for n in range(1, 10_000):
            target = path if n == 1 else path.with_name(f"{path.stem}-{n}{path.suffix}")
            try:
                os.link(tmp, target)
            except FileExistsError:
                continue
            except OSError:  # no hard links here (some network or FAT file systems)
                try:
                    with open(target, "xb") as out:
                        out.write(data)
                        out.flush()
                        os.fsync(out.fileno())
                except FileExistsError:
                    continue
            from oppcli.backends.local import _fsync_dir

            _fsync_dir(directory)
            return target
        raise FileExistsError(f"{path} and 9,999 numbered variants exist")
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


# ---- the incremental-export state ----------------------------------------------------------------
@dataclass
class ExportState:
    """What the last successful export reached: the highest date_modified, and the records
    modified within the overlap before it (id -> date_modified), which the next run re-reads
    but does not export again unless they changed."""

    source: str
    high_water: int | None = None
    recent: dict[int, int] = field(default_factory=dict)
    overlap: int = DEFAULT_OVERLAP

    @classmethod
    def load(cls, path: Path, source: str, overlap: int) -> ExportState:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls(source=source, overlap=overlap)
        except OSError as exc:
            raise ConfigError(f"cannot read state file {path}: {exc.strerror}") from exc
        try:
            doc = orjson.loads(raw)
            if not isinstance(doc, dict) or doc.get("format") != STATE_FORMAT:
                raise ValueError("not an oppcli export state")
            high = doc.get("high_water")
            recent = {int(k): int(v) for k, v in (doc.get("recent") or {}).items()}
            if high is not None and not isinstance(high, int):
                raise ValueError("bad high_water")
        except (orjson.JSONDecodeError, ValueError, TypeError, AttributeError) as exc:
            raise ConfigError(f"state file {path} is damaged ({exc})",
                              "remove it to export everything again, or restore it") from None
        if doc.get("source") != source:
            raise ConfigError(f"state file {path} belongs to {doc.get('source')}, not {source}",
                              "use one state file per backend and store")
        return cls(source=source, high_water=high, recent=recent, overlap=overlap)

    def since(self) -> int | None:
        return None if self.high_water is None else self.high_water - self.overlap

    def seen(self, record: Mapping[str, Any]) -> bool:
        """Exported by an earlier run and not modified since."""
        rid = record.get("id")
        return isinstance(rid, int) and self.recent.get(rid) == record.get("date_modified")

    def advance(self, record: Mapping[str, Any]) -> None:
        stamp = record.get("date_modified")
        rid = record.get("id")
        if not isinstance(stamp, int) or not isinstance(rid, int):
            return
        if self.high_water is None or stamp > self.high_water:
            self.high_water = stamp
        if stamp >= self.high_water - self.overlap:
            self.recent[rid] = stamp
            if len(self.recent) > self._prune_at:  # records arrive in any order: keep only
                self._prune()                       # those near the high-water mark

    _prune_at = 10_000

    def _prune(self) -> None:
        floor = (self.high_water or 0) - self.overlap
        self.recent = {k: v for k, v in self.recent.items() if v >= floor}
        self._prune_at = max(10_000, 2 * len(self.recent))

    def save(self, path: Path, started: int | None = None) -> None:
        """Write the state; the mark never passes `started` (when the export began): the
        local store stamps a busy record ahead of the clock, and a mark in the future would
        hide what others change meanwhile. Records past it are remembered, not exported twice."""
        if started is not None and self.high_water is not None:
            self.high_water = min(self.high_water, started)
        floor = (self.high_water or 0) - self.overlap
        recent = {str(k): v for k, v in sorted(self.recent.items()) if v >= floor}
        doc = {"format": STATE_FORMAT, "version": 1, "source": self.source,
               "high_water": self.high_water, "overlap": self.overlap, "recent": recent,
               "saved_at": int(time.time())}
        atomic_write_bytes(path, orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")


# ---- reading import files ------------------------------------------------------------------------
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
    from oppcli.models import cf_from_text, from_text, parse_int, unique

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
    from oppcli.models import payload_from_json

    raw_id = values.get("id")
    if raw_id is not None and (not isinstance(raw_id, int) or isinstance(raw_id, bool)):
        raise ValidationError(f"id must be a whole number, got {raw_id!r}")
    return raw_id, payload_from_json(dict(values), lookups, date_order)
