"""Files that appear whole or not at all: atomic replacement, new files that never overwrite,
and the cleanup of temporary files a killed run left behind.

Shared by the local store, the config file, the lookups cache and export/import output; nothing
here knows about records.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, BinaryIO

from oppcli.errors import ConfigError


def fsync_dir(path: Path) -> None:
    """Make a rename or link in directory PATH durable (best effort: errors are ignored)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def replacing(path: Path, *, prefix: str | None = None, mode: int = 0o600,
              buffering: int = 1 << 20) -> Iterator[BinaryIO]:
    """A temporary file beside PATH that replaces it, fsynced, when the block succeeds, and is
    removed when it fails: readers see the old or the new content, never a part. OSError
    propagates for the caller to name."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=prefix or f".{path.name}.", suffix=".tmp",
                               dir=path.parent if str(path.parent) else ".")
    done = False
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb", buffering=buffering) as out:
            fd = -1
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        done = True
    finally:
        if fd >= 0:
            os.close(fd)
        if not done:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    fsync_dir(path.parent)


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write a whole file so that readers see the old or the new content, never a part."""
    with replacing(path, mode=mode, buffering=0) as out:
        write_all(out.fileno(), data)


def write_all(fd: int, data: bytes) -> None:
    """Write all of data: a short write is continued; one that writes nothing is a full disk
    (OSError ENOSPC, for the caller to name)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if not written:
            raise OSError(errno.ENOSPC, "short write")
        view = view[written:]


# ---- output files named by the user (export, failed-rows files) -------------------------------
def _tmp_prefix(path: Path) -> str:
    return f".{path.name}.oppcli-"


def remove_stale_temps(path: Path) -> None:
    """Temporary files a killed run (SIGKILL, power cut) left beside PATH, if their process is
    gone."""
    with contextlib.suppress(OSError):
        for old in path.parent.glob(_tmp_prefix(path) + "*.tmp"):
            m = re.search(r"-(\d+)-[^.]*\.tmp$", old.name)
            if m and _alive(int(m[1])):
                continue
            with contextlib.suppress(OSError):
                old.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[IO[bytes]]:
    """A binary file that replaces PATH only when the block succeeds: written to a temporary
    file in the same directory (owner-only), fsynced, then renamed over PATH. A failed, killed
    or interrupted run leaves the previous PATH untouched and never a partial one; the temporary
    file carries the process id, so a later run can tell a killed run's leftovers."""
    path = Path(path)
    remove_stale_temps(path)
    try:
        with replacing(path, prefix=f"{_tmp_prefix(path)}{os.getpid()}-") as out:
            yield out
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}",
                          "check the directory exists and is writable; the previous file, if "
                          "any, is unchanged") from exc


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_output(path) as out:
        out.write(data)


def can_create_in(path: Path, what: str) -> None:
    """Fail now (exit 3) if a file could not be created beside PATH later: a temporary file is
    made there and removed."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{_tmp_prefix(path)}{os.getpid()}-", suffix=".tmp",
                                   dir=path.parent if str(path.parent) else ".")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise ConfigError(f"cannot write the {what} {path}: {exc.strerror}",
                          "choose a writable place for it; nothing was done") from exc


def write_new_file(path: Path, data: bytes) -> Path:
    """Write DATA to a file that did not exist, whole (written to a temporary file, fsynced,
    then linked into place), and return its path: PATH, or PATH with -2, -3, ... before the
    suffix when PATH exists. An existing file is never overwritten. OSError propagates."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f"{_tmp_prefix(path)}{os.getpid()}-", suffix=".tmp",
                               dir=directory)
    try:
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        for n in range(1, 10_000):
            target = path if n == 1 else path.with_name(f"{path.stem}-{n}{path.suffix}")
            try:
                os.link(tmp, target)
            except FileExistsError:
                continue
            except OSError:  # no hard links here (some network or FAT file systems)
                try:
                    with open(target, "xb") as out:
                        out.write(data)
                        out.flush()
                        os.fsync(out.fileno())
                except FileExistsError:
                    continue
            fsync_dir(directory)
            return target
        raise FileExistsError(f"{path} and 9,999 numbered variants exist")
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
