"""Search filters on the extras real Copper records carry: interaction_count,
date_last_contacted and date_stage_changed (Copper's minimum_/maximum_interaction_count,
_interaction_date and _stage_change_date). Both backends give the same ids, a record without
the field (missing or null) matches no bound on it, and dates read as --modified-after/-before.
"""

from __future__ import annotations

import datetime as dt

import orjson
import pytest

from conftest import API_KEY, USER_EMAIL, build_store, copper_env

DAY = 86400


def utc(day: str, *, end: bool = False) -> int:
    start = int(dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC).timestamp())
    return start + DAY - 1 if end else start


BASE = utc("2026-03-01")


def records() -> list[dict]:
    """The sample deals with the extras: every third one lacks a field, or has it null."""
    from oppcli.domain.sample import sample_records

    out = []
    for i, rec in enumerate(sample_records()):
        rec = dict(rec)
        extras = {"interaction_count": i % 7,
                  # 23:00 of a day: a bare --*-before DATE must take in the whole day
                  "date_last_contacted": BASE + i * DAY + 23 * 3600,
                  "date_stage_changed": BASE - i * DAY}
        for n, (key, value) in enumerate(extras.items()):
            kind = (i // 3 + n * i) % 3  # every mix of absent, null and set
            if kind == 1:
                rec[key] = None
            elif kind == 2:
                rec[key] = value
            # kind 0: the key is absent, as in older records
        out.append(rec)
    return out


@pytest.fixture
def both(store_path, monkeypatch):
    from fakecopper import FakeCopper
    from oppcli.domain.sample import SAMPLE_LOOKUPS

    recs = records()
    build_store(store_path, recs)
    server = FakeCopper(lookups=SAMPLE_LOOKUPS, records=recs, api_key=API_KEY, user_email=USER_EMAIL)
    with server:
        for key, value in copper_env(server.url).items():
            monkeypatch.setenv(key, value)
        yield server, recs


def ids(run, backend: str, *args: str) -> list[int]:
    return [r["id"] for r in run.json("--backend", backend, *args)]


def between(key: str, lo: int | None = None, hi: int | None = None):
    def ok(r: dict) -> bool:
        v = r.get(key)
        return v is not None and (lo is None or v >= lo) and (hi is None or v <= hi)
    return ok


CASES = [
    (["--min-interactions", "3"], between("interaction_count", lo=3)),
    (["--max-interactions", "2"], between("interaction_count", hi=2)),
    (["--min-interactions", "0"], between("interaction_count", lo=0)),
    (["--min-interactions", "2", "--max-interactions", "4"], between("interaction_count", 2, 4)),
    (["--contacted-after", "2026-03-10"], between("date_last_contacted", lo=utc("2026-03-10"))),
    (["--contacted-before", "2026-03-10"],
     between("date_last_contacted", hi=utc("2026-03-10", end=True))),
    (["--contacted-after", "2026-03-05T12:00:00Z", "--contacted-before", "2026-03-20"],
     between("date_last_contacted", utc("2026-03-05") + 12 * 3600, utc("2026-03-20", end=True))),
    (["--stage-changed-after", "2026-02-10"], between("date_stage_changed", lo=utc("2026-02-10"))),
    (["--stage-changed-before", "2026-02-10"],
     between("date_stage_changed", hi=utc("2026-02-10", end=True))),
    (["--stage-changed-after", "2026-02-01", "--stage-changed-before", "2026-02-20",
      "--min-interactions", "1"],
     lambda r: between("date_stage_changed", utc("2026-02-01"), utc("2026-02-20", end=True))(r)
     and between("interaction_count", lo=1)(r)),
]


@pytest.mark.parametrize("args,wanted", CASES, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_each_filter_gives_the_same_ids_on_both_backends(run, both, args, wanted):
    _, recs = both
    expected = sorted(r["id"] for r in recs if wanted(r))
    assert expected, "a case that finds nothing compares nothing"
    assert len(expected) < len(recs) - 3, "a case that finds everything tests no filter"
    local = ids(run, "local", "search", *args, "--sort", "id")
    remote = ids(run, "copper", "search", *args, "--sort", "id")
    assert local == expected
    assert remote == expected


def test_records_without_the_field_never_match(run, both):
    _, recs = both
    for key, args in (("interaction_count", ["--min-interactions", "0"]),
                      ("date_last_contacted", ["--contacted-before", "2100-01-01"]),
                      ("date_stage_changed", ["--stage-changed-after", "1970-01-01"])):
        have = sorted(r["id"] for r in recs if r.get(key) is not None)
        assert len(have) < len(recs)
        for backend in ("local", "copper"):
            assert ids(run, backend, "search", *args, "--sort", "id") == have, (backend, key)


def test_a_bare_before_date_takes_in_the_whole_day(run, both):
    _, recs = both
    # Every contact was at 23:00 (UTC) of its day.
    rec = next(r for r in recs if r.get("date_last_contacted"))
    stamp = rec["date_last_contacted"]
    day = dt.datetime.fromtimestamp(stamp, dt.UTC).date()
    assert stamp == utc(day.isoformat()) + 23 * 3600
    for backend in ("local", "copper"):
        got = ids(run, backend, "search", "--contacted-before", day.isoformat())
        assert rec["id"] in got
        got = ids(run, backend, "search", "--contacted-after", (day + dt.timedelta(1)).isoformat())
        assert rec["id"] not in got
        got = ids(run, backend, "search", "--contacted-before", f"{day.isoformat()}T22:59:59Z")
        assert rec["id"] not in got


def test_the_copper_body_carries_exactly_copper_s_keys(run, both):
    server, _ = both
    run("--backend", "copper", "search", "--min-interactions", "1", "--max-interactions", "5",
        "--contacted-after", "2026-03-02", "--contacted-before", "2026-03-30",
        "--stage-changed-after", "2026-01-01", "--stage-changed-before", "2026-02-27",
        "-o", "json")
    body = server.calls("/opportunities/search", "POST")[-1].body
    assert {k: v for k, v in body.items() if k.startswith(("minimum_", "maximum_"))} == {
        "minimum_interaction_count": 1, "maximum_interaction_count": 5,
        "minimum_interaction_date": utc("2026-03-02"),
        "maximum_interaction_date": utc("2026-03-30", end=True),
        "minimum_stage_change_date": utc("2026-01-01"),
        "maximum_stage_change_date": utc("2026-02-27", end=True)}


def test_export_takes_the_new_filters(run, both):
    _, recs = both
    expected = sorted(r["id"] for r in recs if between("interaction_count", lo=3)(r)
                      and between("date_last_contacted", hi=utc("2026-03-25", end=True))(r))
    assert expected
    for backend in ("local", "copper"):
        out = run("--backend", backend, "export", "--min-interactions", "3",
                  "--contacted-before", "2026-03-25").stdout
        assert sorted(orjson.loads(line)["id"] for line in out.splitlines()) == expected, backend


@pytest.mark.parametrize("args", [["--min-interactions", "1.5"], ["--max-interactions", "many"],
                                  ["--contacted-after", "yesterday"],
                                  ["--stage-changed-before", "2026-02-30"],
                                  ["--min-interactions", "5", "--max-interactions", "2"],
                                  ["--contacted-after", "2026-03-02", "--contacted-before", "2026-03-01"]])
def test_bad_values_exit_2_on_both(run, both, args):
    for backend in ("local", "copper"):
        result = run("--backend", backend, "search", *args, expect=2)
        assert result.stdout == ""


def test_help_lists_them_among_the_filters_of_search_and_export(run):
    for command in ("search", "export"):
        text = run(command, "--help").stdout
        for flag in ("--min-interactions", "--max-interactions", "--contacted-after",
                     "--contacted-before", "--stage-changed-after", "--stage-changed-before"):
            assert flag in text, (command, flag)


@pytest.mark.parametrize("command", ["search", "export"])
def test_shell_completion_offers_them(sh, command):
    env = {"COMP_WORDS": f"oppcli {command} --stage-ch", "COMP_CWORD": "2",
           "_OPPCLI_COMPLETE": "complete_bash"}
    assert sh(env=env).stdout.split() == ["--stage-changed-after", "--stage-changed-before"]
    env["COMP_WORDS"] = f"oppcli {command} --contacted-"
    assert sh(env=env).stdout.split() == ["--contacted-after", "--contacted-before"]
    env["COMP_WORDS"] = f"oppcli {command} --m"
    assert {"--min-interactions", "--max-interactions"} <= set(sh(env=env).stdout.split())


def test_a_value_filter_skips_a_hand_edited_value_that_is_not_a_number(sh, store_path):
    """A store edited by hand may hold "a lot" as monetary_value: --min-value and --max-value
    leave that deal out (as a null value), rather than fail with exit 1."""
    from oppcli.domain.sample import sample_records

    recs = sample_records()
    recs[0]["monetary_value"] = "a lot"
    recs[1]["monetary_value"] = True
    build_store(store_path, recs)
    got = orjson.loads(sh("search", "--min-value", "1", "-o", "json").stdout)
    want = sorted(r["id"] for r in recs if type(r["monetary_value"]) in (int, float)
                  and r["monetary_value"] >= 1)
    assert sorted(r["id"] for r in got) == want and recs[0]["id"] not in want
    assert orjson.loads(sh("search", "--max-value", "1000000", "-o", "json").stdout)
