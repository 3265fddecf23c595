"""A bulk change of hundreds of deals on the local store: the data file is rewritten through a
buffer (many edits), and every line it does not change comes out byte for byte."""

from __future__ import annotations

from pathlib import Path

import orjson

from conftest import build_store, derived_records


def _lines(store: Path) -> dict[int, bytes]:
    return {orjson.loads(line)["id"]: line
            for line in (store / "opportunities.jsonl").read_bytes().splitlines()}


def test_hundreds_of_edits_leave_every_other_line_byte_for_byte(store_path: Path, sh) -> None:
    build_store(store_path, derived_records(1500))
    before = _lines(store_path)
    ids = sorted(before)[::3]  # 500 deals, spread through the file
    proc = sh("update", "-", "--monetary-value", "4242", "--yes", "-o", "jsonl",
              input="".join(f"{i}\n" for i in ids))
    rows = [orjson.loads(line) for line in proc.stdout.splitlines()]
    assert [r["id"] for r in rows] == ids and {r["result"] for r in rows} == {"changed"}
    after = _lines(store_path)
    assert list(after) == list(before)  # same ids, same order
    for opp_id, line in after.items():
        if opp_id in ids:
            record = orjson.loads(line)
            assert record["monetary_value"] == 4242
            old = orjson.loads(before[opp_id])
            assert {k: v for k, v in record.items() if k not in ("monetary_value", "date_modified")} \
                == {k: v for k, v in old.items() if k not in ("monetary_value", "date_modified")}
        else:
            assert line == before[opp_id]


def test_hundreds_of_deletes_remove_exactly_those_lines(store_path: Path, sh) -> None:
    build_store(store_path, derived_records(900))
    before = _lines(store_path)
    gone = sorted(before)[1::2]  # 450 deals
    sh("delete", "-", "--yes", "-o", "json", input="\n".join(map(str, gone)))
    after = _lines(store_path)
    assert after == {k: v for k, v in before.items() if k not in set(gone)}
