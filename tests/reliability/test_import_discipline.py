"""Import discipline, checked in a fresh interpreter (never a wall time): importing the CLI,
--version, --help, a local command and completing against Copper load no heavy module (requests,
Rich, ...), and a command imports only its own command module."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import oppcli_exe


def modules_after(code: str) -> set[str]:
    probe = code + "\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    return {m.split(".")[0] for m in json.loads(out.strip().splitlines()[-1])}


def test_importing_the_cli_loads_no_heavy_modules():
    loaded = modules_after("import oppcli.cli.app")
    for heavy in ("requests", "urllib3", "rich", "pydantic", "tomli_w"):
        assert heavy not in loaded, f"import oppcli.cli.app loaded {heavy}"


def test_local_store_commands_never_import_requests_or_rich(tmp_path):
    code = f"""
import os, sys
os.environ["OPPCLI_STORE"] = {str(tmp_path / 'store')!r}
os.environ["OPPCLI_CONFIG_DIR"] = {str(tmp_path / 'cfg')!r}
from oppcli.cli.app import app
for args in (["init", "--sample"], ["search", "--status", "open", "-o", "json"],
             ["show", "1001", "-o", "json"], ["list", "-o", "csv"],
             ["create", "--name", "Probe", "--primary-contact-id", "601", "-o", "json"],
             ["update", "1001", "--monetary-value", "5", "-o", "json"],
             ["delete", "1002", "--yes", "-o", "json"], ["export", "-o", "csv"],
             ["lookups", "-o", "json"], ["history", "-o", "json"], ["undo", "-o", "json"]):
    try:
        app(args)
    except SystemExit as exc:
        assert exc.code == 0, (args, exc.code)
"""
    loaded = modules_after(code)
    assert "requests" not in loaded
    assert "rich" not in loaded  # Rich is only for tables


def test_version_does_not_load_rich_or_the_store():
    env = dict(os.environ)
    env["PYTHONPROFILEIMPORTTIME"] = "1"
    proc = subprocess.run([oppcli_exe(), "--version"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0
    imported = {line.split("|")[-1].strip().split(".")[0]
                for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "oppcli" in imported  # the probe works
    for heavy in ("rich", "requests", "orjson"):
        assert heavy not in imported, f"--version imported {heavy}"


def imported_by(argv: list[str], env_extra: dict[str, str] | None = None) -> set[str]:
    """The top-level packages a real run of the installed oppcli imported (fresh interpreter)."""
    env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1", **(env_extra or {}))
    proc = subprocess.run([oppcli_exe(), *argv], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    assert "oppcli.cli.app" in imported  # the probe works
    return imported


def test_help_imports_neither_rich_nor_any_command_module():
    """`oppcli --help` lists the commands from cli.COMMANDS: no command module, no Rich."""
    imported = imported_by(["--help"])
    top = {m.split(".")[0] for m in imported}
    for heavy in ("rich", "requests", "orjson"):
        assert heavy not in top, f"--help imported {heavy}"
    commands = {m for m in imported if m.startswith("oppcli.cli.commands.")} - {"oppcli.cli.commands.common"}
    assert not commands, f"--help imported {commands}"


def test_a_command_imports_only_its_own_command_module(sample):
    imported = imported_by(["list", "-o", "json"])
    commands = {m for m in imported if m.startswith("oppcli.cli.commands.")}
    assert commands == {"oppcli.cli.commands.common", "oppcli.cli.commands.read"}, commands
    top = {m.split(".")[0] for m in imported}
    assert "rich" not in top and "requests" not in top


def test_completion_on_copper_never_touches_the_network(tmp_path):
    """Completing names against a Copper profile reads the lookup cache only: requests (the
    only way oppcli reaches the network) is never imported, whatever the URL."""
    env = {"OPPCLI_BACKEND": "copper", "COPPER_API_KEY": "k" * 20,
           "COPPER_USER_EMAIL": "ada@example.com", "OPPCLI_STORE": str(tmp_path / "none"),
           "COMP_WORDS": "oppcli search --stage Sa", "COMP_CWORD": "3",
           "_OPPCLI_COMPLETE": "complete_bash"}
    imported = imported_by([], env)
    top = {m.split(".")[0] for m in imported}
    assert "requests" not in top and "urllib3" not in top and "rich" not in top
