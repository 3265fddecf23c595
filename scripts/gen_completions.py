"""Regenerate completions/oppcli.{bash,zsh,fish} from the app; --check fails on drift.

Usage: python scripts/gen_completions.py [--check]

The scripts come from the installed `oppcli` itself (Typer's completion protocol, the
`_OPPCLI_COMPLETE=source_<shell>` environment variable), so they never drift from the CLI.
Candidates are computed by oppcli at completion time; the scripts only forward to it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHELLS = ("bash", "zsh", "fish")


def oppcli() -> str:
    here = Path(sys.executable).parent / "oppcli"
    return str(here) if here.exists() else (shutil.which("oppcli") or "oppcli")


def script(shell: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("_OPPCLI")}
    env["_OPPCLI_COMPLETE"] = f"source_{shell}"
    out = subprocess.run([oppcli()], env=env, capture_output=True, text=True, check=True).stdout
    return out.strip() + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for shell in SHELLS:
        path = ROOT / "completions" / f"oppcli.{shell}"
        text = script(shell)
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.parent.mkdir(exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)
    if stale:
        print("stale completion scripts: " + ", ".join(stale)
              + "; run python scripts/gen_completions.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
