"""Every output format in one place: table (Rich), json, jsonl, csv, tsv.

stdout carries data only; Rich is imported only when a table is drawn.
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
- tables (list, show, history, lookups): text is shown literally, never read as Rich markup;
  control characters, DEL, C1 controls, invisible format characters (Unicode Cf) and line
  separators are shown as escapes (visible()). Ids, money and dates are never cut; text is
  cut or wraps, then default columns are dropped; only then do lines run past the width.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import sys
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from typing import IO, Any

import orjson

from oppcli import fields as F
from oppcli.lookups import Lookups
from oppcli.models import seconds_to_day, stored_close_date

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
        fld = F.BY_NAME.get(name) or F.EXTRA_BY_NAME.get(name)
        kind = fld.kind if fld else F.STR
        if kind == F.REF and fld and fld.lookup:
            label = self.lookups.name_of(fld.lookup, value)
            if label is None:
                return str(value)
            if with_id and fld.lookup == "stages" and \
                    label.casefold() in self._shared_stage_names():
                stage = self.lookups.get("stages", value) or {}
                label = f"{stage.get('pipeline_name')}/{label}"  # two pipelines' "Negotiation"
            return f"{label} ({value})" if with_id else label
        if kind == F.DATE:
            day = stored_close_date(value, self.date_order)
            return day.isoformat() if day else str(value)
        if kind == F.TIMESTAMP and _number(value):
            when = _utc(value)
            return when.strftime("%Y-%m-%d %H:%M UTC") if when else str(value)
        if kind == F.MONEY_TEXT and isinstance(value, str):
            return _money_text(value)
        if kind == F.LEAD_CONVERSIONS and isinstance(value, list):
            return ", ".join(_lead_conversion(item) for item in value)
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
        if isinstance(value, (list, dict)):
            return _json_text(value)  # an unknown extra's list or object: JSON, not a repr
        return str(value)

    def _shared_stage_names(self) -> set[str]:
        """Stage names that more than one pipeline has: shown as Pipeline/Stage."""
        shared = getattr(self, "_shared", None)
        if shared is None:
            seen: dict[str, set[Any]] = {}
            for stage in self.lookups.stages:
                seen.setdefault(str(stage["name"]).casefold(), set()).add(stage["pipeline_id"])
            shared = self._shared = {n for n, pipes in seen.items() if len(pipes) > 1}
        return shared

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
        if kind == "Date" and isinstance(value, (int, float)) and not isinstance(value, bool):
            day = seconds_to_day(value, self.lookups.tz)  # in the account's (store's) zone
            return day.isoformat() if day is not None else str(value)  # never a crash
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, list):
            return TAG_SEPARATOR.join(map(str, value))
        return str(value)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _utc(seconds: float) -> dt.datetime | None:
    """Unix seconds as a UTC date-time; None when out of range (a hand-edited record)."""
    try:
        return dt.datetime.fromtimestamp(seconds, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _money_text(text: str) -> str:
    """A decimal number written as a string ("250000.0"), shown as money is: 250,000."""
    from decimal import Decimal, InvalidOperation

    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        return text
    if not amount.is_finite():
        return text
    if amount == amount.to_integral_value():
        return f"{int(amount):,}"
    return f"{amount:,.2f}"


def _lead_conversion(item: Any) -> str:
    """One entry of leads_converted_from: "lead 9 on 2023-07-22" (the date in UTC)."""
    if not isinstance(item, dict) or "lead_id" not in item:
        return _json_text(item)
    text = f"lead {_json_text(item['lead_id'])}"
    stamp = item.get("converted_timestamp")
    when = _utc(stamp) if isinstance(stamp, (int, float)) and not isinstance(stamp, bool) else None
    if when is not None:
        return f"{text} on {when.date().isoformat()}"
    return text if stamp is None else f"{text} on {_json_text(stamp)}"


def _json_text(value: Any) -> str:
    """A value as JSON text (a string stays itself); str() when JSON cannot hold it."""
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value).decode()
    except TypeError:
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


# ---- text for people ---------------------------------------------------------------------
# Shown escaped in every human-facing output: control characters (C0, DEL, C1), invisible
# format characters (Cf: bidi overrides and isolates, zero-width characters, the BOM, ...),
# line and paragraph separators and lone surrogates.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def visible(text: str) -> str:
    """`text` as a person should see it: literally. Each character that a terminal would act
    on or not show (see _ESCAPED_CATEGORIES) is written as the escape Python's repr() uses,
    the one error messages show (which quote names with !r): `\\x1b`, `\\n`, `\\x9b`,
    `\\u202e`, `\\U000e0001`. Everything else, a backslash included, is left as it is."""
    if text.isprintable():  # the common case; every escaped character is unprintable
        return text
    from unicodedata import category

    return "".join(repr(c)[1:-1] if not c.isprintable() and category(c) in _ESCAPED_CATEGORIES
                   else c for c in text)


def literal(text: str) -> str:
    """visible() for a whole message line (cheap when there is nothing to escape)."""
    return text if text.isprintable() else visible(text)


def _text(value: str) -> Any:
    """A Rich cell that shows `value` literally: a Text (never parsed as markup), escaped."""
    from rich.text import Text

    return Text(visible(value))


# ---- tables -----------------------------------------------------------------------------
def _console(stream: IO[str], width: int | None = None) -> Any:
    from rich.console import Console

    class QuietPipeConsole(Console):
        def on_broken_pipe(self) -> None:  # Rich would exit 1 itself; the CLI ends quietly
            raise BrokenPipeError

    return QuietPipeConsole(file=stream, highlight=False, soft_wrap=False, width=width,
                            markup=False, emoji=False)


# Kinds shown whole in every table, whatever the width: ids, amounts, dates and the short
# words of enums, percentages and yes/no. Text (names, labels, tags, details) may be cut.
WHOLE_KINDS = frozenset({F.INT, F.MONEY, F.MONEY_TEXT, F.DATE, F.TIMESTAMP, F.PERCENT, F.ENUM,
                         F.BOOL})
TEXT_COMFORT = 24  # text is not squeezed below this while a default column can still go
TEXT_MIN = 8  # nor below this at all (nor below its heading, nor below a number inside it)
_NUMBER = re.compile(r"(?<!\S)\(?[0-9][0-9,.]*\)?(?!\S)")


class _Col:
    """A table column: its heading, its cells (escaped by visible()), and the widths it may
    take: natural (the widest cell), comfort and hard (the least it is cut to; for a column
    of whole values, its natural width)."""

    def __init__(self, header: str, cells: list[str], *, whole: bool = False,
                 atoms: Iterable[str] = (), right: bool = False) -> None:
        from rich.cells import cell_len

        self.header, self.cells, self.right = header, cells, right
        self.natural = max([cell_len(header), *map(cell_len, cells)])
        if whole:
            self.comfort = self.hard = self.natural
            return
        # Numbers standing alone in text (an unnamed id, "Qualified (11)") and `atoms` (values
        # of whole kinds in a mixed column) are never cut either.
        keep = max([cell_len(a) for a in atoms]
                   + [cell_len(m) for c in cells for m in _NUMBER.findall(c)], default=0)
        self.hard = min(self.natural, max(cell_len(header), TEXT_MIN, keep))
        self.comfort = min(self.natural, max(self.hard, TEXT_COMFORT))


def _share(cols: Sequence[_Col], room: int, floor: Sequence[int]) -> list[int] | None:
    """Content widths within `room`: each column its natural width if all fit, else the text
    ones cut down evenly from the widest, not below `floor`; None when even that does not fit."""
    naturals = [c.natural for c in cols]
    if sum(floor) > room:
        return None
    if sum(naturals) <= room:
        return naturals
    low, high = 0, max(naturals)  # the widest cap that fits
    while low < high:
        mid = (low + high + 1) // 2
        if sum(max(f, min(n, mid)) for n, f in zip(naturals, floor, strict=True)) <= room:
            low = mid
        else:
            high = mid - 1
    widths = [max(f, min(n, low)) for n, f in zip(naturals, floor, strict=True)]
    spare = room - sum(widths)
    for i, n in enumerate(naturals):
        if spare and widths[i] < n:
            widths[i] += 1
            spare -= 1
    return widths


def _layout(cols: list[_Col], width: int, overhead: Any, droppable: Sequence[str] = (),
            last: Sequence[str] = ()) -> tuple[list[_Col], list[int], int]:
    """Which columns to draw, their content widths and the width the lines take. Ids, money
    and dates are never cut. Text is cut to TEXT_COMFORT first, then the `droppable` columns
    (headings) go in that order, then text is cut to its minimum, then the `last` columns go;
    only when even that does not fit do the lines run past `width`."""
    keep = list(cols)

    def attempt(victims: Sequence[str], tier: str) -> list[int] | None:
        nonlocal keep
        for victim in [None, *victims]:
            if victim is not None:
                keep = [c for c in keep if c.header != victim]
            widths = _share(keep, width - overhead(len(keep)), [getattr(c, tier) for c in keep])
            if widths is not None:
                return widths
        return None

    widths = attempt(droppable, "comfort") or attempt(last, "hard")
    if widths is not None:
        return keep, widths, width
    widths = [c.hard for c in keep]
    return keep, widths, sum(widths) + overhead(len(keep))


def _simple_overhead(n: int) -> int:
    """Columns' padding and rules in a table drawn with pad_edge=False: one space on each
    side of the table, three between columns."""
    return 3 * n - 1


def _boxed_overhead(n: int) -> int:
    """The same for Rich's default boxed table: a rule and a padding space each side of every
    column."""
    return 3 * n + 1


def _print_table(out: IO[str], cols: list[_Col], *, droppable: Sequence[str] = (),
                 last: Sequence[str] = (), wrap: bool = False, boxed: bool = False,
                 title: str | None = None, show_header: bool = True,
                 first_bold: bool = False) -> None:
    """Draw a table of escaped text cells (Text: never read as markup), laid out by _layout.
    `wrap`: text cells fold onto more lines; else each row is one line and long text ends in
    an ellipsis. When even that does not fit, the lines are drawn wider than the terminal."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    width = _console(out).width
    overhead = _boxed_overhead if boxed else _simple_overhead
    keep, widths, needed = _layout(cols, width, overhead, droppable, last)
    title_text = _text(title) if title is not None else None
    if boxed:
        table = Table(title=title_text, title_justify="left", show_header=show_header)
    else:
        table = Table(box=box.SIMPLE_HEAD if show_header else box.SIMPLE, pad_edge=False,
                      title=title_text, title_justify="left", show_header=show_header)
    for i, (col, w) in enumerate(zip(keep, widths, strict=True)):
        table.add_column(_text(col.header), justify="right" if col.right else "left", width=w,
                         no_wrap=not wrap,
                         overflow="fold" if wrap else "ellipsis",
                         style="bold" if first_bold and i == 0 else None)
    index = [cols.index(c) for c in keep]
    for r in range(len(cols[0].cells) if cols else 0):
        table.add_row(*(Text(cols[i].cells[r]) for i in index))
    _console(out, needed if needed > width else None).print(table)


