"""What cli/typer_glue.py relies on in Typer's internals still holds: a Typer release that
changes any of it fails here, by name, before a command misbehaves. Also: options declared once
(domain/options.py) reach a command, in help order, and serve a JSON schema."""

from __future__ import annotations

import inspect

import pytest
import typer

from oppcli.cli import typer_glue
from oppcli.cli.typer_glue import UsageError
from oppcli.domain import options as O


def test_typer_builds_one_click_parameter_from_a_param_meta() -> None:
    from typer.main import get_click_param
    from typer.models import ParamMeta

    assert list(inspect.signature(ParamMeta.__init__).parameters)[1:] == [
        "name", "default", "annotation"]
    param, convertor = get_click_param(ParamMeta(
        name="where__status", default=typer.Option(None, "--status", help="h", metavar="S"),
        annotation=list[str] | None))
    assert param.name == "where__status" and param.opts == ["--status"]
    assert param.multiple and param.metavar == "S"
    assert convertor(()) is None and convertor(("a",)) == ["a"]


def test_typer_builds_commands_and_groups_from_info_objects() -> None:
    from typer.main import get_command_from_info, get_group_from_info
    from typer.models import CommandInfo, TyperInfo

    for func, names in ((get_command_from_info, {"command_info", "pretty_exceptions_short",
                                                 "rich_markup_mode"}),
                        (get_group_from_info, {"group_info", "pretty_exceptions_short",
                                               "suggest_commands", "rich_markup_mode"})):
        assert names <= set(inspect.signature(func).parameters), func.__name__
    assert {"name", "callback", "rich_help_panel"} <= set(
        inspect.signature(CommandInfo.__init__).parameters)
    assert {"name", "rich_help_panel"} <= set(inspect.signature(TyperInfo.__init__).parameters)


def test_typer_bundles_the_click_pieces_we_use() -> None:
    from typer._click.exceptions import UsageError
    from typer._click.globals import get_current_context
    from typer._click.utils import make_default_short_help

    assert issubclass(UsageError, Exception) and callable(get_current_context)
    assert make_default_short_help("One. Two.", 40) == "One."


def test_typer_keeps_its_completion_script_tables() -> None:
    from typer import _completion_classes, _completion_shared

    assert {"bash", "zsh", "fish"} <= set(_completion_shared._completion_scripts)
    assert isinstance(_completion_classes.BashComplete.source_template, str)
    assert isinstance(_completion_classes.ZshComplete.source_template, str)


def _probe_app(spelling=None):
    seen: dict = {}

    @typer_glue.takes(O.FILTERS[:4], "filters", spelling=spelling)
    def probe(ctx: typer.Context, word: str = typer.Argument("w"),
              limit: int = typer.Option(3, "--limit")) -> None:
        seen.update(typer_glue.given(ctx, "filters"), word=word, limit=limit)

    return typer_glue.build("probe", "Read", probe), seen


def test_declared_options_reach_the_command_after_its_arguments() -> None:
    command, seen = _probe_app()
    names = [p.name for p in command.params]
    assert names[0] == "word" and names[-1] == "limit"
    assert names[1:5] == ["filters__name", "filters__name_contains", "filters__id",
                          "filters__status"]
    command.main(["x", "--status", "Won", "--status", "Lost", "--name", "Acme"],
                 standalone_mode=False)
    assert seen == {"name": "Acme", "name_contains": None, "id": None,
                    "status": ["Won", "Lost"], "word": "x", "limit": 3}


def test_declared_options_can_be_spelt_another_way() -> None:
    command, seen = _probe_app(spelling=lambda o: "--where-" + o.name.replace("_", "-"))
    command.main(["--where-status", "Open"], standalone_mode=False)
    assert seen["status"] == ["Open"]
    with pytest.raises(UsageError, match="--status"):
        command.main(["--status", "Open"], standalone_mode=False)


def test_the_declarations_give_a_json_schema_without_account_data() -> None:
    schema = O.schema(O.FILTERS)
    props = schema["properties"]
    assert props["statuses"]["type"] == "array"
    assert props["statuses"]["items"]["enum"] == ["Open", "Won", "Lost", "Abandoned"]
    assert props["min_value"]["type"] == "number"
    assert "enum" not in props["stages"]["items"]  # stage names come from the lookups tool
    assert set(O.schema(O.UPDATE_OPTS)["properties"]) >= {"stage", "add_tags", "clears",
                                                           "custom_fields", "close_date"}
