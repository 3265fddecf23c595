"""Text from the account is shown literally to people and kept exactly in machine formats.

Names, tags, user and stage names, custom field values come from whoever typed them into the
CRM. In every human-facing output (tables, show, history, lookups) Rich markup is never
interpreted, and control characters, DEL, C1 controls and invisible format characters (Unicode
Cf) are never sent raw: they are shown as Python escapes (\\x1b, \\n, \\u202e), as error
messages show them. json, jsonl, csv and tsv keep the text as it is.

Expected escapes are computed here from those rules, not by oppcli.
"""

from __future__ import annotations

import copy
import csv
import io
import os
import unicodedata
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from oppcli.domain.sample import SAMPLE_LOOKUPS, sample_records
from ptyterm import on_a_terminal

ESCAPED = {"Cc", "Cf", "Cs", "Zl", "Zp"}  # the README's list: C0, DEL, C1, format, separators

HOSTILE = {
    "closing tag": "Bad [/] close",
    "style tag": "[red]",
    "link": "x [link=http://evil]click[/link]",
    "bold markup": "[bold red]markup[/bold red]",
    "emoji code": "deal :smile: :warning:",
    "retitle": "a\x1b]0;pwned\x07b",
    "clear screen": "c\x1b[2Jd",
    "bidi": "invoice \u202egnp.exe\u202c done",
    "zero width": "ze\u200bro\u200dwidth\ufeff",
    "isolates": "\u2066x\u2069",
    "c1 and del": "c1\x9b31m\x85del\x7f",
    "newline and tab": "two\nlines\tand\r",
    "backslash": "C:\\deals\\x1b",
    "tag char": "flag\U000e0001",
}


def escaped(text: str) -> str:
    """The documented visible form: each character of an escaped category as \\xNN, \\uNNNN
    or \\UNNNNNNNN (\\t \\n \\r for those three); everything else, backslashes too, as is."""
    short = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
    out = []
    for c in text:
        if unicodedata.category(c) not in ESCAPED:
            out.append(c)
        elif c in short:
            out.append(short[c])
        elif ord(c) < 0x100:
            out.append(f"\\x{ord(c):02x}")
        elif ord(c) < 0x10000:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(f"\\U{ord(c):08x}")
    return "".join(out)


def raw_controls(text: str) -> list[str]:
    """Characters that must never reach a terminal raw (a newline ends a line: allowed)."""
    return [c for c in text if c != "\n" and unicodedata.category(c) in ESCAPED]


def test_the_escape_forms():
    assert escaped("\x1b]0;t\x07") == "\\x1b]0;t\\x07"
    from oppcli.output import visible

    for text in [*HOSTILE.values(), "", "plain", "é 名前 🙂", "\u00a0nbsp", "\x00", "\ud800"]:
        assert visible(text) == escaped(text), text


# ---- the CLI, on a store holding hostile text ---------------------------------------------------
def hostile_store(path: Path, text: str) -> None:
    """The sample store with `text` as a deal's name and tag, a user's and a stage's name, a
    custom field's name and a text custom field's value."""
    from oppcli.backends.local import LocalStore

    lookups = copy.deepcopy(SAMPLE_LOOKUPS)
    lookups["users"][0]["name"] = text
    lookups["pipelines"][0]["stages"][0]["name"] = text
    lookups["customer_sources"][0]["name"] = text
    notes = next(d for d in lookups["custom_field_definitions"] if d["id"] == 405)
    notes["name"] = "cf " + text
    records = sample_records()
    rec = records[0]  # 1001: owner 101, stage 11
    rec.update(name=text, tags=[text, "plain"], details=text)
    for cf in rec["custom_fields"]:
        if cf["custom_field_definition_id"] == 405:
            cf["value"] = text
    LocalStore.create_store(path, lookups=lookups, records=records)


@pytest.fixture
def hostile(store_path: Path):
    def make(text: str) -> None:
        hostile_store(store_path, text)
    return make


