"""Everything that touches Typer's internals, in one place (tests/cli/test_typer_glue.py fails
when a Typer release changes what is relied on here; pyproject pins the minor range).

- build(): a command's Click object, built on demand from its function (typer.main);
- takes()/given(): options declared once as data (domain/options.py) added to a command's
  Click parameters after Typer built it, their values handed over in the Click context's
  `meta` (public Click API), so no function signature is rewritten;
- short_help(), UsageError: the help and error pieces of Typer's bundled Click;
- use_fixed_scripts(): our bash and zsh completion scripts in place of Typer's templates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Optional

import typer
from typer._click.exceptions import UsageError
from typer._click.globals import get_current_context
from typer._click.utils import make_default_short_help

from oppcli.domain.options import Opt

__all__ = ["UsageError", "build", "given", "short_help", "takes", "use_fixed_scripts"]

_TAKES = "__oppcli_takes__"


def short_help(text: str, width: int) -> str:
    return str(make_default_short_help(text, width))


def takes(opts: Sequence[Opt], key: str, *, spelling: Callable[[Opt], str] | None = None,
          complete: Callable[[Opt], Any] | None = None,
          panel: Callable[[Opt], str | None] | None = None) -> Callable[[Any], Any]:
    """Mark a command as taking these declared options; their values reach it as
    `given(ctx, key)`. `spelling` gives each option's flag under another name (bulk update
    selects with filters while its own flags set fields); `complete` its completion; `panel`
    the help panel it is listed under (default: the declaration's)."""
    def mark(func: Any) -> Any:
        groups = [*getattr(func, _TAKES, ()), (tuple(opts), key, spelling, complete, panel)]
        setattr(func, _TAKES, groups)
        return func
    return mark


def given(ctx: typer.Context, key: str) -> dict[str, Any]:
    """The declared options' values for this command run: {name: value} (None when absent,
    a list for a repeatable option that was given)."""
    return dict(ctx.meta.get(f"oppcli.{key}", {}))


def build(name: str, panel: str, target: Any) -> Any:
    """The Click command (or group) for a function or Typer app, with its declared options."""
    from typer.main import get_command_from_info, get_group_from_info
    from typer.models import CommandInfo, TyperInfo

    if isinstance(target, typer.Typer):
        return get_group_from_info(TyperInfo(target, name=name, rich_help_panel=panel),
                                   pretty_exceptions_short=True, suggest_commands=True,
                                   rich_markup_mode=None)
    command = get_command_from_info(CommandInfo(name=name, callback=target, rich_help_panel=panel),
                                    pretty_exceptions_short=True, rich_markup_mode=None)
    groups = getattr(target, _TAKES, ())
    at = sum(1 for p in command.params if p.param_type_name == "argument")
    for opts, key, spelling, complete, panel in reversed(groups):  # the top decorator first
        at += _add(command, opts, key, spelling, complete, panel, at)
    if any(group[4] for group in groups):
        setattr(command, "format_options", _sectioned(command))  # noqa: B010 -- one instance
    return command


def _sectioned(command: Any) -> Callable[[Any, Any], None]:
    """Help with the options under their panels' headings (in the order they first appear;
    options without one under "Options"), for a command whose flags must not be confused
    (update's --where-* select, its other flags change)."""
    def format_options(ctx: Any, formatter: Any) -> None:
        args: list[tuple[str, str]] = []
        sections: dict[str, list[tuple[str, str]]] = {}
        for param in command.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                args.append(record)
            else:
                sections.setdefault(getattr(param, "rich_help_panel", None) or "Options",
                                    []).append(record)
        if args:
            with formatter.section("Arguments"):
                formatter.write_dl(args)
        for title, records in sorted(sections.items(), key=lambda kv: kv[0] == "Options"):
            with formatter.section(title):
                formatter.write_dl(records)

    return format_options


def _add(command: Any, opts: Sequence[Opt], key: str, spelling: Any, complete: Any,
         panel: Any, at: int) -> int:
    """Add the options at position `at` of the command's parameters; returns how many."""
    from typer.main import get_click_param
    from typer.models import ParamMeta

    made = []
    for opt in opts:
        flag = spelling(opt) if spelling else opt.flag
        info = typer.Option(None, flag, help=opt.help, metavar=opt.metavar,
                            rich_help_panel=panel(opt) if panel else opt.panel,
                            autocompletion=complete(opt) if complete else None)
        annotation = Optional[list[str]] if opt.many else Optional[str]  # noqa: UP045
        param, convertor = get_click_param(ParamMeta(name=f"{key}__{opt.name}", default=info,
                                                     annotation=annotation))
        made.append((opt.name, param, convertor))
    # Help order: the command's arguments, these options, then the command's own options.
    command.params[at:at] = [param for _, param, _ in made]
    inner = command.callback

    def callback(**kwargs: Any) -> Any:
        values = {}
        for name, param, convertor in made:
            value = kwargs.pop(str(param.name), None)
            values[name] = convertor(value) if convertor is not None and value is not None \
                else value
        get_current_context().meta[f"oppcli.{key}"] = values
        return inner(**kwargs)

    command.callback = callback
    return len(made)


# ---- shell completion scripts -----------------------------------------------------------------
def use_fixed_scripts(bash: str, zsh: str) -> None:
    """Put our bash and zsh scripts in place of Typer's templates, so that completions/,
    `--install-completion` and `--show-completion` agree."""
    try:
        from typer import _completion_classes, _completion_shared
    except ImportError:  # a Typer without these modules: keep its own scripts
        return
    scripts = getattr(_completion_shared, "_completion_scripts", None)
    if isinstance(scripts, dict):
        scripts["bash"], scripts["zsh"] = bash, zsh
    for cls_name, script in (("BashComplete", bash), ("ZshComplete", zsh)):
        cls = getattr(_completion_classes, cls_name, None)
        if cls is not None:
            cls.source_template = script
