"""The completion scripts shipped in completions/ are the ones the app generates, and
--install-completion writes that same script for bash, zsh and fish; asked as bash asks, oppcli
completes values from the local store (statuses, formats, stages, ids, custom field options,
--fields lists) and offers nothing, without failing, when there is no store."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from completer import complete_bash
from conftest import oppcli_exe

ROOT = Path(__file__).resolve().parents[2]  # the repository


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_are_generated_from_the_app(shell):
    proc = subprocess.run([sys.executable, "scripts/gen_completions.py", "--check"],
                          capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    with open(ROOT / "completions" / f"oppcli.{shell}") as f:
        assert "_OPPCLI_COMPLETE" in f.read()


def test_completion_offers_values_from_the_local_store(run, sample):
    assert complete_bash("oppcli search --status ") == ["Open", "Won", "Lost", "Abandoned"]
    assert complete_bash("oppcli list -o j") == ["json", "jsonl"]
    assert "Sales/Negotiation" in complete_bash("oppcli search --stage Sales/N")
    assert complete_bash("oppcli show 100") == [str(i) for i in range(1001, 1010)]
    assert complete_bash("oppcli search --custom-field Region=E") == ["Region=EMEA"]
    assert complete_bash("oppcli list --fields id,monetary") == ["id,monetary_value"]


def test_report_by_completes_the_dimensions_and_the_custom_fields_it_can_group_by(run, sample):
    assert complete_bash("oppcli report --by close-") == ["close-month", "close-quarter"]
    # Dropdown and MultiSelect fields only: not Contract Months (Float) or Champion Notes (Text)
    assert complete_bash("oppcli report --by cf:") == ["cf:Region", "cf:Competitors"]
    assert complete_bash("oppcli forecast --stage Sales/N") == ["Sales/Negotiation"]


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
    shipped = (ROOT / "completions" / f"oppcli.{shell}").read_text()
    assert script.strip() == shipped.strip()
