"""Import discipline, checked in a fresh interpreter (never a wall time)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import oppcli_exe


def modules_after(code: str) -> set[str]:
    probe = code + "\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    return {m.split(".")[0] for m in json.loads(out.strip().splitlines()[-1])}


def test_importing_the_cli_loads_no_heavy_modules():
    loaded = modules_after("import oppcli.cli")
    for heavy in ("requests", "urllib3", "rich", "pydantic", "tomli_w"):
        assert heavy not in loaded, f"import oppcli.cli loaded {heavy}"


def test_local_store_commands_never_import_requests_or_rich(tmp_path):
    code = f"""
import os, sys
os.environ["OPPCLI_STORE"] = {str(tmp_path / 'store')!r}
os.environ["OPPCLI_CONFIG_DIR"] = {str(tmp_path / 'cfg')!r}
from oppcli.cli import app
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
    assert "oppcli.cli" in imported  # the probe works
    return imported


def test_help_imports_neither_rich_nor_any_command_module():
    """`oppcli --help` lists the commands from cli.COMMANDS: no command module, no Rich."""
    imported = imported_by(["--help"])
    top = {m.split(".")[0] for m in imported}
    for heavy in ("rich", "requests", "orjson"):
        assert heavy not in top, f"--help imported {heavy}"
    commands = {m for m in imported if m.startswith("oppcli.commands.")} - {"oppcli.commands.common"}
    assert not commands, f"--help imported {commands}"


def test_a_command_imports_only_its_own_command_module(sample):
    imported = imported_by(["list", "-o", "json"])
    commands = {m for m in imported if m.startswith("oppcli.commands.")}
    assert commands == {"oppcli.commands.common", "oppcli.commands.read"}, commands
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


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_are_generated_from_the_app(shell):
    proc = subprocess.run([sys.executable, "scripts/gen_completions.py", "--check"],
                          capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.dirname(__file__)))
    assert proc.returncode == 0, proc.stderr
    with open(os.path.join(os.path.dirname(os.path.dirname(__file__)), "completions",
                           f"oppcli.{shell}")) as f:
        assert "_OPPCLI_COMPLETE" in f.read()


def complete_bash(words: str, env_extra: dict[str, str] | None = None) -> list[str]:
    env = dict(os.environ)
    env.update(env_extra or {})
    parts = words.split(" ")
    env.update(COMP_WORDS=words, COMP_CWORD=str(len(parts) - 1), _OPPCLI_COMPLETE="complete_bash")
    proc = subprocess.run([oppcli_exe()], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_completion_offers_values_from_the_local_store(run, sample):
    assert complete_bash("oppcli search --status ") == ["Open", "Won", "Lost", "Abandoned"]
    assert complete_bash("oppcli list -o j") == ["json", "jsonl"]
    assert "Sales/Negotiation" in complete_bash("oppcli search --stage Sales/N")
    assert complete_bash("oppcli show 100") == [str(i) for i in range(1001, 1010)]
    assert complete_bash("oppcli search --custom-field Region=E") == ["Region=EMEA"]
    assert complete_bash("oppcli list --fields id,monetary") == ["id,monetary_value"]


def test_completion_without_a_store_offers_nothing_and_does_not_fail(tmp_path):
    assert complete_bash("oppcli show ", {"OPPCLI_STORE": str(tmp_path / "none")}) == []


@pytest.mark.parametrize("shell,installed", [
    ("bash", ".bash_completions/oppcli.sh"),
    ("zsh", ".zfunc/_oppcli"),
    ("fish", ".config/fish/completions/oppcli.fish"),
])
def test_install_completion_writes_the_generated_script(tmp_path, shell, installed):
    """Run from inside the shell: --install-completion detects the shell it was started from."""
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home), SHELL=shutil.which(shell) or shell)
    argv = [shell, "--no-config" if shell == "fish" else "-f" if shell == "zsh" else "--norc",
            "-c", f"'{oppcli_exe()}' --install-completion; true"]  # '; true': no exec
    proc = subprocess.run(argv, capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=60)
    assert proc.returncode == 0, proc.stderr
    script = (home / installed).read_text()
    assert "_OPPCLI_COMPLETE" in script
    shipped = (Path(__file__).resolve().parent.parent / "completions" / f"oppcli.{shell}").read_text()
    assert script.strip() == shipped.strip()
