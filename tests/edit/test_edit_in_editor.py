"""`oppcli edit ID` through the installed oppcli, with the editor a script set as $EDITOR: the deal
opens as a TOML document with names for ids and the read-only fields as comments; what the
script changes is written (only that, audited, undone by `oppcli undo`); nothing changed writes
nothing; an invalid document exits 2 without a terminal and opens again with the problems at
the top on one; a deal changed meanwhile exits 6; the file is private and kept when the edits
could not be written; untrusted text comes back exactly; both backends."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import orjson
import pytest

from conftest import build_store, oppcli_exe
from ptyterm import run_to_the_end, take_terminal, terminal_env

# The editor: each time it is opened it logs what it saw (the text, the file's and its folder's
# modes) to NAME-log.json beside it and does the next step of the plan in NAME-plan.json (the
# last step again once the plan runs out): run commands (oppcli, meanwhile), replace lines,
# write a whole text, exit with a status.
EDITOR = r'''
import json, re, subprocess, sys
from pathlib import Path

path = Path(sys.argv[-1])
me = Path(__file__)
plan = json.loads(me.with_name(me.stem + "-plan.json").read_text())
log = me.with_name(me.stem + "-log.json")
seen = json.loads(log.read_text()) if log.exists() else []
step = plan[min(len(seen), len(plan) - 1)]
text = path.read_bytes().decode("utf-8")
seen.append({"text": text, "path": str(path), "args": sys.argv[1:-1],
             "mode": path.stat().st_mode & 0o777, "dir_mode": path.parent.stat().st_mode & 0o777})
log.write_text(json.dumps(seen))
for command in step.get("run", []):
    subprocess.run(command, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
for pattern, replacement in step.get("sub", []):
    text, n = re.subn(pattern, lambda m: replacement, text, flags=re.M)
    assert n == 1, (pattern, text)
if "text" in step:
    text = step["text"]
if step.get("save", True):
    path.write_bytes(text.encode("utf-8"))
sys.exit(step.get("exit", 0))
'''


class Editor:
    """The editor script and its plan; `.command` is what $EDITOR holds; `.seen` what it saw."""

    def __init__(self, where: Path, name: str = "editor") -> None:
        self.script = where / f"{name}.py"
        self.script.write_text(EDITOR)
        self.plan = where / f"{name}-plan.json"
        self.log = where / f"{name}-log.json"
        self.command = shlex.join([sys.executable, str(self.script)])

    def will(self, *steps: dict) -> Editor:
        self.plan.write_text(json.dumps(list(steps)))
        return self

    def env(self, var: str = "EDITOR") -> dict[str, str]:
        return {var: self.command}

    @property
    def seen(self) -> list[dict]:
        return json.loads(self.log.read_text()) if self.log.exists() else []


@pytest.fixture(autouse=True)
def own_editor_and_tmp(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No editor from the shell running the tests; temporary files where the test sees them."""
    for var in ("VISUAL", "EDITOR"):
        monkeypatch.delenv(var, raising=False)
    tmp = isolated / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    return tmp


@pytest.fixture
def editor(tmp_path: Path) -> Editor:
    return Editor(tmp_path)


def store_files(store: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(store.iterdir()) if p.is_file()}


def stored(store: Path) -> dict[int, dict]:
    lines = (store / "opportunities.jsonl").read_bytes().splitlines()
    records = [orjson.loads(line) for line in lines if line.strip()]
    return {r["id"]: r for r in records if isinstance(r, dict) and "id" in r}


def audit_entries(isolated: Path) -> list[dict]:
    path = isolated / "config" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def kept_files(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("oppcli-edit-*/*"))


def values_of(record: dict) -> dict:
    """A record's custom fields by definition id."""
    return {cf["custom_field_definition_id"]: cf["value"] for cf in record["custom_fields"]}