def write_table(records: Iterable[Record], out: IO[str], names: Sequence[str] | None,
                ctx: Context, *, more: bool = False) -> int:
    names_ = list(names) if names else list(F.TABLE_DEFAULT)
    rows: list[list[str]] = []
    count = 0
    total = 0.0
    weighted = 0.0
    for rec in records:
        rows.append([visible(ctx.display(n, rec.get(n))) for n in names_])
        count += 1
        weighted += weighted_value(rec)
        value = rec.get("monetary_value")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            total += value
    if count == 0:
        _console(out).print("No opportunities match.", style="dim")
        return 0
    numeric = {F.INT, F.MONEY, F.PERCENT}
    cols = []
    for i, n in enumerate(names_):
        fld = F.BY_NAME[n]
        cols.append(_Col(fld.column or n, [r[i] for r in rows], whole=fld.kind in WHOLE_KINDS,
                         right=fld.kind in numeric))
    # Columns nobody asked for (the default ones, no --fields) go before anything is cut.
    droppable, last = ([], []) if names else (
        [F.BY_NAME[n].column or n for n in DROP_ORDER],
        [F.BY_NAME[n].column or n for n in LAST_DROPPED])
    _print_table(out, cols, droppable=droppable, last=last)
    from rich.text import Text

    noun = "opportunity" if count == 1 else "opportunities"
    footer = Text(f"{count:,} {noun}   total value {_money(total)}   weighted {_money(weighted)}")
    if more:
        footer.append(f"   showing the first {count:,}; more match (use --all or --limit N)",
                      style="dim")
    _console(out).print(footer)
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


