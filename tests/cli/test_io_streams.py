"""The one I/O seam (io.Streams): what is a terminal, whether we may ask, colour, width,
notices, progress; and the CLI driven with a fake terminal, no pty needed."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from oppcli.cli.app import app
from oppcli.io import Streams


def test_a_terminal_gets_tables_and_a_pipe_gets_json() -> None:
    assert Streams.test(tty=True).default_format() == "table"
    assert Streams.test(tty=False).default_format() == "json"


def test_prompting_needs_a_terminal_on_stdin_and_stderr() -> None:
    assert Streams.test(tty=True).can_prompt
    assert not Streams.test(tty=False).can_prompt
    half = Streams.test(tty=True)
    half.stdin_tty = False
    assert not half.can_prompt


@pytest.mark.parametrize(("typed", "answer"), [("y\n", True), ("yes\n", True), ("n\n", False),
                                               ("\n", False), ("maybe\ny\n", True)])
def test_confirm_reads_the_answer_and_asks_again_on_nonsense(typed: str, answer: bool) -> None:
    streams = Streams.test(tty=True, stdin=typed)
    assert streams.confirm("Delete 1001?") is answer
    assert streams.stderr.getvalue().startswith("Delete 1001? [y/N]: ")
    assert ("Error: invalid input" in streams.stderr.getvalue()) is typed.startswith("maybe")
    assert streams.stdout.getvalue() == ""  # the question never goes to stdout


def test_confirm_at_end_of_input_raises() -> None:
    with pytest.raises(EOFError):
        Streams.test(tty=True, stdin="").confirm("Delete?")


def test_colour_follows_the_option_the_terminal_and_no_color() -> None:
    assert Streams.test(tty=True).color_enabled
    assert not Streams.test(tty=False).color_enabled
    assert not Streams.test(tty=True, env={"NO_COLOR": "1"}).color_enabled
    assert not Streams.test(tty=True, color="never").color_enabled
    assert Streams.test(tty=False, color="always").color_enabled


def test_width_comes_from_the_terminal_or_columns() -> None:
    assert Streams.test(tty=True, width=61).width == 61
    streams = Streams(None, Streams.test().stdout, Streams.test().stderr, stdin_tty=False,
                      stdout_tty=True, stderr_tty=False, env={"COLUMNS": "77"})
    assert streams.width == 77
    assert Streams(None, Streams.test().stdout, Streams.test().stderr, stdin_tty=False,
                   stdout_tty=False, stderr_tty=False).width is None


def test_notices_go_to_stderr_with_control_characters_escaped() -> None:
    streams = Streams.test()
    streams.notice("deleted 1001 'Evil\x1b[2J'")
    streams.warn("careful")
    assert streams.stdout.getvalue() == ""
    assert streams.stderr.getvalue() == ("oppcli: deleted 1001 'Evil\\x1b[2J'\n"
                                         "oppcli: warning: careful\n")


def test_progress_is_drawn_only_on_a_terminal() -> None:
    for tty in (True, False):
        streams = Streams.test(tty=tty)
        progress = streams.progress("exporting")
        assert list(progress.wrap(iter(range(3)))) == [0, 1, 2]
        progress.done()
        assert ("exporting: 1 opportunities" in streams.stderr.getvalue()) is tty


def test_an_unknown_color_choice_is_a_usage_error(sample: Path) -> None:
    result = CliRunner().invoke(app, ["--color", "sometimes", "list"])
    assert result.exit_code == 2
    assert "valid: auto, always, never" in result.stderr


def test_delete_asks_a_fake_terminal_and_deletes_on_yes(sample: Path, run) -> None:
    streams = Streams.test(tty=True, stdin="y\n")
    result = CliRunner().invoke(app, ["delete", "1001", "-o", "json"], obj=streams)
    assert result.exit_code == 0, (result.output, streams.stderr.getvalue())
    assert "Delete 1001 " in streams.stderr.getvalue()
    assert "deleted 1: 1001" in streams.stderr.getvalue()
    run("show", "1001", expect=4)


def test_delete_on_a_fake_terminal_answered_no_deletes_nothing(sample: Path, run) -> None:
    streams = Streams.test(tty=True, stdin="n\n")
    result = CliRunner().invoke(app, ["delete", "1001"], obj=streams)
    assert result.exit_code == 2
    assert streams.stderr.getvalue().endswith("oppcli: nothing deleted\n")
    run("show", "1001")


def test_delete_without_a_terminal_refuses_without_yes(sample: Path, run) -> None:
    streams = Streams.test(tty=False, stdin="y\n")
    result = CliRunner().invoke(app, ["delete", "1001"], obj=streams)
    assert result.exit_code == 2
    assert "without confirmation" in streams.stderr.getvalue()
    run("show", "1001")


def _list_on(streams: Streams, *args: str, table: tuple[str, ...] = ()) -> str:
    result = CliRunner().invoke(app, [*args, "list", "--limit", "3", *table], obj=streams)
    assert result.exit_code == 0, (result.output, streams.stderr.getvalue())
    return streams.stdout.getvalue()


def test_a_fake_terminal_gets_a_coloured_table_without_a_pty(sample: Path) -> None:
    drawn = _list_on(Streams.test(tty=True, width=120))
    assert "3 opportunities" in drawn and "\x1b[" in drawn
    import re

    plain = re.sub(r"\x1b\[[0-9;]*m", "", drawn)
    assert max(len(line) for line in plain.splitlines()) <= 120


def test_color_never_and_no_color_draw_the_table_without_escapes(sample: Path) -> None:
    for streams, args in ((Streams.test(tty=True, width=120), ("--color", "never")),
                          (Streams.test(tty=True, width=120, env={"NO_COLOR": "1"}), ())):
        drawn = _list_on(streams, *args)
        assert "3 opportunities" in drawn and "\x1b[" not in drawn, args
        assert max(len(line) for line in drawn.splitlines()) <= 120


def test_color_always_colours_even_a_pipe_table(sample: Path) -> None:
    drawn = _list_on(Streams.test(tty=False), "--color", "always", table=("-o", "table"))
    assert "\x1b[" in drawn
