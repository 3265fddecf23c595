"""The local JSON store, the embedded default backend: a directory holding meta.json,
lookups.json and opportunities.jsonl (one record per line, in id order).

    format.py    the on-disk format: file names, the header's version, a record's line
    datafile.py  reading the data file: chunks, lines, a record found by id, the id survey
    rewrite.py   writing it anew: copy and rename, in id order; a mirror's merge
    scan.py      a search's pass: lines narrowed by bytes, then parsed and judged
    order.py     a sorted search's matches as bit-packed sort keys
    store.py     LocalStore: open, create, lock, and the Backend's reads and writes
"""

from oppcli.backends.local.format import DATA, FORMAT, LOCK, LOOKUPS, META, VERSION, dump_line
from oppcli.backends.local.format import stamp as _stamp
from oppcli.backends.local.store import LocalStore, lock_timeout
from oppcli.util.files import atomic_write

__all__ = ["DATA", "FORMAT", "LOCK", "LOOKUPS", "META", "VERSION", "LocalStore", "_stamp", "atomic_write",
           "dump_line", "lock_timeout"]