# The default columns a narrow terminal drops, first to last; then names are cut short, and
# only when even that does not fit goes the name (id and value stay).
DROP_ORDER = ("priority", "win_probability", "close_date", "assignee_id", "pipeline_stage_id",
              "status")
LAST_DROPPED = ("name",)


def _money(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def write_record_table(record: Record, out: IO[str], names: Sequence[str] | None,
                       ctx: Context) -> None:
    """One record as a two-column table: every field, custom fields by definition name."""
    labels: list[str] = []
    values: list[str] = []
    whole: list[str] = []  # values of whole kinds: the value column is never narrower

    def add(label: str, value: str, is_whole: bool = False) -> None:
        labels.append(visible(label))
        values.append(visible(value))
        if is_whole:
            whole.append(values[-1])

    for n in (names or F.FIELD_NAMES):
        value = record.get(n)
        if n == "custom_fields":
            for cf_name, cf_value in ctx.custom_cells(value or []):
                add(cf_name, cf_value)
            continue
        add(n, ctx.display(n, value, with_id=True), F.BY_NAME[n].kind in WHOLE_KINDS)
    if not names:  # the extras the record has (none is invented): Copper's order, then others
        for fld in F.EXTRAS:
            if fld.name in record:
                add(fld.name, ctx.display(fld.name, record[fld.name]), fld.kind in WHOLE_KINDS)
        for k in record:
            if k not in F.BY_NAME and k not in F.EXTRA_BY_NAME:
                add(str(k), ctx.display(str(k), record[k]))
    _print_table(out, [_Col("field", labels), _Col("value", values, atoms=whole)], wrap=True,
                 show_header=False, first_bold=True)


def write_history_table(entries: Sequence[dict[str, Any]], out: IO[str], title: str) -> None:
    """The audit log for people: one row per entry, newest first as given."""
    from oppcli.audit import changed_keys

    if not entries:
        _console(out).print("No changes recorded.", style="dim")
        return
    rows = []
    for e in entries:
        when = dt.datetime.fromtimestamp(float(e.get("at") or 0), dt.UTC).strftime(
            "%Y-%m-%d %H:%M:%S")
        change = str(e.get("op")) + (f" (undo of {e['undo_of']})" if e.get("undo_of") else "")
        rec = e.get("after") or e.get("before") or {}
        name = f"{e.get('id')} {rec['name']}" if rec.get("name") else str(e.get("id"))
        fields = ", ".join(changed_keys(e.get("before"), e.get("after")))
        rows.append([visible(str(c)) for c in (e.get("audit_id"), when, change, name, fields,
                                               e.get("profile"))])
    heads = ("audit id", "when (UTC)", "change", "opportunity", "fields", "profile")
    cols = [_Col(h, [r[i] for r in rows], whole=i < 2) for i, h in enumerate(heads)]
    _print_table(out, cols, wrap=True, boxed=True, title=title)


def write_lookup_tables(lookups: Lookups, tables: Sequence[str], out: IO[str]) -> None:
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
                           _Col("detail", details)], wrap=True, boxed=True, title=name)


def write_settings_table(rows: Sequence[Mapping[str, Any]], title: str, out: IO[str]) -> None:
    """`config show`: key, value and where it came from, shown literally."""
    cols = [_Col("key", [visible(str(r["key"])) for r in rows], whole=True),
            _Col("value", [visible("" if r["value"] is None else str(r["value"])) for r in rows]),
            _Col("source", [visible(str(r["source"])) for r in rows])]
    _print_table(out, cols, wrap=True, boxed=True, title=visible(title))


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
