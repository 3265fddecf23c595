"""`oppcli saved`: the profile's saved searches (made with `search ... --save NAME`)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from oppcli.cli import completion as C
from oppcli.cli.commands.common import SmallOutputOpt, run_of

saved_app = typer.Typer(
    help="Saved searches (made with `oppcli search ... --save NAME`): list them, show one, "
    "forget one.\n\nExample: oppcli saved list", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="The saved search's name.", metavar="NAME",
                                        autocompletion=C.saved_names)]


def _words(entry: dict[str, Any]) -> str:
    """A saved search as the flags that would make it: --status Open --assignee 'Ada Park'."""
    from oppcli.domain import options as O

    flags = {o.name: o.flag for o in O.FILTERS}
    parts = []
    for key, value in entry.items():
        if key == "sort":
            parts.append(f"--sort {_quote(str(value))}")
        elif key == "asc":
            parts.append("--asc" if value else "--desc")
        else:
            for v in value if isinstance(value, list) else [value]:
                parts.append(f"{flags.get(key, '--' + key)} {_quote(str(v))}")
    return " ".join(parts)


_ANSI_C = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _quote(text: str) -> str:
    """One word as the shell reads it back, with nothing unseen in it: shlex's quoting, or
    for text holding a line break, a control or an invisible character, $'...' with escapes
    (bash, zsh; escaping the line as a whole would not read back as the same text)."""
    import shlex

    if text.isprintable():
        return shlex.quote(text)
    out = []
    for ch in text:
        if ch in _ANSI_C:
            out.append(_ANSI_C[ch])
        elif ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            # \xHH is a byte to bash: past ASCII, \u and \U give the character (UTF-8)
            out.append(f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}"
                       if code < 0x10000 else f"\\U{code:08x}")
    return "$'" + "".join(out) + "'"


@saved_app.command("list")
def saved_list(ctx: typer.Context, output: SmallOutputOpt = None) -> None:
    """Every saved search of the profile, with its filters.

    Example: oppcli saved list -o json
    """
    run = run_of(ctx)
    fmt = run.output_format(output, ("table", "json"))
    searches = run.session.saved_searches()
    if fmt == "json":
        import orjson

        run.streams.stdout.write(orjson.dumps(searches, option=orjson.OPT_INDENT_2).decode()
                                 + "\n")
        return
    if not searches:
        run.notice(f"no saved searches in profile {run.session.settings.profile!r}; save one "
                   "with `oppcli search FILTERS --save NAME`")
        return
    from oppcli.output.panels import write_pairs_table

    write_pairs_table([(name, _words(entry)) for name, entry in sorted(searches.items())],
                      ("name", "filters"), f"saved searches of profile "
                      f"{run.session.settings.profile}", run.streams.stdout,
                      style=run.streams.console_style())


@saved_app.command("show")
def saved_show(ctx: typer.Context, name: NameArg, output: SmallOutputOpt = None) -> None:
    """One saved search: its filters and sort (as flags on a terminal, an object in JSON).

    Example: oppcli saved show my-pipeline -o json
    """
    run = run_of(ctx)
    fmt = run.output_format(output, ("table", "json"))
    entry = run.session.saved_search(name)
    if fmt == "json":
        import orjson

        run.streams.stdout.write(orjson.dumps(entry, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    from oppcli.output import literal

    print(literal(_words(entry)), file=run.streams.stdout)


@saved_app.command("delete")
def saved_delete(ctx: typer.Context, name: NameArg) -> None:
    """Forget a saved search (the deals are not touched).

    Example: oppcli saved delete my-pipeline
    """
    run = run_of(ctx)
    run.session.delete_saved(name)
    run.notice(f"deleted the saved search {name.strip()!r}")

