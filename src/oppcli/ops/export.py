"""Export: the matching deals streamed to a file (atomically) or stdout, incrementally with a
state file (ExportState) that remembers the highest date_modified exported, advanced only
after success; --since as a date or a duration (parse_since)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from oppcli import errors as E
from oppcli.errors import ConfigError, ValidationError
from oppcli.util.files import atomic_write_bytes

if TYPE_CHECKING:
    from oppcli.api import Session
    from oppcli.domain.query import Query

EXPORT_FORMATS = ("jsonl", "json", "csv", "tsv")

STATE_FORMAT = "oppcli-export-state"
DEFAULT_OVERLAP = 60  # seconds re-read before the high-water mark on each incremental run
_DURATION = re.compile(r"(\d+)\s*(min|s|h|d|w)")
_UNITS = {"s": 1, "min": 60, "h": 3600, "d": 86400, "w": 604800}
DURATION_HELP = "s, min, h, d, w: 24h, 7d, 90min, 2w, 1d12h"


# ---- --since DATE|DURATION -------------------------------------------------------------------
def parse_since(text: str, now: float | None = None) -> int:
    """Unix seconds: a duration back from now ("24h", "7d", "1d12h", "90min", "2w") or a date
    (YYYY-MM-DD, UTC) or an ISO date-time. "m" and "M" are refused: minutes or months?"""
    from oppcli.domain.values import parse_filter_time

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


class Export:
    def __init__(self, session: Session, *, fmt: str, names: list[str] | None, raw: bool,
                 since: str | None, state_file: Path | None, overlap: int,
                 output_file: Path | None, fail_empty: bool, excel: bool = False) -> None:
        self.session = session
        self.excel = excel
        self.fmt = fmt
        self.names = names
        self.raw = raw
        self.since = since
        self.state_file = state_file
        self.overlap = overlap
        self.output_file = output_file
        self.fail_empty = fail_empty

    def run(self, **filters: Any) -> int:
        """Export; returns how many deals were written."""

        started = int(time.time())
        since_ts = parse_since(self.since) if self.since is not None else None
        query = self.session.query(**filters)
        source = self.session.backend.describe()
        lock = _lock_state(self.state_file) if self.state_file is not None else None
        try:
            count = self._locked(query, source, since_ts, started)
        finally:
            if lock is not None:
                os.close(lock)
        streams = self.session.streams
        if streams.stderr_tty:
            where = f" to {self.output_file}" if self.output_file else ""
            streams.notice(f"exported {count:,} opportunit{'y' if count == 1 else 'ies'}{where}")
        return count

    def _locked(self, query: Query, source: str, since_ts: int | None, started: int) -> int:
        from oppcli.output import Context, write_many
        from oppcli.util.files import atomic_output
        from oppcli.util.interrupts import terminate_cleanly

        backend = self.session.backend
        state_file, output_file, fmt = self.state_file, self.output_file, self.fmt
        state = ExportState.load(state_file, source, self.overlap) if state_file else None
        if state is not None and state.high_water is not None:
            since_ts = state.since()  # the state decides after the first run
        if since_ts is not None:
            query.modified_min = max(since_ts, query.modified_min or since_ts)
        query.sort_by, query.descending = backend.stream_order
        ctx = Context(backend.lookups(), backend.date_order())
        progress = self.session.streams.progress("exporting")

        def records() -> Iterator[Any]:
            if state is None and self.names is None and fmt in ("json", "jsonl"):
                yield from backend.search_raw(query)  # the stored bytes, unparsed
                return
            for r in backend.search(query):
                if state is not None:
                    if state.seen(r):
                        continue
                    state.advance(r)
                yield r

        empty = E.NotFoundError("nothing to export (--fail-empty)",
                                f"{output_file or 'the output'} and the state file are unchanged")
        with terminate_cleanly():
            try:
                if output_file is None:
                    out = self.session.streams.stdout_bytes
                    try:
                        self.session.streams.stdout.flush()
                        count = write_many(progress.wrap(records()), fmt, out, ctx,
                                           names=self.names, raw=self.raw, bom=self.excel)
                        out.flush()
                    except BrokenPipeError:
                        raise E.OutputClosed(
                            "the output was closed before the export finished",
                            "the state file is unchanged" if state_file else
                            "what the reader got is incomplete") from None
                else:
                    with atomic_output(output_file) as f:  # raising inside keeps the old file
                        count = write_many(progress.wrap(records()), fmt, f, ctx,
                                           names=self.names, raw=self.raw, bom=self.excel)
                        if count == 0 and self.fail_empty:
                            raise empty
            finally:
                progress.done()
        if count == 0 and self.fail_empty:
            raise empty
        if state is not None and state_file is not None:
            state.save(state_file, started)
        return count


def _lock_state(path: Path) -> int:
    """One export per state file at a time: two would each save a state for their own output
    file, and the one renamed last may be the older."""
    import fcntl

    lock = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise E.ConfigError(f"cannot lock {lock}: {exc.strerror}",
                            "check the state file's directory") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise E.ServiceError(f"another export is running with the state file {path}",
                             "let it finish (cron: do not overlap the runs)") from None
    return fd
