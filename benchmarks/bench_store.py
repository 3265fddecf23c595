#!/usr/bin/env python3
"""Store scale benchmark: oppcli against jq on the same store file, in the same job.

    python benchmarks/bench_store.py [--sizes 1000,10000,100000,1000000] [--repeat 3]
                                     [--create-repeat N] [--smoke] [--check]
                                     [--no-bytecode-cache]

The targets (the issue: "scale on the local store at 1k, 10k, 100k and 1M opportunities"):

    at 100,000 records    search (1, 3 and 6 filters) and show: at most 0.4x jq doing the
                          same over the store file; create: within 1.5x of its cost at 100
                          records; update and delete: at most 0.6x jq; peak memory of search
                          and of CSV export: under 150 MB
    100,000 -> 1,000,000  every operation's time grows linearly or better (at most 10x)

Machines are shared and noisy, so nothing is judged on absolute times: every oppcli figure is
a ratio against a baseline run in this same job, alternately (oppcli, baseline, oppcli,
baseline, ...: one untimed warm-up pair, then --repeat timed pairs), judged on the ratio of
the medians. The baseline is jq doing the same work over the store's opportunities.jsonl, and
for create, the same create on a 100-record store.

For each size (--sizes; default all four, each store built once in a temporary directory with
a fixed seed: the records of make_records, streamed to disk as LocalStore writes them, with
dump_line, in id order, so a million records are never held in memory), the operations run in
this order, reads before writes (writes change the store):

    list         oppcli list -o jsonl (every record; the default order, newest change first)
                 jq -c . FILE
    search x4    oppcli search FILTERS -o json; jq -c 'select(...)' FILE. One filter (status),
                 two of three filters (A: status, stage, min value; B: status, tag, min value)
                 and one of six (status, pipeline, min and max value, tag, assignee)
    show         oppcli show ID -o json (a record three quarters into the file)
                 jq -c 'select(.id == ID)' FILE
    CSV export   oppcli export -o csv --output-file OUT
                 jq -rn '(HEADER | @csv), (inputs | [the same columns] | @csv)' FILE > OUT
    create       oppcli create --name ... --primary-contact-id 601 ... on this store and on the
                 100-record store (the baseline), alternately
    update       oppcli update ID --monetary-value X -o json (a new X each run, so every run
                 writes); jq -c 'if .id == ID then .monetary_value = X else . end' FILE > TMP
    delete       oppcli delete ID --yes -o json (a different existing id each run)
                 jq -c 'select(.id != ID)' FILE > TMP, run just before it on the same id

A fast wrong answer is not a result, so every answer is checked, or the benchmark stops
(exit 3): each search's ids from oppcli, from jq and from an independent in-Python evaluation of
the filter over the generated records must be the same non-empty set; list must print every id
once; show must print the record jq finds; the export must have a row per record, cell for cell
the same as jq's CSV (numbers compared as numbers); a create must land at the end of the store;
an updated record must hold its new value, in the store and in jq's rewrite; a deleted id must
be gone from the store and from jq's rewrite, with one line fewer.

Peak resident memory (/usr/bin/time -f %M, else a launcher reading RUSAGE_CHILDREN) is measured
for one more run of every oppcli operation at every size; judged for search and export.

Output: one table, every figure next to its target with PASS/FAIL (or "-" and "info" where the
issue sets no target: the ratios at the other sizes, list and export time), then per-size tables
of median wall times (oppcli / baseline, ms), CPU-time ratios and peak memory, so the curve shows.
The targets are judged at 100,000 records; a run without 100,000 judges them at its largest
size, as an indication only (said under the table). Growth is oppcli's median time at 1,000,000
over its median time at 100,000, both timed in the same rounds: the previous size's store is
kept while the next size runs, and each round ends with the same operation on it (a new name,
value or id where the operation writes). Runs of one size made many minutes apart differ by
10-20% on a shared machine, as much as the margin of a linear operation against "10x". The
growth of runs made apart (oppcli's, and jq's) is shown next to it. It is judged when both
sizes ran; otherwise the growth between the two largest sizes run is shown as info.

Exit status: 0 whatever the figures (the benchmark reports, it does not gate); 1 with --check
when a target is missed; 3 when oppcli and jq disagree (or any command fails); 4 when jq or
oppcli is missing.

oppcli runs with its bytecode cached in a private prefix even where PYTHONDONTWRITEBYTECODE
is set, as an installed CLI would (--no-bytecode-cache: as the environment says).

--records N: the same as --sizes N (kept for older instructions).
--smoke: sizes 500 and 2,000, one timed run each, to check in a few seconds that the script
works and the answers agree; its figures say nothing about the targets.

Time: about 3 minutes for 1k, 10k and 100k on 2 CPUs; 1M adds about 20-30 minutes (jq reads and
writes a ~1 GB file 4 times per operation) and ~5 GB of temporary disk.
"""

from __future__ import annotations

import argparse
import copy
import csv
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from oppcli.backends.local import DATA, META, LocalStore, _stamp, atomic_write, dump_line
from oppcli.domain.fields import EXTRA_NAMES
from oppcli.domain.sample import BASE_TIME, SAMPLE_LOOKUPS

SEED = 20260101
SMALL = 100
SIZES = (1_000, 10_000, 100_000, 1_000_000)
SMOKE_SIZES = (500, 2_000)
TARGET_RECORDS = 100_000  # where the targets are defined
GROWTH_FROM, GROWTH_TO = 100_000, 1_000_000
TARGET_READ_RATIO = 0.4  # search and show against jq
TARGET_SEARCH_RATIO = TARGET_READ_RATIO
TARGET_WRITE_RATIO = 0.6  # update and delete against jq
TARGET_CREATE_RATIO = 1.5  # create at 100,000 against at 100 records
TARGET_PEAK_MB = 150.0  # search and export
TARGET_GROWTH = GROWTH_TO / GROWTH_FROM  # linear or better

Record = dict[str, Any]


# ---- realistic records ------------------------------------------------------------------------
PRODUCTS = ["Annual Licence", "Pilot", "Expansion", "Support Plan", "Onboarding Package",
            "Analytics Add-on", "Enterprise Upgrade", "Seat Top-up", "Multi-year Renewal",
            "Training Days", "Data Migration", "API Access", "Premium Support", "Site Licence",
            "Proof of Concept", "Professional Services"]
NAME_SUFFIXES = ["", "", "", "", " (Q1)", " (Q2)", " (Q3)", " (Q4)", " - EMEA rollout",
                 " - phase 2", " - 50 seats", " - 200 seats", " 2025", " 2026", " renewal"]
TAGS = ["enterprise", "smb", "mid-market", "q1", "q2", "q3", "q4", "hot", "renewal", "upsell",
        "partner", "inbound", "at-risk", "strategic"]
