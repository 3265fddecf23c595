"""The oppcli command line: the app, its global options, and the one place errors become exit
codes (OppcliGroup.main).

Commands live in oppcli.commands (setup, read, write): each parses its options, builds a Query
or a payload, calls the backend and hands the records to output.py. They are registered here,
in the order `oppcli --help` lists them.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from oppcli import __version__
from oppcli import completion as C
from oppcli import errors as E
from oppcli.commands import history, read, setup, transfer, write
from oppcli.commands.common import PROG, STATE, err
from oppcli.errors import OppcliError

C.use_fixed_scripts()


# ---- the one place errors become exit codes ------------------------------------------------
class OppcliGroup(TyperGroup):
    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        try:
            rv = super().main(args=args, prog_name=prog_name or PROG, complete_var=complete_var,
                              standalone_mode=False, windows_expand_args=windows_expand_args,
                              **extra)
        except OppcliError as exc:
            if STATE.debug:
                traceback.print_exc()
            err(f"error: {exc}")
            code = exc.exit_code
        except typer.Abort as exc:
            if isinstance(exc.__context__, KeyboardInterrupt):  # Ctrl-C at a prompt
                code = E.INTERRUPTED
            else:  # end of input at a prompt
                err("aborted")
                code = E.USAGE
        except (KeyboardInterrupt):
            code = E.INTERRUPTED
        except Exception as exc:
            # Click's usage errors: duck-typed, because Typer bundles its own Click.
            if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
                ctx = getattr(exc, "ctx", None)
                where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
                if exc.format_message():  # empty: help was shown for a bare group
                    err(f"error: {exc.format_message()}{where}")
                code = int(exc.exit_code)
            elif isinstance(exc, BrokenPipeError):
                _silence_stdout()
                code = E.OK
            else:
                if STATE.debug:
                    traceback.print_exc()
                    err(f"unexpected error: {type(exc).__name__}: {exc}")
                else:
                    err(f"unexpected error: {type(exc).__name__}: {exc} "
                        "(run with --debug for the traceback)")
                code = E.UNEXPECTED
        else:
            code = rv if isinstance(rv, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code

    def invoke(self, ctx: Any) -> Any:
        # `oppcli list | head -1`: the reader went away. Caught here because Typer's main turns
        # EPIPE into a silent exit 1 before main() above could see it; the flush makes a reader
        # that leaves during the last buffered write show up here too, not at interpreter exit.
        try:
            rv = super().invoke(ctx)
            sys.stdout.flush()
        except BrokenPipeError:
            _silence_stdout()
            raise typer.Exit(E.OK) from None
        return rv


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _version(value: bool) -> None:
    if value:
        print(f"{PROG} {__version__}")
        raise typer.Exit()


app = typer.Typer(
    cls=OppcliGroup,
    name=PROG,
    help="Manage sales opportunities the way Copper CRM models them: locally or through the API."
    "\n\nData goes to stdout (a table on a terminal, JSON otherwise); messages go to stderr."
    "\n\nExample: oppcli init --sample && oppcli search --status open --min-value 50000",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode="rich",
)


@app.callback()
def main_callback(
    store: Annotated[Optional[Path], typer.Option(
        "--store", help="Local store directory (env OPPCLI_STORE).", metavar="PATH")] = None,
    backend: Annotated[Optional[str], typer.Option(
        "--backend", help="Where data lives: local (the JSON store) or copper (the API); "
        "env OPPCLI_BACKEND.", metavar="local|copper",
        autocompletion=C.choices(("local", "copper")))] = None,
    profile: Annotated[Optional[str], typer.Option(
        "--profile", help="Config profile to use or change (env OPPCLI_PROFILE; "
        "default: default).", metavar="NAME")] = None,
    debug: Annotated[bool, typer.Option(
        "--debug", help="Show tracebacks, and log each Copper request (method, URL, status, "
        "time; never the key) to stderr.")] = False,
    refresh: Annotated[bool, typer.Option(
        "--refresh", help="Copper: fetch the lookup tables (pipelines, users, ...) again "
        "instead of using the cached copy.")] = False,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Manage sales opportunities the way Copper CRM models them.

    Data goes to stdout (a table on a terminal, JSON otherwise); messages go to stderr.

    Example: oppcli init --sample && oppcli search --status open --min-value 50000
    """
    STATE.flags = {"store": str(store) if store else None, "backend": backend}
    STATE.profile = profile
    STATE.debug = debug
    STATE.refresh = refresh
    STATE._settings = None
    STATE._backend = None


# ---- the commands, in the order `oppcli --help` shows them ------------------------------------
app.command(rich_help_panel="Setup")(setup.init)
app.command("list", rich_help_panel="Read")(read.list_)
app.command(rich_help_panel="Read")(read.search)
app.command(rich_help_panel="Read")(read.show)
app.command(rich_help_panel="Write")(write.create)
app.command(rich_help_panel="Write")(write.update)
app.command(rich_help_panel="Write")(write.delete)
app.command(rich_help_panel="Write")(history.undo)
app.command(rich_help_panel="Read")(history.history)
app.command(rich_help_panel="Read")(read.lookups)
app.command(rich_help_panel="Bulk")(transfer.export)
app.command("import", rich_help_panel="Bulk")(transfer.import_)
app.add_typer(setup.config_app, name="config", rich_help_panel="Setup")
app.add_typer(setup.auth_app, name="auth", rich_help_panel="Setup")
app.add_typer(transfer.sync_app, name="sync", rich_help_panel="Bulk")


def main() -> None:
    """Console-script entry point."""
    app()
