#!/usr/bin/env python3
"""Start-up benchmark: how long oppcli takes before it does anything, against `import typer`.

    python benchmarks/bench_startup.py [--rounds 30] [--smoke] [--check]

A CLI that cron calls thousands of times a day and people call hundreds of times must start
instantly. The baseline is the least any Typer CLI can cost: `python -c "import typer"` with the
same interpreter oppcli runs on. Measured in this same job, alternately (shared machines are
noisy, so only ratios are judged, never absolute times):

- `oppcli --version`            target: at most 1.3x the baseline
- `oppcli --help`               target: at most 1.3x the baseline
- `oppcli list -o json` on a 100-record local store          target: at most 1.6x

Each round runs the baseline and every command once, in an order rotated each round; the
figure is the ratio of the medians over --rounds rounds (after two untimed warm-up rounds).
Before timing, each command's output is checked (the version string, the help's command list,
100 records of JSON).

oppcli runs with its bytecode cached in a private prefix even where PYTHONDONTWRITEBYTECODE is
set, as an installed CLI would (--no-bytecode-cache: as the environment says).

Prints a table (measure, figure, target, PASS/FAIL). Exit status: 0 whatever the figures (the
benchmark reports, it does not gate); 1 with --check when a target is missed; 3 when a command
fails or prints the wrong thing; 4 when the oppcli console script is missing.

--smoke: 3 rounds, to check in a few seconds that the script works; its figures say little.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_store import Broken, Report, clean_env, find_oppcli  # noqa: E402

from oppcli.backends.local import LocalStore  # noqa: E402
from oppcli.domain.sample import SAMPLE_LOOKUPS  # noqa: E402

TARGET_VERSION = 1.3
TARGET_HELP = 1.3
TARGET_LIST = 1.6
SMALL = 100


def wall(cmd: Sequence[str], env: dict[str, str]) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    proc = subprocess.run(list(cmd), stdin=subprocess.DEVNULL, capture_output=True, env=env)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise Broken(f"`{' '.join(cmd)}` exited {proc.returncode}: "
                     f"{proc.stderr.decode(errors='replace').strip()}")
    return elapsed, proc.stdout


def small_store(path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_store import lookups, make_records

    LocalStore.create_store(path, lookups=lookups(), date_order="MDY",
                            records=make_records(SMALL, dict(SAMPLE_LOOKUPS)))


def bench(args: argparse.Namespace) -> int:
    oppcli = find_oppcli()
    if not oppcli:
        print("bench_startup: needs the oppcli console script", file=sys.stderr)
        return 4
    # The interpreter the console script runs on (its shebang), so the baseline pays the same
    # interpreter start-up and site-packages.
    with open(oppcli, "rb") as f:
        first = f.readline().decode().strip()
    python = first[2:].strip() if first.startswith("#!") else sys.executable
    with tempfile.TemporaryDirectory(prefix="oppcli-startup-") as tmpdir:
        tmp = Path(tmpdir)
        env = clean_env(tmp, bytecode=not args.no_bytecode_cache)
        store = tmp / "store"
        small_store(store)
        cases: dict[str, list[str]] = {
            "baseline": [python, "-c", "import typer"],
            "version": [oppcli, "--version"],
            "help": [oppcli, "--help"],
            "list": [oppcli, "--store", str(store), "list", "-o", "json"],
        }
        # What each must print: a fast wrong answer is not a result.
        _, out = wall(cases["version"], env)
        if not out.decode().startswith("oppcli "):
            raise Broken(f"--version printed {out!r}")
        _, out = wall(cases["help"], env)
        for command in ("list", "search", "show", "create", "update", "delete", "export"):
            if command not in out.decode():
                raise Broken(f"--help does not list {command}")
        _, out = wall(cases["list"], env)
        if len(orjson.loads(out)) != SMALL:
            raise Broken(f"list -o json did not print {SMALL} records")

        times: dict[str, list[float]] = {k: [] for k in cases}
        keys = list(cases)
        for i in range(args.rounds + 2):  # two warm-up rounds fill the bytecode and page caches
            rot = keys[i % len(keys):] + keys[:i % len(keys)]
            for k in rot:
                t, _ = wall(cases[k], env)
                if i >= 2:
                    times[k].append(t)
        med = {k: statistics.median(v) for k, v in times.items()}
        base = med["baseline"]
        report = Report()
        for key, label, target in (("version", "oppcli --version", TARGET_VERSION),
                                   ("help", "oppcli --help", TARGET_HELP),
                                   ("list", f"oppcli list -o json ({SMALL} records)", TARGET_LIST)):
            ratio = med[key] / base
            report.add(f"{label} / import typer", f"{ratio:.2f}x", f"<= {target}x",
                       ratio <= target)
            report.notes.append(f"  {label}: median {med[key] * 1000:.1f} ms "
                                f"(min {min(times[key]) * 1000:.1f} ms)")
        report.notes.append(f"  baseline `{python} -c 'import typer'`: median {base * 1000:.1f} ms "
                            f"(min {min(times['baseline']) * 1000:.1f} ms)")
        report.notes.append(f"  {args.rounds} rounds; bytecode cache "
                            f"{'off' if args.no_bytecode_cache else 'on'}")
    print()
    report.print("oppcli start-up benchmark: median wall time as a ratio of `import typer`")
    missed = [r.measure for r in report.rows if not r.ok]
    if args.check and missed:
        print(f"missed: {'; '.join(missed)}", file=sys.stderr)
        return 1
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--rounds", type=int, default=30, help="timed rounds (default 30)")
    p.add_argument("--smoke", action="store_true", help="3 rounds: checks the script works")
    p.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    p.add_argument("--no-bytecode-cache", action="store_true",
                   help="run oppcli as the environment says (e.g. PYTHONDONTWRITEBYTECODE)")
    args = p.parse_args(argv)
    if args.smoke:
        args.rounds = 3
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return bench(args)
    except Broken as exc:
        print(f"bench_startup: FAILURE: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