TAG_WEIGHTS = [22, 20, 12, 6, 6, 6, 6, 8, 10, 8, 5, 7, 4, 3]
WORDS = ("the customer wants a proposal before the end of the quarter budget approved pending "
         "legal review procurement asked for a discount security questionnaire sent champion "
         "left the company new stakeholder from finance pricing call scheduled demo went well "
         "integration with their ERP is a blocker pilot extended by two weeks competitor offered "
         "lower price multi-year commitment possible needs SSO and audit logs renewal at risk "
         "usage is down expansion into a second region café naïve résumé 10% uplift €20k").split()
STATUSES = ["Open", "Won", "Lost", "Abandoned"]
STATUS_WEIGHTS = [45, 25, 20, 10]  # a realistic mix: ~45% Open, 25% Won, 20% Lost
PRIORITIES = ["None", "Low", "Medium", "High"]
PRIORITY_WEIGHTS = [30, 20, 30, 20]
TWO_YEARS = 2 * 365 * 86400


def lookups() -> dict[str, Any]:
    return copy.deepcopy(SAMPLE_LOOKUPS)


def stage_id(lk: dict[str, Any], pipeline: str, stage: str) -> int:
    """The real id of Pipeline/Stage in the lookups (so the jq filter matches the store)."""
    for p in lk["pipelines"]:
        if p["name"] == pipeline:
            for s in p["stages"]:
                if s["name"] == stage:
                    return int(s["id"])
    raise SystemExit(f"bench_store: no stage {pipeline}/{stage} in the sample lookups")


def make_records(count: int, lk: dict[str, Any], seed: int = SEED) -> list[Record]:
    """`count` varied, Copper-shaped opportunities with ids 1001.. in date_created order."""
    return list(iter_records(count, lk, seed))


def iter_records(count: int, lk: dict[str, Any], seed: int = SEED) -> Iterator[Record]:
    """make_records one at a time (the same records for the same seed), so that a store of a
    million records is written without holding them all."""
    rnd = random.Random(seed)
    people = lk["people"]
    companies = {c["id"]: c["name"] for c in lk["companies"]}
    users = [u["id"] for u in lk["users"]]
    sources = [s["id"] for s in lk["customer_sources"]]
    losses = [r["id"] for r in lk["loss_reasons"]]
    pipelines = lk["pipelines"]
    defs = {d["id"]: d for d in lk["custom_field_definitions"]}
    region_opts = [o["id"] for o in defs[401]["options"]]
    competitor_opts = [o["id"] for o in defs[404]["options"]]
    start = BASE_TIME - TWO_YEARS
    created_times = sorted(start + rnd.randrange(TWO_YEARS) for _ in range(count))
    for i, created in enumerate(created_times):
        person = rnd.choice(people)
        company_id = person["company_id"]
        company_name = companies.get(company_id) if company_id is not None else None
        pipeline = pipelines[0] if rnd.random() < 0.6 else pipelines[1]
        stage = rnd.choice(pipeline["stages"])
        status = rnd.choices(STATUSES, STATUS_WEIGHTS)[0]
        product = rnd.choice(PRODUCTS)
        name = f"{company_name or person['name']} - {product}{rnd.choice(NAME_SUFFIXES)}"
        if rnd.random() < 0.08:
            value: float | int | None = None
        elif rnd.random() < 0.05:
            value = round(rnd.lognormvariate(10.3, 1.0), 2)
        else:
            value = int(round(rnd.lognormvariate(10.3, 1.0), -2)) or 500
        ntags = rnd.choices([0, 1, 2, 3], [20, 40, 28, 12])[0]
        tags: list[str] = []
        while len(tags) < ntags:
            t = rnd.choices(TAGS, TAG_WEIGHTS)[0]
            if t not in tags:
                tags.append(t)
        close = created + rnd.randrange(10, 270) * 86400
        close_t = time.gmtime(close)
        if rnd.random() < 0.5:
            details: str | None = None
        else:
            nwords = int(rnd.expovariate(1 / 30)) + 3
            details = " ".join(rnd.choices(WORDS, k=nwords)).capitalize() + "."
        modified = min(created + int(rnd.expovariate(1 / (20 * 86400))), BASE_TIME + 86400 * 30)
        win = (100 if status == "Won" else 0 if status in ("Lost", "Abandoned")
               else stage["win_probability"])
        yield {
            "id": 1001 + i,
            "name": name,
            "assignee_id": None if rnd.random() < 0.1 else rnd.choice(users),
            "close_date": f"{close_t.tm_mon}/{close_t.tm_mday}/{close_t.tm_year}",
            "company_id": company_id,
            "company_name": company_name,
            "customer_source_id": None if rnd.random() < 0.2 else rnd.choice(sources),
            "details": details,
            "loss_reason_id": (rnd.choice(losses) if status == "Lost" and rnd.random() < 0.85
                               else None),
            "monetary_value": value,
            "pipeline_id": pipeline["id"],
            "pipeline_is_revenue": bool(pipeline.get("is_revenue", True)),
            "primary_contact_id": person["id"],
            "priority": rnd.choices(PRIORITIES, PRIORITY_WEIGHTS)[0],
            "pipeline_stage_id": stage["id"],
            "pipeline_type": pipeline.get("type") or "opportunity",
            "status": status,
            "tags": tags,
            "win_probability": win,
            "date_created": created,
            "date_modified": modified,
            "custom_fields": [
                {"custom_field_definition_id": 401,  # Dropdown: an option id
                 "value": rnd.choice(region_opts) if rnd.random() < 0.8 else None},
                {"custom_field_definition_id": 402,  # Float
                 "value": rnd.choice([6, 12, 24, 36, 18.5]) if rnd.random() < 0.6 else None},
                {"custom_field_definition_id": 403,  # Checkbox
                 "value": rnd.random() < 0.4},
                {"custom_field_definition_id": 404,  # MultiSelect: option ids
                 "value": sorted(rnd.sample(competitor_opts, rnd.choice([0, 0, 1, 1, 2, 3])))},
                {"custom_field_definition_id": 405,  # Text
                 "value": rnd.choice(["Champion is the CFO", "VP Sales sponsors it",
                                      "Head of IT; prefers email", "Procurement-led"])
                 if rnd.random() < 0.25 else None},
            ],
        }


# ---- the searches -------------------------------------------------------------------------------
@dataclass
class Search:
    key: str
    label: str
    args: list[str]  # after `oppcli search`
    jq_filter: str
    predicate: Callable[[Record], bool]  # the same filter, evaluated here as the referee


def user_id(lk: dict[str, Any], name: str) -> int:
    for u in lk["users"]:
        if u["name"] == name:
            return int(u["id"])
    raise SystemExit(f"bench_store: no user {name} in the sample lookups")


