"""Records drawn as Rich tables for people: `list` (one row per record, with a footer of
totals) and `show` (one record, field by field), and the layout every table shares.

Text is shown literally, never read as Rich markup; every cell is escaped by visible(). Ids,
money and dates are never cut; text is cut or wraps, then default columns are dropped; only
then do lines run past the width. Rich is imported inside the functions that draw, so
importing this module stays cheap.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO, Any

from oppcli.domain import fields as F
from oppcli.domain.values import stored_close_date
from oppcli.output.display import Context, Record
from oppcli.output.text import visible


def _console(stream: IO[str], width: int | None = None, *,
             style: Mapping[str, Any] | None = None) -> Any:
    """A Rich console on `stream`; `style`: what the I/O seam says about the terminal
    (io.Streams.console_style: colour choice, and an in-memory terminal's size)."""
    from rich.console import Console

    class QuietPipeConsole(Console):
        def on_broken_pipe(self) -> None:  # Rich would exit 1 itself; the CLI ends quietly
            raise BrokenPipeError

    options = dict(style or {})
    if width is not None:
        options["width"] = width
    return QuietPipeConsole(file=stream, highlight=False, soft_wrap=False, markup=False,
                            emoji=False, **options)


def _text(value: str) -> Any:
    """A Rich cell that shows `value` literally: a Text (never parsed as markup), escaped."""
    from rich.text import Text

    return Text(visible(value))


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
                 atoms: Iterable[str] = (), right: bool = False,
                 styles: list[str] | None = None) -> None:
        from rich.cells import cell_len

        self.header, self.cells, self.right = header, cells, right
        self.styles = styles  # a Rich style per cell ("" for none), or None
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
                 first_bold: bool = False, style: Mapping[str, Any] | None = None) -> None:
    """Draw a table of escaped text cells (Text: never read as markup), laid out by _layout.
    `wrap`: text cells fold onto more lines; else each row is one line and long text ends in
    an ellipsis. When even that does not fit, the lines are drawn wider than the terminal."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    width = _console(out, style=style).width
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
        table.add_row(*(Text(cols[i].cells[r], style=_style(cols[i], r)) for i in index))
    _console(out, needed if needed > width else None, style=style).print(table)


def _style(col: _Col, row: int) -> str:
    return col.styles[row] if col.styles is not None else ""


# Colour in tables, where it says something (never with NO_COLOR or --color never: the
# console then has no colour system): a status, and the close date of an open deal past it.
STATUS_STYLES = {"Won": "green", "Lost": "red", "Abandoned": "dim"}
OVERDUE_STYLE = "bold red"


def cell_style(name: str, rec: Record, today: Any, date_order: str) -> str:
    """The style of a record's cell in a table: statuses (Won green, Lost red, Abandoned
    dim, Open plain), and an open deal's close date when it is before `today`."""
    if name == "status":
        return STATUS_STYLES.get(rec.get("status"), "")  # type: ignore[arg-type]
    if name == "close_date" and rec.get("status") == "Open":
        day = stored_close_date(rec.get("close_date"), date_order)
        return OVERDUE_STYLE if day is not None and day < today else ""
    return ""


