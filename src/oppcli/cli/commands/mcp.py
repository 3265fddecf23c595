"""oppcli mcp: the library's operations as MCP tools for AI assistants, over stdio (the tools
in oppcli/mcp/tools.py, served by oppcli/mcp/server.py with the optional MCP SDK)."""

from __future__ import annotations

from typing import Annotated

import typer

from oppcli.cli.commands.common import run_of
from oppcli.errors import ConfigError


def serve(
    ctx: typer.Context,
    read_only: Annotated[bool, typer.Option(
        "--read-only", help="Offer only the tools that read: no create, update, bulk_update, "
        "delete or undo.")] = False,
    max_bulk: Annotated[int, typer.Option(
        "--max-bulk", min=1, help="Refuse a bulk_update or delete of more than N deals, before "
        "anything is written.", metavar="N")] = 100,
) -> None:
    """Serve oppcli to AI assistants as MCP tools over stdio (needs pip install 'oppcli[mcp]').

    For an assistant's MCP configuration (Claude, an editor, a terminal agent): it starts
    `oppcli mcp` and speaks the Model Context Protocol on its stdin and stdout. The tools are
    search, show, report, forecast, stale, history, lookups, and (without --read-only)
    create, update, bulk_update, delete and undo, with the global options' backend, store and
    profile. Every write tool previews unless called with dry_run false; writes are audited
    as from the CLI, and their replies name the audit id undo takes. Errors are tool errors
    carrying oppcli's one-line message and exit code. Nothing is ever asked on a terminal.

    Example: oppcli --profile work mcp --read-only
    """
    run = run_of(ctx)
    try:
        __import__("mcp.server.lowlevel")
    except ImportError:
        raise ConfigError("oppcli mcp needs the MCP SDK, an optional extra",
                          "install it with: pip install 'oppcli[mcp]'") from None
    from oppcli.mcp.server import serve as serve_stdio
    from oppcli.mcp.tools import Tools

    with run.session as session:
        serve_stdio(Tools(session, read_only=read_only, max_bulk=max_bulk))