def pipeline_id(lk: dict[str, Any], name: str) -> int:
    for p in lk["pipelines"]:
        if p["name"] == name:
            return int(p["id"])
    raise SystemExit(f"bench_store: no pipeline {name} in the sample lookups")


def searches(lk: dict[str, Any]) -> list[Search]:
    negotiation = stage_id(lk, "Sales", "Negotiation")
    sales = pipeline_id(lk, "Sales")
    ada = user_id(lk, "Ada Park")

    def one(r: Record) -> bool:
        return bool(r["status"] == "Won")

    def a(r: Record) -> bool:
        v = r["monetary_value"]
        return (r["status"] == "Open" and r["pipeline_stage_id"] == negotiation
                and v is not None and v >= 50000)

    def b(r: Record) -> bool:
        v = r["monetary_value"]
        return (r["status"] == "Won" and "enterprise" in [t.casefold() for t in r["tags"]]
                and v is not None and v >= 25000)

    def six(r: Record) -> bool:
        v = r["monetary_value"]
        return (r["status"] == "Open" and r["pipeline_id"] == sales
                and v is not None and 10000 <= v <= 200000
                and "enterprise" in [t.casefold() for t in r["tags"]]
                and r["assignee_id"] == ada)

    # The tags in the store are lower-case, so jq's plain equality is the same filter as
    # oppcli's case-insensitive one (the id check proves it) and jq's cheapest spelling.
    return [
        Search("1", "1 filter", ["--status", "Won"], 'select(.status == "Won")', one),
        Search("3A", "3 filters A",
               ["--status", "Open", "--stage", "Sales/Negotiation", "--min-value", "50000"],
               f'select(.status == "Open" and .pipeline_stage_id == {negotiation} '
               'and .monetary_value != null and .monetary_value >= 50000)', a),
        Search("3B", "3 filters B",
               ["--status", "Won", "--tag", "enterprise", "--min-value", "25000"],
               'select(.status == "Won" and any(.tags[]?; . == "enterprise") '
               'and .monetary_value != null and .monetary_value >= 25000)', b),
        Search("6", "6 filters",
               ["--status", "Open", "--pipeline", "Sales", "--min-value", "10000",
                "--max-value", "200000", "--tag", "enterprise", "--assignee", "Ada Park"],
               f'select(.status == "Open" and .pipeline_id == {sales} '
               'and .monetary_value != null and .monetary_value >= 10000 '
               'and .monetary_value <= 200000 and any(.tags[]?; . == "enterprise") '
               f'and .assignee_id == {ada})', six),
    ]


# ---- the CSV export's columns, for jq -------------------------------------------------------
CSV_FIELDS = ["id", "name", "assignee_id", "close_date", "company_id", "company_name",
              "customer_source_id", "details", "loss_reason_id", "monetary_value", "pipeline_id",
              "pipeline_is_revenue", "primary_contact_id", "priority", "pipeline_stage_id",
              "pipeline_type", "status", "tags", "win_probability", "date_created",
              "date_modified"]


def jq_csv_program(lk: dict[str, Any]) -> str:
    """A jq program (for jq -rn) writing the CSV `oppcli export -o csv` writes: the fields in
    order, tags joined by ";", the read-only extras, then one cf:NAME column per custom field,
    option ids as names."""
    defs = [d for d in lk["custom_field_definitions"]
            if "opportunity" in (d.get("available_on") or ["opportunity"])]
    headers = CSV_FIELDS + list(EXTRA_NAMES) + [f"cf:{d['name']}" for d in defs]
    options = {str(d["id"]): {str(o["id"]): o["name"] for o in d.get("options") or []}
               for d in defs if d.get("data_type") in ("Dropdown", "MultiSelect")}
    cells = [".tags // [] | join(\";\")" if f == "tags" else f".{f}" for f in CSV_FIELDS]
    # then the read-only extras, always (leads_converted_from as compact JSON)
    cells += [f"(.{f} | if . == null then null else tojson end)" if f == "leads_converted_from"
              else f".{f}" for f in EXTRA_NAMES]
    for d in defs:
        ref = f'$cf["{d["id"]}"]'
        if d.get("data_type") == "Dropdown":
            cells.append(f'({ref} | if . == null then null else $o["{d["id"]}"][tostring] end)')
        elif d.get("data_type") == "MultiSelect":
            cells.append(f'({ref} | if . == null then null '
                         f'else map($o["{d["id"]}"][tostring]) | join(";") end)')
        else:
            cells.append(ref)
    return (f"{orjson.dumps(options).decode()} as $o\n"
            f"| ({orjson.dumps(headers).decode()} | @csv),\n"
            "  (inputs\n"
            "   | (reduce (.custom_fields // [])[] as $c ({}; "
            ".[$c.custom_field_definition_id | tostring] = $c.value)) as $cf\n"
            f"   | [{', '.join('(' + c + ')' for c in cells)}] | @csv)")


# ---- running things -----------------------------------------------------------------------------
class Broken(Exception):
    """A command failed or the answers disagree: the benchmark must not report figures."""


@dataclass
class Run:
    wall: float  # seconds
    cpu: float  # user + system seconds of the process


def run(cmd: Sequence[str], out: Path | None, env: dict[str, str]) -> Run:
    """One process, stdout to `out` (or /dev/null): its wall time and its own CPU time."""
    stdout = open(out, "wb") if out is not None else open(os.devnull, "wb")  # noqa: SIM115
    try:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL, stdout=stdout,
                                stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
    finally:
        stdout.close()
    if proc.returncode != 0:
        raise Broken(f"`{' '.join(cmd)}` exited {proc.returncode}: {err.strip()}")
    return Run(wall, usage.ru_utime + usage.ru_stime)