# ---- what the editor shows --------------------------------------------------------------------
def test_the_document_shows_names_and_the_read_only_fields_as_comments_and_saving_it_as_it_is_writes_nothing(
        sh, sample, editor, isolated, own_editor_and_tmp):
    before = store_files(sample)
    proc = sh("edit", "1001", env=editor.will({}).env())
    assert proc.stdout == ""  # nothing written: no record printed
    assert "no changes" in proc.stderr
    assert store_files(sample) == before
    assert audit_entries(isolated) == []

    (seen,) = editor.seen
    text = seen["text"]
    for line in ('name = "Northwind Traders - Annual Licence"', 'stage = "Sales/Qualified"',
                 'assignee = "Ada Park"', 'primary_contact = "Nancy Davolio"',
                 'company = "Northwind Traders"', 'source = "Website"', 'loss_reason = ""',
                 'close_date = "2026-01-01"', 'tags = ["enterprise"]', 'status = "Open"',
                 'priority = "High"', "monetary_value = 5500", "win_probability = 10",
                 'details = ""', "[custom_fields]", 'Region = "EMEA"', '"Contract Months" = 12',
                 '"Signed NDA" = true', 'Competitors = ["Acme CRM"]',
                 '"Champion Notes" = "Champion is the CFO"'):
        assert any(row.startswith(line) for row in text.splitlines()), (line, text)
    for comment in ("#   id = 1001", '#   company_name = "Northwind Traders"',
                    "#   pipeline_is_revenue = true", '#   pipeline_type = "opportunity"',
                    "#   date_created = 1767225600  (2026-01-01 00:00 UTC)", "#   date_modified = "):
        assert comment in text.splitlines() or any(row.startswith(comment) for row in text.splitlines())
    document = tomllib.loads(text)
    assert not {"id", "date_created", "date_modified", "company_name", "pipeline_type",
                "assignee_id", "pipeline_stage_id"} & set(document)
    assert document["custom_fields"]["Competitors"] == ["Acme CRM"]
    # Private: the file 0600 in a 0700 folder of its own, gone after the edit.
    assert seen["mode"] == 0o600 and seen["dir_mode"] == 0o700
    assert Path(seen["path"]).parent.parent == own_editor_and_tmp
    assert kept_files(own_editor_and_tmp) == [] and list(own_editor_and_tmp.iterdir()) == []


def test_copper_extras_and_ids_without_names_show_as_comments_and_ids(sh, store_path, editor):
    from oppcli.domain.sample import sample_records

    records = sample_records(3)
    records[0].update(interaction_count=7, date_last_contacted=1767300000, assignee_id=999,
                      converted_value="250000.0")
    build_store(store_path, records)
    sh("edit", "1001", env=editor.will({}).env())
    text = editor.seen[0]["text"]
    assert "#   interaction_count = 7" in text.splitlines()
    assert "#   date_last_contacted = 1767300000  (2026-01-01 20:40 UTC)" in text.splitlines()
    assert '#   converted_value = "250000.0"' in text.splitlines()
    assert tomllib.loads(text)["assignee"] == 999  # no user 999: the id, as a number


# ---- writing what changed -----------------------------------------------------------------------
def test_changed_fields_are_written_and_only_they_audited_and_undo_reverts_them(sh, sample, editor,
                                                                                isolated):
    was = stored(sample)
    editor.will({"sub": [
        (r'^stage = .*$', 'stage = "Sales/Negotiation"'),
        (r'^assignee = .*$', 'assignee = "ben.okafor@example.com"'),
        (r'^close_date = .*$', 'close_date = "2026-12-31"'),
        (r'^tags = .*$', 'tags = ["enterprise", "hot"]'),
        (r'^Region = .*$', 'Region = "APAC"'),
        (r'^Competitors = .*$', 'Competitors = ["Globex", "Initech"]'),
    ]})
    proc = sh("edit", "1001", "-o", "json", env=editor.env())
    printed = json.loads(proc.stdout)
    assert "updated opportunity 1001" in proc.stderr

    now = stored(sample)
    assert {i: r for i, r in now.items() if i != 1001} == {i: r for i, r in was.items() if i != 1001}
    before, after = was[1001], now[1001]
    assert printed == after
    assert after["pipeline_stage_id"] == 15 and after["assignee_id"] == 102
    assert after["close_date"] == "12/31/2026" and after["tags"] == ["enterprise", "hot"]
    assert values_of(after)[401] == 4013 and values_of(after)[404] == [4042, 4043]
    assert after["win_probability"] == 90  # the new stage's, as update does
    changed = {k for k in after if after[k] != before.get(k)}
    assert changed == {"pipeline_stage_id", "assignee_id", "close_date", "tags", "custom_fields",
                       "win_probability", "date_modified", "date_stage_changed"}
    assert {k: v for k, v in values_of(after).items() if v != values_of(before)[k]} == {
        401: 4013, 404: [4042, 4043]}

    (entry,) = audit_entries(isolated)
    assert entry["op"] == "update" and entry["id"] == 1001
    assert entry["before"] == before and entry["after"] == after

    sh("undo")
    restored = stored(sample)[1001]
    for key in ("pipeline_stage_id", "assignee_id", "close_date", "tags", "custom_fields",
                "win_probability", "name", "details"):
        assert restored[key] == before[key], key


