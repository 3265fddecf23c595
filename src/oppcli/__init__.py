"""oppcli: manage Copper-style sales opportunities from the command line."""

__version__ = "0.1.0"