# Peak memory cannot come from this process's rusage of its children: a child's ru_maxrss
# starts at the RSS of the process that forked it (Linux records the old address space's
# high-water mark at exec), and this process holds the referee's answers. So a small fresh
# process starts the command and reports its high-water mark: /usr/bin/time when it works,
# else this launcher (RUSAGE_CHILDREN of an interpreter that only ran the one command).
LAUNCHER = (
    "import os, resource, sys\n"
    "pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ)\n"
    "_, status = os.waitpid(pid, 0)\n"
    "sys.stderr.write('%d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def gnu_time() -> str | None:
    exe = shutil.which("time", path="/usr/bin:/bin")
    if not exe:
        return None
    probe = subprocess.run([exe, "-f", "%M", "true"], capture_output=True, text=True)
    return exe if probe.returncode == 0 and probe.stderr.strip().isdigit() else None


def peak_mb(cmd: Sequence[str], out: Path, env: dict[str, str], tmp: Path,
            time_exe: str | None) -> float:
    """The peak resident memory, in MB, of one run of `cmd` in a fresh process."""
    report = tmp / "peak.txt"
    if time_exe:
        wrapped = [time_exe, "-f", "%M", "-o", str(report), *cmd]
    else:
        wrapped = [sys.executable, "-S", "-c", LAUNCHER, *cmd]
    with open(out, "wb") as stdout:
        proc = subprocess.run(wrapped, stdin=subprocess.DEVNULL, stdout=stdout,
                              stderr=subprocess.PIPE, env=env)
    if proc.returncode != 0:
        raise Broken(f"`{' '.join(cmd)}` exited {proc.returncode}: "
                     f"{proc.stderr.decode(errors='replace').strip()}")
    text = report.read_text() if time_exe else proc.stderr.decode()
    return int(text.strip().splitlines()[-1]) / 1024  # KB on Linux


def find_oppcli() -> str | None:
    here = Path(sys.executable).parent / "oppcli"
    if here.exists():
        return str(here)
    return shutil.which("oppcli")


def clean_env(tmp: Path, bytecode: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("OPPCLI_") or k.startswith("COPPER_"))}
    env["OPPCLI_CONFIG_DIR"] = str(tmp / "config")  # no user profile can change the backend
    env["XDG_DATA_HOME"] = str(tmp / "xdg")
    if bytecode:
        # An installed oppcli runs from bytecode (pip compiles it; an editable install caches
        # it on first run). Where PYTHONDONTWRITEBYTECODE is set (some CI and sandboxes),
        # every run would compile oppcli's sources again (~40 ms), a cost no user pays: cache
        # it in a private prefix instead (filled by the warm-up runs; the tree is untouched).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    return env


def median(xs: list[float]) -> float:
    return statistics.median(xs)


# ---- reading answers without holding them --------------------------------------------------------
_ID_AT_START = re.compile(rb'\{"id":(-?\d+)[,}]')
BLOCK = 16 << 20


def lines_of(path: Path) -> Iterator[bytes]:
    """The lines of a file, without their newlines, read in blocks."""
    with open(path, "rb") as f:
        rest = b""
        while block := f.read(BLOCK):
            parts = (rest + block).split(b"\n")
            rest = parts.pop()
            yield from parts
        if rest:
            yield rest


def record_ids(path: Path) -> list[int]:
    """The ids of the records in jq -c, oppcli -o jsonl or oppcli -o json output (one record
    per line, each starting `{"id":N`; anything else is parsed)."""
    ids = []
    for line in lines_of(path):
        if line.startswith(b"{"):
            m = _ID_AT_START.match(line)
            ids.append(int(m[1]) if m else int(orjson.loads(line.rstrip(b","))["id"]))
    return ids


def scan_for(path: Path, opp_id: int) -> tuple[int, Record | None]:
    """(number of lines, the record with this id or None) of a JSON Lines file."""
    needle = b'{"id":%d,' % opp_id
    count = 0
    found = None
    for line in lines_of(path):
        if line:
            count += 1
            if line.startswith(needle):
                found = orjson.loads(line)
    return count, found


def last_record(path: Path) -> Record:
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - (1 << 16)))
        tail = f.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
    return orjson.loads(tail)  # type: ignore[no-any-return]


def csv_difference(a: Path, b: Path) -> tuple[int, str | None]:
    """(data rows of a, None) when the two CSV files hold the same cells (numbers compared as
    numbers: jq and Python may spell a float differently); else where they first differ."""
    rows = 0
    with open(a, newline="", encoding="utf-8") as fa, open(b, newline="", encoding="utf-8") as fb:
        ra, rb = csv.reader(fa), csv.reader(fb)
        for n, x in enumerate(ra):
            y = next(rb, None)
            if x != y and not same_cells(x, y):
                return rows, f"row {n + 1}: {x!r}\n  vs {y!r}"
            rows = n
        extra = next(rb, None)
        if extra is not None:
            return rows, f"jq has more rows: {extra!r}"
    return rows, None


def same_cells(x: list[str], y: list[str] | None) -> bool:
    if y is None or len(x) != len(y):
        return False
    for p, q in zip(x, y, strict=True):
        if p != q:
            try:
                if float(p) != float(q):
                    return False
            except ValueError:
                return False
    return True


# ---- the report -------------------------------------------------------------------------------
@dataclass
class Row:
    measure: str
    figure: str
    target: str
    ok: bool | None  # None: no target, reported only ("info")


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, measure: str, figure: str, target: str, ok: bool | None) -> None:
        self.rows.append(Row(measure, figure, target, ok))

    def print(self, title: str) -> None:
        w = max(len(r.measure) for r in self.rows)
        fw = max(len(r.figure) for r in self.rows)
        tw = max(len(r.target) for r in self.rows)
        print(title)
        print(f"{'measure':<{w}}  {'figure':>{fw}}  {'target':<{tw}}  result")
        for r in self.rows:
            verdict = "info" if r.ok is None else "PASS" if r.ok else "FAIL"
            print(f"{r.measure:<{w}}  {r.figure:>{fw}}  {r.target:<{tw}}  {verdict}")
        for n in self.notes:
            print(n)


