"""`oppcli report --by DIM [--by DIM2]` on a local store, through the installed `oppcli`.

Every dimension and metric is checked against numbers computed here from the store's records by
the spec's rules (report_local_support.metrics), and several again with jq over the store's data
file: count, value (null as 0), weighted (Won in full, Lost and Abandoned as 0, Open at
win_probability, none as 0), average and win_rate. Then: two dimensions, `none` groups, a deal
under each of its tags but once in the total, stages in pipeline order with zeros, filters, the
machine formats and --fields, the refusals, the table on a terminal and its colour.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from report_local_support import (
    DIMS,
    METRICS,
    STAGE_ORDER,
    STAGES,
    USERS,
    ZERO,
    assert_close,
    colour_codes,
    data_records,
    expected_groups,
    jq_groups,
    metrics,
    money,
    plain,
    row_groups,
    rows,
    value_of,
    varied_records,
)

import oppcli
from checks import one_error_line, snapshot
from conftest import build_store, jq_available
from ptyterm import on_a_terminal

needs_jq = pytest.mark.skipif(not jq_available(), reason="jq is not installed")


@pytest.fixture
def store(store_path: Path) -> Path:
    """96 varied deals (see varied_records) as OPPCLI_STORE."""
    build_store(store_path, varied_records())
    return store_path


def report(sh, *args: str) -> list[dict[str, Any]]:
    return orjson.loads(sh("report", *args, "-o", "json").stdout)


def keyed(got: list[dict[str, Any]], *dims: str) -> dict[tuple, dict[str, Any]]:
    out = {row_groups(r, *dims): r for r in got}
    assert len(out) == len(got), f"a group printed twice: {got}"
    return out


def assert_groups(got: list[dict[str, Any]], want: dict[tuple, dict[str, Any]], *dims: str) -> None:
    have = keyed(got, *dims)
    assert sorted(have, key=repr) == sorted(want, key=repr)
    for k, m in want.items():
        assert_close(have[k], m, k)


def with_zero_stages(want: dict[tuple, dict[str, Any]],
                     stages: list[int] = STAGE_ORDER) -> dict[tuple, dict[str, Any]]:
    """Stages without deals, as `--by stage` shows them: with zeros."""
    seen = {k[0][0] for k in want}
    return {**want, **{((sid, STAGES[sid]),): ZERO for sid in stages if sid not in seen}}


# ---- every dimension and metric, computed here -----------------------------------------------
@pytest.mark.parametrize("dim", list(DIMS))
def test_each_dimension_gives_every_metric_as_computed_from_the_store(sh, store, dim):
    records = data_records(store)
    got = report(sh, "--by", dim)
    key, has_id, _ = DIMS[dim]
    assert all(list(r) == [key, *([key + "_id"] if has_id else []), *METRICS] for r in got), got[0]
    want = expected_groups(records, dim)
    if dim == "stage":
        want = with_zero_stages(want)
    assert_groups(got, want, dim)
    names = [r[key] for r in got]
    if "none" in names:
        assert names.index("none") == len(names) - 1, f"none is not the last group: {names}"
        none_row = got[-1]
        assert not has_id or none_row[key + "_id"] is None
    if dim != "stage":
        assert all(r["count"] > 0 for r in got), "a group without deals is shown"


@pytest.mark.parametrize("dim", ["close-month", "close-quarter", "created-month"])
def test_periods_are_in_chronological_order(sh, store, dim):
    names = [r[DIMS[dim][0]] for r in report(sh, "--by", dim)]
    dated = [n for n in names if n != "none"]
    assert dated == sorted(dated) and len(dated) > 3


def test_status_and_priority_groups_keep_their_own_order(sh, store):
    assert [r["status"] for r in report(sh, "--by", "status")] == ["Open", "Won", "Lost", "Abandoned"]
    assert [r["priority"] for r in report(sh, "--by", "priority")] == ["High", "Medium", "Low", "None"]


# ---- the same with jq over the store file -----------------------------------------------------
JQ_KEYS = {
    "stage": ("stage_id", ".pipeline_stage_id"),
    "assignee": ("assignee_id", ".assignee_id"),
    "status": ("status", ".status"),
    "tag": ("tag", '[.tags[]? | select(type == "string" and . != "")] | unique '
                   "| if length == 0 then null else .[] end"),
    "close-month": ("close_month", '.close_date | if type == "string" and . != "" then '
                                   '(split("/") | .[2] + "-" + (if (.[0] | length) == 1 then "0" + .[0] '
                                   "else .[0] end)) else null end"),
    "created-month": ("created_month", '.date_created | strftime("%Y-%m")'),
    "cf:Competitors": ("cf:Competitors_id", "[.custom_fields[] | select(.custom_field_definition_id == 404) "
                                            "| .value[]?] | unique | if length == 0 then null else .[] end"),
}


@needs_jq
@pytest.mark.parametrize("dim", list(JQ_KEYS))
def test_jq_over_the_store_file_computes_the_same_groups(sh, store, dim):
    column, keys = JQ_KEYS[dim]
    want = jq_groups(store, keys)
    got = report(sh, "--by", dim)
    have = {(None if r[column] == "none" else r[column]): r for r in got}
    if dim == "stage":
        want = {**{sid: ZERO for sid in STAGE_ORDER}, **want}
    assert sorted(have, key=repr) == sorted(want, key=repr)
    for k, m in want.items():
        assert_close(have[k], m, (dim, k))


@needs_jq
def test_jq_agrees_on_stage_within_assignee_and_the_whole_total(sh, store):
    want = jq_groups(store, "[.pipeline_stage_id, .assignee_id]")
    got = report(sh, "--by", "stage", "--by", "assignee")
    have = {(r["stage_id"], r["assignee_id"]): r for r in got if r["count"]}
    assert sorted(have, key=repr) == sorted(want, key=repr)
    for k, m in want.items():
        assert_close(have[k], m, k)
    total = jq_groups(store, "0")[0]
    assert total["count"] == 96
    table = plain(sh("report", "--by", "stage", "--by", "assignee", "-o", "table").stdout)
    assert re.search(rf"^\s*total\s+96\s+{re.escape(money(total['value']))}\s+"
                     rf"{re.escape(money(total['weighted']))}\s", table, re.M), table


# ---- two dimensions -------------------------------------------------------------------------
@pytest.mark.parametrize("dims", [("stage", "assignee"), ("assignee", "tag"), ("status", "close-quarter"),
                                  ("cf:Competitors", "priority"), ("tag", "cf:Region")])
def test_two_dimensions_give_each_pair_of_groups(sh, store, dims):
    records = data_records(store)
    got = report(sh, "--by", dims[0], "--by", dims[1])
    want = expected_groups(records, *dims)
    k1, k2 = DIMS[dims[0]][0], DIMS[dims[1]][0]
    columns = [k for d in dims for k in (DIMS[d][0], *([DIMS[d][0] + "_id"] if DIMS[d][1] else []))]
    assert all(list(r) == [*columns, *METRICS] for r in got), got[0]
    if dims[0] == "stage":
        zero = [r for r in got if not r["count"]]
        shown = {r["stage_id"] for r in got if r["count"]}
        assert {r["stage_id"] for r in zero} == set(STAGE_ORDER) - shown
        for r in zero:  # a stage without deals: one row, no second group
            assert r["assignee"] is None and r["assignee_id"] is None and r["value"] == 0, r
        assert [r["stage_id"] for r in got] == sorted((r["stage_id"] for r in got), key=STAGE_ORDER.index)
        got = [r for r in got if r["count"]]
    assert_groups(got, want, *dims)
    firsts = [r[k1] for r in got]
    runs = [f for i, f in enumerate(firsts) if i == 0 or firsts[i - 1] != f]
    assert len(runs) == len(set(runs)), f"the outer groups are not together: {firsts}"
    assert "none" not in runs or runs[-1] == "none", runs
    for outer in set(firsts):
        inner = [r[k2] for r in got if r[k1] == outer]
        if "none" in inner:
            assert inner[-1] == "none", inner


def test_stage_within_assignee_shows_no_empty_stages(sh, store):
    got = report(sh, "--by", "assignee", "--by", "stage")
    assert got and all(r["count"] > 0 for r in got)
    assert_groups(got, expected_groups(data_records(store), "assignee", "stage"), "assignee", "stage")


def test_row_keys_are_named_after_each_dimension_with_ids_where_they_have_them(sh, store):
    got = report(sh, "--by", "close-month", "--by", "source")
    assert list(got[0]) == ["close_month", "source", "source_id", *METRICS]
    got = report(sh, "--by", "loss-reason", "--by", "created-month")
    assert list(got[0]) == ["loss_reason", "loss_reason_id", "created_month", *METRICS]
    got = report(sh, "--by", "cf:Region", "--by", "close-quarter")
    assert list(got[0]) == ["cf:Region", "cf:Region_id", "close_quarter", *METRICS]


# ---- stages, none, tags, empty groups ------------------------------------------------------
def test_report_by_stage_lists_every_stage_in_pipeline_order_with_zeros(sh, store):
    records = data_records(store)
    got = report(sh, "--by", "stage")
    assert [r["stage_id"] for r in got] == STAGE_ORDER
    assert [r["stage"] for r in got] == [STAGES[s] for s in STAGE_ORDER]
    used = {r["pipeline_stage_id"] for r in records}
    assert used != set(STAGE_ORDER), "the store should leave a stage empty"
    for r in got:
        if r["stage_id"] not in used:
            assert {k: r[k] for k in METRICS} == ZERO, r
    # Filtered to won deals, every stage still shows; filtered to a pipeline, its stages only.
    won = report(sh, "--by", "stage", "--status", "won")
    assert [r["stage_id"] for r in won] == STAGE_ORDER
    assert sum(r["count"] for r in won) == sum(1 for r in records if r["status"] == "Won")
    renewals = report(sh, "--by", "stage", "--pipeline", "Renewals")
    assert [r["stage_id"] for r in renewals] == [21, 22, 23, 24]
    assert_groups(renewals, with_zero_stages(expected_groups(
        [r for r in records if r["pipeline_id"] == 2], "stage"), [21, 22, 23, 24]), "stage")


def test_groups_with_no_deals_are_not_shown_for_other_dimensions(sh, store):
    records = data_records(store)
    won = [r for r in records if r["status"] == "Won"]
    for dim in ("assignee", "source", "loss-reason", "company", "cf:Region", "pipeline", "tag"):
        got = report(sh, "--by", dim, "--status", "won")
        assert all(r["count"] > 0 for r in got), (dim, got)
        assert_groups(got, expected_groups(won, dim), dim)
    got = report(sh, "--by", "assignee", "--assignee", "Ada Park")
    assert [r["assignee"] for r in got] == ["Ada Park"]


def test_deals_without_a_value_for_a_dimension_group_under_none(sh, store):
    records = data_records(store)
    cases = {
        "assignee": lambda r: r["assignee_id"] is None,
        "company": lambda r: r["company_id"] is None,
        "source": lambda r: r["customer_source_id"] is None,
        "tag": lambda r: not r["tags"],
        "close-month": lambda r: r["close_date"] is None,
        "cf:Region": lambda r: not any(c["custom_field_definition_id"] == 401 and c["value"] is not None
                                       for c in r["custom_fields"]),
        "cf:Competitors": lambda r: not any(c["custom_field_definition_id"] == 404 and c["value"]
                                            for c in r["custom_fields"]),
    }
    for dim, missing in cases.items():
        none = [r for r in records if missing(r)]
        assert none, dim
        last = report(sh, "--by", dim)[-1]
        key, has_id, _ = DIMS[dim]
        assert last[key] == "none" and (not has_id or last[key + "_id"] is None), (dim, last)
        assert_close(last, metrics(none), dim)


def test_a_deal_counts_under_each_of_its_tags_and_once_in_the_total(sh, store):
    records = data_records(store)
    doubled = [r for r in records if r["tags"] == ["hot", "hot", "vip"]]
    assert doubled
    got = {r["tag"]: r for r in report(sh, "--by", "tag")}
    hot = [r for r in records if "hot" in r["tags"]]
    assert got["hot"]["count"] == len(hot)  # the deal tagged hot twice counts once
    assert got["vip"]["count"] == len(doubled)
    assert sum(r["count"] for r in got.values()) > len(records)
    total = metrics(records)
    table = plain(sh("report", "--by", "tag", "-o", "table").stdout)
    lines = [line for line in table.splitlines() if line.strip()]
    assert re.search(rf"^\s*total\s+{len(records)}\s+{re.escape(money(total['value']))}\s", table,
                     re.M), table
    assert f"{len(records)} deals, value {money(total['value'])}" in lines[-1], lines[-1]


def test_filters_combine_and_choose_deals_not_groups(sh, store):
    records = data_records(store)
    ada_open = [r for r in records if r["status"] == "Open" and r["assignee_id"] == 101]
    assert ada_open
    got = report(sh, "--by", "stage", "--status", "open", "--assignee", "Ada Park")
    assert_groups(got, with_zero_stages(expected_groups(ada_open, "stage")), "stage")
    got = report(sh, "--by", "priority", "--status", "open", "--assignee", "Ada Park",
                 "--min-value", "50000")
    assert_groups(got, expected_groups([r for r in ada_open if value_of(r) >= 50000], "priority"),
                  "priority")
    # A tag filter picks the deals; their other tags are groups too.
    hot = [r for r in records if "hot" in r["tags"]]
    got = report(sh, "--by", "tag", "--tag", "hot")
    assert_groups(got, expected_groups(hot, "tag"), "tag")
    assert {r["tag"] for r in got} > {"hot"}


def test_no_match_gives_no_rows(sh, store):
    assert report(sh, "--by", "assignee", "--name", "No Such Deal") == []
    r = sh("report", "--by", "assignee", "--name", "No Such Deal", "-o", "csv")
    assert r.stdout.splitlines() == ["assignee,assignee_id,count,value,weighted,average,win_rate"]


# ---- rounding ---------------------------------------------------------------------------------
def test_money_is_rounded_to_cents_whole_amounts_are_integers_and_win_rate_to_4_places(sh, store_path):
    base = varied_records()[0]

    def deal(i: int, status: str, stage: int, value: float | None, prob: int | None) -> dict[str, Any]:
        return {**base, "id": i, "name": f"deal {i}", "status": status, "pipeline_stage_id": stage,
                "pipeline_id": 1, "monetary_value": value, "win_probability": prob}
    build_store(store_path, [
        deal(1, "Open", 11, 10.111, 30), deal(2, "Open", 11, 20.222, 30), deal(3, "Open", 11, 30.444, 30),
        deal(4, "Won", 12, 1000, 0), deal(5, "Lost", 12, 500, 90), deal(6, "Abandoned", 12, 250, 90),
        deal(7, "Won", 13, 0.1, None), deal(8, "Won", 13, 0.2, None),
        deal(9, "Open", 14, None, 75), deal(10, "Open", 14, 1000, None), deal(11, "Lost", 14, None, None),
    ])
    out = sh("report", "--by", "stage", "-o", "jsonl").stdout.splitlines()
    by_stage = {orjson.loads(line)["stage_id"]: line for line in out}
    assert by_stage[11] == ('{"stage":"Sales/Qualified","stage_id":11,"count":3,"value":60.78,'
                            '"weighted":18.23,"average":20.26,"win_rate":null}')
    assert by_stage[12] == ('{"stage":"Sales/Follow-up","stage_id":12,"count":3,"value":1750,'
                            '"weighted":1000,"average":583.33,"win_rate":0.3333}')
    row13 = orjson.loads(by_stage[13])
    assert (row13["value"], row13["weighted"], row13["average"], row13["win_rate"]) == (0.3, 0.3, 0.15, 1)
    assert by_stage[14] == ('{"stage":"Sales/Contract Sent","stage_id":14,"count":3,"value":1000,'
                            '"weighted":0,"average":333.33,"win_rate":0.0}')
    assert by_stage[15] == ('{"stage":"Sales/Negotiation","stage_id":15,"count":0,"value":0,'
                            '"weighted":0,"average":0,"win_rate":null}')


# ---- machine formats and --fields -----------------------------------------------------------
def parse_table(text: str, sep: str) -> tuple[list[str], list[list[str]]]:
    got = list(csv.reader(io.StringIO(text, newline=""), delimiter=sep))
    return got[0], got[1:]


def cell_matches(cell: str, value: Any) -> bool:
    if value is None:
        return cell == ""
    if isinstance(value, str):
        return cell == value
    if isinstance(value, int):
        return cell == str(value)
    return float(cell) == value and "," not in cell


@pytest.mark.parametrize("by", [["stage", "assignee"], ["tag"], ["cf:Competitors"], ["close-quarter"]])
def test_json_jsonl_csv_and_tsv_print_the_same_rows_without_a_total(sh, store, by):
    args = [x for d in by for x in ("--by", d)]
    got = report(sh, *args)
    assert not any("total" in {str(v) for v in r.values()} for r in got)
    expected = expected_groups(data_records(store), *by)
    assert len([r for r in got if r["count"]]) == len(expected)  # one row per group, no more
    assert rows(sh("report", *args, "-o", "jsonl").stdout) == got
    for fmt, sep in (("csv", ","), ("tsv", "\t")):
        header, body = parse_table(sh("report", *args, "-o", fmt).stdout, sep)
        assert header == list(got[0])
        assert len(body) == len(got)
        for cells, row in zip(body, got, strict=True):
            assert all(cell_matches(c, row[k]) for c, k in zip(cells, header, strict=True)), (cells, row)
    for r in got:
        assert all(type(r[k]) in (int, float) for k in ("count", "value", "weighted", "average"))


def test_fields_picks_and_orders_the_columns_in_every_format(sh, store):
    full = report(sh, "--by", "stage", "--by", "assignee")
    pick = ["count", "assignee", "stage_id", "win_rate"]
    got = orjson.loads(sh("report", "--by", "stage", "--by", "assignee", "--fields", ",".join(pick),
                          "-o", "json").stdout)
    assert got == [{k: r[k] for k in pick} for r in full]
    assert all(list(r) == pick for r in got)
    header, body = parse_table(sh("report", "--by", "stage", "--by", "assignee", "--fields",
                                  "value,stage", "-o", "csv").stdout, ",")
    assert header == ["value", "stage"] and len(body) == len(full)
    assert [b[1] for b in body] == [r["stage"] for r in full]
    table = plain(sh("report", "--by", "stage", "--fields", "stage,value", "-o", "table").stdout)
    heading = next(line for line in table.splitlines() if line.strip())
    assert heading.split() == ["Stage", "Value"], table


def test_the_table_has_a_total_row_and_a_summary_line(sh, store):
    records = data_records(store)
    total = metrics(records)
    table = plain(sh("report", "--by", "status", "-o", "table").stdout)
    lines = [line for line in table.splitlines() if line.strip()]
    assert re.search(rf"^\s*total\s+96\s+{re.escape(money(total['value']))}\s+"
                     rf"{re.escape(money(total['weighted']))}\s+{re.escape(money(total['average']))}\s+"
                     rf"{round(100 * total['win_rate'])}%", table, re.M), table
    assert lines[-1].startswith(f"96 deals, value {money(total['value'])}, weighted "
                                f"{money(total['weighted'])}"), lines[-1]
    assert f"win rate {round(100 * total['win_rate'])}%" in lines[-1]


# ---- refusals ---------------------------------------------------------------------------------
@pytest.mark.parametrize("args, said", [
    (["--by", "stage", "--fields", "stage,nope"], "unknown column 'nope'"),
    (["--by", "close-month", "--fields", "close-month"], "unknown column 'close-month'"),
    (["--by", "owner"], "cannot group by 'owner'"),
    (["--by", "cf:Contract Months"], "Contract Months"),
    (["--by", "cf:Signed NDA"], "Signed NDA"),
    (["--by", "cf:Champion Notes"], "Champion Notes"),
    (["--by", "stage", "--by", "assignee", "--by", "tag"], "one or two"),
    (["--by", "tag", "--by", "tag"], "twice"),
])
@pytest.mark.parametrize("fmt", ["json", "table"])
def test_a_bad_report_request_is_exit_2_with_one_error_line(sh, store, args, said, fmt):
    files = snapshot(store)
    line = one_error_line(sh("report", *args, "-o", fmt, expect=None), 2)
    assert said in line, line
    assert snapshot(store) == files


# ---- the table on a terminal -------------------------------------------------------------------
def test_the_table_on_a_terminal_draws_bars_with_names_a_total_and_a_summary(store):
    records = data_records(store)
    code, out = on_a_terminal(["report", "--by", "stage", "--by", "assignee"], columns=140)
    assert code == 0, out
    text = plain(out)
    assert "█" in text and "░" in text
    for name in STAGES.values():
        assert name in text
    for name in {USERS[r["assignee_id"]] for r in records if r["assignee_id"]}:
        assert name in text
    heading = next(line for line in text.splitlines() if line.strip())
    assert "Stage" in heading and "Assignee" in heading and "_id" not in heading and "Id" not in heading
    assert not re.search(r"^\s*1[1-5]\s", text, re.M), "a stage id is shown"
    total = metrics(records)
    assert re.search(rf"^\s*total\s+96\s+{re.escape(money(total['value']))}\s", text, re.M), text
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines[-1].startswith(f"96 deals, value {money(total['value'])}"), lines[-1]
    assert colour_codes(out), "no colour on a terminal by default"


@pytest.mark.parametrize("color", ["auto", "always", "never"])
def test_no_colour_on_a_terminal_with_NO_COLOR_whatever_color_says(store, monkeypatch, color):
    monkeypatch.setenv("NO_COLOR", "1")
    code, out = on_a_terminal(["--color", color, "report", "--by", "stage"], columns=120)
    assert code == 0, out
    assert colour_codes(out) == [], repr(out[:400])
    assert "█" in out and "Sales/Qualified" in out


def test_no_colour_with_color_never_and_colour_with_color_always_through_a_pipe(sh, store):
    assert colour_codes(sh("--color", "never", "report", "--by", "stage", "-o", "table").stdout) == []
    assert colour_codes(sh("report", "--by", "stage", "-o", "table").stdout) == []
    assert colour_codes(sh("--color", "always", "report", "--by", "stage", "-o", "table").stdout)
    got = sh("--color", "always", "report", "--by", "stage", "-o", "table", env={"NO_COLOR": "1"})
    assert colour_codes(got.stdout) == []


# ---- created-month is UTC ----------------------------------------------------------------------
def test_created_month_is_the_utc_month_whatever_the_local_zone(sh, store_path):
    base = varied_records()[0]
    stamps = {1: 1772321400,  # 2026-02-28T23:30:00Z: March in Tokyo
              2: 1772325000,  # 2026-03-01T00:30:00Z: February in New York
              3: 1772409600}  # 2026-03-02T00:00:00Z
    build_store(store_path, [{**base, "id": i, "name": f"d{i}", "date_created": t}
                             for i, t in stamps.items()])
    for zone in ("Asia/Tokyo", "America/New_York", "UTC"):
        got = orjson.loads(sh("report", "--by", "created-month", "-o", "json", env={"TZ": zone}).stdout)
        assert [(r["created_month"], r["count"]) for r in got] == [("2026-02", 1), ("2026-03", 2)], zone


# ---- the library ------------------------------------------------------------------------------
@pytest.mark.parametrize("by", [["stage"], ["assignee", "tag"], ["cf:Region"]])
def test_the_session_api_gives_the_rows_the_cli_prints(sh, store, by):
    cli = report(sh, *[x for d in by for x in ("--by", d)])
    with oppcli.connect(store=store) as s:
        got = s.report(by).records()
        filtered = s.report(by, status="Open", assignee="Ada Park").records()
    assert got == cli
    assert filtered == report(sh, *[x for d in by for x in ("--by", d)], "--status", "open",
                              "--assignee", "Ada Park")
