"""The oppcli command line: the app, its global options, and the one place errors become exit
codes (OppcliGroup.main).

Commands live in oppcli.cli.commands (setup, read, write): each parses its options, builds a Query
or a payload, calls the backend and hands the records to output.py. They are registered here,
in the order `oppcli --help` lists them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from oppcli import __version__
from oppcli import errors as E
from oppcli.cli import completion as C
from oppcli.cli.commands.common import PROG, Run, run_of
from oppcli.errors import OppcliError
from oppcli.io import COLOR_CHOICES, Streams

C.use_fixed_scripts()

# The commands, in the order `oppcli --help` lists them within each panel: (name, panel,
# "module:attribute" in oppcli.cli.commands, summary). A command's module is imported and its
# Click command built only when it runs or its help is shown: building all twenty from their
# signatures costs more than importing Typer itself, and a run needs one. The summary is the
# first line of the command's docstring (tests/test_help.py checks they agree), so the
# top-level help needs no command module at all.
COMMANDS: tuple[tuple[str, str, str, str], ...] = (
    ("init", "Setup", "setup:init",
     "Create the local store (at --store, OPPCLI_STORE, the profile's store or the default)."),
    ("config", "Setup", "setup:config_app",
     "Show and change settings (a TOML file; see `oppcli config path`)."),
    ("auth", "Setup", "auth:auth_app", "Log in to Copper (the API key in the system keyring), "
     "and check the credentials."),
    ("list", "Read", "read:list_", "List opportunities, most recently modified first."),
    ("search", "Read", "read:search", "Find opportunities matching every filter given "
     "(filters are ANDed)."),
    ("show", "Read", "read:show", "Show one opportunity: every field; custom fields by name "
     "in a table."),
    ("saved", "Read", "saved:saved_app", "Saved searches (made with `oppcli search ... --save "
     "NAME`): list them, show one, forget one."),
    ("history", "Read", "history:history", "Show the changes made through oppcli (the audit "
     "log), newest first."),
    ("lookups", "Read", "read:lookups", "Show the lookup tables that names resolve against "
     "(stages, users, sources, ...)."),
    ("report", "Read", "report:report", "Sum up the matching deals by stage, owner, month, "
     "...: count, value, weighted, win rate."),
    ("forecast", "Read", "report:forecast", "Forecast open deals by expected close month, "
     "weighted and unweighted."),
    ("stale", "Read", "report:stale", "List open deals with no activity for N days, the most "
     "valuable and longest idle first."),
    ("create", "Write", "write:create", "Create an opportunity; prints the stored record."),
    ("update", "Write", "write:update", "Change only the given fields of one opportunity, or "
     "of many at once."),
    ("edit", "Write", "edit:edit", "Edit one opportunity in your editor ($VISUAL, $EDITOR or "
     "vi); writes only what you change."),
    ("delete", "Write", "write:delete", "Delete opportunities permanently (all or nothing: an "
     "unknown id deletes none)."),
    ("undo", "Write", "history:undo", "Take back a change: restore an updated or deleted "
     "opportunity, or delete a created one."),
    ("export", "Bulk", "transfer:export", "Export opportunities for other tools: streamed, "
     "atomic, incremental; quiet in cron."),
    ("import", "Bulk", "transfer:import_", "Create or update opportunities from a file, row by "
     "row, reporting each row."),
    ("sync", "Bulk", "transfer:sync_app",
     "Keep a local store as an offline mirror of a Copper account."),
    ("api", "Other", "api:api",
     "Send a raw request to the Copper API, for what oppcli has no command for."),
    ("mcp", "Other", "mcp:serve", "Serve oppcli to AI assistants as MCP tools over stdio "
     "(needs pip install 'oppcli[mcp]')."),
)


# ---- the one place errors become exit codes ------------------------------------------------
class OppcliGroup(TyperGroup):
    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        # The run's state lives in the Click context (ctx.obj); a caller (a test) may hand in
        # its own Streams as obj=Streams.test(tty=True).
        given = extra.pop("obj", None)
        run = Run(given if isinstance(given, Streams) else None)
        try:
            rv = super().main(args=args, prog_name=prog_name or PROG, complete_var=complete_var,
                              standalone_mode=False, windows_expand_args=windows_expand_args,
                              obj=run, **extra)
        except OppcliError as exc:
            if run.debug:
                import traceback

                traceback.print_exc()
            if isinstance(exc, E.OutputClosed):
                _silence_stdout()  # nothing more to the reader that left
            try:
                run.notice(f"{exc.prefix}{exc}")
            except (OSError, ValueError):
                pass  # stderr closed too: the exit code still says it
            code = exc.exit_code
        except EOFError:  # end of input at a prompt
            run.notice("aborted")
            code = E.USAGE
        except (KeyboardInterrupt):
            code = E.INTERRUPTED
        except Exception as exc:
            # Click's usage errors: duck-typed, because Typer bundles its own Click.
            if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
                ctx = getattr(exc, "ctx", None)
                where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
                if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group: its help
                    exc.show()  # type: ignore[attr-defined]
                elif exc.format_message():
                    run.notice(f"error: {exc.format_message()}{where}")
                code = int(exc.exit_code)
            elif isinstance(exc, BrokenPipeError):
                _silence_stdout()
                code = E.OK
            else:
                if run.debug:
                    import traceback

                    traceback.print_exc()
                    run.notice(f"unexpected error: {type(exc).__name__}: {exc}")
                else:
                    run.notice(f"unexpected error: {type(exc).__name__}: {exc} "
                               "(run with --debug for the traceback)")
                code = E.UNEXPECTED
        except BaseException as exc:  # a signal that ended a bulk run after its report
            from oppcli.util.interrupts import Stop

            if not isinstance(exc, Stop):
                raise
            code = exc.exit_code
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


    def list_commands(self, ctx: Any) -> list[str]:
        return [name for name, *_ in COMMANDS]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands:
            entry = next((e for e in COMMANDS if e[0] == cmd_name), None)
            if entry is None:
                return None
            from oppcli.cli.typer_glue import build

            self.commands[cmd_name] = build(entry[0], entry[1], _target(entry[2]))
        return self.commands[cmd_name]

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        # Typer suggests only among commands already built; suggest among them all.
        from oppcli.cli.typer_glue import UsageError

        try:
            return self._click_resolve_command(ctx, args)
        except UsageError as exc:
            import difflib

            matches = difflib.get_close_matches(args[0], self.list_commands(ctx)) if args else []
            if matches:
                exc.message = (f"{exc.message.rstrip('.')}. Did you mean "
                               f"{', '.join(repr(m) for m in matches)}?")
            raise

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """The commands in panels (Setup, Read, ...) from COMMANDS, building none of them."""
        from oppcli.cli.typer_glue import short_help

        longest = max(len(name) for name, *_ in COMMANDS)
        width = formatter.width - 6 - longest
        panels: dict[str, list[tuple[str, str]]] = {}
        for name, panel, _where, summary in COMMANDS:
            # Padded, so that the panels' columns line up with each other.
            panels.setdefault(panel, []).append(
                (name.ljust(longest), short_help(summary, width)))
        for panel, rows in panels.items():
            with formatter.section(panel):
                formatter.write_dl(rows)


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
    # Plain help: Rich is imported only to draw a table (it would double the start-up).
    rich_markup_mode=None,
)


@app.callback()
def main_callback(
    ctx: typer.Context,
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
    color: Annotated[str, typer.Option(
        "--color", help="Colour in tables: auto (on a terminal, unless NO_COLOR is set), "
        "always or never.", metavar="auto|always|never",
        autocompletion=C.choices(COLOR_CHOICES))] = "auto",
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Manage sales opportunities the way Copper CRM models them.

    Data goes to stdout (a table on a terminal, JSON otherwise); messages go to stderr.

    Example: oppcli init --sample && oppcli search --status open --min-value 50000
    """
    run_of(ctx).configure(store=str(store) if store else None, backend=backend, profile=profile,
                          debug=debug, refresh=refresh, color=color.strip().lower())


# ---- the commands: built on demand ---------------------------------------------------------
def _target(where: str) -> Any:
    module, attribute = where.split(":")
    # __import__, not importlib.import_module: the same import, but -X importtime sees it.
    return getattr(__import__(f"oppcli.cli.commands.{module}", fromlist=[attribute]), attribute)


def main() -> None:
    """Console-script entry point."""
    app()
