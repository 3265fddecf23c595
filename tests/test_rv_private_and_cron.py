from __future__ import annotations

import os


def test_a_readable_config_holding_the_key_as_a_flat_dotted_key_is_refused(run, tmp_path):
    """config.py:137 only looks for profiles.X.copper.api_key (a table); _flatten (155-163)
    also accepts the quoted key "copper.api_key" = ..., which _check_private never sees."""
    cfg = tmp_path / "config" / "config.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text('[profiles.default]\n"copper.api_key" = "SECRETKEY123"\n'
                   '"copper.user_email" = "a@b.c"\n')
    os.chmod(cfg, 0o644)
    r = run("config", "show", expect=None)
    assert r.exit_code == 3, "a world-readable config holding the key was used"


def test_sync_pull_is_silent_on_success_in_cron(run, copper, tmp_path):
    """README 'Cron': 'both are silent unless something fails; cron mails what they print on
    stderr'. commands/transfer.py:269 prints a summary on every successful pull, so the hourly
    line in the README mails someone every hour."""
    mirror = tmp_path / "mirror"
    run("--store", str(mirror), "sync", "pull")
    r = run("--store", str(mirror), "sync", "pull")
    assert r.stderr == "", r.stderr


def test_two_exports_with_one_state_file_do_not_run_at_once(run, sample, tmp_path):
    import fcntl

    state, out = tmp_path / "deals.state", tmp_path / "deals.jsonl"
    out.write_bytes(b"previous\n")
    fd = os.open(str(state) + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another export holds it
        r = run("--backend", "local", "export", "--state-file", str(state), "--output-file",
                str(out), expect=5)
        assert "another export is running" in r.stderr
        assert out.read_bytes() == b"previous\n" and not state.exists()
    finally:
        os.close(fd)
    run("--backend", "local", "export", "--state-file", str(state), "--output-file", str(out))
    assert state.exists() and len(out.read_bytes().splitlines()) == 36


def test_an_interrupted_import_keeps_the_rows_not_done(run, sample, tmp_path, monkeypatch):
    from oppcli import importing

    rows = tmp_path / "rows.csv"
    rows.write_text("name,primary_contact_id\n" + "".join(f"deal {i},601\n" for i in range(6)))
    original = importing.Importer.one
    calls = {"n": 0}

    def one(self, row, started):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return original(self, row, started)

    monkeypatch.setattr(importing.Importer, "one", one)
    r = run("--backend", "local", "import", str(rows), expect=130)
    assert "interrupted at line 5" in r.stderr
    left = (tmp_path / "rows.failed.csv").read_text().splitlines()
    # (each row now also carries when the import started: oppcli_import_started)
    assert [",".join(x.split(",")[:2]) for x in left] == \
        ["name,primary_contact_id", "deal 3,601", "deal 4,601", "deal 5,601"]
    assert left[0].split(",")[2:] == ["oppcli_import_started"]
    monkeypatch.setattr(importing.Importer, "one", original)
    run("--backend", "local", "import", str(tmp_path / "rows.failed.csv"))
    names = [x["name"] for x in run.json("--backend", "local", "search", "--name-contains", "deal ")]
    assert sorted(names) == [f"deal {i}" for i in range(6)]  # each row exactly once