def test_a_name_an_empty_value_and_a_table_output(sh, sample, editor):
    editor.will({"sub": [(r'^source = .*$', 'source = ""'),
                         (r'^monetary_value = .*$', "monetary_value = 12000.5"),
                         (r'^"Signed NDA" = .*$', '"Signed NDA" = false'),
                         (r'^"Contract Months" = .*$', '"Contract Months" = ""')]})
    proc = sh("edit", "Northwind Traders - Onboarding Package", "-o", "table", env=editor.env())
    assert "12,000.50" in proc.stdout  # the table of show/update
    after = stored(sample)[1013]
    assert after["customer_source_id"] is None and after["monetary_value"] == 12000.5
    assert values_of(after)[403] is False and values_of(after)[402] is None


# ---- an invalid document --------------------------------------------------------------------------
def test_an_invalid_document_without_a_terminal_exits_2_names_every_problem_and_keeps_the_file(
        sh, sample, editor, isolated, own_editor_and_tmp):
    before = store_files(sample)
    editor.will({"sub": [(r'^stage = .*$', 'stage = "Sales/Nowhere"'),
                         (r'^close_date = .*$', 'close_date = "2026-02-30"'),
                         (r'^Region = .*$', 'Region = "Mars"'),
                         (r'^status = .*$', 'status = ""'),
                         (r'^monetary_value = .*$', "monetary_value = true\nowner = 1")]})
    proc = sh("edit", "1001", env=editor.env(), expect=2)
    assert len(editor.seen) == 1  # not opened again: no terminal
    for problem in ("no stage named 'Sales/Nowhere'", "impossible date '2026-02-30'",
                    "'Mars' is not an option of custom field 'Region'", "status cannot be empty",
                    "monetary_value must be a number", "unknown field 'owner'"):
        assert problem in proc.stderr, problem
    assert store_files(sample) == before and audit_entries(isolated) == []
    (kept,) = kept_files(own_editor_and_tmp)
    assert str(kept) in proc.stderr and "oppcli edit 1001" in proc.stderr
    assert 'stage = "Sales/Nowhere"' in kept.read_text()  # the edits, as the editor left them
    assert kept.stat().st_mode & 0o777 == 0o600


def test_unreadable_toml_without_a_terminal_exits_2(sh, sample, editor, own_editor_and_tmp):
    proc = sh("edit", "1001", env=editor.will({"sub": [(r'^tags = .*$', 'tags = ["a",')]}).env(),
              expect=2)
    assert "not valid TOML" in proc.stderr
    assert len(kept_files(own_editor_and_tmp)) == 1


