#!/usr/bin/env python3
"""Store benchmark: oppcli against jq on the same store file, in the same job.

    python benchmarks/bench_store.py [--records 100000] [--repeat 5] [--smoke] [--check]

Builds two realistic local stores in a temporary directory (100 records and --records
records, generated in Python with a fixed seed and written with LocalStore.create_store),
then measures, against baselines run in this same job (shared machines are noisy, so only
ratios are judged, never absolute times):

- two three-filter searches: the installed `oppcli search ... -o json` and `jq -c 'select(...)'`
  on the store's opportunities.jsonl, both writing to a file, run alternately; the figure is
  the ratio of their median wall times (target, issue 2: at most 0.4x at 100,000 records).
  Before any timing, oppcli's ids, jq's ids and an independent in-Python evaluation of the
  filter over the generated records must be the same non-empty set, or the benchmark stops
  (exit 3): a fast wrong answer is not a result.
- the peak resident memory of one oppcli search process, started by a small fresh process
  (/usr/bin/time -f %M, else a launcher reading RUSAGE_CHILDREN); target: under 150 MB.
- `oppcli create --name ... --primary-contact-id ...` on the 100-record store and on the big
  store, alternately; the figure is the ratio of the medians (target: within 1.5x).

Prints a table (measure, figure, target, PASS/FAIL). Exit status: 0 whatever the figures
(the benchmark reports, it does not gate); 1 with --check when a target is missed; 3 when
oppcli and jq disagree (or any command fails); 4 when jq or oppcli is missing.

oppcli runs with its bytecode cached in a private prefix even where PYTHONDONTWRITEBYTECODE
is set, as an installed CLI would (--no-bytecode-cache: as the environment says).

--smoke: 2,000 records and one repeat, to check that the script works and the answers agree
in a few seconds; its figures say nothing about the targets, which are defined at 100,000.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from oppcli.backends.local import DATA, LocalStore
from oppcli.sample import BASE_TIME, SAMPLE_LOOKUPS

SEED = 20260101
SMALL = 100
TARGET_SEARCH_RATIO = 0.4
TARGET_PEAK_MB = 150.0
TARGET_CREATE_RATIO = 1.5
TARGET_RECORDS = 100_000

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
    records: list[Record] = []
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
        records.append({
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
        })
    return records


# ---- the searches -------------------------------------------------------------------------------
@dataclass
class Search:
    key: str
    label: str
    args: list[str]  # after `oppcli search`
    jq_filter: str
    predicate: Callable[[Record], bool]  # the same filter, evaluated here as the referee


def searches(lk: dict[str, Any]) -> list[Search]:
    negotiation = stage_id(lk, "Sales", "Negotiation")

    def a(r: Record) -> bool:
        v = r["monetary_value"]
        return (r["status"] == "Open" and r["pipeline_stage_id"] == negotiation
                and v is not None and v >= 50000)

    def b(r: Record) -> bool:
        v = r["monetary_value"]
        return (r["status"] == "Won" and "enterprise" in [t.casefold() for t in r["tags"]]
                and v is not None and v >= 25000)

    return [
        Search("A", "status+stage+min value",
               ["--status", "Open", "--stage", "Sales/Negotiation", "--min-value", "50000"],
               f'select(.status == "Open" and .pipeline_stage_id == {negotiation} '
               'and .monetary_value != null and .monetary_value >= 50000)', a),
        # The tags in the store are lower-case, so jq's plain equality is the same filter as
        # oppcli's case-insensitive one (the id check proves it) and jq's cheapest spelling.
        Search("B", "status+tag+min value",
               ["--status", "Won", "--tag", "enterprise", "--min-value", "25000"],
               'select(.status == "Won" and any(.tags[]?; . == "enterprise") '
               'and .monetary_value != null and .monetary_value >= 25000)', b),
    ]


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
# high-water mark at exec), and this process holds the generated store. So a small fresh
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


def ids_in(path: Path, jsonl: bool) -> list[int]:
    data = path.read_bytes()
    if jsonl:
        return [orjson.loads(line)["id"] for line in data.splitlines() if line.strip()]
    return [r["id"] for r in orjson.loads(data)]


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


# ---- the report -------------------------------------------------------------------------------
@dataclass
class Row:
    measure: str
    figure: str
    target: str
    ok: bool


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, measure: str, figure: str, target: str, ok: bool) -> None:
        self.rows.append(Row(measure, figure, target, ok))

    def print(self, title: str) -> None:
        w = max(len(r.measure) for r in self.rows)
        fw = max(len(r.figure) for r in self.rows)
        tw = max(len(r.target) for r in self.rows)
        print(title)
        print(f"{'measure':<{w}}  {'figure':>{fw}}  {'target':<{tw}}  result")
        for r in self.rows:
            print(f"{r.measure:<{w}}  {r.figure:>{fw}}  {r.target:<{tw}}  "
                  f"{'PASS' if r.ok else 'FAIL'}")
        for n in self.notes:
            print(n)


# ---- the benchmark ----------------------------------------------------------------------------
def build(path: Path, count: int, lk: dict[str, Any], plan: list[Search]) -> dict[str, set[int]]:
    """Write a store of `count` records; the ids each search must return (the referee)."""
    records = make_records(count, lk)
    expected = {s.key: {r["id"] for r in records if s.predicate(r)} for s in plan}
    LocalStore.create_store(path, lookups=lk, date_order="MDY", records=records)
    return expected


def bench(args: argparse.Namespace) -> int:
    oppcli = find_oppcli()
    jq = shutil.which("jq")
    if not oppcli or not jq:
        print(f"bench_store: needs the oppcli console script and jq (oppcli: {oppcli}, jq: {jq})",
              file=sys.stderr)
        return 4
    n, repeat = args.records, args.repeat
    create_repeat = args.create_repeat or max(3, 3 * repeat)
    lk = lookups()
    plan = searches(lk)
    report = Report()
    with tempfile.TemporaryDirectory(prefix="oppcli-bench-") as tmpdir:
        tmp = Path(tmpdir)
        env = clean_env(tmp, bytecode=not args.no_bytecode_cache)
        time_exe = gnu_time()
        t0 = time.perf_counter()
        small, big = tmp / f"store-{SMALL}", tmp / f"store-{n}"
        build(small, SMALL, lk, plan)
        expected = build(big, n, lk, plan)
        built = time.perf_counter() - t0
        data_file = big / DATA
        size_mb = data_file.stat().st_size / 1e6
        jq_version = subprocess.run([jq, "--version"], capture_output=True, text=True).stdout.strip()
        opp_version = subprocess.run([oppcli, "--version"], capture_output=True, text=True,
                                     env=env).stdout.strip()
        print(f"built stores of {SMALL} and {n:,} records in {built:.1f}s "
              f"({data_file.name}: {size_mb:.1f} MB); {opp_version}, {jq_version}, "
              f"Python {platform.python_version()}, {os.cpu_count()} CPUs; bytecode cache "
              f"{'off' if args.no_bytecode_cache else 'on'}; peak memory by "
              f"{time_exe + ' -f %M' if time_exe else 'a launcher (RUSAGE_CHILDREN)'}",
              flush=True)

        # ---- searches: correctness first, then alternate timed runs ----
        for s in plan:
            opp_cmd = [oppcli, "--store", str(big), "search", *s.args, "-o", "json"]
            jq_cmd = [jq, "-c", s.jq_filter, str(data_file)]
            opp_out, jq_out = tmp / f"oppcli-{s.key}.json", tmp / f"jq-{s.key}.jsonl"
            opp_runs: list[Run] = []
            jq_runs: list[Run] = []
            for i in range(repeat + 1):  # run 0 warms the page cache and both programs
                o, j = run(opp_cmd, opp_out, env), run(jq_cmd, jq_out, env)
                got_opp, got_jq = ids_in(opp_out, jsonl=False), ids_in(jq_out, jsonl=True)
                want = expected[s.key]
                if (len(got_opp) != len(set(got_opp)) or set(got_opp) != want
                        or set(got_jq) != want or not want):
                    raise Broken(
                        f"search {s.key} answers differ: oppcli {len(got_opp)} ids "
                        f"({len(set(got_opp))} distinct), jq {len(set(got_jq))}, expected "
                        f"{len(want)}; oppcli missing {sorted(want - set(got_opp))[:10]}, "
                        f"extra {sorted(set(got_opp) - want)[:10]}; jq missing "
                        f"{sorted(want - set(got_jq))[:10]}, extra {sorted(set(got_jq) - want)[:10]}"
                        f"\n  oppcli: {' '.join(opp_cmd)}\n  jq: {' '.join(jq_cmd)}")
                if i:
                    opp_runs.append(o)
                    jq_runs.append(j)
            om, jm = median([r.wall for r in opp_runs]), median([r.wall for r in jq_runs])
            ratio = om / jm
            best = min(r.wall for r in opp_runs) / min(r.wall for r in jq_runs)
            cpu = median([r.cpu for r in opp_runs]) / median([r.cpu for r in jq_runs])
            peak = peak_mb(opp_cmd, opp_out, env, tmp, time_exe)
            jq_peak = peak_mb(jq_cmd, jq_out, env, tmp, time_exe)
            report.add(f"search {s.key} ({s.label}) time ratio oppcli/jq", f"{ratio:.3f}x",
                       f"<= {TARGET_SEARCH_RATIO}x", ratio <= TARGET_SEARCH_RATIO)
            report.add(f"search {s.key} peak memory of oppcli", f"{peak:.1f} MB",
                       f"< {TARGET_PEAK_MB:g} MB", peak < TARGET_PEAK_MB)
            report.notes.append(
                f"  search {s.key}: {len(expected[s.key]):,} matches, same ids from oppcli, jq "
                f"and the generator; median oppcli {om * 1000:.0f} ms, jq {jm * 1000:.0f} ms "
                f"(min-ratio {best:.3f}x, CPU-time ratio {cpu:.3f}x, jq peak "
                f"{jq_peak:.1f} MB)")
            report.notes.append(f"    oppcli search {' '.join(s.args)} -o json")
            report.notes.append(f"    jq -c '{s.jq_filter}' {DATA}")

        # ---- create: alternate the small and the big store ----
        timings: dict[Path, list[float]] = {small: [], big: []}
        for i in range(create_repeat + 1):  # run 0 is a warm-up
            for store in (small, big) if i % 2 == 0 else (big, small):
                cmd = [oppcli, "--store", str(store), "create", "--name", f"Bench deal {i}",
                       "--primary-contact-id", "601", "--monetary-value", "12000",
                       "--tag", "bench", "-o", "json"]
                r = run(cmd, None, env)
                if i:
                    timings[store].append(r.wall)
        sm, bm = median(timings[small]), median(timings[big])
        ratio = bm / sm
        report.add(f"create time ratio {n:,} / {SMALL} records", f"{ratio:.3f}x",
                   f"<= {TARGET_CREATE_RATIO}x", ratio <= TARGET_CREATE_RATIO)
        report.notes.append(
            f"  create: median {sm * 1000:.0f} ms at {SMALL} records, {bm * 1000:.0f} ms at "
            f"{n:,} ({create_repeat} runs each; min-ratio "
            f"{min(timings[big]) / min(timings[small]):.3f}x)")
        last = big / DATA
        with open(last, "rb") as f:
            f.seek(max(0, last.stat().st_size - 4096))
            tail = f.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
        if orjson.loads(tail).get("name") != f"Bench deal {create_repeat}":
            raise Broken("the last create did not land at the end of the big store")

    title = (f"oppcli store benchmark: {n:,} records ({size_mb:.1f} MB), {repeat} timed runs "
             f"per search, medians")
    if args.smoke or n != TARGET_RECORDS:
        report.notes.append(f"  note: the targets are defined at {TARGET_RECORDS:,} records; "
                            f"at {n:,} the verdicts are indicative only")
    print()
    report.print(title)
    missed = [r.measure for r in report.rows if not r.ok]
    if args.check and missed:
        print(f"missed: {'; '.join(missed)}", file=sys.stderr)
        return 1
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--records", type=int, default=TARGET_RECORDS,
                   help="records in the big store (default %(default)s)")
    p.add_argument("--repeat", type=int, default=5, help="timed runs per search (default 5)")
    p.add_argument("--create-repeat", type=int, default=0,
                   help="timed creates per store (default 3x --repeat, at least 3)")
    p.add_argument("--smoke", action="store_true",
                   help="2,000 records, 1 repeat: checks the script works and the answers agree")
    p.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    p.add_argument("--no-bytecode-cache", action="store_true",
                   help="run oppcli as the environment says (e.g. PYTHONDONTWRITEBYTECODE) "
                        "instead of with a private bytecode cache")
    args = p.parse_args(argv)
    if args.smoke:
        args.records, args.repeat = 2000, 1
        args.create_repeat = args.create_repeat or 1
    if args.records < 1 or args.repeat < 1:
        p.error("--records and --repeat must be at least 1")
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
