"""Help that teaches the tool: every command and option is explained, with an example; the
command reference in docs/ is the CLI's own help; the README's links lead somewhere and its test
command is the one CI runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer

from oppcli.cli.app import app

ROOT = Path(__file__).resolve().parents[2]


def all_commands():
    """Every command and group, built through the group's own lookup (the root builds its
    commands on demand)."""
    root = typer.main.get_command(app)
    stack = [((), root)]
    while stack:
        path, cmd = stack.pop()
        yield path, cmd
        if hasattr(cmd, "list_commands"):
            ctx = typer.Context(cmd)
            for name in cmd.list_commands(ctx):
                stack.append(((*path, name), cmd.get_command(ctx, name)))


COMMANDS = sorted(all_commands(), key=lambda pc: pc[0])


@pytest.mark.parametrize("path,cmd", COMMANDS, ids=[" ".join(p) or "oppcli" for p, _ in COMMANDS])
def test_every_command_has_a_summary_an_example_and_explained_options(path, cmd):
    text = cmd.help or ""
    summary = text.strip().splitlines()[0] if text.strip() else ""
    assert summary and len(summary) <= 100, f"{path}: one-line summary missing or too long"
    assert "Example: oppcli" in text, f"{path}: no example in its help"
    for param in cmd.params:
        if getattr(param, "hidden", False):
            continue
        assert (getattr(param, "help", None) or "").strip(), f"{path}: {param.name} is unexplained"


@pytest.mark.parametrize("flag,values", [
    ("--status", ["Open", "Won", "Lost", "Abandoned"]),
    ("--priority", ["None", "Low", "Medium", "High"]),
    ("--output", ["table", "json", "jsonl", "csv", "tsv"]),
    ("--fields", ["monetary_value", "custom_fields"]),
    ("--sort", ["date_modified", "close_date"]),
])
def test_options_name_their_accepted_values(flag, values):
    root = typer.main.get_command(app)
    cmd = root.get_command(typer.Context(root), "search")
    param = next(p for p in cmd.params if flag in p.opts)
    for value in values:
        assert value in param.help, (flag, value)


def test_top_level_help_lists_commands_in_a_useful_order(run):
    out = run("--help").stdout
    listing = out[out.index("Setup"):]  # the command panels: Setup, then Read, then Write
    positions = [listing.index(f" {name} ") for name in ("init", "list", "search", "show",
                                                          "create", "update", "delete")]
    assert positions == sorted(positions)
    assert listing.index("Setup") < listing.index("Read") < listing.index("Write")


def test_every_help_page_renders(run):
    for path, _ in COMMANDS:
        result = run(*path, "--help")
        assert "Usage" in result.stdout and result.stderr == ""


def test_the_command_reference_in_docs_matches_the_cli():
    """docs/reference.md is every command's own --help, one section each, and the README
    links to it."""
    proc = subprocess.run([sys.executable, "scripts/gen_reference.py", "--check"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    reference = (ROOT / "docs" / "reference.md").read_text()
    for path, _ in COMMANDS:
        assert f"\n## `{' '.join(('oppcli', *path))}`\n" in reference
    assert "(docs/reference.md)" in (ROOT / "README.md").read_text()


def test_the_readme_test_command_is_the_one_ci_runs():
    """CI runs "the README's test command": the last command of .ci/run is a line of the
    README's code blocks."""
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    command = [line for line in ci if line and not line.startswith("#")][-1]
    assert command == "python -m pytest"
    readme = (ROOT / "README.md").read_text()
    assert f"```sh\npip install -e '.[test]'\n{command}\n```" in readme


def test_the_links_in_the_readme_and_docs_lead_to_files_and_headings():
    """Every relative link in README.md and docs/*.md names a file that exists and, after a #,
    a heading of that file (GitHub's anchors: lower case, backticks and punctuation dropped,
    spaces as hyphens)."""
    import re

    def anchors(page):
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
                for h in re.findall(r"^#+ (.*)$", text, flags=re.M)}

    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert len(pages) > 1
    for page in pages:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            assert dest.exists(), f"{page.name}: {target} leads nowhere"
            if anchor:
                assert anchor in anchors(dest), f"{page.name}: {target}: no such heading"


def test_the_top_level_summaries_are_the_commands_own():
    """`oppcli --help` lists commands without building them, from cli.COMMANDS: its summaries
    must stay the first lines of the commands' docstrings."""
    from oppcli.cli.app import COMMANDS

    root = typer.main.get_command(app)
    ctx = typer.Context(root)
    assert root.list_commands(ctx) == [name for name, *_ in COMMANDS]
    for name, _panel, _where, summary in COMMANDS:
        cmd = root.get_command(ctx, name)
        assert cmd.name == name
        assert (cmd.help or "").strip().splitlines()[0] == summary, name


def test_a_mistyped_command_gets_a_suggestion(run):
    result = run("serach", "--status", "open", expect=2)
    assert result.exit_code == 2
    assert "No such command 'serach'. Did you mean 'search'?" in result.stderr