def on_a_terminal(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """The installed oppcli with stdin, stdout and stderr on a pty (its controlling terminal)."""
    master, slave = os.openpty()
    proc = subprocess.Popen([oppcli_exe(), *argv], stdin=slave, stdout=slave, stderr=slave,
                            env=terminal_env(env), start_new_session=True,
                            preexec_fn=take_terminal)
    os.close(slave)
    code, out = run_to_the_end(master, proc)
    return code, out.decode("utf-8", errors="replace")


def test_on_a_terminal_an_invalid_document_opens_again_with_the_problems_at_the_top(
        sample, editor, own_editor_and_tmp):
    editor.will({"sub": [(r'^stage = .*$', 'stage = "Sales/Nowhere"'),
                         (r'^tags = .*$', 'tags = ["enterprise", "hot"]')]},
                {"sub": [(r'^stage = .*$', 'stage = "Sales/Negotiation"')]})
    code, out = on_a_terminal(["edit", "1001"], editor.env())
    assert code == 0, out
    first, second = editor.seen
    head = second["text"].splitlines()
    assert head[0].startswith("# !! ") and "no stage named 'Sales/Nowhere'" in head[1]
    assert 'stage = "Sales/Nowhere"' in head and 'tags = ["enterprise", "hot"]' in head  # kept
    after = stored(sample)[1001]
    assert after["pipeline_stage_id"] == 15 and after["tags"] == ["enterprise", "hot"]
    assert kept_files(own_editor_and_tmp) == []


def test_on_a_terminal_saving_the_problems_unchanged_gives_up_with_exit_2(sample, editor,
                                                                          own_editor_and_tmp):
    before = store_files(sample)
    editor.will({"sub": [(r'^close_date = .*$', 'close_date = "someday"')]}, {})
    code, out = on_a_terminal(["edit", "1001"], editor.env())
    assert code == 2, out
    assert len(editor.seen) == 2 and store_files(sample) == before
    (kept,) = kept_files(own_editor_and_tmp)
    assert kept.read_text().startswith("# !! ") and "cannot read date 'someday'" in kept.read_text()


# ---- the deal changed meanwhile ---------------------------------------------------------------------
def test_a_deal_changed_while_it_was_edited_is_not_written_exit_6_and_the_file_is_kept(
        sh, sample, editor, isolated, own_editor_and_tmp):
    someone_else = [oppcli_exe(), "update", "1001", "--details", "someone else's note"]
    editor.will({"run": [someone_else], "sub": [(r'^stage = .*$', 'stage = "Sales/Negotiation"')]})
    proc = sh("edit", "1001", env=editor.env(), expect=6)
    after = stored(sample)[1001]
    assert after["details"] == "someone else's note" and after["pipeline_stage_id"] == 11
    assert [e["after"]["details"] for e in audit_entries(isolated)] == ["someone else's note"]
    (kept,) = kept_files(own_editor_and_tmp)
    assert 'stage = "Sales/Negotiation"' in kept.read_text()
    assert "changed while it was being edited" in proc.stderr
    assert str(kept) in proc.stderr and "`oppcli edit 1001` again" in proc.stderr


# ---- untrusted text -----------------------------------------------------------------------------------
NAME = 'Acme "Q3" \\ C:\\path\x1b[2J\u202eevil\u2028sep é😀\x7f\x85 end'
DETAILS = 'line one\nline two\r\n"""triple"""\ttab\x07bell\x00nul\n\nlast\\'
NOTES = "=cmd|' /C calc'!A0\n[not a table]\nkey = \"value\""


def test_untrusted_text_comes_back_exactly_when_another_field_is_edited(sh, store_path, editor):
    from oppcli.domain.sample import sample_records

    records = sample_records(3)
    records[0].update(name=NAME, details=DETAILS)
    records[0]["custom_fields"][4]["value"] = NOTES
    build_store(store_path, records)
    sh("edit", "1001", env=editor.will({"sub": [(r'^monetary_value = .*$',
                                                 "monetary_value = 777")]}).env())
    after = stored(store_path)[1001]
    assert after["name"] == NAME and after["details"] == DETAILS
    assert values_of(after)[405] == NOTES and after["monetary_value"] == 777
    text = editor.seen[0]["text"]
    # Shown as escapes: nothing in the file moves a terminal's cursor or hides text.
    for char in ("\x1b", "\u202e", "\x00", "\x07", "\x7f", "\x85", "\u2028", "\r"):
        assert char not in text, repr(char)
    document = tomllib.loads(text)
    assert document["name"] == NAME and document["details"] == DETAILS


def test_untrusted_text_typed_into_the_document_is_stored_exactly(sh, sample, editor):
    typed = 'details = """\nQuote " and \\\\ and \\u202e\n  indented"""'
    sh("edit", "1001", env=editor.will({"sub": [(r'^details = .*$', typed)]}).env())
    assert stored(sample)[1001]["details"] == 'Quote " and \\ and \u202e\n  indented'


# ---- the editor: failing, cancelled, chosen ----------------------------------------------------------
def test_an_editor_that_fails_changes_nothing_exit_2_and_keeps_edits_it_saved(sh, sample, editor,
                                                                             own_editor_and_tmp):
    before = store_files(sample)
    proc = sh("edit", "1001", env=editor.will({"exit": 1}).env(), expect=2)
    assert "the editor exited with status 1" in proc.stderr
    assert kept_files(own_editor_and_tmp) == []  # nothing edited: nothing kept

    proc = sh("edit", "1001", env=editor.will(
        {"sub": [(r'^stage = .*$', 'stage = "Sales/Negotiation"')], "exit": 3}).env(), expect=2)
    assert "status 3" in proc.stderr and store_files(sample) == before
    (kept,) = kept_files(own_editor_and_tmp)
    assert str(kept) in proc.stderr


def test_an_emptied_file_cancels_the_edit(sh, sample, editor, own_editor_and_tmp):
    before = store_files(sample)
    proc = sh("edit", "1001", env=editor.will({"text": "\n# nothing\n  \n"}).env(), expect=2)
    assert "cancelled" in proc.stderr and "error" not in proc.stderr
    assert store_files(sample) == before and list(own_editor_and_tmp.iterdir()) == []


def test_an_editor_that_cannot_run_exits_3(sh, sample):
    proc = sh("edit", "1001", env={"EDITOR": "/nonexistent/editor --wait"}, expect=3)
    assert "cannot run the editor" in proc.stderr and "VISUAL" in proc.stderr


def test_without_a_terminal_or_an_editor_set_vi_is_not_started(sh, sample, own_editor_and_tmp):
    proc = sh("edit", "1001", expect=2)
    assert "no terminal to run vi on" in proc.stderr
    assert list(own_editor_and_tmp.iterdir()) == []


def test_visual_is_preferred_over_editor_and_either_may_hold_arguments(sh, sample, tmp_path):
    visual = Editor(tmp_path, "visual").will({"sub": [(r'^monetary_value = .*$',
                                                       "monetary_value = 1")]})
    other = Editor(tmp_path, "other").will({"exit": 9})
    env = {**other.env("EDITOR"), **visual.env("VISUAL")}
    env["VISUAL"] += " --wait"
    sh("edit", "1001", env=env)
    assert stored(sample)[1001]["monetary_value"] == 1
    assert visual.seen[0]["args"] == ["--wait"] and other.seen == []
    env["VISUAL"] = " "  # blank: $EDITOR
    sh("edit", "1001", env=env, expect=2)
    assert len(other.seen) == 1


# ---- Copper ----------------------------------------------------------------------------------------------
def test_edit_on_copper_sends_only_the_changed_fields(sh, copper, editor, isolated):
    editor.will({"sub": [(r'^stage = .*$', 'stage = "Sales/Presentation"'),
                         (r'^tags = .*$', 'tags = ["enterprise", "hot"]'),
                         (r'^Region = .*$', 'Region = "APAC"')]})
    proc = sh("edit", "1001", "-o", "json", env=editor.env())
    text = editor.seen[0]["text"]
    document = tomllib.loads(text)
    assert document["company"] == "Northwind Traders"  # from the record: Copper lists none
    assert document["primary_contact"] == 601  # nor people: the id
    assert document["stage"] == "Sales/Qualified" and document["assignee"] == "Ada Park"
    (put,) = [r for r in copper.requests if r.method == "PUT"]
    assert put.path.endswith("/opportunities/1001")
    assert set(put.body) == {"pipeline_stage_id", "win_probability", "tags", "custom_fields"}
    assert put.body["custom_fields"] == [{"custom_field_definition_id": 401, "value": 4013}]
    record = copper.records[1001]
    assert record["pipeline_stage_id"] == 13 and record["tags"] == ["enterprise", "hot"]
    assert json.loads(proc.stdout)["pipeline_stage_id"] == 13
    (entry,) = audit_entries(isolated)
    assert entry["backend"] == "copper" and entry["op"] == "update"

    sh("edit", "1001", env=editor.will({}).env())  # nothing changed: no PUT
    assert len([r for r in copper.requests if r.method == "PUT"]) == 1


def test_edit_on_copper_refuses_when_the_deal_changed_meanwhile(sh, copper, editor,
                                                               own_editor_and_tmp):
    someone_else = [oppcli_exe(), "update", "1001", "--details", "someone else's note"]
    editor.will({"run": [someone_else], "sub": [(r'^stage = .*$', 'stage = "Sales/Negotiation"')]})
    proc = sh("edit", "1001", env=editor.env(), expect=6)
    puts = [r for r in copper.requests if r.method == "PUT"]
    assert [set(r.body) for r in puts] == [{"details"}]  # someone else's; none from the edit
    assert copper.records[1001]["pipeline_stage_id"] == 11
    (kept,) = kept_files(own_editor_and_tmp)
    assert str(kept) in proc.stderr
