"""Ask the installed `oppcli` for completions the way its bash completion function does
(COMP_WORDS, COMP_CWORD and _OPPCLI_COMPLETE=complete_bash in the environment), without a shell.

    complete_bash("oppcli search --status ")   # ["Open", "Won", "Lost", "Abandoned"]
"""

from __future__ import annotations

import os
import subprocess

from conftest import oppcli_exe


def complete_bash(words: str, env_extra: dict[str, str] | None = None) -> list[str]:
    env = dict(os.environ)
    env.update(env_extra or {})
    parts = words.split(" ")
    env.update(COMP_WORDS=words, COMP_CWORD=str(len(parts) - 1), _OPPCLI_COMPLETE="complete_bash")
    proc = subprocess.run([oppcli_exe()], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()
