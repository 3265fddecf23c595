"""What every command shares: the state the global options set, option types, output helpers."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from oppcli import completion as C
from oppcli import errors as E
from oppcli import fields as F
from oppcli.errors import ValidationError

if TYPE_CHECKING:
    from oppcli.audit import AuditLog
    from oppcli.backends.base import Backend
    from oppcli.config import Settings
    from oppcli.output import Context

PROG = "oppcli"
TABLE_CAP = 100  # rows a terminal table shows unless --all or --limit


def err(message: str) -> None:
    """A message for people: stderr, never stdout; shown literally (a control character in
    a name or in Copper's answer is written as its escape, never sent to the terminal)."""
    print(f"{PROG}: {literal(message)}", file=sys.stderr)


def literal(text: str) -> str:
    """Text for a terminal: control and invisible format characters escaped (output.visible)."""
    if text.isprintable():
        return text
    from oppcli.output import literal as escaped

    return escaped(text)


# ---- global state (set by the callback) -------------------------------------------------------
@dataclass
class State:
    flags: dict[str, Any] = field(default_factory=dict)
    profile: str | None = None
    debug: bool = False
    refresh: bool = False
    _settings: Settings | None = None
    _backend: Backend | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            from oppcli.config import load_settings

            self._settings = load_settings(profile=self.profile, flags=self.flags)
        return self._settings

    def backend(self) -> Backend:
        if self._backend is None:
            from oppcli.audit import Audited
            from oppcli.backends.base import open_backend

            inner = open_backend(self.settings(), debug=self.debug, refresh=self.refresh)
            self._backend = Audited(inner, self.audit_log())  # type: ignore[assignment]
        return self._backend

    def audit_log(self) -> AuditLog:
        """The audit log, labelled with the selected backend (no need to open it)."""
        from oppcli.audit import AuditLog, audit_path
        from oppcli.backends.base import describe

        settings = self.settings()
        name, where = describe(settings)
        return AuditLog(audit_path(), backend=name, where=where, profile=settings.profile)

    def output_context(self) -> Context:
        from oppcli.output import Context

        backend = self.backend()
        return Context(backend.lookups(), backend.date_order())

    def input_date_order(self) -> str:
        return self.settings().date_order


STATE = State()


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
RawOpt = Annotated[bool, typer.Option(
    "--raw", help="CSV: do not neutralise cells starting with = + - @.")]


def output_format(output: str | None, allowed: tuple[str, ...] | None = None) -> str:
    from oppcli.output import FORMATS, default_format

    allowed = allowed or FORMATS
    if output is None:
        return default_format()
    fmt = output.strip().lower()
    if fmt not in allowed:
        raise ValidationError(f"unknown output format {output!r} for this command",
                              "valid: " + ", ".join(allowed))
    return fmt


def field_list(text: str | None) -> list[str] | None:
    return F.parse_field_list(text) if text is not None else None


def emit_record(record: dict[str, Any], output: str | None, fields_: str | None, raw: bool) -> None:
    from oppcli.output import emit_one

    fmt, names = output_format(output), field_list(fields_)
    emit_one(record, fmt, STATE.output_context(), names=names, raw=raw)


def find_id(text: str) -> int:
    """An id, or the id of the one opportunity with this exact name."""
    from oppcli.lookups import is_whole
    from oppcli.query import Query

    raw = text.strip()
    if is_whole(raw):
        return int(raw)
    hits = list(STATE.backend().search(Query(name=raw, sort_by="id", descending=False, limit=20)))
    if not hits:
        raise E.NotFoundError(f"no opportunity named {raw!r}", "use the id, or `oppcli search "
                              "--name-contains TEXT` to look")
    if len(hits) > 1:
        listed = ", ".join(str(h["id"]) for h in hits)
        raise E.ConflictError(f"{len(hits)} opportunities are named {raw!r} (ids {listed})",
                              "give the id")
    return int(hits[0]["id"])
