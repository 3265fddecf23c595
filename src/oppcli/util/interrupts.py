"""Stopping a long write run (import, and the bulk changes to come) between two units of work,
never inside one.

A unit is what must happen whole or be reported as unknown: one row's backend write and its
audit entry. While a unit runs, SIGINT and SIGTERM are held: the unit finishes, is recorded as
done, and the run stops before the next one. Outside a unit (reading, reporting, a blocked
stderr) a signal stops the run at once. A second signal during a unit stops it at once too (the
user insists); the caller then reports that unit as unknown.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from types import FrameType, TracebackType
from typing import Any

from oppcli import errors as E


class Stop(BaseException):
    """A signal ended the run (BaseException, like KeyboardInterrupt: no `except Exception`
    swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return E.TERMINATED if self.signum == signal.SIGTERM else E.INTERRUPTED


def exit_code_of(exc: BaseException) -> int | None:
    """The exit code a run stopped by `exc` ends with, when it is a stop rather than a bug:
    a signal (130, 143), a closed output (141), or an oppcli error's own code."""
    if isinstance(exc, Stop):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return E.INTERRUPTED
    if output_closed(exc):
        return E.OUTPUT_CLOSED
    if isinstance(exc, E.OppcliError):
        return exc.exit_code
    return None


def output_closed(exc: BaseException) -> bool:
    """The reader of stdout or stderr went away (EPIPE), or the stream is gone."""
    import errno

    if isinstance(exc, BrokenPipeError | E.OutputClosed):
        return True
    return isinstance(exc, OSError) and exc.errno in (errno.EPIPE, errno.EBADF)


class Held:
    """`with Held() as held:` installs the handlers; `with held.unit():` marks a unit of
    work; `held.check()` after it (once its outcome is reported) raises a signal that came
    meanwhile.

    Used from the main thread only (signal handlers can be set nowhere else); elsewhere it does
    nothing and signals act as usual."""

    ROW = ("\noppcli: finishing the row in progress; Ctrl-C again to stop at once (that row is "
           "then reported unknown)\n")

    def __init__(self, tell: Callable[[str], object] | None = None, message: str = ROW) -> None:
        """`tell`: where to say (only when a person is there to read it) `message`: that the
        unit in progress is finished first."""
        self.tell = tell
        self.message = message
        self.pending: int | None = None
        self.in_unit = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Held:
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[signum] = signal.signal(signum, self._handler)
            except ValueError:  # not the main thread
                break
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.in_unit and self.pending is None:
            self.pending = signum
            if signum == signal.SIGINT and self.tell is not None:
                try:
                    self.tell(self.message)
                except (OSError, ValueError):
                    pass
            return
        raise Stop(signum)

    def unit(self) -> _Unit:
        return _Unit(self)

    def check(self) -> None:
        """Raise the held signal, if one came."""
        if self.pending is not None:
            signum, self.pending = self.pending, None
            raise Stop(signum)


class _Unit:
    def __init__(self, held: Held) -> None:
        self.held = held

    def __enter__(self) -> None:
        self.held.in_unit = True

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        # A signal held during the unit is raised by the caller's held.check(), once it has
        # reported the unit (a row done is said to be done before the run stops).
        self.held.in_unit = False


class ignored:  # noqa: N801 -- used like contextlib's lower-case helpers
    """SIGINT and SIGTERM ignored for a short block that must not be cut (writing the rows not
    done while already stopping: a second Ctrl-C then cannot lose them). Main thread only."""

    def __enter__(self) -> None:
        self._previous: dict[int, Any] = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[signum] = signal.signal(signum, signal.SIG_IGN)
            except ValueError:  # not the main thread
                break

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)


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


# ---- the incremental-export state ----------------------------------------------------------------
