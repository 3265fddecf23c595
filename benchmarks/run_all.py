#!/usr/bin/env python3
"""Every oppcli benchmark, one after the other, with one command.

    python benchmarks/run_all.py [--smoke] [--check] [--sizes 1000,10000,100000,1000000]

Runs bench_startup.py (start-up against `import typer`), bench_store.py (the local store at
each size against jq on the same file), bench_bulk.py (bulk update and delete on a
100,000-record store against the single-deal commands), bench_report.py (`report --by stage
--by assignee` on a 100,000-record store against jq computing the same groups, and the
reports' peak memory) and bench_copper.py (exports, a name search and a bulk update against
the Copper test server), each printing its own table of figures next to their targets (the
tables of docs/performance.md come from this). --sizes is passed to bench_store.py (default:
all four sizes; the million-record store takes about half an hour on two cores); --smoke and
--check are passed to all five. bench_report.py's memory measure at 1,000,000 records is not
run from here: `python benchmarks/bench_report.py --million`.

Exit status: 0 when every benchmark ran (whatever the figures, unless --check), else the first
failing benchmark's status.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--smoke", action="store_true", help="each benchmark's quick check")
    p.add_argument("--check", action="store_true", help="fail when a target is missed")
    p.add_argument("--sizes", help="store sizes for bench_store.py, comma-separated")
    args = p.parse_args(argv)
    common = [flag for flag, on in (("--smoke", args.smoke), ("--check", args.check)) if on]
    runs = [["bench_startup.py", *common],
            ["bench_store.py", *common, *(["--sizes", args.sizes] if args.sizes else [])],
            ["bench_bulk.py", *common],
            ["bench_report.py", *common],
            ["bench_copper.py", *common]]
    status = 0
    for script, *extra in runs:
        print(f"==> {script} {' '.join(extra)}".rstrip(), flush=True)
        started = time.monotonic()
        code = subprocess.run([sys.executable, str(HERE / script), *extra]).returncode
        print(f"==> {script}: exit {code} after {time.monotonic() - started:.0f} s\n", flush=True)
        status = status or code
    return status


if __name__ == "__main__":
    sys.exit(main())
