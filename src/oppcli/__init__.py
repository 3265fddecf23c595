"""oppcli: manage Copper-style sales opportunities from the command line, or from Python.

    import oppcli
    with oppcli.connect(store="~/deals") as s:
        for deal in s.search(status="Open", min_value=50000):
            ...

Importing oppcli is cheap: connect() and the error classes load what they need when used
(no requests, Rich or Typer here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["OppcliError", "Session", "Streams", "__version__", "connect"]

if TYPE_CHECKING:
    from oppcli.api import Session, connect
    from oppcli.errors import OppcliError
    from oppcli.io import Streams


def __getattr__(name: str) -> Any:
    if name in ("connect", "Session"):
        from oppcli import api

        return getattr(api, name)
    if name == "OppcliError":
        from oppcli.errors import OppcliError

        return OppcliError
    if name == "Streams":
        from oppcli.io import Streams

        return Streams
    raise AttributeError(f"module 'oppcli' has no attribute {name!r}")
