"""A tool call's reply, and the streams a server's Session speaks through.

A reply carries the JSON the CLI prints for the same command with `-o json` (written by the
CLI's own writers: records exactly as stored, report rows, bulk previews and results), the
sentence the CLI would say on stderr, a write's audit id, or the error: the CLI's one-line
message with its exit code.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from oppcli.errors import OppcliError
from oppcli.io import Streams


class Unexpected(OppcliError):
    """A failure that is not one of oppcli's errors (a bug): exit 1, its traceback logged."""

    prefix = ""


@dataclass
class Reply:
    """What a tool call answers: the CLI's JSON (`text`, and parsed as `value`), a sentence for
    the person (`message`: what the CLI says on stderr), the write's details (`extra`:
    dry_run, audit_id, ...), or the error (with the JSON of what was done before it, if any)."""

    text: str | None = None
    value: Any = None
    message: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    error: OppcliError | None = None
    notices: list[str] = field(default_factory=list)

    @property
    def is_error(self) -> bool:
        return self.error is not None

    def error_line(self) -> str:
        """The CLI's one line, with its exit code: "oppcli: error: ... (exit 4)"."""
        assert self.error is not None
        return f"oppcli: {self.error.prefix}{self.error} (exit {self.error.exit_code})"

    def texts(self) -> list[str]:
        """The reply as text blocks: the JSON first (an error: its line first), then the
        message and the notices."""
        head = [self.error_line()] if self.error is not None else []
        body = [self.text] if self.text is not None else []
        tail = [self.message] if self.message else []
        return [*head, *body, *tail, *self.notices]

    def structured(self) -> dict[str, Any]:
        """The reply as one JSON object: {"result", "message", ...extra, "notices"}, or for an
        error {"error": {"message", "hint", "exit_code"}, "result" when some was done}."""
        out: dict[str, Any] = {}
        if self.error is not None:
            out["error"] = {"message": self.error.message, "hint": self.error.hint,
                            "exit_code": self.error.exit_code}
            if self.text is not None:
                out["result"] = self.value
        else:
            out["result"] = self.value
        if self.message:
            out["message"] = self.message
        out.update(self.extra)
        if self.notices:
            out["notices"] = list(self.notices)
        return out


def json_reply(write: Callable[[IO[bytes]], object], message: str | None = None,
           **extra: Any) -> Reply:
    """A reply whose JSON `write` produces, exactly as the CLI writes it to stdout."""
    out = io.BytesIO()
    write(out)
    text = out.getvalue().decode()
    return Reply(text.rstrip("\n"), orjson.loads(text), message, extra)


def indented(value: Any) -> Callable[[IO[bytes]], object]:
    """A value as lookups and history print it: indented JSON."""
    return lambda out: out.write(orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n")


def one_record(record: Mapping[str, Any]) -> Callable[[IO[bytes]], object]:
    """One record as show, create and update print it."""
    from oppcli.output.formats import write_one_json

    return lambda out: write_one_json(dict(record), out, None)


def change_rows(rows: list[dict[str, Any]]) -> Callable[[IO[bytes]], object]:
    """A bulk change's per-deal rows as `update --dry-run -o json` (and a run) print them."""
    from oppcli.output.changes import write_change_rows

    return lambda out: write_change_rows(rows, "json", out)


# ---- the streams of a server ------------------------------------------------------------------
class ToolStreams(Streams):
    """A server's streams: no terminal (so never a prompt, a colour or a progress bar), and
    stdout never used (it carries the protocol). What the CLI would tell a person on stderr is
    logged to stderr and kept for the reply."""

    def __init__(self, stderr: IO[str]) -> None:
        super().__init__(None, stderr, stderr, stdin_tty=False, stdout_tty=False,
                         stderr_tty=False, color="never")
        self.heard: list[str] = []

    def notice(self, message: str) -> None:
        self.heard.append(message)
        super().notice(message)
