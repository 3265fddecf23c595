"""What every command shares: the run (global options, the I/O seam, the Session, kept in the
Click context: no module-level state), the output option types, and rendering helpers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from oppcli.cli import completion as C
from oppcli.domain import fields as F
from oppcli.errors import ValidationError
from oppcli.io import PROG, Streams

if TYPE_CHECKING:
    from oppcli.api import Session
    from oppcli.output import Context

__all__ = ["PROG", "TABLE_CAP", "Run", "run_of"]

TABLE_CAP = 100  # rows a terminal table shows unless --all or --limit


class Run:
    """One invocation: the global options, the streams, and the Session opened on demand."""

    def __init__(self, streams: Streams | None = None) -> None:
        self.given_streams = streams
        self.streams = streams if streams is not None else Streams.system()
        self.store: str | None = None
        self.backend: str | None = None
        self.profile: str | None = None
        self.debug = False
        self.refresh = False
        self._session: Session | None = None

    def configure(self, *, store: str | None, backend: str | None, profile: str | None,
                  debug: bool, refresh: bool, color: str) -> None:
        self.store, self.backend, self.profile = store, backend, profile
        self.debug, self.refresh = debug, refresh
        if self.given_streams is None:
            self.streams = Streams.system(color)
        else:
            self.streams.color = color if color != "auto" else self.streams.color
        self._session = None

    @property
    def session(self) -> Session:
        if self._session is None:
            from oppcli.api import Session

            self._session = Session(store=self.store, backend=self.backend, profile=self.profile,
                                    refresh=self.refresh, debug=self.debug, streams=self.streams)
        return self._session

    def notice(self, message: str) -> None:
        self.streams.notice(message)

    def output_context(self) -> Context:
        from oppcli.output import Context

        backend = self.session.backend
        return Context(backend.lookups(), backend.date_order())

    def output_format(self, output: str | None, allowed: tuple[str, ...] | None = None) -> str:
        from oppcli.output import FORMATS

        allowed = allowed or FORMATS
        if output is None:
            return self.streams.default_format()
        fmt = output.strip().lower()
        if fmt not in allowed:
            raise ValidationError(f"unknown output format {output!r} for this command",
                                  "valid: " + ", ".join(allowed))
        return fmt

    def emit_record(self, record: dict[str, Any], output: str | None, fields_: str | None,
                    raw: bool) -> None:
        from oppcli.output import emit_one

        fmt, names = self.output_format(output), field_list(fields_)
        emit_one(record, fmt, self.output_context(), self.streams, names=names, raw=raw)


def run_of(ctx: typer.Context) -> Run:
    """The run this command belongs to (made by the entry point; a bare Click invocation
    without it gets a fresh one)."""
    return ctx.ensure_object(Run)


# ---- shared options --------------------------------------------------------------------------
def _complete_formats(incomplete: str) -> list[str]:
    from oppcli.output import FORMATS

    return [f for f in FORMATS if f.startswith(incomplete)]


OutputOpt = Annotated[Optional[str], typer.Option(
    "-o", "--output", help="table, json, jsonl, csv or tsv. Default: table on a terminal, "
    "json when piped.", autocompletion=_complete_formats, metavar="FORMAT")]
FieldsOpt = Annotated[Optional[str], typer.Option(
    "--fields", help="Only these fields, comma-separated, in this order (every format). "
    "Fields: " + ", ".join(F.FIELD_NAMES) + ".",
    autocompletion=C.field_names, metavar="A,B,C")]
SmallOutputOpt = Annotated[Optional[str], typer.Option(
    "-o", "--output", help="table or json. Default: table on a terminal, json when piped.",
    autocompletion=C.choices(("table", "json")), metavar="FORMAT")]
SavedOpt = Annotated[Optional[str], typer.Option(
    "--saved", help="Start from a saved search (its filters and sort; `oppcli saved list`): "
    "a filter given too replaces the saved one of its kind, the others are ANDed.",
    metavar="NAME", autocompletion=C.saved_names, rich_help_panel="Filters")]
RawOpt = Annotated[bool, typer.Option(
    "--raw", help="CSV: do not neutralise cells starting with = + - @.")]


ExcelOpt = Annotated[bool, typer.Option(
    "--excel", help="CSV for Excel: start with a UTF-8 byte order mark, so accents and line "
    "breaks open correctly (rows end in CRLF already). Implies -o csv.")]


def excel_format(run: Run, output: str | None, excel: bool,
                 allowed: tuple[str, ...] | None = None) -> str:
    """The output format, --excel taken into account: CSV unless -o says otherwise, which is
    then refused (exit 2)."""
    if not excel:
        return run.output_format(output, allowed)
    fmt = run.output_format(output or "csv", allowed)
    if fmt != "csv":
        raise ValidationError(f"--excel makes a CSV for Excel, not {fmt}",
                              "leave -o out, or give -o csv")
    return fmt


def field_list(text: str | None) -> list[str] | None:
    return F.parse_field_list(text) if text is not None else None