def print_grid(title: str, rows: list[tuple[str, list[str]]], sizes: Sequence[int]) -> None:
    """A compact table: one row per operation, one column per store size."""
    heads = [f"{n:,}" for n in sizes]
    lw = max(len("operation"), *(len(label) for label, _ in rows))
    cw = [max(len(h), *(len(cells[i]) for _, cells in rows)) for i, h in enumerate(heads)]
    print(title)
    print(f"{'operation':<{lw}}  " + "  ".join(f"{h:>{w}}" for h, w in zip(heads, cw, strict=True)))
    for label, cells in rows:
        print(f"{label:<{lw}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(cells, cw, strict=True)))


# ---- the stores -------------------------------------------------------------------------------
@dataclass
class Store:
    n: int
    path: Path
    expected: dict[str, set[int]]  # the ids each search must return (the referee)
    first_id: int = 1001

    @property
    def data(self) -> Path:
        return self.path / DATA

    @property
    def last_id(self) -> int:
        return self.first_id + self.n - 1


def build(path: Path, count: int, lk: dict[str, Any], plan: list[Search],
          say: Callable[[str], None] = lambda _: None) -> Store:
    """Write a store of `count` records as LocalStore does (create_store for the directory,
    the header and the lookups; the records streamed with its dump_line, in id order; next_id
    after the last), evaluating each search's filter on every record as it goes."""
    LocalStore.create_store(path, lookups=lk, date_order="MDY", records=[])
    expected: dict[str, set[int]] = {s.key: set() for s in plan}
    tmp = path / f".{DATA}.bench.tmp"
    last = 0
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb", buffering=1 << 20) as out:
        for i, rec in enumerate(iter_records(count, lk), 1):
            out.write(dump_line(rec))
            for s in plan:
                if s.predicate(rec):
                    expected[s.key].add(rec["id"])
            last = rec["id"]
            if i % 100_000 == 0:
                say(f"  generated {i:,} of {count:,} records")
    os.replace(tmp, path / DATA)
    meta = orjson.loads((path / META).read_bytes())
    meta["next_id"] = last + 1 if count else 1
    # The data file as oppcli would leave it (in id order): create keeps appending without
    # reading it, as in a store oppcli wrote itself.
    meta["data_stamp"] = _stamp(os.stat(path / DATA))
    atomic_write(path / META, orjson.dumps(meta, option=orjson.OPT_INDENT_2))
    return Store(count, path, expected)


def check_writer(tmp: Path, lk: dict[str, Any], plan: list[Search]) -> None:
    """build() writes what LocalStore.create_store writes for the same records."""
    mine, theirs = tmp / "writer-check-build", tmp / "writer-check-create"
    build(mine, SMALL, lk, plan)
    LocalStore.create_store(theirs, lookups=lk, date_order="MDY",
                            records=make_records(SMALL, lk))
    for name in (DATA, "lookups.json"):
        if (mine / name).read_bytes() != (theirs / name).read_bytes():
            raise Broken(f"the benchmark's store writer and LocalStore.create_store differ on {name}")
    m, t = (orjson.loads((p / META).read_bytes()) for p in (mine, theirs))
    for p, header in ((mine, m), (theirs, t)):
        header.pop("created", None)
        # the stamps differ (times, inodes), but each must vouch for its own data file
        if header.pop("data_stamp", None) != _stamp(os.stat(p / DATA)):
            raise Broken(f"the store header at {p} does not vouch for its data file")
    if m != t:
        raise Broken(f"the benchmark's store header differs from create_store's: {m} vs {t}")
    shutil.rmtree(mine)
    shutil.rmtree(theirs)


# ---- the operations ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Op:
    key: str
    label: str
    target: float | None = None  # the time ratio's target at TARGET_RECORDS
    peak_judged: bool = False  # peak memory judged against TARGET_PEAK_MB
    baseline: str = "jq"


def operations(plan: list[Search]) -> list[Op]:
    return [Op("list", "list"),
            *(Op(f"search {s.key}", f"search, {s.label}", TARGET_READ_RATIO, True)
              for s in plan),
            Op("show", "show", TARGET_READ_RATIO),
            Op("export", "CSV export", None, True),
            Op("create", "create", TARGET_CREATE_RATIO, baseline=f"at {SMALL} records"),
            Op("update", "update", TARGET_WRITE_RATIO),
            Op("delete", "delete", TARGET_WRITE_RATIO)]


@dataclass
class Result:
    opp: list[Run]
    base: list[Run]
    peak: float = 0.0  # MB, one more oppcli run
    # The same operation on the previous size's store, run in the same rounds (the growth's
    # baseline); empty for the first size.
    prev: list[Run] = field(default_factory=list)

    @property
    def prev_ms(self) -> float:
        return median([r.wall for r in self.prev]) * 1000

    @property
    def opp_ms(self) -> float:
        return median([r.wall for r in self.opp]) * 1000

    @property
    def base_ms(self) -> float:
        return median([r.wall for r in self.base]) * 1000

    @property
    def ratio(self) -> float:
        return self.opp_ms / self.base_ms

    @property
    def cpu_ratio(self) -> float:
        return median([r.cpu for r in self.opp]) / max(1e-9, median([r.cpu for r in self.base]))

    @property
    def min_ratio(self) -> float:
        return min(r.wall for r in self.opp) / min(r.wall for r in self.base)


Step = tuple[str, list[str], Path | None]  # ("opp", "base" or "prev", command, stdout to)
# The companion step of a round on the previous size's store: (command, stdout to).
Companion = Callable[["Store", int], tuple[list[str], Path | None]]


@dataclass
class Bench:
    oppcli: str
    jq: str
    env: dict[str, str]
    tmp: Path
    time_exe: str | None
    repeat: int
    create_repeat: int
    lk: dict[str, Any]
    plan: list[Search]
    small: Store
    commands: dict[str, tuple[str, str]] = field(default_factory=dict)  # for the notes
    prev: Store | None = None  # the previous size's store, kept for the growth's baseline
    prev_runs: list[Run] = field(default_factory=list)

    def say(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def alternate(self, steps: Callable[[int], Sequence[Step]], check: Callable[[int], None],
                  repeat: int | None = None, companion: Companion | None = None
                  ) -> tuple[list[Run], list[Run]]:
        """Run the steps of each round in order (round 0 warms the page cache, the bytecode
        cache and both programs, untimed), checking the answers after each round.

        With a previous size's store, each round ends with `companion`'s command on it: the
        same operation, timed in the same rounds, so the growth between the two sizes is a
        ratio of runs made side by side (in `prev_runs`), not of runs made many minutes apart
        on a shared machine. Its answers were checked when that size ran; here its exit status
        is."""
        opp: list[Run] = []
        base: list[Run] = []
        self.prev_runs = []
        for i in range((self.repeat if repeat is None else repeat) + 1):
            rounds = list(steps(i))
            if companion is not None and self.prev is not None:
                rounds.append(("prev", *companion(self.prev, i)))
            for side, cmd, out in rounds:
                r = run(cmd, out, self.env)
                if i:
                    {"opp": opp, "base": base, "prev": self.prev_runs}[side].append(r)
            check(i)
        return opp, base

    @property
    def prev_out(self) -> Path:  # where a companion's stdout goes (not a checked answer's file)
        return self.tmp / "prev-out"

    def peak(self, cmd: list[str]) -> float:
        return peak_mb(cmd, self.tmp / "peak-out", self.env, self.tmp, self.time_exe)

    def opp(self, store: Store, *args: str) -> list[str]:
        return [self.oppcli, "--store", str(store.path), *args]

    def note(self, key: str, opp_cmd: str, base_cmd: str) -> None:
        self.commands.setdefault(key, (opp_cmd, base_cmd))

    # ---- one store size: reads first, then writes ----
    def size(self, st: Store) -> dict[str, Result]:
        results: dict[str, Result] = {}
        for op in operations(self.plan):
            self.say(f"[{st.n:,}] {op.label} ...")
            if op.key.startswith("search "):
                res = self.search(st, next(s for s in self.plan if f"search {s.key}" == op.key))
            else:
                res = getattr(self, "op_" + op.key)(st)
            res.prev, self.prev_runs = self.prev_runs, []
            results[op.key] = res
            self.say(f"[{st.n:,}] {op.label}: oppcli {res.opp_ms:.0f} ms, {op.baseline} "
                     f"{res.base_ms:.0f} ms, ratio {res.ratio:.3f}x; oppcli peak {res.peak:.1f} MB")
        return results

    def op_list(self, st: Store) -> Result:
        opp_cmd = self.opp(st, "list", "-o", "jsonl")
        jq_cmd = [self.jq, "-c", ".", str(st.data)]
        opp_out, jq_out = self.tmp / "list.jsonl", self.tmp / "list-jq.jsonl"
        self.note("list", "oppcli list -o jsonl", f"jq -c . {DATA}")

        def check(i: int) -> None:
            if i:  # the same command on the same file: the warm-up's answer is checked
                return
            got = record_ids(opp_out)
            if len(got) != st.n or set(got) != set(range(st.first_id, st.last_id + 1)):
                raise Broken(f"list printed {len(got):,} records ({len(set(got)):,} distinct), "
                             f"not the store's {st.n:,}\n  oppcli: {' '.join(opp_cmd)}")
            if len(record_ids(jq_out)) != st.n:
                raise Broken(f"jq -c . printed {len(record_ids(jq_out)):,} records, not {st.n:,}")

        o, b = self.alternate(lambda i: [("opp", opp_cmd, opp_out), ("base", jq_cmd, jq_out)],
                              check, companion=lambda prev, i: (self.opp(prev, "list", "-o",
                                                                         "jsonl"), self.prev_out))
        return Result(o, b, self.peak(opp_cmd))

    def search(self, st: Store, s: Search) -> Result:
        opp_cmd = self.opp(st, "search", *s.args, "-o", "json")
        jq_cmd = [self.jq, "-c", s.jq_filter, str(st.data)]
        opp_out, jq_out = self.tmp / f"search-{s.key}.json", self.tmp / f"search-{s.key}.jsonl"
        want = st.expected[s.key]
        self.note(f"search {s.key}", f"oppcli search {' '.join(s.args)} -o json",
                  f"jq -c '{s.jq_filter}' {DATA}")

        def check(i: int) -> None:
            got_opp, got_jq = record_ids(opp_out), set(record_ids(jq_out))
            if (len(got_opp) != len(set(got_opp)) or set(got_opp) != want
                    or got_jq != want or not want):
                raise Broken(
                    f"search {s.key} answers differ at {st.n:,} records: oppcli "
                    f"{len(got_opp)} ids ({len(set(got_opp))} distinct), jq {len(got_jq)}, "
                    f"expected {len(want)}; oppcli missing {sorted(want - set(got_opp))[:10]}, "
                    f"extra {sorted(set(got_opp) - want)[:10]}; jq missing "
                    f"{sorted(want - got_jq)[:10]}, extra {sorted(got_jq - want)[:10]}"
                    f"\n  oppcli: {' '.join(opp_cmd)}\n  jq: {' '.join(jq_cmd)}")

        o, b = self.alternate(lambda i: [("opp", opp_cmd, opp_out), ("base", jq_cmd, jq_out)],
                              check, companion=lambda prev, i: (self.opp(prev, "search", *s.args,
                                                                         "-o", "json"),
                                                               self.prev_out))
        return Result(o, b, self.peak(opp_cmd))

    def op_show(self, st: Store) -> Result:
        opp_id = st.first_id + (3 * st.n) // 4
        opp_cmd = self.opp(st, "show", str(opp_id), "-o", "json")
        jq_cmd = [self.jq, "-c", f"select(.id == {opp_id})", str(st.data)]
        opp_out, jq_out = self.tmp / "show.json", self.tmp / "show-jq.jsonl"
        self.note("show", "oppcli show ID -o json  (ID three quarters into the file)",
                  f"jq -c 'select(.id == ID)' {DATA}")

        def check(i: int) -> None:
            got = orjson.loads(opp_out.read_bytes())
            lines = [x for x in jq_out.read_bytes().splitlines() if x.strip()]
            if len(lines) != 1 or got != orjson.loads(lines[0]) or got.get("id") != opp_id:
                raise Broken(f"show {opp_id} printed {str(got)[:200]}, jq found "
                             f"{len(lines)} line(s): {lines[:1]!r:.200}")

        def companion(prev: Store, i: int) -> tuple[list[str], Path | None]:
            at = prev.first_id + (3 * prev.n) // 4
            return self.opp(prev, "show", str(at), "-o", "json"), self.prev_out

        o, b = self.alternate(lambda i: [("opp", opp_cmd, opp_out), ("base", jq_cmd, jq_out)],
                              check, companion=companion)
        return Result(o, b, self.peak(opp_cmd))

    def op_export(self, st: Store) -> Result:
        opp_csv, jq_csv = self.tmp / "export.csv", self.tmp / "export-jq.csv"
        opp_cmd = self.opp(st, "export", "-o", "csv", "--output-file", str(opp_csv))
        program = jq_csv_program(self.lk)
        jq_cmd = [self.jq, "-rn", program, str(st.data)]
        self.note("export", "oppcli export -o csv --output-file OUT",
                  f"jq -rn '<the same columns, see jq_csv_program()> | @csv' {DATA} > OUT")

        def check(i: int) -> None:
            if i:  # the same command on the same file: the warm-up's answer is checked
                return
            rows, diff = csv_difference(opp_csv, jq_csv)
            if diff:
                raise Broken(f"the CSV exports differ at {st.n:,} records: {diff}\n"
                             f"  oppcli: {' '.join(opp_cmd)}\n  jq program:\n{program}")
            if rows != st.n:
                raise Broken(f"the CSV export has {rows:,} rows, not {st.n:,}")

        o, b = self.alternate(lambda i: [("opp", opp_cmd, None), ("base", jq_cmd, jq_csv)],
                              check, companion=lambda prev, i: (self.opp(
                                  prev, "export", "-o", "csv", "--output-file",
                                  str(self.tmp / "export-prev.csv")), None))
        return Result(o, b, self.peak(opp_cmd))

    def op_create(self, st: Store) -> Result:
        def cmd(store: Store, name: str) -> list[str]:
            return self.opp(store, "create", "--name", name, "--primary-contact-id", "601",
                            "--monetary-value", "12000", "--tag", "bench", "-o", "json")

        def name(i: int) -> str:
            return f"Bench deal {st.n} {i}"

        self.note("create", "oppcli create --name NAME --primary-contact-id 601 "
                  "--monetary-value 12000 --tag bench -o json",
                  f"the same on a {SMALL}-record store")

        def steps(i: int) -> list[Step]:
            pair: list[Step] = [("base", cmd(self.small, name(i)), None),
                                ("opp", cmd(st, name(i)), None)]
            return pair if i % 2 == 0 else pair[::-1]

        def landed(store: Store, i: int) -> None:
            last = last_record(store.data)
            if last.get("name") != name(i):
                raise Broken(f"create {name(i)!r} did not land at the end of the "
                             f"{store.n:,}-record store (last: {last.get('name')!r})")

        def check(i: int) -> None:
            landed(st, i)
            landed(self.small, i)

        o, b = self.alternate(steps, check, self.create_repeat,
                              companion=lambda prev, i: (cmd(prev, f"{name(i)} (prev)"), None))
        peak = self.peak(cmd(st, name(-1)))
        landed(st, -1)
        return Result(o, b, peak)

    def op_update(self, st: Store) -> Result:
        opp_id = st.first_id + (3 * st.n) // 5
        opp_out, jq_out = self.tmp / "update.json", self.tmp / "update-jq.jsonl"

        def value(i: int) -> int:
            return 700_000 + i  # a new value each run: every run writes

        def opp_cmd(i: int) -> list[str]:
            return self.opp(st, "update", str(opp_id), "--monetary-value", str(value(i)),
                            "-o", "json")

        def jq_cmd(i: int) -> list[str]:
            return [self.jq, "-c", f"if .id == {opp_id} then .monetary_value = {value(i)} "
                    "else . end", str(st.data)]

        self.note("update", "oppcli update ID --monetary-value X -o json  (X new each run)",
                  f"jq -c 'if .id == ID then .monetary_value = X else . end' {DATA} > TMP")

        def check(i: int) -> None:
            got = orjson.loads(opp_out.read_bytes())
            lines, stored = scan_for(st.data, opp_id)
            jq_lines, rewritten = scan_for(jq_out, opp_id)
            if got.get("id") != opp_id or got.get("monetary_value") != value(i):
                raise Broken(f"update printed {str(got)[:200]}")
            if stored is None or stored.get("monetary_value") != value(i):
                raise Broken(f"after the update, record {opp_id} in the store is "
                             f"{str(stored)[:200]}")
            if rewritten is None or rewritten.get("monetary_value") != value(i) or \
                    jq_lines != lines:
                raise Broken(f"jq's rewrite has {jq_lines:,} lines (the store {lines:,}) and "
                             f"record {opp_id} as {str(rewritten)[:200]}")

        # jq first in each round, so its rewrite changes the record too (the work is the same)
        def companion(prev: Store, i: int) -> tuple[list[str], Path | None]:
            at = prev.first_id + (3 * prev.n) // 5
            return self.opp(prev, "update", str(at), "--monetary-value", str(value(i) + 100_000),
                            "-o", "json"), self.prev_out

        o, b = self.alternate(lambda i: [("base", jq_cmd(i), jq_out),
                                         ("opp", opp_cmd(i), opp_out)], check,
                              companion=companion)
        peak = self.peak(opp_cmd(self.repeat + 1))
        _, stored = scan_for(st.data, opp_id)
        if stored is None or stored.get("monetary_value") != value(self.repeat + 1):
            raise Broken(f"the last update of {opp_id} is not in the store")
        return Result(o, b, peak)

    def op_delete(self, st: Store) -> Result:
        ids = [st.first_id + (4 * st.n) // 5 + 3 * k for k in range(self.repeat + 2)]
        opp_out, jq_out = self.tmp / "delete.json", self.tmp / "delete-jq.jsonl"
        self.note("delete", "oppcli delete ID --yes -o json  (another existing ID each run)",
                  f"jq -c 'select(.id != ID)' {DATA} > TMP  (just before, on the same ID)")
        before = scan_for(st.data, ids[0])[0]

        def opp_cmd(i: int) -> list[str]:
            return self.opp(st, "delete", str(ids[i]), "--yes", "-o", "json")

        def steps(i: int) -> list[Step]:
            return [("base", [self.jq, "-c", f"select(.id != {ids[i]})", str(st.data)], jq_out),
                    ("opp", opp_cmd(i), opp_out)]

        def check(i: int) -> None:
            got = orjson.loads(opp_out.read_bytes())
            if got != [{"id": ids[i], "is_deleted": True}]:
                raise Broken(f"delete {ids[i]} printed {got!r:.200}")
            lines, stored = scan_for(st.data, ids[i])
            jq_lines, kept = scan_for(jq_out, ids[i])
            if stored is not None or lines != before - i - 1:
                raise Broken(f"after deleting {ids[i]} the store has {lines:,} lines (expected "
                             f"{before - i - 1:,}) and the record {'still' if stored else 'gone'}")
            if kept is not None or jq_lines != lines:
                raise Broken(f"jq's rewrite without {ids[i]} has {jq_lines:,} lines, the "
                             f"store {lines:,}")

        def companion(prev: Store, i: int) -> tuple[list[str], Path | None]:
            # ids next to the ones deleted when that size ran, so each still exists
            at = prev.first_id + (4 * prev.n) // 5 + 3 * i + 1
            return self.opp(prev, "delete", str(at), "--yes", "-o", "json"), self.prev_out

        o, b = self.alternate(steps, check, companion=companion)
        peak = self.peak(opp_cmd(self.repeat + 1))
        lines, stored = scan_for(st.data, ids[-1])
        if stored is not None or lines != before - self.repeat - 2:
            raise Broken(f"the last delete ({ids[-1]}) did not remove one record")
        return Result(o, b, peak)


# ---- the benchmark ----------------------------------------------------------------------------
def bench(args: argparse.Namespace) -> int:
    oppcli = find_oppcli()
    jq = shutil.which("jq")
    if not oppcli or not jq:
        print(f"bench_store: needs the oppcli console script and jq (oppcli: {oppcli}, jq: {jq})",
              file=sys.stderr)
        return 4
    sizes = sorted(set(args.sizes))
    lk = lookups()
    plan = searches(lk)
    ops = operations(plan)
    results: dict[int, dict[str, Result]] = {}
    stores: dict[int, Store] = {}
    file_mb: dict[int, float] = {}

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="oppcli-bench-") as tmpdir:
        tmp = Path(tmpdir)
        env = clean_env(tmp, bytecode=not args.no_bytecode_cache)
        time_exe = gnu_time()
        check_writer(tmp, lk, plan)
        small = build(tmp / f"store-{SMALL}", SMALL, lk, plan)
        jq_version = subprocess.run([jq, "--version"], capture_output=True, text=True).stdout.strip()
        opp_version = subprocess.run([oppcli, "--version"], capture_output=True, text=True,
                                     env=env).stdout.strip()
        print(f"{opp_version}, {jq_version}, Python {platform.python_version()}, "
              f"{os.cpu_count()} CPUs; bytecode cache "
              f"{'off' if args.no_bytecode_cache else 'on'}; peak memory by "
              f"{time_exe + ' -f %M' if time_exe else 'a launcher (RUSAGE_CHILDREN)'}",
              flush=True)
        b = Bench(oppcli, jq, env, tmp, time_exe, args.repeat, args.create_repeat, lk, plan,
                  small)
        for n in sizes:
            t0 = time.perf_counter()
            say(f"building a store of {n:,} records ...")
            st = build(tmp / f"store-{n}", n, lk, plan, say)
            file_mb[n] = st.data.stat().st_size / 1e6
            print(f"built a store of {n:,} records in {time.perf_counter() - t0:.1f}s "
                  f"({DATA}: {file_mb[n]:.1f} MB)", flush=True)
            stores[n] = st
            results[n] = b.size(st)
            if b.prev is not None:
                shutil.rmtree(b.prev.path)  # the disk a million records take
            b.prev = st  # the next size's growth is measured against this one, side by side
            for leftover in tmp.glob("*.json*"):
                leftover.unlink()
            for leftover in tmp.glob("*.csv"):
                leftover.unlink()

    # ---- the table ----
    judged = TARGET_RECORDS if TARGET_RECORDS in sizes else sizes[-1]
    report = Report()
    sw = len(f"{sizes[-1]:,}")
    for n in sizes:
        for op in ops:
            res = results[n][op.key]
            if op.key == "create":
                measure = f"{n:>{sw},}  create: time at {n:,} / at {SMALL} records"
            else:
                measure = f"{n:>{sw},}  {op.label}: time oppcli/jq"
            if op.target is not None and n == judged:
                report.add(measure, f"{res.ratio:.3f}x", f"<= {op.target:g}x",
                           res.ratio <= op.target)
            else:
                report.add(measure, f"{res.ratio:.3f}x", "-", None)
            if op.peak_judged:
                measure = f"{n:>{sw},}  {op.label}: peak memory of oppcli"
                if n == judged:
                    report.add(measure, f"{res.peak:.1f} MB", f"< {TARGET_PEAK_MB:g} MB",
                               res.peak < TARGET_PEAK_MB)
                else:
                    report.add(measure, f"{res.peak:.1f} MB", "-", None)
    if len(sizes) >= 2:
        lo, hi = sizes[-2], sizes[-1]
        judge_growth = (lo, hi) == (GROWTH_FROM, GROWTH_TO)
        for op in ops:
            a, z = results[lo][op.key], results[hi][op.key]
            g, gb = z.opp_ms / z.prev_ms, z.base_ms / a.base_ms
            base = "at 100" if op.key == "create" else "jq"
            measure = f"growth {lo:,} -> {hi:,} ({hi / lo:g}x records)  {op.label}: oppcli time"
            figure = f"{g:.2f}x (apart {z.opp_ms / a.opp_ms:.2f}x; {base} {gb:.2f}x)"
            if judge_growth:
                report.add(measure, figure, f"<= {TARGET_GROWTH:g}x (linear)",
                           g <= TARGET_GROWTH)
            else:
                report.add(measure, figure, "-", None)

    for s in plan:
        counts = ", ".join(f"{len(stores[n].expected[s.key]):,}" for n in sizes)
        report.notes.append(f"  search {s.key} ({s.label}): {counts} matches; the same ids from "
                            "oppcli, jq and the generator")
    report.notes.append("  list, show, export, create, update and delete answers checked "
                        "(see the module docstring)")
    report.notes.append("  commands (oppcli runs with --store S; the baseline on the same store "
                        "file):")
    for key, (o, j) in b.commands.items():
        report.notes.append(f"    {key:<9} {o}")
        report.notes.append(f"    {'':<9} {j}")
    if judged != TARGET_RECORDS:
        report.notes.append(f"  note: the targets are defined at {TARGET_RECORDS:,} records; "
                            f"judged here at {judged:,}, as an indication only")
    if GROWTH_TO not in sizes or GROWTH_FROM not in sizes:
        report.notes.append(f"  note: growth is judged from {GROWTH_FROM:,} to {GROWTH_TO:,} "
                            "records; run both sizes to judge it")
    print()
    report.print(f"oppcli store scale benchmark: {', '.join(f'{n:,}' for n in sizes)} records "
                 f"({', '.join(f'{file_mb[n]:.1f}' for n in sizes)} MB); {args.repeat} timed "
                 f"run(s) per measure ({args.create_repeat} for create), ratios of medians")
    print()
    print_grid("median wall time, ms: oppcli / baseline (jq on the same file; create: the same "
               f"create at {SMALL} records)",
               [(op.label, [f"{results[n][op.key].opp_ms:.0f} / {results[n][op.key].base_ms:.0f}"
                            for n in sizes]) for op in ops], sizes)
    print()
    print_grid("CPU time ratio oppcli/baseline (user+sys; wall ratio minus waiting, e.g. fsync)",
               [(op.label, [f"{results[n][op.key].cpu_ratio:.3f}x" for n in sizes])
                for op in ops], sizes)
    print()
    print_grid("peak memory of oppcli, MB",
               [(op.label, [f"{results[n][op.key].peak:.1f}" for n in sizes]) for op in ops],
               sizes)
    missed = [r.measure.strip() for r in report.rows if r.ok is False]
    if args.check and missed:
        print(f"missed: {'; '.join(missed)}", file=sys.stderr)
        return 1
    return 0


def parse_size(text: str) -> int:
    t = text.strip().lower().replace("_", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(t[-1:], 1)
    return int(t[:-1] if scale > 1 else t) * scale


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--sizes", default=None, metavar="N,N,...",
                   help="store sizes, comma-separated (k and M allowed; default "
                        f"{','.join(map(str, SIZES))})")
    p.add_argument("--records", type=int, default=None, metavar="N",
                   help="one store size: the same as --sizes N")
    p.add_argument("--repeat", type=int, default=3,
                   help="timed runs per measure, after one warm-up (default 3)")
    p.add_argument("--create-repeat", type=int, default=0,
                   help="timed creates per store (default 3x --repeat, at least 3)")
    p.add_argument("--smoke", action="store_true",
                   help=f"sizes {','.join(map(str, SMOKE_SIZES))}, 1 repeat: checks the script "
                        "works and the answers agree")
    p.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    p.add_argument("--no-bytecode-cache", action="store_true",
                   help="run oppcli as the environment says (e.g. PYTHONDONTWRITEBYTECODE) "
                        "instead of with a private bytecode cache")
    args = p.parse_args(argv)
    if args.sizes is not None and args.records is not None:
        p.error("give --sizes or --records, not both")
    try:
        args.sizes = ([parse_size(x) for x in args.sizes.split(",") if x.strip()]
                      if args.sizes else [args.records] if args.records else list(SIZES))
    except ValueError:
        p.error(f"--sizes takes numbers separated by commas, not {args.sizes!r}")
    if args.smoke:
        args.sizes, args.repeat = list(SMOKE_SIZES), 1
        args.create_repeat = args.create_repeat or 1
    args.create_repeat = args.create_repeat or max(3, 3 * args.repeat)
    if not args.sizes or min(args.sizes) < 20 or args.repeat < 1:
        p.error("every size must be at least 20 and --repeat at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return bench(args)
    except Broken as exc:
        print(f"bench_store: CORRECTNESS FAILURE: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
