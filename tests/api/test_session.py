"""The library API: oppcli.connect() gives a Session whose operations are the CLI's, with the
same keywords (flag names with underscores, plurals as lists), the same validation and errors
(carrying the CLI's exit codes), and the same audit log; it never prints to stdout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

import oppcli
from oppcli import errors as E
from oppcli.io import Streams


@pytest.fixture
def s(sample: Path):
    streams = Streams.test()
    with oppcli.connect(store=sample, streams=streams) as session:
        yield session
    assert streams.stdout.getvalue() == "", "the library wrote to stdout"


def _ids(records) -> list[int]:
    return [r["id"] for r in records]


def test_search_keywords_give_the_same_deals_as_the_cli_flags(s, run) -> None:
    cli = run.json("search", "--status", "open", "--stage", "Sales/Negotiation",
                   "--min-value", "20000")
    deals = s.search(status="Open", stage="Sales/Negotiation", min_value=20000)
    assert not isinstance(deals, list)  # an iterator, streamed
    assert _ids(deals) == _ids(cli) and cli


def test_a_repeatable_filter_takes_a_value_a_list_or_its_plural(s, run) -> None:
    cli = _ids(run.json("search", "--status", "won", "--status", "lost"))
    assert _ids(s.search(status=["Won", "Lost"])) == cli
    assert _ids(s.search(statuses=["Won", "Lost"])) == cli
    assert _ids(s.search(status="Won,Lost")) == cli
    assert _ids(s.search(tags=["hot"])) == _ids(run.json("search", "--tag", "hot"))
    with pytest.raises(E.UsageError) as caught:
        list(s.search(status="Won", statuses=["Lost"]))
    assert caught.value.exit_code == E.USAGE


def test_sort_asc_and_limit_are_search_keywords(s, run) -> None:
    cli = run.json("list", "--sort", "monetary_value", "--desc", "--limit", "5")
    assert _ids(s.search(sort="monetary_value", asc=False, limit=5)) == _ids(cli)


def test_an_unknown_keyword_is_a_usage_error_naming_the_valid_ones(s) -> None:
    with pytest.raises(E.UsageError) as caught:
        s.search(colour="red")
    assert "colour" in str(caught.value) and "min_value" in str(caught.value)
    assert caught.value.exit_code == 2


def test_errors_carry_the_exit_code_the_cli_would_use(s, run) -> None:
    with pytest.raises(E.NotFoundError) as missing:
        s.get(999999)
    assert missing.value.exit_code == 4 == run("show", "999999", expect=None).exit_code
    with pytest.raises(E.NotFoundError) as stage:
        list(s.search(stage="No Such Stage"))
    assert stage.value.exit_code == run("search", "--stage", "No Such Stage",
                                        expect=None).exit_code
    with pytest.raises(E.ValidationError):
        list(s.search(min_value="lots"))
    with pytest.raises(E.UsageError, match="nothing to change"):
        s.update(1001)
    assert isinstance(missing.value, oppcli.OppcliError)


def test_create_update_delete_and_undo_are_audited_as_from_the_cli(s, run) -> None:
    d = s.create(name="Acme - Pilot", primary_contact="Nancy Davolio", monetary_value=12000)
    assert d["monetary_value"] == 12000 and d["name"] == "Acme - Pilot"
    assert run.json("show", str(d["id"])) == d
    updated = s.update(d["id"], stage="Sales/Presentation", add_tags=["hot"])
    assert "hot" in updated["tags"]
    s.delete(d["id"])
    history = run.json("history")
    assert [(e["op"], e["id"]) for e in history[:3]] == [
        ("delete", d["id"]), ("update", d["id"]), ("create", d["id"])]
    assert history == s.history()[:len(history)]
    result = s.undo()  # the delete: the deal comes back
    assert result.op == "delete" and result.record is not None
    assert result.record["name"] == "Acme - Pilot"
    assert run.json("history", "-n", "1")[0]["undo_of"] == history[0]["audit_id"]


def test_changes_after_an_undo_on_the_same_session_are_not_recorded_as_undos(s) -> None:
    s.update(1001, add_tags=["first"])
    s.undo()
    s.update(1002, add_tags=["second"])  # a long-lived session (the MCP server) goes on
    latest = s.history(limit=1)[0]
    assert latest["id"] == 1002 and "undo_of" not in latest
    undone = s.undo()  # the latest change is the update of 1002, not the undo before it
    assert undone.entry["id"] == 1002 and "second" not in s.get(1002)["tags"]


def test_a_limit_past_what_a_search_can_count_is_a_usage_error(s) -> None:
    with pytest.raises(E.UsageError, match="limit must be a whole number"):
        s.query(limit=10**22)
    assert s.query(limit=2**63 - 1).limit == 2**63 - 1


def test_update_takes_a_name_and_clears(s) -> None:
    from collections import Counter

    names = Counter(r["name"] for r in s.search())
    deal = next(r for r in s.search(sort="id", asc=True) if names[r["name"]] == 1)
    record = s.update(deal["name"], clears=["close_date"], priority="High")
    assert record["id"] == deal["id"] and record["close_date"] is None
    assert record["priority"] == "High"


def test_custom_fields_are_keywords_as_on_the_command_line(s, run) -> None:
    defs = run.json("lookups", "custom_field_definitions")
    text = next(d for d in defs if d["data_type"] == "Text")
    record = s.update(1002, custom_fields=[f"{text['name']}=from python"])
    values = {c["custom_field_definition_id"]: c["value"] for c in record["custom_fields"]}
    assert values[text["id"]] == "from python"


def test_undo_of_a_create_asks_the_streams_unless_yes(sample: Path) -> None:
    quiet = Streams.test(tty=False)
    with oppcli.connect(store=sample, streams=quiet) as s:
        d = s.create(name="Temp", primary_contact="Nancy Davolio")
        with pytest.raises(E.UsageError, match="--yes"):
            s.undo(yes=False)
        assert s.get(d["id"])["name"] == "Temp"
    person = Streams.test(tty=True, stdin="n\n")
    with oppcli.connect(store=sample, streams=person) as s, pytest.raises(E.Declined):
        s.undo(yes=False)
    assert "Delete opportunity" in person.stderr.getvalue()
    person = Streams.test(tty=True, stdin="y\n")
    with oppcli.connect(store=sample, streams=person) as s:
        assert s.undo(yes=False).op == "create"
        with pytest.raises(E.NotFoundError):
            s.get(d["id"])


def test_export_writes_the_file_the_cli_writes(s, run, tmp_path: Path) -> None:
    target = tmp_path / "won.csv"
    count = s.export(target, format="csv", status="Won")
    cli = run("export", "--status", "won", "-o", "csv").stdout_bytes
    assert target.read_bytes() == cli and count == cli.count(b"\n") - 1 > 0


def test_import_file_returns_a_result_per_row(s, tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    contact = s.get(1002)["primary_contact_id"]
    rows.write_bytes(orjson.dumps({"id": 1001, "priority": "Low"}) + b"\n"
                     + orjson.dumps({"name": "New from file",
                                     "primary_contact_id": contact}) + b"\n")
    results = s.import_file(rows)
    assert [r.action for r in results] == ["updated", "created"]
    assert s.get(1001)["priority"] == "Low"
    with pytest.raises(E.UsageError, match="cannot match on"):
        s.import_file(rows, match="colour")


def test_the_library_works_against_copper_too(copper) -> None:
    with oppcli.connect(streams=Streams.test()) as s:
        assert s.backend.name == "copper"
        won = _ids(s.search(status="Won", sort="id", asc=True))
        assert won == sorted(r["id"] for r in copper.records.values() if r["status"] == "Won")
        d = s.create(name="Over HTTP", primary_contact="Nancy Davolio")
        assert s.get(d["id"])["name"] == "Over HTTP"
        assert s.history(limit=1)[0]["op"] == "create"


def test_importing_oppcli_loads_no_requests_rich_or_typer() -> None:
    code = ("import sys, oppcli; oppcli.connect; "
            "print(','.join(m for m in ('requests', 'rich', 'typer') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
