"""The local JSON store: the embedded default backend.

A store is a directory (created 0700, files 0600):

    meta.json           {"format": "oppcli-store", "version": 1, "next_id": N, "date_order": "MDY",
                         "data_stamp": [size, mtime_ns, inode]}
    lookups.json        pipelines (with stages), users, customer_sources, loss_reasons,
                        custom_field_definitions, companies, people: Copper's shapes
    opportunities.jsonl one opportunity per line, exactly the API's JSON, in ascending id order
    .lock               flock()ed around every read-modify-write

Why JSON Lines (chosen with benchmarks/bench_store.py in hand): a search streams the file in
constant memory, one orjson parse per line; a create appends one line, so its cost does not grow
with the store; `jq 'select(.status == "Open")' opportunities.jsonl` works as it is.
An update or delete rewrites the file by copying the untouched byte ranges (no parsing) into a
temp file that is fsynced and renamed over the old one, so a crash leaves the old file or the new
one, never a mix. Creates append one whole line with a single write(); a line without its
newline (a torn tail, e.g. after a power cut) is never read as data and is moved aside to
`opportunities.jsonl.torn-*` by the next writer.

Ids are never reused, whatever order the file is in. meta.json's next_id is above every id the
store holds or ever issued: every create persists it, and update and delete (which read the whole
file anyway) raise it past the highest id they see. `data_stamp` is the data file's (size,
mtime_ns, inode) as oppcli last wrote it: while it matches, the file is as oppcli left it, and
create trusts next_id without reading the file; when it does not (the file was edited,
sorted by hand, or written by an older oppcli that did not advance next_id), the next create
scans the file's ids once, and records the result. A file found out of id order is rewritten in
id order by the next write under the lock; a file holding an id twice is refused (exit 3).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import orjson

from oppcli.domain.records import canonical

FORMAT = "oppcli-store"
VERSION = 1
META = "meta.json"
LOOKUPS = "lookups.json"
DATA = "opportunities.jsonl"
LOCK = ".lock"


def dump_line(record: Mapping[str, Any]) -> bytes:
    return orjson.dumps(canonical(record)) + b"\n"


def stamp(st: os.stat_result) -> list[int]:
    """What tells whether the data file is as oppcli left it (meta.json's data_stamp)."""
    return [st.st_size, st.st_mtime_ns, st.st_ino]


# The head of a stored line: its id (the store writes every line as `{"id":N,...`).
ID_AT_START = re.compile(rb'^\{"id":(\d+)[,}]')
# The ids of a chunk that is uniform: the first line's, then the ids after a newline (a
# pattern led by literal bytes is found by a fast scan; `(?m)^` would be tried at every byte).
LINE_IDS = re.compile(rb'^\{"id":(-?\d+)')
NEXT_IDS = re.compile(rb'\n\{"id":(-?\d+)')


# A newline that ends a line not closed by `}`, or starts a line that does not begin with
# `{"id":` and a number: one regex pass (its literal `\n` prefix makes the scan fast).
_NOT_A_RECORD_LINE = re.compile(rb'\n(?:(?<=[^}]\n)|(?!\{"id":[-0-9]|\Z))')


def uniform(chunk: bytes) -> bool:
    """Every line of the chunk is shaped like a stored record: it starts with `{"id":` and a
    number and ends with `}`. One regex pass, no parsing.

    Narrowing skips lines without parsing them, and update/delete copy lines they do not touch;
    this makes sure such a line is at least shaped like a record, so that a garbage or truncated
    line is parsed, and reported, rather than skipped or copied. (A line that is shaped right but
    broken inside is still only caught where it is parsed.)
    """
    if not chunk:
        return True
    if not chunk.startswith(b'{"id":') or chunk[6:7] not in b"-0123456789":
        return False
    return _NOT_A_RECORD_LINE.search(chunk) is None
