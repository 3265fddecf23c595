"""Property-based tests (hypothesis): hostile input never produces a traceback, always exits
with a documented code, and input that is rejected leaves the store byte for byte unchanged.

Deterministic (derandomize) so CI is reproducible; FUZZ_EXAMPLES scales the runs up locally.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oppcli.domain import fields as F

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "400"))
DOCUMENTED = {0, 2, 3, 4, 5, 6, 7}
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

# Values that have broken CLIs before: empty, blanks, huge and negative numbers, NaN,
# dates in every spelling, separators, quotes, control characters, non-ASCII, flags as values.
NASTY = st.sampled_from([
    "", " ", "0", "-1", "1e309", "nan", "inf", "-0", "99999999999999999999", "1,2,,3", ",",
    "2026-02-30", "13/13/2026", "31/12/2026", "2026-12-31T25:00", "24h", "0d", "none", "-",
    "Open", "won", "HIGH", "Sales/Negotiation", "Sales/", "/", "Region=", "Region=EMEA",
    "Region>=", "Contract Months>=abc", "Signed NDA=maybe", "=cmd|' /C calc'!A0", "--yes",
    "\x00", "\t", "\n", "é", "名前", "🙂", "a" * 300, '"', "'", "\\", "id,name", "nope",
])
TEXT = st.one_of(NASTY, st.text(max_size=40))

SEARCH_FLAGS = ["--name", "--name-contains", "--id", "--status", "--priority", "--assignee",
                "--pipeline", "--stage", "--company", "--primary-contact", "--source",
                "--loss-reason", "--tag", "--min-value", "--max-value", "--close-after",
                "--close-before", "--created-after", "--created-before", "--modified-after",
                "--modified-before", "--custom-field", "--sort", "--limit", "--fields", "-o"]
WRITE_FLAGS = ([f.flag for f in F.SIMPLE_WRITABLE] +
               ["--stage", "--pipeline", "--assignee", "--source", "--loss-reason", "--company",
                "--primary-contact", "--tag", "--custom-field", "--fields", "-o"])
UPDATE_ONLY = ["--add-tag", "--remove-tag", "--clear"]
EXPORT_FLAGS = SEARCH_FLAGS[:-3] + ["--since", "--overlap", "--fields", "-o"]


# Plausible values per flag, so that many examples get past parsing into the backends.
PLAUSIBLE = {
    "--status": ["open", "Won,Lost", "abandoned"], "--priority": ["High", "none,low"],
    "--assignee": ["Ada Park", "none", "102", "ben.okafor@example.com"],
    "--pipeline": ["Renewals", "1"], "--stage": ["Negotiation", "Sales/Qualified", "22"],
    "--company": ["Contoso Ltd", "none", "501"], "--primary-contact": ["Nancy Davolio", "601"],
    "--source": ["Website", "none"], "--loss-reason": ["Price", "none"],
    "--tag": ["enterprise", "hot,q3"], "--min-value": ["1000", "50000.5"],
    "--max-value": ["20000", "0"], "--close-after": ["2026-06-01", "6/1/2026"],
    "--close-before": ["2026-09-30"], "--created-after": ["2026-02-01"],
    "--modified-after": ["2026-03-01T12:00"], "--custom-field": [
        "Region=EMEA", "Region=", "Contract Months>=12", "Signed NDA=no", "Competitors=Globex",
        "Champion Notes=CFO"],
    "--sort": list(F.SORTABLE), "--limit": ["0", "1", "5"], "--fields": ["id,name", "tags"],
    "-o": ["json", "jsonl", "csv", "tsv", "table"], "--since": ["24h", "2026-01-01", "2w"],
    "--overlap": ["0", "60"], "--id": ["1001", "1001,1002"], "--name-contains": ["licence"],
    "--monetary-value": ["12000", "0.5"], "--win-probability": ["0", "100", "50"],
    "--close-date": ["2026-12-24", "12/24/2026"], "--details": ["multi\nline"],
    "--add-tag": ["new"], "--remove-tag": ["enterprise"], "--clear": ["close_date", "tags",
                                                                      "custom_fields", "name"],
    "--primary-contact-id": ["601", "612"], "--assignee-id": ["101", "999"],
    "--pipeline-stage-id": ["11", "24"], "--loss-reason-id": ["301"], "-n": ["1", "3"],
}


def value_for(flag: str) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(PLAUSIBLE.get(flag, ["x"])), TEXT)


def options(flags: list[str]) -> st.SearchStrategy[list[str]]:
    pair = st.sampled_from(flags).flatmap(lambda f: value_for(f).map(lambda v: [f, v]))
    return st.lists(pair, max_size=5).map(lambda pairs: [x for p in pairs for x in p])


COMMANDS = st.one_of(
    options(SEARCH_FLAGS).map(lambda o: ["search", *o]),
    options(["--sort", "--limit", "--fields", "-o", "--asc", "--desc"]).map(lambda o: ["list", *o]),
    st.tuples(TEXT, options(["--fields", "-o"])).map(lambda t: ["show", t[0], *t[1]]),
    options(WRITE_FLAGS).map(lambda o: ["create", "--name", "Fuzz", "--primary-contact-id",
                                        "601", *o]),
    st.tuples(st.one_of(st.sampled_from(["1001", "1002", "1036"]), TEXT),
              options(WRITE_FLAGS + UPDATE_ONLY)).map(lambda t: ["update", t[0], *t[1]]),
    st.tuples(st.lists(st.one_of(st.sampled_from(["1001", "1003"]), TEXT), min_size=1,
                       max_size=3), st.booleans(), st.booleans()).map(
        lambda t: ["delete", *t[0], *(["--yes"] if t[1] else []),
                   *(["--dry-run"] if t[2] else [])]),
    options(EXPORT_FLAGS).map(lambda o: ["export", *o]),
    st.tuples(st.one_of(st.none(), TEXT), st.booleans()).map(
        lambda t: ["undo", *([t[0]] if t[0] is not None else []), "--yes", *(["--force"] if t[1]
                                                                             else [])]),
    options(["-n", "-o", "--all-backends"]).map(lambda o: ["history", *o]),
    options(["--stage", "--min-value"]).map(lambda o: ["lookups", *o]),
)


def snapshot(store: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(store.iterdir()) if p.is_file()
            and p.name != ".lock"}


def restore(store: Path, files: dict[str, bytes]) -> None:
    for p in store.iterdir():
        if p.is_file() and p.name not in files and p.name != ".lock":
            p.unlink()
    for name, data in files.items():
        (store / name).write_bytes(data)


def check(result) -> None:
    out = (result.stdout or "") + (result.stderr or "")
    assert result.exit_code in DOCUMENTED, (result.exit_code, out[-2000:], result.exception)
    assert "Traceback" not in out and "unexpected error" not in out, out[-2000:]


@FUZZ
@given(args=COMMANDS)
def test_no_command_line_gets_a_traceback_and_a_rejected_one_changes_nothing(run, sample, args):
    before = snapshot(sample)
    result = run(*args, expect=None)
    check(result)
    if result.exit_code != 0:
        assert snapshot(sample) == before, f"oppcli {args!r} failed yet changed the store"
    restore(sample, before)


CSV_COLUMNS = ["id", "name", "primary_contact_id", "status", "priority", "monetary_value",
               "close_date", "tags", "win_probability", "pipeline_stage_id", "assignee_id",
               "company_name", "cf:Region", "cf:Contract Months", "cf:Signed NDA",
               "cf:Competitors", "details", "date_modified", "bogus"]


@st.composite
def csv_files(draw) -> bytes:
    import csv
    import io

    columns = draw(st.lists(st.sampled_from(CSV_COLUMNS), min_size=1, max_size=8, unique=True))
    rows = draw(st.lists(st.lists(TEXT, min_size=len(columns), max_size=len(columns) + 1),
                         min_size=1, max_size=4))
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(columns)
    for row in rows:
        w.writerow([c.replace("\x00", "") for c in row])
    return buf.getvalue().encode("utf-8", "surrogatepass")


JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**63, max_value=2**63 - 1),
                        st.floats(allow_nan=False), TEXT, st.lists(TEXT, max_size=3),
                        st.lists(st.fixed_dictionaries({"custom_field_definition_id": st.one_of(
                            st.sampled_from([401, 402, 403, 404, 405, 999]), TEXT),
                            "value": st.one_of(st.none(), st.integers(), TEXT, st.booleans())}),
                            max_size=2))


@st.composite
def jsonl_files(draw) -> bytes:
    keys = st.sampled_from([*F.FIELD_NAMES, "bogus", "interaction_count"])
    rows = draw(st.lists(st.dictionaries(keys, JSON_VALUES, max_size=8), min_size=1, max_size=4))
    return b"".join(orjson.dumps(r) + b"\n" for r in rows)


@FUZZ
@given(data=st.one_of(csv_files().map(lambda d: ("csv", d)), jsonl_files().map(lambda d: ("jsonl", d))),
       dry=st.booleans(), match=st.sampled_from(["id", "name"]))
def test_import_rows_never_get_a_traceback(run, sample, tmp_path, data, dry, match):
    fmt, body = data
    path = tmp_path / f"rows.{fmt}"
    path.write_bytes(body)
    before = snapshot(sample)
    result = run("import", str(path), "--match", match, *(["--dry-run"] if dry else []),
                 "-o", "json", expect=None)
    check(result)
    if result.exit_code in (0, 7) and result.stdout.strip():
        report = orjson.loads(result.stdout)
        if dry or all(r["action"] in ("failed", "unchanged", "skipped") for r in report):
            assert snapshot(sample) == before  # nothing written: nothing changed
    elif result.exit_code != 0:
        assert snapshot(sample) == before
    restore(sample, before)
    for extra in tmp_path.glob("rows.failed.*"):
        extra.unlink()


@pytest.mark.parametrize("blob", [b"", b"\xff\xfe\x00", b"[1, 2", b"{}", b"[]", b"null",
                                  b"id,name\n\"unterminated", b"\x00" * 100])
def test_unreadable_import_files_exit_2_and_change_nothing(run, sample, tmp_path, blob):
    path = tmp_path / "in.dat"
    path.write_bytes(blob)
    before = snapshot(sample)
    for fmt in ("csv", "json", "jsonl"):
        result = run("import", str(path), "--format", fmt, expect=None)
        check(result)
        assert snapshot(sample) == before
