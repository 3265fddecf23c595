"""oppcli for AI assistants: its operations as Model Context Protocol tools (`oppcli mcp`).

- tools.py: the tools over a Session (names, static descriptions and instructions, what each
  call does), with schema.py (input schemas made from the option declarations in
  domain/options.py, and the check of a call's arguments) and reply.py (a reply: the JSON the
  CLI prints, a sentence for the person, a write's audit id, or the error). No SDK in these:
  they can be used and tested without one.
- server.py: those tools served over stdio with the MCP Python SDK (the optional extra,
  `pip install 'oppcli[mcp]'`), imported only by `oppcli mcp`.
"""
