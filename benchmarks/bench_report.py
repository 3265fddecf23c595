#!/usr/bin/env python3
"""Report benchmark: `oppcli report --by stage --by assignee` against jq computing the same groups.

    python benchmarks/bench_report.py [--records 100000] [--repeat 5]
                                      [--memory-records N | --million] [--smoke] [--check]
                                      [--no-bytecode-cache]

The targets (issue 17: "local store: streams the store in constant memory (peak under 150 MB at
1,000,000 deals); at 100,000 deals `report --by stage --by assignee` takes at most 0.5x the time
of jq computing the same groups over the store file"):

    at 100,000 records      report --by stage --by assignee -o json: at most 0.5x jq
    at 1,000,000 records    peak memory of report --by stage --by assignee and of
                            report --by tag: under 150 MB (--memory-records 1000000, or
                            --million; at --records the same figures are judged too)

The store is bench_store.py's (the same generator, seed and writer: build(); the records spread
over the sample's two pipelines, nine stages and four users, one in ten without an owner), built
in a temporary directory each run, as bench_store and bench_bulk do (100,000 records take ~6 s,
1,000,000 about a minute). Nothing is judged on absolute times: oppcli and the baseline run in the
same job, in rounds (one untimed warm-up round, then --repeat timed rounds, the order rotated
each round), judged on the ratio of the medians.

    oppcli        oppcli --store S report --by stage --by assignee -o json
    jq reduce     jq -c -n 'reduce inputs as $r ({}; .["STAGE|ASSIGNEE"] = [count, value,
                  weighted, won, closed] + this record)' FILE, then average and win rate per
                  group (JQ_REDUCE: streaming, one small object in memory)
    jq group_by   jq -c -s 'group_by([.pipeline_stage_id, .assignee_id]) | map(...)' FILE
                  (JQ_GROUP_BY: the whole file in memory, then the same figures per group)

Both jq programs compute, per (pipeline_stage_id, assignee_id): count, value (monetary_value
summed, null as 0), weighted (Won: the value; Lost and Abandoned: 0; else value x
win_probability / 100, null as 0), average (value / count) and win rate (Won / (Won + Lost +
Abandoned), null when none is closed). Both are timed in the same rounds; the baseline is the
one with the lower median (said in the output).

A fast wrong answer is not a result, so every answer is checked, every round, or the benchmark
stops (exit 3): oppcli's rows, each jq program's groups and an in-Python referee reading the
store file (referee()) must hold the same groups with the same count, value, weighted, average
and win rate (money to the cent, win rate to oppcli's 4 places), oppcli's names must be the
lookups' (Pipeline/Stage, the user's name, "none") and its counts must add up to the store's
records. `report --by tag` is checked against the referee the same way (a deal under each of its
tags, "none" without one).

Peak resident memory (/usr/bin/time -f %M, else bench_store's launcher reading RUSAGE_CHILDREN
in a fresh process) of one more run of each report (and, for information, of each jq program).

Output: one table (measure, figure, target, PASS/FAIL), then the median wall times, CPU-time
ratios and peak memory. Exit status: 0 whatever the figures; 1 with --check when a target is
missed; 3 when an answer is wrong or a command fails; 4 when jq or oppcli is missing.

--smoke: 2,000 records and one timed round, then the memory measures on 5,000 records: checks
in a few seconds that the script works and the answers agree; its figures say nothing about the
targets.

Time: about 1.5 minutes at 100,000 records on 2 CPUs (~90 MB of temporary disk); --million adds
about 2.5 minutes (building the store, the referee's pass, two reports) and ~860 MB of disk.
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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from bench_store import (
    TARGET_PEAK_MB,
    TARGET_RECORDS,
    Broken,
    Report,
    Run,
    Store,
    build,
    clean_env,
    find_oppcli,
    gnu_time,
    lines_of,
    lookups,
    median,
    parse_size,
    peak_mb,
    print_grid,
    run,
)

from oppcli.backends.local import DATA

TARGET_REPORT_RATIO = 0.5  # report --by stage --by assignee against jq, at TARGET_RECORDS
MEMORY_RECORDS = 1_000_000  # where the issue sets the memory target
SMOKE_RECORDS = 2_000
SMOKE_MEMORY_RECORDS = 5_000
REPEAT = 5
PAIR = ["--by", "stage", "--by", "assignee"]
TAG = ["--by", "tag"]
PAIR_LABEL = "report --by stage --by assignee"
TAG_LABEL = "report --by tag"
CLOSED = ("Won", "Lost", "Abandoned")

# Streaming: one input at a time into an object of [count, value, weighted, won, closed] per
# "STAGE|ASSIGNEE" (the fastest of the jq spellings tried: `.[$k] |= ...` updates, and a
# tojson'd [stage, assignee] key, were as fast or slower with jq 1.6).
JQ_REDUCE = """\
reduce inputs as $r ({};
  "\\($r.pipeline_stage_id)|\\($r.assignee_id)" as $k
  | ($r.monetary_value // 0) as $v
  | $r.status as $s
  | (.[$k] // [0, 0, 0, 0, 0]) as $a
  | .[$k] = [$a[0] + 1, $a[1] + $v,
             $a[2] + (if $s == "Won" then $v elif $s == "Lost" or $s == "Abandoned" then 0
                      else $v * ($r.win_probability // 0) / 100 end),
             $a[3] + (if $s == "Won" then 1 else 0 end),
             $a[4] + (if $s == "Won" or $s == "Lost" or $s == "Abandoned" then 1 else 0 end)])
| [to_entries[]
   | (.key | split("|") | map(fromjson)) as [$stage, $who]
   | .value as [$n, $val, $w, $won, $closed]
   | {stage_id: $stage, assignee_id: $who, count: $n, value: $val, weighted: $w,
      average: (if $n > 0 then $val / $n else 0 end),
      win_rate: (if $closed > 0 then $won / $closed else null end)}]"""

# Slurped: every record in memory, grouped by sorting.
JQ_GROUP_BY = """\
group_by([.pipeline_stage_id, .assignee_id])
| map(.[0] as $first
  | (map(.monetary_value // 0) | add) as $val
  | (map(select(.status == "Won")) | length) as $won
  | (map(select(.status == "Won" or .status == "Lost" or .status == "Abandoned"))
     | length) as $closed
  | {stage_id: $first.pipeline_stage_id, assignee_id: $first.assignee_id, count: length,
     value: $val,
     weighted: (map((.monetary_value // 0) as $v | .status as $s
                    | if $s == "Won" then $v elif $s == "Lost" or $s == "Abandoned" then 0
                      else $v * (.win_probability // 0) / 100 end) | add),
     average: ($val / length),
     win_rate: (if $closed > 0 then $won / $closed else null end)})"""

Key = Any  # (stage_id, assignee_id), or a tag (None: the deals without one)


# ---- the referee ------------------------------------------------------------------------------
@dataclass
class Tot:
    """One group's figures, summed here in plain Python (not oppcli's code)."""

    count: int = 0
    value: float = 0
    weighted: float = 0.0
    won: int = 0
    closed: int = 0

    def add(self, rec: dict[str, Any]) -> None:
        v = rec.get("monetary_value")
        v = 0 if v is None else v
        status = rec.get("status")
        self.count += 1
        self.value += v
        if status == "Won":
            self.weighted += v
            self.won += 1
        elif status not in CLOSED:
            p = rec.get("win_probability")
            self.weighted += v * (0 if p is None else p) / 100
        if status in CLOSED:
            self.closed += 1

    def metrics(self) -> dict[str, Any]:
        return {"count": self.count, "value": self.value, "weighted": self.weighted,
                "average": self.value / self.count if self.count else 0,
                "win_rate": self.won / self.closed if self.closed else None}


@dataclass
class Expected:
    records: int
    pairs: dict[Key, Tot]  # by (pipeline_stage_id, assignee_id)
    tags: dict[Key, Tot]  # by tag; None: no tag


def referee(path: Path) -> Expected:
    """The groups of both reports, from one pass over the store file."""
    pairs: dict[Key, Tot] = {}
    tags: dict[Key, Tot] = {}
    n = 0
    for line in lines_of(path):
        if not line.strip():
            continue
        rec = orjson.loads(line)
        n += 1
        key = (rec.get("pipeline_stage_id"), rec.get("assignee_id"))
        (pairs.get(key) or pairs.setdefault(key, Tot())).add(rec)
        for t in dict.fromkeys(t for t in rec.get("tags") or () if t) or (None,):
            (tags.get(t) or tags.setdefault(t, Tot())).add(rec)
    return Expected(n, pairs, tags)


# ---- comparing answers --------------------------------------------------------------------------
def close(metric: str, got: Any, want: Any) -> bool:
    if metric == "count":
        return type(got) is int and got == want
    if metric == "win_rate":
        if got is None or want is None:
            return got is None and want is None
        return isinstance(got, (int, float)) and abs(got - want) <= 0.00005 + 1e-9
    # money: oppcli rounds to the cent; sums in another order may differ in the last bits
    return isinstance(got, (int, float)) and abs(got - want) <= 0.005 + 1e-9 * max(1, abs(want))


def agree(who: str, got: dict[Key, dict[str, Any]], want: dict[Key, Tot], cmd: str) -> None:
    """`got` (group -> metrics) holds exactly `want`'s groups with the same figures."""
    wrong: list[str] = []
    for key in sorted(got.keys() - want.keys(), key=str):
        wrong.append(f"extra group {key!r}: {got[key]}")
    for key in sorted(want.keys() - got.keys(), key=str):
        wrong.append(f"missing group {key!r} (expected {want[key].metrics()})")
    for key in sorted(want.keys() & got.keys(), key=str):
        w = want[key].metrics()
        for m, expected in w.items():
            if not close(m, got[key].get(m), expected):
                wrong.append(f"group {key!r}: {m} {got[key].get(m)!r}, expected {expected!r}")
    if wrong:
        more = f"\n  ... and {len(wrong) - 12} more" if len(wrong) > 12 else ""
        raise Broken(f"{who} disagrees with the referee in {len(wrong)} place(s):\n  "
                     + "\n  ".join(wrong[:12]) + more + f"\n  command: {cmd}")


def json_rows(path: Path, who: str) -> list[dict[str, Any]]:
    try:
        doc = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise Broken(f"{who} printed no JSON ({exc}): {path.read_bytes()[:200]!r}") from None
    if not isinstance(doc, list) or not all(isinstance(r, dict) for r in doc):
        raise Broken(f"{who} printed {str(doc)[:200]}, not a list of groups")
    return doc


@dataclass
class Names:
    """The lookups' names, as oppcli must print them."""

    stages: dict[int, str]
    users: dict[int, str]

    @classmethod
    def of(cls, lk: dict[str, Any]) -> Names:
        return cls({s["id"]: f"{p['name']}/{s['name']}" for p in lk["pipelines"]
                    for s in p["stages"]},
                   {u["id"]: u["name"] for u in lk["users"]})


def check_pair_report(path: Path, want: Expected, names: Names, cmd: str) -> int:
    """oppcli's report --by stage --by assignee -o json against the referee; its group count."""
    rows = json_rows(path, "oppcli report --by stage --by assignee")
    got: dict[Key, dict[str, Any]] = {}
    stages_with_deals = {s for s, _ in want.pairs}
    for row in rows:
        key: tuple[Any, Any] = (row.get("stage_id"), row.get("assignee_id"))
        if row.get("count") == 0 and key[0] not in stages_with_deals and key[1] is None:
            continue  # a stage without deals, shown with zeros (the funnel reads whole)
        if key in got:
            raise Broken(f"oppcli printed the group {key!r} twice\n  command: {cmd}")
        stage_id, user_id = key
        stage_name = names.stages.get(stage_id, str(stage_id))
        user_name = "none" if user_id is None else names.users.get(user_id, str(user_id))
        if row.get("stage") != stage_name or row.get("assignee") != user_name:
            raise Broken(f"oppcli names the group {key!r} {row.get('stage')!r} / "
                         f"{row.get('assignee')!r}, not {stage_name!r} / {user_name!r}")
        got[key] = row
    agree("oppcli report --by stage --by assignee", got, want.pairs, cmd)
    counted = sum(r["count"] for r in got.values())
    if counted != want.records:
        raise Broken(f"oppcli's groups count {counted:,} deals, the store holds {want.records:,}")
    return len(got)


def check_tag_report(path: Path, want: Expected, cmd: str) -> int:
    rows = json_rows(path, "oppcli report --by tag")
    got: dict[Key, dict[str, Any]] = {}
    for row in rows:
        key = None if row.get("tag") == "none" else row.get("tag")
        if key in got:
            raise Broken(f"oppcli printed the tag group {key!r} twice\n  command: {cmd}")
        got[key] = row
    agree("oppcli report --by tag", got, want.tags, cmd)
    return len(got)


def check_jq(path: Path, want: Expected, program: str, cmd: str) -> None:
    got: dict[Key, dict[str, Any]] = {}
    for row in json_rows(path, f"jq {program}"):
        key = (row.get("stage_id"), row.get("assignee_id"))
        if key in got:
            raise Broken(f"jq {program} printed the group {key!r} twice")
        got[key] = row
    agree(f"jq {program}", got, want.pairs, cmd)


# ---- the measures -------------------------------------------------------------------------------
@dataclass
class Side:
    key: str  # "opp", "reduce", "group_by"
    label: str
    cmd: list[str]
    out: Path
    runs: list[Run] = field(default_factory=list)
    peak: float = 0.0

    @property
    def ms(self) -> float:
        return median([r.wall for r in self.runs]) * 1000

    @property
    def cpu(self) -> float:
        return median([r.cpu for r in self.runs])


@dataclass
class Bench:
    oppcli: str
    jq: str
    env: dict[str, str]
    tmp: Path
    time_exe: str | None
    names: Names

    def say(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def opp(self, st: Store, *args: str) -> list[str]:
        return [self.oppcli, "--store", str(st.path), "report", *args, "-o", "json"]

    def peak(self, cmd: list[str], out: Path) -> tuple[float, float]:
        """(peak MB, wall seconds) of one run in a fresh process."""
        t0 = time.perf_counter()
        mb = peak_mb(cmd, out, self.env, self.tmp, self.time_exe)
        return mb, time.perf_counter() - t0

    def timed(self, st: Store, want: Expected, repeat: int) -> list[Side]:
        """oppcli and both jq programs, in rounds (the first untimed), every answer checked."""
        sides = [Side("opp", "oppcli report", self.opp(st, *PAIR), self.tmp / "report.json"),
                 Side("reduce", "jq reduce inputs",
                      [self.jq, "-c", "-n", JQ_REDUCE, str(st.data)], self.tmp / "reduce.json"),
                 Side("group_by", "jq -s group_by",
                      [self.jq, "-c", "-s", JQ_GROUP_BY, str(st.data)],
                      self.tmp / "group_by.json")]
        pretty = {s.key: shown(s.cmd) for s in sides}
        for i in range(repeat + 1):
            order = sides[i % 3:] + sides[:i % 3]  # each command first, second and last in turn
            for s in order:
                r = run(s.cmd, s.out, self.env)
                if i:
                    s.runs.append(r)
            for s in sides:
                if s.key == "opp":
                    check_pair_report(s.out, want, self.names, pretty[s.key])
                else:
                    check_jq(s.out, want, s.label.removeprefix("jq "), pretty[s.key])
            if i:
                self.say(f"[{st.n:,}] round {i}/{repeat}: " + ", ".join(
                    f"{s.label} {s.runs[-1].wall * 1000:.0f} ms" for s in sides))
        for s in sides:
            s.peak, _ = self.peak(s.cmd, s.out)
            if s.key == "opp":
                check_pair_report(s.out, want, self.names, pretty[s.key])
        return sides

    def memory(self, st: Store, want: Expected) -> dict[str, tuple[float, float, int]]:
        """Peak MB, wall seconds and groups of one run of each report, answers checked."""
        got = {}
        for dims, label in ((PAIR, PAIR_LABEL), (TAG, TAG_LABEL)):
            cmd = self.opp(st, *dims)
            out = self.tmp / "memory.json"
            self.say(f"[{st.n:,}] peak memory of {label} ...")
            mb, secs = self.peak(cmd, out)
            groups = (check_pair_report(out, want, self.names, shown(cmd)) if dims is PAIR
                      else check_tag_report(out, want, shown(cmd)))
            got[label] = (mb, secs, groups)
            self.say(f"[{st.n:,}] {label}: peak {mb:.1f} MB, {secs:.1f} s, {groups} groups")
        return got


def shown(cmd: Sequence[str]) -> str:
    """A command as a person would type it (programs quoted, the jq ones elided)."""
    parts = []
    for a in cmd:
        if a in (JQ_REDUCE, JQ_GROUP_BY):
            parts.append("'<" + ("JQ_REDUCE" if a == JQ_REDUCE else "JQ_GROUP_BY") + ">'")
        elif " " in a:
            parts.append(f"'{a}'")
        else:
            parts.append(a)
    return " ".join(parts)


# ---- the benchmark ----------------------------------------------------------------------------
def make_store(path: Path, n: int, lk: dict[str, Any]) -> tuple[Store, Expected, float]:
    t0 = time.perf_counter()
    print(f"building a store of {n:,} records ...", file=sys.stderr, flush=True)
    st = build(path, n, lk, [], lambda text: print(text, file=sys.stderr, flush=True))
    file_mb = st.data.stat().st_size / 1e6
    built = time.perf_counter() - t0
    want = referee(st.data)
    if want.records != n:
        raise Broken(f"the store holds {want.records:,} records, not {n:,}")
    print(f"built a store of {n:,} records in {built:.1f}s ({DATA}: {file_mb:.1f} MB; "
          f"{len(want.pairs)} (stage, assignee) groups, {len(want.tags)} tag groups; the "
          f"referee's pass {time.perf_counter() - t0 - built:.1f}s)", flush=True)
    return st, want, file_mb


def bench(args: argparse.Namespace) -> int:
    oppcli = find_oppcli()
    jq = shutil.which("jq")
    if not oppcli or not jq:
        print(f"bench_report: needs the oppcli console script and jq (oppcli: {oppcli}, jq: {jq})",
              file=sys.stderr)
        return 4
    lk = lookups()
    n, m = args.records, args.memory_records
    with tempfile.TemporaryDirectory(prefix="oppcli-bench-") as tmpdir:
        tmp = Path(tmpdir)
        env = clean_env(tmp, bytecode=not args.no_bytecode_cache)
        time_exe = gnu_time()
        jq_version = subprocess.run([jq, "--version"], capture_output=True, text=True).stdout.strip()
        opp_version = subprocess.run([oppcli, "--version"], capture_output=True, text=True,
                                     env=env).stdout.strip()
        print(f"{opp_version}, {jq_version}, Python {platform.python_version()}, "
              f"{os.cpu_count()} CPUs; bytecode cache "
              f"{'off' if args.no_bytecode_cache else 'on'}; peak memory by "
              f"{time_exe + ' -f %M' if time_exe else 'a launcher (RUSAGE_CHILDREN)'}",
              flush=True)
        b = Bench(oppcli, jq, env, tmp, time_exe, Names.of(lk))
        st, want, file_mb = make_store(tmp / f"store-{n}", n, lk)
        b.say(f"[{n:,}] {args.repeat} timed round(s) of oppcli, jq reduce and jq group_by ...")
        sides = b.timed(st, want, args.repeat)
        at_n = b.memory(st, want)
        groups = len(want.pairs)
        shutil.rmtree(st.path)  # the disk the larger store needs
        at_m: dict[str, tuple[float, float, int]] = {}
        m_file_mb = 0.0
        if m:
            mst, mwant, m_file_mb = make_store(tmp / f"store-{m}", m, lk)
            at_m = b.memory(mst, mwant)

    opp, jqs = sides[0], sides[1:]
    base = min(jqs, key=lambda s: s.ms)
    other = next(s for s in jqs if s is not base)
    ratio = opp.ms / base.ms
    report = Report()
    w = len(f"{max(n, m):,}")
    report.add(f"{n:>{w},}  {PAIR_LABEL}: time oppcli/jq", f"{ratio:.3f}x",
               f"<= {TARGET_REPORT_RATIO:g}x", ratio <= TARGET_REPORT_RATIO)
    report.add(f"{n:>{w},}  {PAIR_LABEL}: time oppcli/{other.label}",
               f"{opp.ms / other.ms:.3f}x", "-", None)
    for size, figures in ((n, at_n), (m, at_m)):
        for label, (mb, _secs, _groups) in figures.items():
            report.add(f"{size:>{w},}  {label}: peak memory of oppcli", f"{mb:.1f} MB",
                       f"< {TARGET_PEAK_MB:g} MB", mb < TARGET_PEAK_MB)
    if at_m:
        for label, (mb, secs, _groups) in at_m.items():
            report.add(f"{n:,} -> {m:,}  {label}: peak memory growth", f"{mb / at_n[label][0]:.2f}x",
                       "-", None)
            report.add(f"{m:>{w},}  {label}: wall time of that run", f"{secs:.1f} s", "-", None)

    report.notes.append(f"  baseline: {base.label} ({base.ms:.0f} ms), the faster of the two jq "
                        f"programs ({other.label}: {other.ms:.0f} ms, {other.ms / base.ms:.2f}x "
                        f"of {base.label})")
    report.notes.append(f"  {groups} (stage, assignee) groups: count, value, weighted, average "
                        "and win rate the same from oppcli, jq (reduce inputs, -s group_by) and "
                        f"the referee; {at_n[TAG_LABEL][2]} tag groups from oppcli and the "
                        "referee")
    report.notes.append("  commands (S: the store directory; FILE: its opportunities.jsonl; the "
                        "programs: JQ_REDUCE and JQ_GROUP_BY in this script, printed below):")
    for s in sides:
        report.notes.append(f"    {s.label:<16} " + shown(s.cmd).replace(str(tmp), "..."))
    if n != TARGET_RECORDS:
        report.notes.append(f"  note: the time target is defined at {TARGET_RECORDS:,} records; "
                            f"judged here at {n:,}, as an indication only")
    if m != MEMORY_RECORDS:
        report.notes.append(f"  note: the memory target is defined at {MEMORY_RECORDS:,} records "
                            f"(--million); judged here at {max(n, m):,}, as an indication only")
    sizes = f"{n:,} records ({file_mb:.1f} MB)" + (f", memory at {m:,} ({m_file_mb:.1f} MB)"
                                                   if m else "")
    print()
    report.print(f"oppcli report benchmark: {sizes}; {args.repeat} timed round(s), ratios of "
                 "medians")
    print()
    print_grid("median wall time, ms", [(s.label, [f"{s.ms:.0f}"]) for s in sides], [n])
    print()
    print_grid("CPU time (user+sys), ms; ratio oppcli/baseline "
               f"{opp.cpu / max(1e-9, base.cpu):.3f}x",
               [(s.label, [f"{s.cpu * 1000:.0f}"]) for s in sides], [n])
    print()
    peaks = [(s.label + (" --by stage --by assignee" if s.key == "opp" else ""),
              [f"{s.peak:.1f}"] + ([f"{at_m[PAIR_LABEL][0]:.1f}"] if at_m and s.key == "opp"
                                   else ["-"] if at_m else [])) for s in sides]
    peaks.insert(1, ("oppcli report --by tag",
                     [f"{at_n[TAG_LABEL][0]:.1f}"] + ([f"{at_m[TAG_LABEL][0]:.1f}"] if at_m
                                                     else [])))
    print_grid("peak memory, MB", peaks, [n, m] if m else [n])
    print()
    print("JQ_REDUCE (jq -c -n JQ_REDUCE FILE):")
    print(JQ_REDUCE)
    print("JQ_GROUP_BY (jq -c -s JQ_GROUP_BY FILE):")
    print(JQ_GROUP_BY)
    missed = [r.measure.strip() for r in report.rows if r.ok is False]
    if args.check and missed:
        print(f"missed: {'; '.join(missed)}", file=sys.stderr)
        return 1
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--records", default=str(TARGET_RECORDS), metavar="N",
                   help=f"store size for the timing (k and M allowed; default {TARGET_RECORDS:,})")
    p.add_argument("--repeat", type=int, default=REPEAT,
                   help=f"timed rounds, after one warm-up (default {REPEAT})")
    p.add_argument("--memory-records", default="0", metavar="N",
                   help="also measure the peak memory of both reports on a store of N records "
                        f"(k and M allowed; {MEMORY_RECORDS:,} is where the target is set)")
    p.add_argument("--million", action="store_true",
                   help=f"the same as --memory-records {MEMORY_RECORDS}")
    p.add_argument("--smoke", action="store_true",
                   help=f"{SMOKE_RECORDS:,} records, 1 round, memory at {SMOKE_MEMORY_RECORDS:,}: "
                        "checks the script works and the answers agree")
    p.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    p.add_argument("--no-bytecode-cache", action="store_true",
                   help="run oppcli as the environment says (e.g. PYTHONDONTWRITEBYTECODE) "
                        "instead of with a private bytecode cache")
    args = p.parse_args(argv)
    try:
        args.records = parse_size(args.records)
        args.memory_records = parse_size(args.memory_records)
    except ValueError:
        p.error("--records and --memory-records take a number (k and M allowed)")
    if args.million:
        if args.memory_records not in (0, MEMORY_RECORDS):
            p.error("give --million or --memory-records, not both")
        args.memory_records = MEMORY_RECORDS
    if args.smoke:
        args.records, args.repeat = SMOKE_RECORDS, 1
        args.memory_records = SMOKE_MEMORY_RECORDS
    if args.records < 100 or args.repeat < 1 or 0 < args.memory_records < 100:
        p.error("--records (and --memory-records, when given) must be at least 100, --repeat "
                "at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return bench(args)
    except Broken as exc:
        print(f"bench_report: CORRECTNESS FAILURE: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
