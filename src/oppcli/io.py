"""The one I/O seam: where oppcli's output goes and what it may assume about the terminal.

Everything that asks "is this a terminal?", "may I ask a question?", "colour?", "how wide?"
asks a Streams (as gh's IOStreams and httpie's Environment do); nothing else looks at
sys.stdout, isatty() or NO_COLOR. The library never prints: it returns values, and reports
what a person should know through notice()/warn()/progress() of the Streams it was given.

    Streams.system(color="auto")       the real process streams (the CLI)
    Streams.test(tty=True, stdin="y\\n")  in-memory streams that claim to be a terminal
"""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Iterator
from typing import IO, Any, TypeVar

PROG = "oppcli"
COLOR_CHOICES = ("auto", "always", "never")
T = TypeVar("T")


class Streams:
    """stdin, stdout and stderr, whether each is a terminal, and the user's colour choice."""

    def __init__(self, stdin: IO[str] | None, stdout: IO[str], stderr: IO[str], *,
                 stdin_tty: bool, stdout_tty: bool, stderr_tty: bool, color: str = "auto",
                 env: dict[str, str] | None = None, width: int | None = None) -> None:
        if color not in COLOR_CHOICES:
            from oppcli.errors import UsageError

            raise UsageError(f"unknown --color {color!r}", "valid: auto, always, never")
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.stdin_tty = stdin_tty
        self.stdout_tty = stdout_tty
        self.stderr_tty = stderr_tty
        self.color = color
        self._env = env
        self._width = width
        self._terminal: IO[str] | None = None
        self._terminal_tried = False

    # ---- construction ---------------------------------------------------------------------
    @classmethod
    def system(cls, color: str = "auto") -> Streams:
        """The process's own streams (read each call: tests and pipes replace sys.stdout)."""
        stdin, stdout, stderr = sys.stdin, sys.stdout, sys.stderr
        return cls(stdin, stdout, stderr, stdin_tty=_isatty(stdin), stdout_tty=_isatty(stdout),
                   stderr_tty=_isatty(stderr), color=color)

    @classmethod
    def test(cls, *, tty: bool = False, stdin: str = "", color: str = "auto", width: int = 100,
             env: dict[str, str] | None = None) -> Streams:
        """In-memory streams: what was written is in .stdout.getvalue() and .stderr; `tty`
        makes all three claim to be a terminal (no pty needed); `stdin` is what a person
        would type."""
        return cls(io.StringIO(stdin), io.StringIO(), io.StringIO(), stdin_tty=tty,
                   stdout_tty=tty, stderr_tty=tty, color=color, env=env or {}, width=width)

    # ---- what the terminal allows ---------------------------------------------------------
    @property
    def env(self) -> dict[str, str] | os._Environ[str]:
        return os.environ if self._env is None else self._env

    @property
    def can_prompt(self) -> bool:
        """A person can answer: stdin and stderr (where the question goes) are a terminal."""
        return self.stdin is not None and self.stdin_tty and self.stderr_tty

    @property
    def can_prompt_terminal(self) -> bool:
        """A person can answer even when stdin is a pipe: stderr is a terminal, and stdin is
        one too or the process has one to read from (/dev/tty; none in cron)."""
        return self.can_prompt or (self.stderr_tty and self._tty() is not None)

    def _tty(self) -> IO[str] | None:
        """The controlling terminal, opened once; never for in-memory streams."""
        if not self._terminal_tried:
            self._terminal_tried = True
            if self._env is None:
                try:
                    self._terminal = open("/dev/tty", encoding="utf-8")  # noqa: SIM115
                except OSError:
                    self._terminal = None
        return self._terminal

    @property
    def color_enabled(self) -> bool:
        """Colour on stdout: --color always; or auto, a terminal, and no NO_COLOR set."""
        if self.color == "always":
            return True
        return self.color == "auto" and self.stdout_tty and not self.env.get("NO_COLOR")

    @property
    def width(self) -> int | None:
        """The terminal's width in columns; None when stdout is not a terminal."""
        if self._width is not None:
            return self._width
        if not self.stdout_tty:
            return None
        columns = self.env.get("COLUMNS", "")
        if columns.isdigit() and int(columns) > 0:
            return int(columns)
        import shutil

        return shutil.get_terminal_size().columns

    def console_style(self) -> dict[str, Any]:
        """How Rich should draw tables on stdout: the colour choice, and for in-memory streams
        (which Rich cannot ask) whether they are a terminal and how wide."""
        style: dict[str, Any] = {}
        if self.color == "never" or (self._env is not None and self.env.get("NO_COLOR")):
            style["color_system"] = None
        elif self.color == "always":
            style["force_terminal"] = True
        if self._env is not None:
            style.setdefault("force_terminal", self.stdout_tty)
            if self._width is not None:
                style["width"] = self._width
        return style

    def default_format(self) -> str:
        """The output format when none is asked for: a table for people, JSON for pipes."""
        return "table" if self.stdout_tty else "json"

    @property
    def stdout_bytes(self) -> IO[bytes]:
        """stdout for bytes (JSON straight from orjson), or a text adapter in tests."""
        buffer: IO[bytes] | None = getattr(self.stdout, "buffer", None)
        return buffer if buffer is not None else io.BufferedWriter(_TextBytes(self.stdout))

    def piped_stdin(self, what: str, hint: str) -> bytes:
        """All of stdin, which must be a pipe or a file: a terminal there is a UsageError
        ("WHAT reads ... from stdin, but stdin is a terminal; HINT"), never a wait for typing."""
        if self.stdin is None or self.stdin_tty:
            from oppcli.errors import UsageError

            raise UsageError(f"{what} from stdin, but stdin is a terminal", hint)
        return self.read_stdin_bytes()

    def read_stdin_bytes(self) -> bytes:
        if self.stdin is None:
            return b""
        buffer = getattr(self.stdin, "buffer", None)
        return buffer.read() if buffer is not None else self.stdin.read().encode()

    # ---- messages for people (stderr, never stdout) ---------------------------------------
    def notice(self, message: str) -> None:
        """One line for a person, shown literally: a control character from the account's
        data is written as its escape, never sent to the terminal."""
        print(f"{PROG}: {literal(message)}", file=self.stderr)

    def warn(self, message: str) -> None:
        self.notice(f"warning: {message}")

    def confirm(self, question: str, *, default: bool = False, terminal: bool = False) -> bool:
        """Ask a yes/no question on stderr and read the answer from stdin (`terminal`: from
        the terminal when stdin is a pipe, see can_prompt_terminal). Raises EOFError at end
        of input and KeyboardInterrupt on Ctrl-C (the entry point maps them)."""
        hint = "[Y/n]" if default else "[y/N]"
        source = self.stdin if (not terminal or self.stdin_tty) else self._tty()
        while True:
            self.stderr.write(f"{question} {hint}: ")
            self.stderr.flush()
            assert source is not None
            line = source.readline()
            if not line:
                self.stderr.write("\n")
                raise EOFError
            answer = line.strip().lower()
            if not answer:
                return default
            if answer in ("y", "yes"):
                return True
            if answer in ("n", "no"):
                return False
            self.stderr.write("Error: invalid input\n")

    def ask(self, question: str, *, secret: bool = False) -> str:
        """Ask for a line of text on stderr and read it from stdin, stripped (`secret`: not
        echoed, as getpass does, on the real terminal). Only when can_prompt; raises EOFError
        at end of input and KeyboardInterrupt on Ctrl-C (the entry point maps them)."""
        if secret and self._env is None and self.stdin is sys.stdin:
            import getpass
            from typing import TextIO, cast

            return getpass.getpass(f"{question}: ", stream=cast(TextIO, self.stderr)).strip()
        self.stderr.write(f"{question}: ")
        self.stderr.flush()
        assert self.stdin is not None
        line = self.stdin.readline()
        if not line:
            self.stderr.write("\n")
            raise EOFError
        return line.strip()

    def progress(self, what: str, total: int | None = None, *, delay: float = 0.0) -> Progress:
        """A one-line running count on stderr (with `total`: out of it, and the time left),
        only when stderr is a terminal; `delay`: not before that many seconds (a quick run
        shows none)."""
        return Progress(self, what, total, delay)


