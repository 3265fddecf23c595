#!/usr/bin/env python3
"""Copper benchmark: does a long export use the whole rate limit, does a search by names
cost one request per page, and does a bulk update of piped records use the whole limit?

    python benchmarks/bench_copper.py [--records 20000] [--bulk-records 2000] [--latency 0.3]
                                      [--only RUN,RUN] [--smoke] [--check]

Starts the Copper-speaking test server (tests/fakecopper.py) on 127.0.0.1 with --records
opportunities, --latency seconds added to every answer and a rolling rate limit that answers
429 past it, then runs the installed `oppcli export -o jsonl` against it with oppcli's own limit
set to the server's. Everything is measured from the server's request log, so Python's start-up
is left out. Three runs, each against a fresh server:

- limit binds: 30 requests per 10 s (Copper's 180 a minute, in a shorter window so a run spans
  several). One connection at 300 ms could make ~3.3 requests a second, just over the 3 allowed.
- latency binds: 60 per 10 s. One connection cannot keep up (at most ~55% of the limit), so
  oppcli must keep several pages in flight (copper.concurrency, default 4).
- the same with copper.concurrency=1, for comparison (not judged).

For each: requests per second as a fraction of the limit's rate (target: at least 0.9), records
per second, 429s answered, failed requests (target 0), and whether every record came exactly
once (target: yes; the script stops with exit 3 otherwise).

Then, with the lookup cache warm (one `oppcli lookups` first), a search by names (stage,
owner and source by name) must cost one request per page of results and nothing else: its
requests are counted in the server's log against the pages its results fill.

Then "bulk update, latency binds" (issue 16): a fresh server with --bulk-records (2,000)
opportunities, the latency-binds limit (60 per 10 s at 300 ms). `oppcli search -o jsonl` prints
every record (then the benchmark waits one window, so the search's requests do not share the
update's), and `oppcli update - --add-tag bulk --yes -o jsonl` is fed those records on stdin.
From the server's log of the update alone: PUTs per second over the update's span as a
fraction of the limit's rate (target: at least 0.9), PUTs answered (target: one per record),
GETs of single opportunities (target 0: a piped record carries its own state), 429s answered
(reported: oppcli may meet them, the user must not), failed requests (target 0); then oppcli's
exit status and any stderr line naming a 429 (target: exit 0 and none), and every record on the
server tagged `bulk` afterwards (target: all).

Prints a table (measure, figure, target, PASS/FAIL). Exit status: 0 whatever the figures;
1 with --check when a target is missed; 3 when records are missing, duplicated or a command
fails (the bulk update's own exit status and result are rows of the table instead).

--only limit,latency,concurrency1,names,bulk: just those runs (default: all).
--smoke: 8,000 records (40 pages; 200 for the bulk update), 10 ms latency and a limit of 20
(and 40) requests a second, to check in a few seconds that the script works; its figures say
little about the targets.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fakecopper import FakeCopper  # noqa: E402
from oppcli.domain.sample import SAMPLE_LOOKUPS, sample_records  # noqa: E402

TARGET_FRACTION = 0.9
API_KEY = "bench-key-0123456789"
EMAIL = "ada.park@example.com"


def oppcli_exe() -> str:
    here = Path(sys.executable).parent / "oppcli"
    return str(here) if here.exists() else (shutil.which("oppcli") or "oppcli")


class Broken(Exception):
    """A command failed or the records are wrong: no figures are reported."""


def env_for(server: FakeCopper, tmp: Path, limit: int, window: float,
            concurrency: int | None) -> dict[str, str]:
    env = dict(os.environ, OPPCLI_BACKEND="copper", OPPCLI_COPPER_URL=server.url,
               COPPER_API_KEY=API_KEY, COPPER_USER_EMAIL=EMAIL,
               OPPCLI_COPPER_RATE_LIMIT=str(limit), OPPCLI_COPPER_RATE_WINDOW=str(window),
               OPPCLI_COPPER_TIMEOUT="30", OPPCLI_CACHE_DIR=str(tmp / "cache"),
               OPPCLI_CONFIG_DIR=str(tmp / "config"))
    if concurrency is not None:
        env["OPPCLI_COPPER_CONCURRENCY"] = str(concurrency)
    return env


def oppcli(args: list[str], env: dict[str, str], out: Path) -> float:
    started = time.monotonic()
    with out.open("wb") as fh:
        proc = subprocess.run([oppcli_exe(), *args], env=env, stdout=fh, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise Broken(f"oppcli {' '.join(args)} failed ({proc.returncode}): "
                     f"{proc.stderr.decode(errors='replace').strip()}")
    return time.monotonic() - started


Row = tuple[str, str, str, "bool | None"]


def export_run(title: str, records: list[dict[str, Any]], latency: float, limit: int,
               window: float, concurrency: int | None, judged: bool) -> list[Row]:
    """One export against a fresh server; its rows for the table."""
    print(f"{title}: exporting {len(records):,} records through a limit of {limit} per "
          f"{window:g} s with {latency:g} s latency...", file=sys.stderr)
    server = FakeCopper(SAMPLE_LOOKUPS, records, api_key=API_KEY, user_email=EMAIL,
                        latency=latency)
    server.set_rate_limit(limit, window)
    with server, tempfile.TemporaryDirectory(prefix="oppcli-bench-") as tmpdir:
        tmp = Path(tmpdir)
        out = tmp / "out.jsonl"
        wall = oppcli(["export", "-o", "jsonl", "--fields", "id"],
                      env_for(server, tmp, limit, window, concurrency), out)
        ids = [orjson.loads(line)["id"] for line in out.read_bytes().splitlines()]
        log = list(server.requests)
    expected = {r["id"] for r in records}
    exact = len(ids) == len(expected) and set(ids) == expected
    if not exact:
        raise Broken(f"{title}: {len(ids):,} records exported ({len(set(ids)):,} distinct), "
                     f"expected {len(expected):,}")
    too_many = sum(1 for r in log if r.status == 429)
    failed = sum(1 for r in log if r.status is None or (r.status >= 400 and r.status != 429))
    first, last = min(r.started for r in log), max(r.ended for r in log)
    span = last - first
    req_rate = len(log) / span if span > 0 else float("inf")
    allowed = limit / window
    fraction = req_rate / allowed
    rec_rate = len(ids) / span if span > 0 else float("inf")
    pages = -(-len(records) // 200)
    return [
        (f"{title}: requests", f"{len(log)} for {pages} pages in {span:.1f} s "
         f"(oppcli ran {wall:.1f} s)", "", None),
        (f"{title}: request rate / the limit's rate",
         f"{req_rate:.2f}/s of {allowed:.2f}/s = {fraction:.2f}",
         f">= {TARGET_FRACTION}" if judged else "-", fraction >= TARGET_FRACTION if judged else None),
        (f"{title}: records per second", f"{rec_rate:,.0f}", "", None),
        (f"{title}: 429 answers", str(too_many), "0" if judged else "-",
         too_many == 0 if judged else None),
        (f"{title}: failed requests", str(failed), "0", failed == 0),
        (f"{title}: every record exactly once", f"{len(ids):,} of {len(expected):,}", "yes", exact),
    ]


NAME_SEARCH = ["--stage", "Sales/Negotiation", "--stage", "Sales/Contract Sent",
               "--assignee", "Ada Park", "--assignee", "Ben Okafor", "--source", "Website",
               "--source", "Referral", "--source", "Outbound"]


def name_search_run(records: list[dict[str, Any]]) -> list[Row]:
    """A search by names with a warm lookup cache: requests against pages of results."""
    print("searching by names with a warm lookup cache...", file=sys.stderr)
    server = FakeCopper(SAMPLE_LOOKUPS, records, api_key=API_KEY, user_email=EMAIL)
    with server, tempfile.TemporaryDirectory(prefix="oppcli-bench-") as tmpdir:
        tmp = Path(tmpdir)
        env = env_for(server, tmp, 1000, 1.0, None)
        oppcli(["lookups", "-o", "json"], env, tmp / "lookups.json")  # fills the cache
        before = len(server.requests)
        out = tmp / "found.jsonl"
        oppcli(["search", *NAME_SEARCH, "-o", "jsonl", "--fields", "id"], env, out)
        log = list(server.requests)[before:]
        found = len(out.read_bytes().splitlines())
    if not found:
        raise Broken("the search by names found nothing")
    pages = found // 200 + 1  # the last page is the first one short of 200 (maybe empty)
    paths = sorted({r.path for r in log})
    others = [r for r in log if not r.path.endswith("/opportunities/search")]
    return [
        ("search by names, warm cache: requests", f"{len(log)} for {found:,} results "
         f"({pages} pages; paths: {', '.join(paths)})", f"= {pages}",
         len(log) == pages and not others),
    ]


SINGLE_GET = re.compile(r"/opportunities/\d+$")


def oppcli_fed(args: list[str], env: dict[str, str], stdin: Path, out: Path
               ) -> tuple[float, int, str]:
    """oppcli with stdin from a file; (seconds, exit status, stderr): the caller judges them."""
    started = time.monotonic()
    with stdin.open("rb") as inp, out.open("wb") as fh:
        proc = subprocess.run([oppcli_exe(), *args], env=env, stdin=inp, stdout=fh,
                              stderr=subprocess.PIPE)
    return (time.monotonic() - started, proc.returncode,
            proc.stderr.decode(errors="replace"))


def bulk_update_run(title: str, count: int, latency: float, limit: int,
                    window: float) -> list[Row]:
    """Piped records through `oppcli update - --add-tag bulk` against a fresh server."""
    records = sample_records(count)
    print(f"{title}: updating {count:,} piped records through a limit of {limit} per "
          f"{window:g} s with {latency:g} s latency...", file=sys.stderr)
    server = FakeCopper(SAMPLE_LOOKUPS, records, api_key=API_KEY, user_email=EMAIL,
                        latency=latency)
    server.set_rate_limit(limit, window)
    tag = "bulk"
    with server, tempfile.TemporaryDirectory(prefix="oppcli-bench-") as tmpdir:
        tmp = Path(tmpdir)
        env = env_for(server, tmp, limit, window, None)
        piped = tmp / "records.jsonl"
        oppcli(["search", "-o", "jsonl"], env, piped)  # what a user pipes into update -
        found = [orjson.loads(line)["id"] for line in piped.read_bytes().splitlines()]
        if len(found) != count or set(found) != {r["id"] for r in records}:
            raise Broken(f"{title}: search -o jsonl printed {len(found):,} records "
                         f"({len(set(found)):,} distinct), expected {count:,}")
        time.sleep(window + latency + 0.5)  # the search's requests leave the rolling window
        before = len(server.requests)
        out = tmp / "updated.jsonl"
        wall, code, err = oppcli_fed(["update", "-", "--add-tag", tag, "--yes", "-o", "jsonl"],
                                     env, piped, out)
        log = list(server.requests)[before:]
        stored = list(server.records.values())
        printed = out.read_bytes().splitlines()
    tagged = sum(1 for r in stored if tag in [str(t).casefold() for t in r.get("tags") or ()])
    surfaced = [line for line in err.splitlines()
                if "429" in line or "too many requests" in line.casefold()]
    if code != 0:
        print(f"{title}: oppcli exited {code}: {err.strip()[-2000:]}", file=sys.stderr)
    puts = [r for r in log if r.method == "PUT"]
    ok_puts = [r for r in puts if r.status is not None and 200 <= r.status < 300]
    gets = [r for r in log if r.method == "GET" and SINGLE_GET.search(r.path.split("?", 1)[0])]
    too_many = sum(1 for r in log if r.status == 429)
    failed = sum(1 for r in log if r.status is None or (r.status >= 400 and r.status != 429))
    others = [r for r in log if r.method != "PUT" and r not in gets]
    other_paths = sorted({f"{r.method} {r.path.split('?', 1)[0].rsplit('/v1', 1)[-1]}"
                          for r in others})
    span = (max(r.ended for r in log) - min(r.started for r in log)) if log else 0.0
    allowed = limit / window
    put_rate = len(ok_puts) / span if span > 0 else 0.0
    fraction = put_rate / allowed
    return [
        (f"{title}: requests", f"{len(puts):,} PUT, {len(gets)} GET of one deal, {len(others)} "
         f"other{' (' + ', '.join(other_paths) + ')' if others else ''}, in {span:.1f} s "
         f"(oppcli ran {wall:.1f} s)", "", None),
        (f"{title}: PUT rate / the limit's rate",
         f"{put_rate:.2f}/s of {allowed:.2f}/s = {fraction:.2f}", f">= {TARGET_FRACTION}",
         fraction >= TARGET_FRACTION),
        (f"{title}: PUTs answered", f"{len(ok_puts):,} for {count:,} records", f"= {count}",
         len(ok_puts) == count),
        (f"{title}: GETs of single opportunities", str(len(gets)), "0", not gets),
        (f"{title}: 429 answers", str(too_many), "-", None),
        (f"{title}: failed requests", str(failed), "0", failed == 0),
        (f"{title}: exit status, 429s on stderr", f"{code}, {len(surfaced)}", "0, 0",
         code == 0 and not surfaced),
        (f"{title}: every record tagged", f"{tagged:,} of {count:,} ({len(printed):,} printed)",
         "yes", tagged == count),
    ]


RUNS = ("limit", "latency", "concurrency1", "names", "bulk")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--bulk-records", type=int, default=2_000,
                        help="records the bulk update changes (default 2,000)")
    parser.add_argument("--latency", type=float, default=0.3, help="seconds per answer")
    parser.add_argument("--only", default=",".join(RUNS), metavar="RUN,RUN",
                        help=f"the runs to make, comma-separated: {', '.join(RUNS)} (default all)")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    if not only or only - set(RUNS):
        parser.error(f"--only takes some of {', '.join(RUNS)}, not {args.only!r}")
    binds_limit, binds_latency = (30, 10.0), (60, 10.0)
    if args.smoke:
        args.records, args.bulk_records, args.latency = 8_000, 200, 0.01
        binds_limit, binds_latency = (20, 1.0), (40, 1.0)
    records: list[dict[str, Any]] = []
    if only & {"limit", "latency", "concurrency1", "names"}:
        print(f"building {args.records:,} records...", file=sys.stderr)
        records = sample_records(args.records)
    rows: list[Row] = []
    try:
        if "limit" in only:
            rows += export_run("limit binds", records, args.latency, *binds_limit, None, True)
        if "latency" in only:
            rows += export_run("latency binds", records, args.latency, *binds_latency, None,
                               True)
        if "concurrency1" in only and not args.smoke:
            rows += export_run("latency binds, concurrency 1", records, args.latency,
                               *binds_latency, 1, False)
        if "names" in only:
            rows += name_search_run(records)
        if "bulk" in only:
            rows += bulk_update_run("bulk update, latency binds", args.bulk_records,
                                    args.latency, *binds_latency)
    except Broken as exc:
        print(f"bench_copper: FAILURE: {exc}", file=sys.stderr)
        return 3
    sizes = ([f"{args.records:,} records"] if records else []) + \
        ([f"{args.bulk_records:,} for the bulk update"] if "bulk" in only else [])
    print(f"\nCopper benchmark: {', '.join(sizes)}, latency {args.latency:g} s"
          f"{' (smoke)' if args.smoke else ''}; limits "
          f"{binds_limit[0]}/{binds_limit[1]:g} s and {binds_latency[0]}/{binds_latency[1]:g} s; "
          f"runs: {', '.join(r for r in RUNS if r in only)}")
    width = max(len(r[0]) for r in rows)
    fw = max(len(r[1]) for r in rows)
    print(f"  {'measure':<{width}}  {'figure':<{fw}}  {'target':<8} result")
    for name, figure, target, ok in rows:
        verdict = "info" if ok is None else ("PASS" if ok else "FAIL")
        print(f"  {name:<{width}}  {figure:<{fw}}  {target or '-':<8} {verdict}")
    if args.check and not all(ok for *_, ok in rows if ok is not None):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
