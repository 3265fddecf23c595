"""Checks shared by test files: a store's bytes and records, a refused command's one error line,
and the ids of a JSON answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from oppcli.backends.local import DATA, LocalStore


def snapshot(store: Path) -> dict[str, bytes]:
    """Every file of a store and its bytes, except the lock file (which holds no data)."""
    return {p.name: (p.read_bytes() if p.is_file() else b"<dir>")
            for p in sorted(store.iterdir()) if p.name != ".lock"}


def stored_records(store: Path) -> dict[int, dict[str, Any]]:
    """The records in a store's data file, by id, read without oppcli."""
    return {r["id"]: r for r in map(orjson.loads, (store / DATA).read_bytes().splitlines())}


def make_store(path: Path, lookups: dict[str, Any], records: list[dict[str, Any]]) -> Path:
    LocalStore.create_store(path, lookups=lookups, records=records)
    return path


def one_error_line(result: Any, code: int) -> str:
    """A refused command: this exit code, nothing on stdout, one `oppcli: error:` line."""
    out = result.stdout
    err = result.stderr
    rc = getattr(result, "exit_code", getattr(result, "returncode", None))
    assert rc == code, (rc, out, err, getattr(result, "exception", None))
    assert "Traceback" not in err, err
    assert out == "", f"stdout must stay empty on error: {out!r}"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("oppcli: error: "), err
    return lines[0]


def json_ids(result: Any) -> list[int]:
    return [r["id"] for r in orjson.loads(result.stdout)]
