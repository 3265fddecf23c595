"""The tools (tools.py) served over stdio with the MCP Python SDK's low-level server: the
input schemas are ours (made from the option declarations), not derived from signatures.

Imported only by `oppcli mcp`: the SDK (and pydantic, anyio, starlette under it) costs the
CLI's other commands nothing. While serving, the SDK points fd 0 at the null device and fd 1
at stderr, so nothing but the protocol reaches stdout. Calls run one at a time in a worker
thread (the Session is not shared between threads; the event loop stays free for the
protocol), and a reply is always a result: an error is a tool error (isError), never a
protocol error or a traceback.
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.to_thread
import mcp.types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from oppcli import __version__
from oppcli.mcp.reply import Reply
from oppcli.mcp.tools import INSTRUCTIONS, Tool, Tools


def serve(tools: Tools) -> None:
    """Serve the tools on stdin and stdout until the client closes the connection."""
    anyio.run(_serve, tools)


def build(tools: Tools) -> Server[Any]:
    """The SDK's server offering these tools."""
    lock = anyio.Lock()

    async def list_tools(ctx: ServerRequestContext[Any],
                         params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[_listed(t) for t in tools.listed()])

    async def call_tool(ctx: ServerRequestContext[Any],
                        params: types.CallToolRequestParams) -> types.CallToolResult:
        async with lock:
            reply = await anyio.to_thread.run_sync(tools.reply, params.name, params.arguments)
        return _result(reply)

    return Server("oppcli", version=__version__, title="oppcli",
                  description="Copper CRM opportunities: search, report, and audited changes.",
                  instructions=INSTRUCTIONS, on_list_tools=list_tools, on_call_tool=call_tool)


async def _serve(tools: Tools) -> None:
    server = build(tools)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


def _listed(tool: Tool) -> types.Tool:
    return types.Tool(
        name=tool.name, title=tool.title, description=tool.description,
        input_schema=tool.schema,
        annotations=types.ToolAnnotations(
            title=tool.title, read_only_hint=not tool.writes, destructive_hint=tool.destructive,
            idempotent_hint=not tool.writes, open_world_hint=False))


def _result(reply: Reply) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=t) for t in reply.texts()],
        structured_content=reply.structured(), is_error=reply.is_error)
