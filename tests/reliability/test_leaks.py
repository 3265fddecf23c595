"""Nothing leaked: the API key never appears in any output, log, error, debug trace, audit
entry, cache or export; files holding customer data or the key are owner-only; TLS is always
verified; no input reaches a shell or eval."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import orjson
import pytest

from conftest import API_KEY
from oppcli.backends.copper import HttpClient

SRC = Path(__file__).resolve().parents[2] / "src" / "oppcli"


def test_the_key_never_appears_anywhere(run, copper, isolated, tmp_path, monkeypatch):
    monkeypatch.setenv("OPPCLI_COPPER_RETRIES", "1")
    seen: list[str] = []

    def go(*args: str, expect: int | None = None) -> None:
        r = run("--debug", *args, expect=expect)
        seen.extend([r.stdout or "", r.stderr or ""])

    go("auth", "check")
    go("config", "show")
    go("config", "show", "-o", "json")
    go("search", "--stage", "Negotiation", "--assignee", "Ada Park")
    go("update", "1001", "--status", "Won")
    go("create", "--name", "Leak check", "--primary-contact", "Nancy Davolio")
    go("delete", "1002", "--yes")
    go("history", "-o", "json")
    go("undo", "--yes")
    rows = tmp_path / "rows.csv"
    rows.write_text("name,primary_contact_id\nok,601\nbad,\n")
    go("import", str(rows))
    go("export", "-o", "csv", "--output-file", str(tmp_path / "out.csv"),
       "--state-file", str(tmp_path / "state.json"))
    # Every kind of failure, with --debug asking for tracebacks.
    for fault in (dict(status=401), dict(status=403), dict(status=422), dict(status=500),
                  dict(status=429), dict(drop=True), dict(cut=True), dict(truncate=True),
                  dict(status=200, body="<html>oops</html>", content_type="text/html"),
                  dict(status=302, headers={"Location": "https://evil.example/"})):
        copper.clear_faults()
        copper.fail(".*", times=None, **fault)
        go("list")
        go("show", "1003")
        go("create", "--name", "x", "--primary-contact-id", "601")
    copper.clear_faults()
    monkeypatch.setenv("COPPER_API_KEY", API_KEY + "\u2019")  # a key a header cannot carry
    go("list")
    monkeypatch.setenv("COPPER_API_KEY", "wrong-" + API_KEY)
    go("auth", "check")

    assert seen and any("debug:" in text for text in seen)
    for text in seen:
        assert API_KEY not in text
    files = [p for p in Path(isolated).rglob("*") if p.is_file()]
    assert any(p.name == "audit.jsonl" for p in files)
    assert any(p.name.startswith("copper-lookups-") for p in files)
    for p in files:
        assert API_KEY.encode() not in p.read_bytes(), p


def test_files_with_customer_data_or_keys_are_owner_only(run, sample, copper, isolated, tmp_path,
                                                         monkeypatch):
    monkeypatch.delenv("COPPER_API_KEY")
    run("config", "set", "copper.api_key", API_KEY)
    run("--backend", "local", "update", "1001", "--status", "Won")
    run("--backend", "local", "export", "--output-file", str(tmp_path / "deals.jsonl"),
        "--state-file", str(tmp_path / "state.json"))
    rows = tmp_path / "rows.csv"
    rows.write_text("name,primary_contact_id\nbad,\n")
    run("--backend", "local", "import", str(rows), expect=7)
    run("--backend", "copper", "lookups", "-o", "json")
    private = [sample, *sample.iterdir(), isolated / "config", *(isolated / "config").iterdir(),
               isolated / "cache", *(isolated / "cache").iterdir(), tmp_path / "deals.jsonl",
               tmp_path / "state.json", tmp_path / "rows.failed.csv"]
    for p in private:
        if p.name == ".lock":
            continue
        assert stat.S_IMODE(p.stat().st_mode) & 0o077 == 0, f"{p} is {oct(p.stat().st_mode)}"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_readable_config_holding_a_key_is_refused(run, sample, monkeypatch, mode):
    monkeypatch.delenv("COPPER_API_KEY", raising=False)
    run("config", "set", "copper.api_key", API_KEY)
    path = Path(run("config", "path").stdout.strip())
    path.chmod(mode)
    r = run("list", expect=3)
    assert f"chmod 600 {path}" in r.stderr and API_KEY not in r.stderr
    path.chmod(0o600)
    run("list", "-o", "json")


def test_a_readable_config_holding_the_key_as_a_flat_dotted_key_is_refused(run, tmp_path):
    """The key counts however the TOML spells it: a quoted "copper.api_key" = ... under the
    profile is a key too, and a world-readable file holding it is refused like any other."""
    cfg = tmp_path / "config" / "config.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text('[profiles.default]\n"copper.api_key" = "SECRETKEY123"\n'
                   '"copper.user_email" = "a@b.c"\n')
    os.chmod(cfg, 0o644)
    r = run("config", "show", expect=None)
    assert r.exit_code == 3, "a world-readable config holding the key was used"


def test_a_readable_config_without_a_key_is_fine(run, sample):
    run("config", "set", "date_order", "DMY")
    path = Path(run("config", "path").stdout.strip())
    path.chmod(0o644)
    run("list", "-o", "json")


def test_tls_is_always_verified():
    client = HttpClient("https://api.copper.com/developer_api/v1", "k", "e@x.example")
    assert client.session.verify is True
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"verify\s*=\s*False", text), path
        assert "urllib3.disable_warnings" not in text, path


def test_no_input_reaches_a_shell_or_eval():
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        for danger in (r"shell\s*=\s*True", r"\beval\(", r"\bexec\(", r"os\.system\(",
                       r"os\.popen\(", r"pickle\.loads?\(", r"yaml\.load\("):
            assert not re.search(danger, text), f"{path}: {danger}"


def test_audit_entries_hold_records_never_credentials(run, copper, isolated):
    run("update", "1001", "--status", "Won")
    entries = [orjson.loads(line) for line in (isolated / "config" / "audit.jsonl").read_bytes()
               .splitlines()]
    assert entries and all(set(e) >= {"at", "op", "backend", "where", "profile", "id", "before",
                                      "after"} for e in entries)
    assert API_KEY not in str(entries)
