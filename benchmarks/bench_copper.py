#!/usr/bin/env python3
"""Copper paging benchmark: how close to the rate limit does a long fetch run?

    python benchmarks/bench_copper.py [--records 20000] [--latency 0.3] [--rate-limit 30/10]
                                      [--smoke] [--check]

Starts the Copper-speaking test server (tests/fakecopper.py) on 127.0.0.1 with --records
opportunities, --latency seconds added to every answer and a rolling --rate-limit N/SECONDS
that answers 429 past it, then runs the installed `oppcli list -o jsonl` against it with
oppcli's own limit set to the same N/SECONDS. Everything is measured from the server's request
log, so Python's start-up is left out:

- requests per second, and that rate as a fraction of the limit's N/SECONDS (target: at
  least 0.9; issue 6 asks for 90% of the rate the limit allows);
- records per second;
- 429s answered (target 0), failed requests, and whether every record came exactly once.

The default limit, 30 per 10 s, is Copper's average rate (180 a minute, 3 a second) in a shorter
window, so that a run spans several windows in about half a minute; --rate-limit 180/60 is
Copper's own. With 300 ms of latency a single connection can make at most about 3.3 requests a
second, so latency and the limit are both close to binding.

Prints a table (measure, figure, target, PASS/FAIL). Exit status: 0 whatever the figures;
1 with --check when a target is missed; 3 when records are missing, duplicated or the command
fails.

--smoke: 8,000 records (40 pages), 10 ms latency and 20 requests a second, to check in a few seconds that
the script works; its figures say nothing about the targets.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fakecopper import FakeCopper  # noqa: E402
from oppcli.sample import SAMPLE_LOOKUPS, sample_records  # noqa: E402

TARGET_FRACTION = 0.9
API_KEY = "bench-key-0123456789"
EMAIL = "ada.park@example.com"


def oppcli_exe() -> str:
    here = Path(sys.executable).parent / "oppcli"
    return str(here) if here.exists() else (shutil.which("oppcli") or "oppcli")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--latency", type=float, default=0.3, help="seconds per answer")
    parser.add_argument("--rate-limit", default="30/10", help="N/SECONDS, rolling")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if args.smoke:
        args.records, args.latency, args.rate_limit = 8_000, 0.01, "20/1"
    n_text, _, secs_text = args.rate_limit.partition("/")
    limit, window = int(n_text), float(secs_text or 60)

    print(f"building a test server with {args.records:,} records...", file=sys.stderr)
    records = sample_records(args.records)
    server = FakeCopper(SAMPLE_LOOKUPS, records, api_key=API_KEY, user_email=EMAIL,
                        latency=args.latency)
    server.set_rate_limit(limit, window)
    with server, tempfile.TemporaryDirectory(prefix="oppcli-bench-") as tmp:
        env = dict(os.environ, OPPCLI_BACKEND="copper", OPPCLI_COPPER_URL=server.url,
                   COPPER_API_KEY=API_KEY, COPPER_USER_EMAIL=EMAIL,
                   OPPCLI_COPPER_RATE_LIMIT=str(limit), OPPCLI_COPPER_RATE_WINDOW=str(window),
                   OPPCLI_COPPER_TIMEOUT="30", OPPCLI_CACHE_DIR=str(Path(tmp) / "cache"),
                   OPPCLI_CONFIG_DIR=str(Path(tmp) / "config"))
        out = Path(tmp) / "out.jsonl"
        print(f"fetching through a limit of {limit} per {window:g} s with {args.latency:g} s "
              "latency...", file=sys.stderr)
        started = time.monotonic()
        with out.open("wb") as fh:
            proc = subprocess.run([oppcli_exe(), "list", "-o", "jsonl", "--fields", "id"],
                                  env=env, stdout=fh, stderr=subprocess.PIPE,
                                  stdin=subprocess.DEVNULL)
        wall = time.monotonic() - started
        if proc.returncode != 0:
            print(f"oppcli failed ({proc.returncode}): {proc.stderr.decode()}", file=sys.stderr)
            return 3
        ids = [orjson.loads(line)["id"] for line in out.read_bytes().splitlines()]
        log = list(server.requests)

    expected = {r["id"] for r in records}
    exact = len(ids) == len(expected) and set(ids) == expected
    too_many = sum(1 for r in log if r.status == 429)
    failed = sum(1 for r in log if r.status is None or (r.status >= 400 and r.status != 429))
    first, last = min(r.started for r in log), max(r.ended for r in log)
    span = last - first
    req_rate = len(log) / span if span > 0 else float("inf")
    allowed = limit / window
    fraction = req_rate / allowed
    rec_rate = len(ids) / span if span > 0 else float("inf")
    rows = [
        ("requests", f"{len(log)} in {span:.1f} s (oppcli ran {wall:.1f} s)", "", None),
        ("request rate / the limit's rate", f"{req_rate:.2f}/s of {allowed:.2f}/s = {fraction:.2f}",
         f">= {TARGET_FRACTION}", fraction >= TARGET_FRACTION),
        ("records per second", f"{rec_rate:,.0f}", "", None),
        ("429 answers", str(too_many), "0", too_many == 0),
        ("failed requests", str(failed), "0", failed == 0),
        ("every record exactly once", f"{len(ids):,} of {len(expected):,}", "yes", exact),
    ]
    print(f"\nCopper paging benchmark: {args.records:,} records, latency {args.latency:g} s, "
          f"limit {limit}/{window:g} s{' (smoke)' if args.smoke else ''}")
    width = max(len(r[0]) for r in rows)
    for name, figure, target, ok in rows:
        verdict = "" if ok is None else ("PASS" if ok else "FAIL")
        print(f"  {name:<{width}}  {figure:<44} {target:<8} {verdict}")
    if not exact:
        return 3
    if args.check and not all(ok for *_, ok in rows if ok is not None):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
