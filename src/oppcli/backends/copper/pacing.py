"""Pacing requests under Copper's rolling rate limit.

Pacer books each request a start time within `limit` requests per rolling `window` seconds;
SharedPacer keeps those bookings in a file (pacing_path) so every oppcli process using one key
shares one allowance.
"""

from __future__ import annotations

import collections
import math
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from pathlib import Path

MAX_BOOKING_AHEAD = 600.0


class Pacer:
    """Keeps requests under `limit` per rolling `window` seconds, in bursts of at most `burst`.

    Each request books a start time: no earlier than the limit-th previous start plus the
    window (the rolling limit itself), and no earlier than a token bucket refilled at
    limit/window allows (so a minute's allowance is not spent in the first second). Safe to
    share between threads.
    """

    def __init__(self, limit: int, window: float, burst: int = 10,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = max(1, int(limit))
        self.window = float(window)
        # A request reaches the server a little after we start it, and not always equally
        # late: keep a margin so the server never sees limit+1 requests in one window.
        self.margin = 0.05 + 0.01 * self.window
        self.rate = self.limit / (self.window + self.margin)
        self.burst = max(1, min(burst, self.limit))
        self.clock = clock
        self._starts: collections.deque[float] = collections.deque(maxlen=self.limit)
        self._tokens = float(self.burst)
        self._last = clock()
        self._lock = threading.Lock()
        self._paused_until = 0.0

    def reserve(self) -> float:
        """Book the next request; returns how long to wait before sending it."""
        with self._lock:
            return self._book()

    def pause(self, seconds: float) -> None:
        """Hold every request back (a 429 told us the server's window is full)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self.clock() + seconds)

    def _book(self) -> float:
        now = self.clock()
        self._tokens = min(float(self.burst), self._tokens + max(0.0, now - self._last) * self.rate)
        self._last = now
        start = max(now, self._paused_until)
        if self._tokens < 1:
            start = max(start, now + (1 - self._tokens) / self.rate)
        if len(self._starts) == self.limit:
            start = max(start, self._starts[0] + self.window + self.margin)
        if self._starts:
            start = max(start, self._starts[-1])
        self._tokens -= 1
        self._starts.append(start)
        return start - now


def pacing_path(directory: Path, api_key: str, user_email: str) -> Path:
    """The file holding the shared allowance of one Copper account: named after the key's
    owner and a hash of the key (never the key itself), not after copper.url, since Copper
    counts requests per key whichever spelling of its address they were sent to (127.0.0.1
    and localhost, a trailing slash, an upper-case host would otherwise each get a minute's
    allowance of their own)."""
    import hashlib

    key_id = hashlib.sha256(api_key.encode()).hexdigest()
    ident = hashlib.sha256(f"{user_email.strip().casefold()}\n{key_id}".encode()).hexdigest()
    return directory / f"copper-pacing-{ident[:16]}.json"


class SharedPacer(Pacer):
    """A Pacer whose bookings live in a file (under an exclusive lock), so that every oppcli
    process using the same key shares one allowance: a shell loop of `oppcli update` calls,
    or parallel cron jobs, stay under the limit together. Wall-clock time, since the
    processes share no other clock. Falls back to pacing this process alone when the file
    cannot be used."""

    def __init__(self, path: Path, limit: int, window: float, burst: int = 10,
                 log: Callable[[str], None] | None = None) -> None:
        super().__init__(limit, window, burst, clock=time.time)
        self.path = path
        self.log = log or (lambda _message: None)
        self._shared = True

    def reserve(self) -> float:
        with self._lock:
            return self._shared_state(self._book)

    def pause(self, seconds: float) -> None:
        with self._lock:
            def later() -> float:
                self._paused_until = max(self._paused_until, self.clock() + seconds)
                return 0.0
            self._shared_state(later)

    def _shared_state(self, change: Callable[[], float]) -> float:
        if not self._shared:
            return change()
        import fcntl

        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            self._shared = False
            self.log(f"pacing this process alone: cannot use {self.path} ({exc.strerror})")
            return change()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._load(os.pread(fd, 1 << 20, 0))
            result = change()
            data = orjson.dumps({"starts": list(self._starts), "tokens": self._tokens,
                                 "last": self._last, "paused_until": self._paused_until})
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
            return result
        except OSError as exc:
            self._shared = False
            self.log(f"pacing this process alone: cannot use {self.path} ({exc.strerror})")
            return change()
        finally:
            os.close(fd)

    def _load(self, raw: bytes) -> None:
        try:
            state = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            state = None
        if not isinstance(state, dict):
            return
        now = self.clock()
        starts = state.get("starts")
        if isinstance(starts, list) and all(isinstance(t, (int, float)) for t in starts):
            # Bookings are absolute times. Many waiting processes can book well ahead, so only
            # ones past any real wait (a clock set back) are dropped: ten minutes beyond the
            # window.
            self._starts.clear()
            self._starts.extend(t for t in starts[-self.limit:]
                                if t <= now + self.window + MAX_BOOKING_AHEAD)
        for attr, key in (("_tokens", "tokens"), ("_last", "last"), ("_paused_until", "paused_until")):
            value = state.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                setattr(self, attr, float(value))
        self._tokens = min(self._tokens, float(self.burst))
        self._last = min(self._last, now)
        self._paused_until = min(self._paused_until, now + 600)