@pytest.mark.parametrize("text", list(HOSTILE.values()), ids=list(HOSTILE))
def test_list_show_lookups_and_history_tables_show_text_literally(run, hostile, monkeypatch, text):
    hostile(text)
    monkeypatch.setenv("COLUMNS", "400")
    run("update", "1001", "--priority", "Low", "-o", "json")  # an audit entry naming the deal
    shown = escaped(text)
    outputs = {
        "list": run("list", "-o", "table").stdout,
        "list --fields": run("list", "-o", "table", "--fields",
                             "id,name,tags,details,custom_fields,customer_source_id").stdout,
        "search": run("search", "--id", "1001", "-o", "table").stdout,
        "show": run("show", "1001", "-o", "table").stdout,
        "lookups users": run("lookups", "users", "-o", "table").stdout,
        "lookups": run("lookups", "-o", "table").stdout,
        "history": run("history", "-o", "table").stdout,
    }
    for what, out in outputs.items():
        assert shown in out, (what, shown, out)
        assert not raw_controls(out), (what, out)
    assert f"cf {shown}" in outputs["show"]


def test_a_closing_tag_in_a_name_lists_fine(run, hostile):
    hostile("Bad [/] close")
    result = run("list", "-o", "table")
    assert result.exit_code == 0 and "Bad [/] close" in result.stdout
    assert "MarkupError" not in result.stderr


def tsv_cell(cell: str) -> str:
    """A TSV cell read back by the README's rule: \\\\, \\t, \\n, \\r."""
    import re

    return re.sub(r"\\(.)", lambda m: {"t": "\t", "n": "\n", "r": "\r"}.get(m[1], m[1]), cell)


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "tsv"])
def test_machine_formats_keep_the_text_exactly(run, hostile, fmt):
    text = "".join(HOSTILE.values())
    hostile(text)
    out = run("show", "1001", "-o", fmt, "--fields", "id,name").stdout
    if fmt in ("json", "jsonl"):
        assert orjson.loads(out)["name"] == text
    elif fmt == "csv":
        assert list(csv.reader(io.StringIO(out, newline=""))) == [["id", "name"], ["1001", text]]
    else:
        lines = out.split("\n")
        assert lines[0] == "id\tname" and lines[2:] == [""]
        assert [tsv_cell(c) for c in lines[1].split("\t")] == ["1001", text]


# ---- a real terminal -----------------------------------------------------------------------------
@pytest.mark.parametrize("text", [HOSTILE["closing tag"], HOSTILE["link"],
                                  HOSTILE["retitle"] + HOSTILE["clear screen"] + HOSTILE["bidi"]])
def test_in_a_terminal_a_hostile_name_is_listed_literally(hostile, text):
    hostile(text)
    code, out = on_a_terminal(["list"], columns=400)
    assert code == 0, out
    assert "unexpected error" not in out
    assert escaped(text) in out, out
    # Rich styles (ESC [ ... m) are expected; nothing else from the text may act on the terminal.
    assert "\x1b]" not in out  # no OSC: no retitle, no hyperlink
    assert "\x1b[2J" not in out and "\x07" not in out and "\u202e" not in out


# ---- any text, every table (property) ------------------------------------------------------------
TEXT = st.text(max_size=30) | st.text(
    alphabet=st.sampled_from(list("[]/=: \\ab") + ["\x1b", "\x07", "\x7f", "\x9b", "\u202e",
                                                    "\u2066", "\u200b", "\ufeff", "\n", "\t",
                                                    "\u2028", "名", "é", "\u0301"]),
    max_size=30)
FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")), deadline=None,
                derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def render_everything(text: str) -> dict[str, str]:
    """Every table drawn from data holding `text`, each rendered to a string."""
    from oppcli.domain.lookups import Lookups
    from oppcli.output import (
        Context,
        write_history_table,
        write_lookup_tables,
        write_record_table,
        write_table,
    )

    lookups = copy.deepcopy(SAMPLE_LOOKUPS)
    lookups["users"][0]["name"] = text
    lookups["pipelines"][0]["stages"][0]["name"] = text
    ctx = Context(Lookups(lookups))
    rec: dict[str, Any] = sample_records()[0]
    rec.update(name=text, tags=[text], details=text)
    for cf in rec["custom_fields"]:
        if cf["custom_field_definition_id"] == 405:
            cf["value"] = text
    entry = {"audit_id": "a1b2c3d4", "at": 1767225600.5, "op": "update", "id": 1001,
             "before": {"name": text, "priority": "High"}, "after": {"name": text, "priority": "Low"},
             "profile": text}
    outs = {}

    def draw(name: str, write: Any) -> None:
        buf = io.StringIO()
        write(buf)
        outs[name] = buf.getvalue()

    draw("list", lambda b: write_table(iter([rec]), b, None, ctx))
    draw("list --fields", lambda b: write_table(iter([rec]), b, ["id", "name", "tags", "details",
                                                                 "custom_fields"], ctx))
    draw("show", lambda b: write_record_table(rec, b, None, ctx))
    draw("history", lambda b: write_history_table([entry], b, "changes"))
    draw("lookups", lambda b: write_lookup_tables(ctx.lookups, ["users", "stages"], b))
    return outs


@FUZZ
@given(text=TEXT)
@example(text="Bad [/] close")
@example(text="\x1b]0;pwned\x07\x1b[2J")
def test_any_text_shows_literally_in_every_table(monkeypatch, text):
    monkeypatch.setenv("COLUMNS", "1000")  # wide enough that nothing is cut
    shown = escaped(text)
    for what, out in render_everything(text).items():
        assert not raw_controls(out), (what, out)
        assert shown in out, (what, shown, out)


@FUZZ
@given(text=TEXT, columns=st.integers(min_value=10, max_value=160))
def test_any_text_renders_at_any_width_without_raw_controls(monkeypatch, text, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    for what, out in render_everything(text).items():
        assert not raw_controls(out), (what, out)


# ---- the last human-facing outputs: config show, auth check, notices; shared stage names ----
def test_config_show_table_shows_a_value_with_markup_literally(run, tmp_path):
    run("config", "set", "copper.user_email", "ada [/] [red]x@example.com")
    r = run("config", "show", "-o", "table")
    assert "[/] [red]x" in r.stdout and "MarkupError" not in r.stderr


def test_auth_check_shows_the_users_name_literally(run, copper):
    for user in copper.lookups["users"]:
        if user["email"] == "ada.park@example.com":
            user["name"] = "Ada \x1b]0;pwned\x07 Park"
    r = run("auth", "check", "-o", "table")
    assert "\x1b" not in r.stdout and "\\x1b]0;pwned\\x07" in r.stdout


def test_an_error_from_the_account_never_reaches_the_terminal_raw(run, sample, tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"name": "x", "primary_contact_id": 601, "bogus\\u001b[2J": 1}\n')
    r = run("import", str(path), expect=7)
    assert "\x1b" not in r.stderr and "\\x1b[2J" in r.stderr


def test_a_stage_name_two_pipelines_share_shows_with_its_pipeline_in_show(run, sample,
                                                                         store_path):
    lookups = orjson.loads((store_path / "lookups.json").read_bytes())
    pipes = lookups["pipelines"]
    shared = pipes[0]["stages"][0]["name"]
    pipes[1]["stages"][0]["name"] = shared
    (store_path / "lookups.json").write_bytes(orjson.dumps(lookups))
    stage_id = pipes[0]["stages"][0]["id"]
    deal = next(d for d in run.json("list", "--all") if d["pipeline_stage_id"] == stage_id)
    r = run("show", str(deal["id"]), "-o", "table")
    assert f"{pipes[0]['name']}/{shared}" in r.stdout
