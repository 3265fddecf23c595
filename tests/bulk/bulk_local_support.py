"""What the local-store bulk tests share: a real shell pipeline, the rows oppcli prints, the
audit log as written, and records compared without their clocks."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import orjson

from conftest import oppcli_exe

DATES = ("date_modified", "date_stage_changed")


def bash(script: str, expect: int | None = 0, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """A real shell pipeline; OPPCLI in the script is the installed oppcli."""
    script = "set -o pipefail; " + script.replace("OPPCLI", shlex.quote(oppcli_exe()))
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                          env=dict(os.environ), timeout=60, input=input,
                          stdin=None if input is not None else subprocess.DEVNULL)
    if expect is not None:
        assert proc.returncode == expect, (script, proc.returncode, proc.stdout, proc.stderr)
    return proc


def rows(text: str) -> list[dict[str, Any]]:
    """JSON Lines (or one JSON array) as a list of objects."""
    text = text.strip()
    if text.startswith("["):
        return orjson.loads(text)
    return [orjson.loads(line) for line in text.splitlines()]


def audit(isolated: Path) -> list[dict[str, Any]]:
    path = isolated / "config" / "audit.jsonl"
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def without_dates(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in DATES}
