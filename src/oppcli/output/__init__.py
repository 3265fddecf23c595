"""Every output format: table (Rich), json, jsonl, csv, tsv; stdout carries data only.

- text.py: untrusted text made safe: visible() and literal() escape what a terminal would act
  on or hide; neutralise() and unneutralise() keep a CSV cell from running as a formula.
- display.py: Context, how a record's values are shown to people: names for ids, money,
  dates, custom fields and the read-only extras.
- formats.py: the machine formats (JSON, JSON Lines, CSV/TSV) with their rules, and the entry
  points commands use to write records in the chosen format (emit_many, emit_one, write_many).
- tables.py: records as Rich tables (list and show) and the layout every table shares: what
  is never cut, what is cut or wraps, which columns go first.
- panels.py: the titled tables that are not records: history, lookups, config show.
- changes.py: a bulk change per deal and field (before, after): JSON rows and the table
  (imported by the bulk commands themselves, not here: list and search do not need it).

Importing this package does not import Rich: it is imported inside the functions that draw.
"""

from oppcli.output.display import TAG_SEPARATOR, Context
from oppcli.output.formats import CF_PREFIX, FORMATS, emit_many, emit_one, write_many
from oppcli.output.panels import write_history_table, write_lookup_tables, write_settings_table
from oppcli.output.tables import write_record_table, write_table
from oppcli.output.text import literal, unneutralise, visible

__all__ = [
    "CF_PREFIX",
    "FORMATS",
    "TAG_SEPARATOR",
    "Context",
    "emit_many",
    "emit_one",
    "literal",
    "unneutralise",
    "visible",
    "write_history_table",
    "write_lookup_tables",
    "write_many",
    "write_record_table",
    "write_settings_table",
    "write_table",
]