class Progress:
    """`what: 1,234 opportunities` (or `what: 1,234 of 5,000 (24%), about 0:42 left`),
    redrawn at most five times a second; never in cron."""

    def __init__(self, streams: Streams, what: str, total: int | None = None,
                 delay: float = 0.0) -> None:
        self.streams = streams
        self.what = what
        self.total = total
        self.count = 0
        self.on = streams.stderr_tty
        self.started = time.monotonic()
        self._next = self.started + delay if delay else 0.0
        self._drawn = False

    def wrap(self, items: Iterator[T]) -> Iterator[T]:
        for item in items:
            self.step()
            yield item

    def step(self) -> None:
        self.count += 1
        if self.on and time.monotonic() >= self._next:
            self._next = time.monotonic() + 0.2
            self._drawn = True
            self.streams.stderr.write(f"\r{self.line()}\033[K")
            self.streams.stderr.flush()

    def line(self) -> str:
        if not self.total:
            return f"{self.what}: {self.count:,} opportunities"
        text = f"{self.what}: {self.count:,} of {self.total:,} ({100 * self.count // self.total}%)"
        spent = time.monotonic() - self.started
        if self.count and spent > 1:
            left = int(spent / self.count * (self.total - self.count))
            text += f", about {left // 60}:{left % 60:02d} left"
        return text

    def done(self) -> None:
        if self.on and self._drawn:
            self.streams.stderr.write("\r\033[K")
            self.streams.stderr.flush()


def notice(message: str) -> None:
    """Streams.notice on the process's stderr as it is now: where a backend or the audit
    wrapper reports when its caller gave no Streams."""
    Streams.system().notice(message)


def warn(message: str) -> None:
    Streams.system().warn(message)


def literal(text: str) -> str:
    """Text for a terminal: control and invisible format characters escaped."""
    if text.isprintable():
        return text
    from oppcli.output import literal as escaped

    return escaped(text)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (ValueError, OSError):  # closed
        return False


class _TextBytes(io.RawIOBase):
    """Bytes written to a text stream (an in-memory Streams in tests)."""

    def __init__(self, text: IO[str]) -> None:
        self.text = text

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.text.write(bytes(data).decode())
        return len(data)
