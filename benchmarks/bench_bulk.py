#!/usr/bin/env python3
"""Bulk update and delete on the local store, against the single-deal command on the same store.

    python benchmarks/bench_bulk.py [--records 100000] [--count N] [--repeat 3] [--smoke]
                                    [--check] [--no-bytecode-cache]

The targets (issue 16: "on 100,000 deals, changing 10,000 costs at most 2x a single-deal
`update` on the same store, and peak memory stays under 150 MB"):

    at 100,000 records    each bulk command below: at most 2x its single-deal baseline;
                          peak memory of each bulk command: under 150 MB

The store is bench_store.py's (the same generator, seed and writer: build()), so the figures
sit next to bench_store's. Nothing is judged on absolute times: every bulk figure is a ratio
against its baseline run in the same job, alternately (one untimed warm-up pair, then --repeat
timed pairs, the order of the pair swapped every round), judged on the ratio of the medians.

    update -      oppcli update - --monetary-value X --yes -o json, fed --count ids on stdin
                  (one per line, one deal in every records/count, spread through the store);
                  X new each run, so every run changes all of them
                  baseline: oppcli update ID --monetary-value X -o json (X new each run)
    update where  oppcli update --where-status Open --where-assignee "Ada Park"
                  --add-tag benchN --yes -o jsonl (search's filters, spelled --where-X: about
                  one deal in ten of the generated store; the count is printed)
                  baseline: the same single update
    delete -      oppcli delete - --yes -o json, fed --count ids on stdin (as update -)
                  baseline: oppcli delete ID --yes -o json

Before every run of a write (bulk or baseline) the store directory is put back as it was built
(a copy of it, its meta.json stamped for the copied data file, as oppcli leaves it) and the
audit log emptied, so every run changes the same deals of the same store and appends to the
same log.

A fast wrong answer is not a result, so every answer is checked, or the benchmark stops
(exit 3): the deals printed must be exactly the deals meant, with their new value or tag; in
the store, exactly those deals must have changed (the where-selection is evaluated here, on
the generated records, as the referee) and a bulk delete must remove exactly its ids.

Peak resident memory (/usr/bin/time -f %M, else a launcher reading RUSAGE_CHILDREN in a fresh
process) of one more run of each bulk command, judged against 150 MB.

Output: one table (measure, figure, target, PASS/FAIL), then the median wall times, CPU-time
ratios and peak memory. Exit status: 0 whatever the figures; 1 with --check when a target is
missed; 3 when an answer is wrong or a command fails; 4 when oppcli is missing.

--smoke: 2,000 records (200 changed), one timed run: checks in a few seconds that the script
works and the answers agree; its figures say nothing about the targets.

Time: about 1.5 minutes at 100,000 records on 2 CPUs (and ~200 MB of temporary disk).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from bench_store import (
    DATA,
    LAUNCHER,
    META,
    TARGET_PEAK_MB,
    TARGET_RECORDS,
    Broken,
    Record,
    Report,
    Run,
    Search,
    Store,
    _stamp,
    atomic_write,
    build,
    clean_env,
    find_oppcli,
    gnu_time,
    lines_of,
    lookups,
    parse_size,
    print_grid,
    scan_for,
    user_id,
)
from bench_store import Result as StoreResult  # noqa: E402

TARGET_BULK_RATIO = 2.0  # a bulk command against one single-deal command, same store
SMOKE_RECORDS = 2_000
SHARE = 10  # the bulk commands change one deal in SHARE (10,000 of 100,000)
SELECTION = ["--status", "Open", "--assignee", "Ada Park"]  # search's spelling


# ---- running with stdin ----------------------------------------------------------------------
def run_from(cmd: Sequence[str], stdin: Path | None, out: Path, env: dict[str, str]) -> Run:
    """bench_store.run with stdin from a file: one process, its wall time and its own CPU."""
    with open(stdin or os.devnull, "rb") as inp, open(out, "wb") as stdout:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdin=inp, stdout=stdout, stderr=subprocess.PIPE,
                                env=env)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
        wall = time.perf_counter() - t0
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise Broken(f"`{' '.join(cmd)}`{f' < {stdin.name}' if stdin else ''} exited {code}: "
                     f"{err.strip()[-2000:]}")
    return Run(wall, usage.ru_utime + usage.ru_stime)


def peak_from(cmd: Sequence[str], stdin: Path | None, out: Path, env: dict[str, str], tmp: Path,
              time_exe: str | None) -> float:
    """bench_store.peak_mb with stdin from a file: the peak RSS, in MB, of one run of `cmd` in
    a fresh process (/usr/bin/time, else bench_store's launcher)."""
    report = tmp / "peak.txt"
    if time_exe:
        wrapped = [time_exe, "-f", "%M", "-o", str(report), *cmd]
    else:
        wrapped = [sys.executable, "-S", "-c", LAUNCHER, *cmd]
    with open(stdin or os.devnull, "rb") as inp, open(out, "wb") as stdout:
        proc = subprocess.run(wrapped, stdin=inp, stdout=stdout, stderr=subprocess.PIPE, env=env)
    if proc.returncode != 0:
        raise Broken(f"`{' '.join(cmd)}` exited {proc.returncode}: "
                     f"{proc.stderr.decode(errors='replace').strip()[-2000:]}")
    text = report.read_text() if time_exe else proc.stderr.decode()
    return int(text.strip().splitlines()[-1]) / 1024  # KB on Linux


# ---- reading answers -------------------------------------------------------------------------
def records_of(path: Path) -> Iterator[Record]:
    """The records of a JSON Lines file (the store, or -o jsonl)."""
    for line in lines_of(path):
        if line.strip():
            yield orjson.loads(line)


def printed(path: Path) -> list[Record]:
    """What a command printed with -o json (an array, or one object) or -o jsonl."""
    raw = path.read_bytes()
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return [orjson.loads(x) for x in raw.splitlines() if x.strip()]
    if isinstance(doc, dict):
        return [doc]
    if isinstance(doc, list):
        return doc
    raise Broken(f"{path.name}: printed {raw[:200]!r}, not records")


def tags_of(rec: Record) -> list[str]:
    return [str(t).casefold() for t in rec.get("tags") or ()]


def after(row: Record, name: str) -> Any:
    """A field's new value in what a bulk command printed for one deal: a report row
    ({"id", "name", "result", "changes": {field: [before, after]}}) or a whole record."""
    if isinstance(row.get("changes"), dict):
        if row.get("result", "changed") != "changed":
            return None
        pair = row["changes"].get(name)
        return pair[1] if isinstance(pair, list) and len(pair) == 2 else None
    return row.get(name)


def deleted(row: Record) -> bool:
    """A bulk delete's row says the deal is gone ({"id", "is_deleted": true}, or a report
    row with "result": "deleted")."""
    return row.get("is_deleted") is True or row.get("result") == "deleted"


def ids_text(ids: Sequence[int]) -> str:
    shown = ", ".join(map(str, sorted(ids)[:8]))
    return f"{shown}{', ...' if len(ids) > 8 else ''} ({len(ids):,})"


# ---- the measures ----------------------------------------------------------------------------
@dataclass
class Step:
    side: str  # "bulk" or "base"
    cmd: list[str]
    out: Path
    check: Callable[[], None]
    stdin: Path | None = None


@dataclass
class Result(StoreResult):
    """bench_store's Result (the bulk command's runs as `opp`, the baseline's as `base`), with
    how many deals the bulk command changed (checked in the store)."""

    changed: int = 0


@dataclass(frozen=True)
class Measure:
    key: str
    label: str
    baseline: str


MEASURES = [Measure("update -", "update - (ids on stdin)", "update ID"),
            Measure("update where", "update --where-... (filters)", "update ID"),
            Measure("delete -", "delete - (ids on stdin)", "delete ID")]


@dataclass
class Bulk:
    oppcli: str
    env: dict[str, str]
    tmp: Path
    time_exe: str | None
    repeat: int
    pristine: Store  # as built; never written
    store: Store  # the working copy every command runs on
    ids: list[int]  # the deals `update -` and `delete -` change
    selected: set[int]  # the deals the where-selection must change (the referee)
    commands: dict[str, tuple[str, str]] = field(default_factory=dict)  # for the notes

    def say(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def opp(self, *args: str) -> list[str]:
        return [self.oppcli, "--store", str(self.store.path), *args]

    @property
    def audit(self) -> Path:
        return Path(self.env["OPPCLI_CONFIG_DIR"]) / "audit.jsonl"

    def restore(self) -> None:
        """The working store as built, stamped as oppcli leaves it, on disk (fsynced, so no
        write-back of the copy lands in a timed run); the audit log emptied."""
        shutil.rmtree(self.store.path, ignore_errors=True)
        shutil.copytree(self.pristine.path, self.store.path)
        data = self.store.data
        fd = os.open(data, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        meta = orjson.loads((self.store.path / META).read_bytes())
        meta["data_stamp"] = _stamp(os.stat(data))
        atomic_write(self.store.path / META, orjson.dumps(meta, option=orjson.OPT_INDENT_2))
        self.audit.unlink(missing_ok=True)

    def alternate(self, steps: Callable[[int], Sequence[Step]], repeat: int | None = None
                  ) -> tuple[list[Run], list[Run]]:
        """Round 0 warms the page cache, the bytecode cache and both commands, untimed; then
        `repeat` timed rounds. Every step runs on a freshly restored store, its answer checked
        before the next step."""
        bulk: list[Run] = []
        base: list[Run] = []
        for i in range((self.repeat if repeat is None else repeat) + 1):
            for step in steps(i):
                self.restore()
                r = run_from(step.cmd, step.stdin, step.out, self.env)
                step.check()
                if i:
                    (bulk if step.side == "bulk" else base).append(r)
        return bulk, base

    def peak(self, step: Step) -> float:
        self.restore()
        mb = peak_from(step.cmd, step.stdin, step.out, self.env, self.tmp, self.time_exe)
        step.check()
        return mb

    # ---- baselines ----
    @property
    def one_id(self) -> int:  # a deal three fifths into the file, as bench_store's update
        return self.store.first_id + (3 * self.store.n) // 5

    def single_update(self, value: int) -> Step:
        opp_id, out = self.one_id, self.tmp / "single-update.json"

        def check() -> None:
            got = printed(out)
            if len(got) != 1 or got[0].get("id") != opp_id or \
                    got[0].get("monetary_value") != value:
                raise Broken(f"update {opp_id} printed {str(got)[:200]}")
            _, stored = scan_for(self.store.data, opp_id)
            if stored is None or stored.get("monetary_value") != value:
                raise Broken(f"after update {opp_id}, the store holds {str(stored)[:200]}")

        return Step("base", self.opp("update", str(opp_id), "--monetary-value", str(value),
                                     "-o", "json"), out, check)

    def single_delete(self) -> Step:
        opp_id, out = self.one_id, self.tmp / "single-delete.json"

        def check() -> None:
            got = printed(out)
            if got != [{"id": opp_id, "is_deleted": True}]:
                raise Broken(f"delete {opp_id} printed {got!r:.200}")
            lines, stored = scan_for(self.store.data, opp_id)
            if stored is not None or lines != self.store.n - 1:
                raise Broken(f"after delete {opp_id} the store has {lines:,} lines and the "
                             f"record {'still' if stored else 'gone'}")

        return Step("base", self.opp("delete", str(opp_id), "--yes", "-o", "json"), out, check)

    # ---- the bulk commands ----
    def ids_file(self) -> Path:
        path = self.tmp / "ids.txt"
        if not path.exists():
            path.write_text("".join(f"{i}\n" for i in self.ids))
        return path

    def changed_in_store(self, changed: Callable[[Record], bool]) -> tuple[int, set[int]]:
        """(lines, ids of the records for which `changed` holds) in the working store."""
        lines, hits = 0, set()
        for rec in records_of(self.store.data):
            lines += 1
            if changed(rec):
                hits.add(rec["id"])
        return lines, hits

    def expect(self, what: str, printed_ids: list[int], stored: set[int], lines: int,
               want: set[int], want_lines: int) -> None:
        if len(printed_ids) != len(set(printed_ids)) or set(printed_ids) != want:
            raise Broken(f"{what} printed {len(printed_ids):,} deals ({len(set(printed_ids)):,} "
                         f"distinct), expected {len(want):,}: missing "
                         f"{ids_text(sorted(want - set(printed_ids)))}, extra "
                         f"{ids_text(sorted(set(printed_ids) - want))}")
        if stored != want or lines != want_lines:
            raise Broken(f"after {what} the store has {lines:,} lines (expected "
                         f"{want_lines:,}); changed there: missing "
                         f"{ids_text(sorted(want - stored))}, extra "
                         f"{ids_text(sorted(stored - want))}")

    def update_stdin(self, value: int) -> Step:
        out, want = self.tmp / "update-stdin.json", set(self.ids)

        def check() -> None:
            got = printed(out)
            wrong = [r for r in got if after(r, "monetary_value") != value]
            if wrong:
                raise Broken(f"update - printed {len(wrong):,} deals without the new value "
                             f"{value}: {str(wrong[0])[:200]}")
            lines, stored = self.changed_in_store(lambda r: r.get("monetary_value") == value)
            self.expect("update -", [r.get("id") for r in got], stored, lines, want,
                        self.store.n)

        return Step("bulk", self.opp("update", "-", "--monetary-value", str(value), "--yes",
                                     "-o", "json"), out, check, self.ids_file())

    def where_args(self) -> list[str]:
        """search's filters in update's spelling: --X becomes --where-X."""
        return [f"--where-{a[2:]}" if a.startswith("--") else a for a in SELECTION]

    def update_where(self, tag: str) -> Step:
        out, want = self.tmp / "update-where.jsonl", self.selected

        def check() -> None:
            got = printed(out)
            wrong = [r for r in got if tag not in [str(t).casefold()
                                                   for t in after(r, "tags") or ()]]
            if wrong:
                raise Broken(f"update --where printed {len(wrong):,} deals without the tag "
                             f"{tag}: {str(wrong[0])[:200]}")
            lines, stored = self.changed_in_store(lambda r: tag in tags_of(r))
            self.expect("update --where", [r.get("id") for r in got], stored, lines, want,
                        self.store.n)

        return Step("bulk", self.opp("update", *self.where_args(), "--add-tag", tag, "--yes",
                                     "-o", "jsonl"), out, check)

    def delete_stdin(self) -> Step:
        out, want = self.tmp / "delete-stdin.json", set(self.ids)

        def check() -> None:
            got = printed(out)
            if not all(deleted(r) for r in got):
                raise Broken(f"delete - printed {str(got)[:200]}")
            lines, present = self.changed_in_store(lambda r: r["id"] in want)
            if present:
                raise Broken(f"after delete - the store still holds {ids_text(sorted(present))}")
            self.expect("delete -", [r.get("id") for r in got], want, lines, want,
                        self.store.n - len(want))

        return Step("bulk", self.opp("delete", "-", "--yes", "-o", "json"), out, check,
                    self.ids_file())

    # ---- one measure each ----
    def measure(self, m: Measure) -> Result:
        def value(i: int) -> int:
            return 700_000 + i  # new each run (the store is restored anyway)

        def pair(i: int) -> list[Step]:
            if m.key == "update -":
                steps = [self.single_update(value(i)), self.update_stdin(value(i) + 50_000)]
            elif m.key == "update where":
                steps = [self.single_update(value(i)), self.update_where(f"bench{i}")]
            else:
                steps = [self.single_delete(), self.delete_stdin()]
            return steps if i % 2 == 0 else steps[::-1]

        bulk, base = self.alternate(pair)
        last = pair(self.repeat + 1)
        peak = self.peak(next(s for s in last if s.side == "bulk"))
        changed = len(self.selected) if m.key == "update where" else len(self.ids)
        return Result(bulk, base, peak, changed=changed)

    def run(self) -> dict[str, Result]:
        where = " ".join(f'"{a}"' if " " in a else a for a in self.where_args())
        self.commands = {
            "update -": ("oppcli update - --monetary-value X --yes -o json  < ids (one per line)",
                         "oppcli update ID --monetary-value X -o json"),
            "update where": (f"oppcli update {where} --add-tag benchN --yes -o jsonl",
                             "oppcli update ID --monetary-value X -o json"),
            "delete -": ("oppcli delete - --yes -o json  < ids (one per line)",
                         "oppcli delete ID --yes -o json"),
        }
        results = {}
        for m in MEASURES:
            self.say(f"[{self.store.n:,}] {m.label} ...")
            res = results[m.key] = self.measure(m)
            self.say(f"[{self.store.n:,}] {m.label}: {res.opp_ms:.0f} ms, {m.baseline} "
                     f"{res.base_ms:.0f} ms, ratio {res.ratio:.3f}x; peak {res.peak:.1f} MB")
        return results


# ---- the benchmark ---------------------------------------------------------------------------
def spread(st: Store, count: int) -> list[int]:
    """`count` ids spread evenly through the store."""
    step = st.n / count
    return [st.first_id + int(k * step + step / 2) for k in range(count)]


def bench(args: argparse.Namespace) -> int:
    oppcli = find_oppcli()
    if not oppcli:
        print("bench_bulk: needs the oppcli console script", file=sys.stderr)
        return 4
    lk = lookups()
    ada = user_id(lk, "Ada Park")

    def selected(r: Record) -> bool:  # SELECTION, evaluated here as the referee
        return bool(r["status"] == "Open" and r["assignee_id"] == ada)

    plan = [Search("where", "status Open, assignee Ada Park", SELECTION, "", selected)]

    with tempfile.TemporaryDirectory(prefix="oppcli-bench-") as tmpdir:
        tmp = Path(tmpdir)
        env = clean_env(tmp, bytecode=not args.no_bytecode_cache)
        time_exe = gnu_time()
        opp_version = subprocess.run([oppcli, "--version"], capture_output=True, text=True,
                                     env=env).stdout.strip()
        print(f"{opp_version}, Python {platform.python_version()}, {os.cpu_count()} CPUs; "
              f"bytecode cache {'off' if args.no_bytecode_cache else 'on'}; peak memory by "
              f"{time_exe + ' -f %M' if time_exe else 'a launcher (RUSAGE_CHILDREN)'}",
              flush=True)
        t0 = time.perf_counter()
        print(f"building a store of {args.records:,} records ...", file=sys.stderr, flush=True)
        pristine = build(tmp / "pristine", args.records, lk, plan,
                         lambda text: print(text, file=sys.stderr, flush=True))
        file_mb = pristine.data.stat().st_size / 1e6
        print(f"built a store of {args.records:,} records in {time.perf_counter() - t0:.1f}s "
              f"({DATA}: {file_mb:.1f} MB)", flush=True)
        work = Store(pristine.n, tmp / "store", pristine.expected)
        b = Bulk(oppcli, env, tmp, time_exe, args.repeat, pristine, work,
                 spread(pristine, args.count), pristine.expected["where"])
        if not b.selected:
            raise Broken("the where-selection matches no deal of the generated store")
        results = b.run()

    n = args.records
    report = Report()
    for m in MEASURES:
        res = results[m.key]
        report.add(f"{m.label}, {res.changed:,} deals: time / {m.baseline}",
                   f"{res.ratio:.3f}x", f"<= {TARGET_BULK_RATIO:g}x",
                   res.ratio <= TARGET_BULK_RATIO)
        report.add(f"{m.label}, {res.changed:,} deals: peak memory of oppcli",
                   f"{res.peak:.1f} MB", f"< {TARGET_PEAK_MB:g} MB", res.peak < TARGET_PEAK_MB)
    report.notes.append(f"  deals changed (checked in the store): update - {len(b.ids):,} "
                        f"(one in {n / len(b.ids):g}, spread through the store); update "
                        f"--where {len(b.selected):,} ({plan[0].label}); delete - "
                        f"{len(b.ids):,}")
    report.notes.append("  commands (oppcli runs with --store S, on a fresh copy of the store "
                        "each run):")
    for key, (bulk_cmd, base_cmd) in b.commands.items():
        report.notes.append(f"    {key:<12} {bulk_cmd}")
        report.notes.append(f"    {'':<12} baseline: {base_cmd}")
    if n != TARGET_RECORDS:
        report.notes.append(f"  note: the targets are defined at {TARGET_RECORDS:,} records; "
                            f"judged here at {n:,}, as an indication only")
    print()
    report.print(f"oppcli bulk benchmark: {n:,} records ({file_mb:.1f} MB); {args.repeat} "
                 "timed run(s) per measure, ratios of medians")
    print()
    print_grid("median wall time, ms: bulk / single-deal baseline",
               [(m.label, [f"{results[m.key].opp_ms:.0f} / {results[m.key].base_ms:.0f}"])
                for m in MEASURES], [n])
    print()
    print_grid("CPU time ratio bulk/baseline (user+sys)",
               [(m.label, [f"{results[m.key].cpu_ratio:.3f}x"]) for m in MEASURES], [n])
    print()
    print_grid("peak memory of oppcli, MB",
               [(m.label, [f"{results[m.key].peak:.1f}"]) for m in MEASURES], [n])
    missed = [r.measure.strip() for r in report.rows if r.ok is False]
    if args.check and missed:
        print(f"missed: {'; '.join(missed)}", file=sys.stderr)
        return 1
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--records", default=str(TARGET_RECORDS), metavar="N",
                   help=f"store size (k and M allowed; default {TARGET_RECORDS:,})")
    p.add_argument("--count", type=int, default=0, metavar="N",
                   help=f"deals changed by update - and delete - (default: one in {SHARE})")
    p.add_argument("--repeat", type=int, default=3,
                   help="timed runs per measure, after one warm-up (default 3)")
    p.add_argument("--smoke", action="store_true",
                   help=f"{SMOKE_RECORDS:,} records, 1 repeat: checks the script works and the "
                        "answers agree")
    p.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    p.add_argument("--no-bytecode-cache", action="store_true",
                   help="run oppcli as the environment says (e.g. PYTHONDONTWRITEBYTECODE) "
                        "instead of with a private bytecode cache")
    args = p.parse_args(argv)
    try:
        args.records = parse_size(args.records)
    except ValueError:
        p.error(f"--records takes a number, not {args.records!r}")
    if args.smoke:
        args.records, args.repeat = SMOKE_RECORDS, 1
    args.count = args.count or args.records // SHARE
    if args.records < 100 or not 2 <= args.count <= args.records or args.repeat < 1:
        p.error("--records must be at least 100, --count between 2 and --records, "
                "--repeat at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return bench(args)
    except Broken as exc:
        print(f"bench_bulk: CORRECTNESS FAILURE: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())

