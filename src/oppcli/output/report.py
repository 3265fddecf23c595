"""Reports and forecasts for people: a Rich table with a bar drawn to scale (solid for the
weighted value, light for the rest of the value), money in thousands, names not ids, a total
row and a one-line summary. Colour only marks: the bar, overdue, and rows that are empty or
`none`; never with NO_COLOR or --color never (Streams.console_style). Imported by the report
commands only; Rich only when drawing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import IO, Any

from oppcli.domain.report import METRICS, NONE, OVERDUE, Forecast, Report
from oppcli.output.tables import _console
from oppcli.output.text import visible

SOLID, LIGHT = "█", "░"
BAR_MOST = 32  # the widest a bar is drawn
BAR_LEAST = 8  # narrower than this, the bar column is left out
HEADINGS = {"count": "Deals", "value": "Value", "weighted": "Weighted", "average": "Average",
            "win_rate": "Win rate", "month": "Month"}


def heading(column: str) -> str:
    """A column's heading: Deals, Value, ...; a dimension's key in words (close_month ->
    Close month; cf:Region as it is)."""
    if column in HEADINGS:
        return HEADINGS[column]
    if column.startswith("cf:"):
        return column
    return column.replace("_", " ").capitalize()


def money(x: Any) -> str:
    return f"{x:,.0f}" if isinstance(x, (int, float)) else ""


def percent(x: Any) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _cell(key: str, value: Any) -> str:
    if key == "count":
        return f"{value:,}"
    if key in ("value", "weighted", "average"):
        return money(value)
    if key == "win_rate":
        return percent(value)
    return "" if value is None else visible(str(value))


def bar(value: float, weighted: float, most: float, width: int) -> tuple[str, str]:
    """(solid, light): the weighted share of the value, then the rest, `width` at `most`."""
    if most <= 0 or width <= 0 or value <= 0:
        return "", ""
    total = max(1, round(width * value / most))
    solid = min(total, round(width * max(0.0, weighted) / most))
    return SOLID * solid, LIGHT * (total - solid)


TEXT_LEAST = 12  # a group's name is cut (with an ellipsis) to no less than this for the bar


def _draw(out: IO[str], heads: Sequence[str], rows: Sequence[Sequence[str]],
          bars: Sequence[tuple[float, float]], styles: Sequence[str | None],
          total: Sequence[str] | None, summary: str, style: Mapping[str, Any] | None,
          right: Sequence[bool], droppable: Sequence[str] = ()) -> None:
    """The table: numbers (right) whole, names (left) cut only to make room for the bar; when
    even that leaves no room, the `droppable` columns (headings) go first, then the bar."""
    from rich import box
    from rich.cells import cell_len
    from rich.table import Table
    from rich.text import Text

    console = _console(out, style=style)
    keep = list(range(len(heads)))
    lines = [*rows, *([total] if total is not None else [])]

    def natural(i: int) -> int:
        return max([cell_len(heads[i]), *(cell_len(r[i]) for r in lines)])

    def fit(cut: bool) -> tuple[dict[int, int], int]:
        """Widths, and the room left for the bar (`cut`: names cut down to make some)."""
        widths = {i: natural(i) for i in keep}
        room = console.width - sum(widths.values()) - 3 * len(keep)
        for i in keep:
            if room >= BAR_LEAST or not cut:
                break
            if not right[i] and widths[i] > TEXT_LEAST:
                give = min(widths[i] - TEXT_LEAST, BAR_LEAST - room)
                widths[i] -= give
                room += give
        return widths, room

    widths, room = fit(cut=False)
    for head in droppable:  # first the columns that may go, then the names are cut
        if room >= BAR_LEAST or not bars:
            break
        if head in heads:
            keep.remove(heads.index(head))
            widths, room = fit(cut=False)
    if room < BAR_LEAST:
        widths, room = fit(cut=True)
    width = min(BAR_MOST, room)
    drawn = width >= BAR_LEAST and bool(bars)
    if not drawn:  # no bar: names cut to fit if they can, numbers never; else lines run long
        widths, room = fit(cut=True)
        console = _console(out, console.width - min(0, room - 1), style=style)
    table = Table(box=box.SIMPLE, pad_edge=False, show_edge=False, show_footer=total is not None)
    for i in keep:
        table.add_column(Text(heads[i]), Text(total[i], style="bold") if total is not None else "",
                         justify="right" if right[i] else "left", no_wrap=True,
                         overflow="ellipsis", width=widths[i])
    most = max((v for v, _ in bars), default=0.0)
    if drawn:
        table.add_column(Text(""), no_wrap=True, width=width)
    for n, row in enumerate(rows):
        cells = [Text(row[i], style=styles[n] or "") for i in keep]
        if drawn:
            solid, light = bar(*bars[n], most, width)
            cells.append(Text.assemble((solid, "cyan"), (light, "bright_black")))
        table.add_row(*cells)
    console.print(table)
    console.print(Text(summary), soft_wrap=True)  # one line, the terminal folds it


def write_report_table(report: Report, out: IO[str], names: Sequence[str] | None, *,
                       style: Mapping[str, Any] | None = None) -> None:
    """A report: one row per group, the total (each deal once), a summary line."""
    columns = list(names) if names else [d.key for d in report.dimensions] + list(METRICS)
    records = report.records()
    heads = [heading(c) for c in columns]
    rows, bars, styles = [], [], []
    previous: Any = object()
    first = report.dimensions[0].key
    for rec, row in zip(records, report.rows, strict=True):
        cells = [_cell(c, rec.get(c)) for c in columns]
        if len(report.dimensions) == 2 and first in columns and rec.get(first) == previous:
            cells[columns.index(first)] = ""  # the outer group named once
        previous = rec.get(first)
        rows.append(cells)
        bars.append((float(rec["value"]), float(rec["weighted"])))
        empty = rec["count"] == 0 or any(name == NONE for _, name in row.groups)
        styles.append("dim" if empty else None)
    t = report.total
    total = [_cell(c, t[c]) if c in t else "" for c in columns]
    if total and columns[0] not in t:
        total[0] = "total"
    if not rows:
        _console(out, style=style).print("No opportunities match.", style="dim")
        return
    deals = t["count"]
    closed = (f"win rate {percent(t['win_rate'])} ({report.won:,} won of {report.closed:,} "
              "closed)" if report.closed else "none closed")
    summary = (f"{deals:,} deal{'' if deals == 1 else 's'}, value {money(t['value'])}, weighted "
               f"{money(t['weighted'])}, {closed}")
    many = [d.name for d in report.dimensions if d.many]
    if many:
        summary += f"; a deal is in each of its {' and '.join(many)} groups, the total once"
    _draw(out, heads, rows, bars, styles, total, summary, style,
          [c in HEADINGS or c.endswith("_id") for c in columns],
          droppable=() if names else ("Average", "Win rate"))


def write_forecast_table(fc: Forecast, out: IO[str], names: Sequence[str] | None, *,
                         style: Mapping[str, Any] | None = None) -> None:
    """A forecast: overdue, each month, none; a total; a summary with what closes later."""
    columns = list(names) if names else ["month", "count", "value", "weighted"]
    heads = [heading(c) for c in columns]
    rows, bars, styles = [], [], []
    for rec in fc.records():
        rows.append([_cell(c, rec.get(c)) for c in columns])
        bars.append((float(rec["value"]), float(rec["weighted"])))
        month = rec["month"]
        styles.append("red" if month == OVERDUE and rec["count"] else
                      "dim" if month == NONE or rec["count"] == 0 else None)
    t = fc.total
    total = [_cell(c, t[c]) if c in t else "" for c in columns]
    if columns[0] not in t:
        total[0] = "total"
    window = {m: r for m, r in fc.rows}
    ahead = sum(window[m]["count"] for m in fc.months)
    ahead_value = sum(window[m]["value"] for m in fc.months)
    ahead_weighted = sum(window[m]["weighted"] for m in fc.months)
    n = len(fc.months)
    summary = (f"{'this month' if n == 1 else f'next {n} months'}: {ahead:,} "
               f"deal{'' if ahead == 1 else 's'}, value {money(ahead_value)}, weighted "
               f"{money(ahead_weighted)}; {window[OVERDUE]['count']:,} overdue, "
               f"{window[NONE]['count']:,} undated; {fc.later['count']:,} close later "
               f"(value {money(fc.later['value'])}), not shown")
    _draw(out, heads, rows, bars, styles, total, summary, style,
          [c in HEADINGS and c != "month" or c.endswith("_id") for c in columns])
