"""Waiting for an flock() with a deadline: the store's lock and the config file's share it."""

from __future__ import annotations

import fcntl
import time


def flock_within(fd: int, timeout: float) -> bool:
    """Take an exclusive flock on fd, retrying with a short back-off for up to `timeout`
    seconds; False when another process still holds it then."""
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() > deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