def write_table(records: Iterable[Record], out: IO[str], names: Sequence[str] | None,
                ctx: Context, *, more: bool = False, style: Mapping[str, Any] | None = None,
                extra: Sequence[tuple[str, Callable[[Record], str]]] = (),
                omit: Sequence[str] = ()) -> int:
    """Records as a table, a row each, and a footer of totals. `extra`: (heading, cell)
    for computed columns after the fields (stale's idle days), numbers shown whole; `omit`:
    default columns that say nothing here (stale's status, always Open)."""
    from oppcli.domain.report import weighted_value  # (its dataclasses cost start-up)

    names_ = list(names) if names else [n for n in F.TABLE_DEFAULT if n not in omit]
    rows: list[list[str]] = []
    styled = {i: n for i, n in enumerate(names_) if n in ("status", "close_date")}
    styles: dict[int, list[str]] = {i: [] for i in styled}
    today = ctx.today()
    count = 0
    total = 0.0
    weighted = 0.0
    for rec in records:
        rows.append([visible(ctx.display(n, rec.get(n))) for n in names_]
                    + [visible(make(rec)) for _, make in extra])
        for i, n in styled.items():
            styles[i].append(cell_style(n, rec, today, ctx.date_order))
        count += 1
        weighted += weighted_value(rec)
        value = rec.get("monetary_value")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            total += value
    if count == 0:
        _console(out, style=style).print("No opportunities match.", style="dim")
        return 0
    numeric = {F.INT, F.MONEY, F.PERCENT}
    cols = []
    for i, n in enumerate(names_):
        fld = F.BY_NAME[n]
        cols.append(_Col(fld.column or n, [r[i] for r in rows], whole=fld.kind in WHOLE_KINDS,
                         right=fld.kind in numeric, styles=styles.get(i)))
    for j, (heading, _) in enumerate(extra, start=len(names_)):
        cols.append(_Col(heading, [r[j] for r in rows], whole=True, right=True))
    # Columns nobody asked for (the default ones, no --fields) go before anything is cut.
    droppable, last = ([], []) if names else (
        [F.BY_NAME[n].column or n for n in DROP_ORDER if n not in omit],
        [F.BY_NAME[n].column or n for n in LAST_DROPPED])
    _print_table(out, cols, droppable=droppable, last=last, style=style)
    from rich.text import Text

    noun = "opportunity" if count == 1 else "opportunities"
    footer = Text(f"{count:,} {noun}   total value {_money(total)}   weighted {_money(weighted)}")
    if more:
        footer.append(f"   showing the first {count:,}; more match (use --all or --limit N)",
                      style="dim")
    _console(out, style=style).print(footer)
    return count


# The default columns a narrow terminal drops, first to last; then names are cut short, and
# only when even that does not fit goes the name (id and value stay).
DROP_ORDER = ("priority", "win_probability", "close_date", "assignee_id", "pipeline_stage_id",
              "status")
LAST_DROPPED = ("name",)


def _money(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def write_record_table(record: Record, out: IO[str], names: Sequence[str] | None,
                       ctx: Context, *, style: Mapping[str, Any] | None = None) -> None:
    """One record as a two-column table: every field, custom fields by definition name."""
    labels: list[str] = []
    values: list[str] = []
    styles: list[str] = []
    whole: list[str] = []  # values of whole kinds: the value column is never narrower
    today = ctx.today()

    def add(label: str, value: str, is_whole: bool = False, field: bool = True) -> None:
        labels.append(visible(label))
        values.append(visible(value))
        # A custom field may be named "status": only the record's own fields are styled.
        styles.append(cell_style(label, record, today, ctx.date_order) if field else "")
        if is_whole:
            whole.append(values[-1])

    for n in (names or F.FIELD_NAMES):
        value = record.get(n)
        if n == "custom_fields":
            for cf_name, cf_value in ctx.custom_cells(value or []):
                add(cf_name, cf_value, field=False)
            continue
        add(n, ctx.display(n, value, with_id=True), F.BY_NAME[n].kind in WHOLE_KINDS)
    if not names:  # the extras the record has (none is invented): Copper's order, then others
        for fld in F.EXTRAS:
            if fld.name in record:
                add(fld.name, ctx.display(fld.name, record[fld.name]), fld.kind in WHOLE_KINDS)
        for k in record:
            if k not in F.BY_NAME and k not in F.EXTRA_BY_NAME:
                add(str(k), ctx.display(str(k), record[k]))
    _print_table(out, [_Col("field", labels), _Col("value", values, atoms=whole, styles=styles)],
                 wrap=True, show_header=False, first_bold=True, style=style)
