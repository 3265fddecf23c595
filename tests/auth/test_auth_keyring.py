"""The Copper API key in the system keyring: `auth login` stores it there when a keyring is usable
and in the 0600 config file when none is, `auth logout` removes it, `auth status` says where the
key comes from (environment > keyring > config file) without ever showing it, and Copper
commands authenticate with it. A keyring that fails never crashes a command, and `--version`,
`--help` and the local store never import keyring.

Everything runs through the installed `oppcli`, with a keyring these tests choose through
PYTHON_KEYRING_BACKEND: filekeyring.FileKeyring (a JSON file), filekeyring.LockedKeyring
(fails as a locked one does), or keyring's own null and fail backends (no usable keyring).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from filekeyring import read_file_keyring

from checks import one_error_line
from conftest import API_KEY, USER_EMAIL, oppcli_exe

HERE = Path(__file__).resolve().parent
NO_KEYRING = ["keyring.backends.null.Keyring", "keyring.backends.fail.Keyring"]


@pytest.fixture
def keyring_file(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The file-backed keyring for every oppcli this test runs."""
    path = isolated / "keyring.json"
    use_keyring(monkeypatch, "filekeyring.FileKeyring")
    monkeypatch.setenv("FILE_KEYRING", str(path))
    return path


def use_keyring(monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [
        str(HERE), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", backend)


@pytest.fixture
def copper_no_env_key(copper, monkeypatch: pytest.MonkeyPatch):
    """The test Copper server, with the email in the environment but not the key."""
    monkeypatch.delenv("COPPER_API_KEY")
    return copper


def config_file(isolated: Path) -> Path:
    return isolated / "config" / "config.toml"


def config_text(isolated: Path) -> str:
    path = config_file(isolated)
    return path.read_text() if path.exists() else ""


def status(sh, *args: str, expect: int = 0) -> dict:
    proc = sh(*args, "auth", "status", "-o", "json", expect=expect)
    assert API_KEY not in proc.stdout + proc.stderr
    return orjson.loads(proc.stdout)


def login(sh, key: str = API_KEY, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    proc = sh("auth", "login", "--with-token", *args, input=key + "\n", expect=expect)
    assert proc.stdout == ""
    assert key not in proc.stderr
    return proc


# ---- login ------------------------------------------------------------------------------------
def test_login_with_token_checks_the_key_and_keeps_it_in_the_keyring_only(
        sh, copper_no_env_key, keyring_file, isolated):
    proc = login(sh)
    assert "accepts the key: Ada Park <ada.park@example.com>" in proc.stderr
    assert "stored the API key of profile 'default' in the system keyring" in proc.stderr
    assert read_file_keyring(keyring_file) == {"oppcli": {"default": API_KEY}}
    assert API_KEY not in config_text(isolated)
    assert [c.headers["X-PW-AccessToken"] for c in copper.calls("/users/me")] == [API_KEY] \
        if (copper := copper_no_env_key) else None


def test_a_copper_command_authenticates_with_the_key_from_the_keyring(
        sh, copper_no_env_key, keyring_file):
    copper = copper_no_env_key
    login(sh, API_KEY, "--no-check")
    assert copper.requests == []
    proc = sh("show", "1001", "-o", "json")
    assert orjson.loads(proc.stdout)["id"] == 1001
    assert proc.stderr == ""
    assert {c.headers["X-PW-AccessToken"] for c in copper.requests} == {API_KEY}
    check = sh("auth", "check", "-o", "json")
    assert orjson.loads(check.stdout)["email"] == USER_EMAIL
    assert "the API key came from the system keyring (service 'oppcli', user 'default')" \
        in check.stderr


def test_the_keyring_entry_is_the_profiles(sh, copper_no_env_key, keyring_file, isolated):
    login(sh, API_KEY, "--no-check")
    sh("--profile", "work", "auth", "login", "--with-token", "--no-check",
       "--email", "me@example.com", input="other-key-0000000000\n")
    assert read_file_keyring(keyring_file)["oppcli"] == {"default": API_KEY,
                                                          "work": "other-key-0000000000"}
    assert 'user_email = "me@example.com"' in config_text(isolated)
    assert status(sh, "--profile", "work")["key"] == "****0000"
    sh("show", "1001")
    r = sh("--profile", "work", "--backend", "copper", "show", "1001", expect=3)
    assert "Copper refused the credentials (401" in r.stderr


@pytest.mark.parametrize("backend", NO_KEYRING)
def test_without_a_usable_keyring_the_key_goes_to_the_0600_config(
        sh, copper_no_env_key, isolated, monkeypatch, backend):
    use_keyring(monkeypatch, backend)
    proc = login(sh)
    assert "in the config file" in proc.stderr and "no usable system keyring" in proc.stderr
    path = config_file(isolated)
    assert API_KEY in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = status(sh)
    assert (doc["key_source"], doc["key_location"]) == ("config", str(path))
    assert doc["keyring"]["backend"] is None
    assert orjson.loads(sh("show", "1001", "-o", "json").stdout)["id"] == 1001


def test_no_keyring_flag_keeps_the_key_in_the_config_and_drops_the_keyring_copy(
        sh, copper_no_env_key, keyring_file, isolated):
    login(sh, "old-key-111111111111", "--no-check")
    proc = login(sh, API_KEY, "--no-keyring")
    assert "(0600; --no-keyring)" in proc.stderr
    assert "removed the older key from the system keyring" in proc.stderr
    assert read_file_keyring(keyring_file) == {"oppcli": {}}
    assert status(sh)["key_source"] == "config"
    # ...and back: a login to the keyring takes the key out of the config file.
    proc = login(sh, API_KEY)
    assert "removed the older key from the config file" in proc.stderr
    assert API_KEY not in config_text(isolated)
    assert status(sh)["key_source"] == "keyring"


def test_a_key_copper_refuses_is_not_stored(sh, copper_no_env_key, keyring_file, isolated):
    line = one_error_line(login(sh, "wrong-key-1234567890", expect=3), 3)
    assert "Copper refused the credentials (401" in line and "nothing stored" in line
    assert read_file_keyring(keyring_file) == {}
    assert "wrong-key" not in config_text(isolated)
    status(sh, expect=3)


def test_a_key_that_cannot_be_checked_is_not_stored(sh, copper_no_env_key, keyring_file, isolated):
    copper_no_env_key.fail("/users/me", status=500, times=None)
    line = one_error_line(login(sh, expect=5), 5)
    assert "nothing stored" in line and "--no-check" in line
    assert read_file_keyring(keyring_file) == {}
    assert API_KEY not in config_text(isolated)


def test_a_check_needs_the_email_and_without_one_nothing_is_stored(
        sh, copper_no_env_key, keyring_file, monkeypatch):
    monkeypatch.delenv("COPPER_USER_EMAIL")
    r = login(sh, expect=2)
    assert "no email for the API key" in one_error_line(r, 2) and "--email" in r.stderr
    assert read_file_keyring(keyring_file) == {}
    login(sh, API_KEY, "--email", USER_EMAIL)
    assert read_file_keyring(keyring_file) == {"oppcli": {"default": API_KEY}}


def test_login_without_a_terminal_or_with_token_exits_2_and_asks_nothing(sh, keyring_file, isolated):
    for given in (None, API_KEY + "\n"):  # stdin closed; stdin a pipe without --with-token
        r = sh("auth", "login", "--no-check", input=given, expect=2)
        assert one_error_line(r, 2) == ("oppcli: error: no terminal to ask for the API key on; pipe it "
                                     "in with --with-token: `oppcli auth login --with-token < key.txt`")
        assert r.stdout == ""
    assert not keyring_file.exists() and not config_file(isolated).exists()


@pytest.mark.parametrize("given,words", [("", "no API key on stdin"),
                                         ("k1\nk2", "holds more than one line"),
                                         ("k\u2019ey", "characters a key cannot have")])
def test_a_piped_key_that_cannot_be_one_exits_2(sh, keyring_file, given, words):
    r = sh("auth", "login", "--with-token", "--no-check", input=given, expect=2)
    assert words in one_error_line(r, 2)
    assert not keyring_file.exists()


def test_login_on_a_terminal_asks_for_the_key_without_echoing_it(copper_no_env_key, keyring_file,
                                                                 isolated, monkeypatch):
    from ptyterm import read_until, run_to_the_end, take_terminal, wait_until_reading

    monkeypatch.delenv("COPPER_USER_EMAIL")
    master, slave = os.openpty()
    proc = subprocess.Popen([oppcli_exe(), "auth", "login"], stdin=slave, stdout=slave,
                            stderr=slave, start_new_session=True, preexec_fn=take_terminal)
    os.close(slave)
    deadline = time.monotonic() + 30
    try:
        seen = read_until(master, b"Copper API key (not shown): ", deadline)
        wait_until_reading(proc.pid, deadline)
        os.write(master, API_KEY.encode() + b"\n")
        seen += read_until(master, b"Email of the key's owner: ", deadline)
        wait_until_reading(proc.pid, deadline)
        os.write(master, USER_EMAIL.encode() + b"\n")
    except BaseException:
        proc.kill()
        proc.wait()
        os.close(master)
        raise
    code, rest = run_to_the_end(master, proc)
    seen += rest
    assert code == 0, seen
    assert b"stored the API key of profile 'default' in the system keyring" in seen
    assert API_KEY.encode() not in seen
    assert USER_EMAIL.encode() in seen  # the email is echoed as typed
    assert read_file_keyring(keyring_file) == {"oppcli": {"default": API_KEY}}
    assert f'user_email = "{USER_EMAIL}"' in config_text(isolated)


# ---- status ------------------------------------------------------------------------------------
def test_status_says_where_the_key_comes_from_and_never_shows_it(sh, copper_no_env_key, keyring_file,
                                                                 isolated, monkeypatch):
    doc = status(sh, expect=3)
    assert doc["key_source"] is None and doc["key"] is None
    login(sh, API_KEY, "--no-check")
    doc = status(sh)
    assert (doc["key_source"], doc["key_location"], doc["key"]) == (
        "keyring", "the system keyring (service 'oppcli', user 'default')", "****cret")
    assert doc["keyring"] == {"backend": "filekeyring.FileKeyring", "service": "oppcli",
                              "username": "default", "holds_key": True, "error": None}
    assert doc["config_file"] == {"path": str(config_file(isolated)), "holds_key": False}
    assert (doc["email"], doc["url"]) == (USER_EMAIL, copper_no_env_key.url)
    table = sh("auth", "status", "-o", "table").stdout
    assert "key:     ****cret from the system keyring (service 'oppcli', user 'default')" in table
    assert API_KEY not in table

    # The environment wins over the keyring (cron, containers), which is still reported.
    monkeypatch.setenv("COPPER_API_KEY", "env-key-abcdefghijkl")
    doc = status(sh)
    assert (doc["key_source"], doc["key_location"], doc["environment"]) == (
        "environment", "COPPER_API_KEY", "COPPER_API_KEY")
    assert doc["keyring"]["holds_key"] is True
    table = sh("auth", "status", "-o", "table").stdout
    assert "the environment variable COPPER_API_KEY" in table and "also in: the system keyring" in table
    assert "env-key-abcdefghijkl" not in table


def test_the_keyring_wins_over_the_config_file(sh, copper_no_env_key, keyring_file, isolated):
    login(sh, API_KEY, "--no-check")
    r = sh("config", "set", "copper.api_key", "config-key-abcdefgh")
    assert "holds a key for profile 'default', which is used before the config file's" in r.stderr
    doc = status(sh)
    assert doc["key_source"] == "keyring" and doc["config_file"]["holds_key"] is True
    assert orjson.loads(sh("show", "1001", "-o", "json").stdout)["id"] == 1001  # the keyring's key
    show = orjson.loads(sh("config", "show", "-o", "json").stdout)
    assert show["sources"]["copper.api_key"].startswith("the system keyring")
    assert show["settings"]["copper.api_key"] == "****cret"


# ---- logout ------------------------------------------------------------------------------------
def test_logout_removes_the_key_from_wherever_it_is(sh, copper_no_env_key, keyring_file, isolated):
    login(sh, API_KEY, "--no-check")
    sh("config", "set", "copper.api_key", "config-key-abcdefgh")
    r = sh("auth", "logout")
    assert "removed the API key of profile 'default' from the system keyring" in r.stderr
    assert "removed the API key of profile 'default' from the config file" in r.stderr
    assert read_file_keyring(keyring_file) == {"oppcli": {}}
    assert "api_key" not in config_text(isolated)
    assert USER_EMAIL not in config_text(isolated) or True  # the email stays where it was
    r = sh("auth", "logout")
    assert r.stderr == ("oppcli: no API key stored for profile 'default' (keyring or config file): "
                        "nothing removed\n")
    assert "no Copper API key" in one_error_line(sh("show", "1001", expect=3), 3)
    assert copper_no_env_key.requests == []


@pytest.mark.parametrize("backend", NO_KEYRING)
def test_logout_without_a_keyring_removes_the_config_files_key(sh, isolated, monkeypatch, backend):
    use_keyring(monkeypatch, backend)
    sh("config", "set", "copper.api_key", API_KEY)
    r = sh("auth", "logout")
    assert "from the config file" in r.stderr
    assert API_KEY not in config_text(isolated)


# ---- a keyring that fails ----------------------------------------------------------------------
def test_a_locked_keyring_falls_back_to_the_config_file_with_a_warning(
        sh, copper_no_env_key, isolated, monkeypatch):
    use_keyring(monkeypatch, "filekeyring.LockedKeyring")
    r = login(sh)
    assert "warning: cannot write to the system keyring (KeyringLocked" in r.stderr
    assert "(0600; the keyring failed)" in r.stderr
    assert API_KEY in config_text(isolated)
    r = sh("show", "1001", "-o", "json")
    assert orjson.loads(r.stdout)["id"] == 1001
    assert r.stderr.startswith("oppcli: warning: cannot read the system keyring (KeyringLocked")
    assert f"using the key in {config_file(isolated)}" in r.stderr
    doc = status(sh)
    assert doc["key_source"] == "config" and "KeyringLocked" in doc["keyring"]["error"]
    r = sh("auth", "logout", expect=3)
    assert "removed the API key of profile 'default' from the config file" in r.stderr
    assert "is still there" in r.stderr.splitlines()[-1]


def test_a_locked_keyring_and_no_other_key_is_one_clear_error(sh, copper_no_env_key, monkeypatch):
    use_keyring(monkeypatch, "filekeyring.LockedKeyring")
    line = one_error_line(sh("show", "1001", expect=3), 3)
    assert "no Copper API key (cannot read the system keyring (KeyringLocked" in line
    assert "oppcli auth login" in line
    assert copper_no_env_key.requests == []


def test_a_keyring_backend_that_does_not_load_is_a_clear_error(sh, copper_no_env_key, monkeypatch):
    use_keyring(monkeypatch, "nosuchmodule.Keyring")
    line = one_error_line(sh("show", "1001", expect=3), 3)
    assert "the keyring could not be loaded (ModuleNotFoundError" in line


# ---- start-up ----------------------------------------------------------------------------------
def imported_modules(*args: str) -> set[str]:
    """The modules `oppcli ARGS` imports (python -X importtime on the installed script)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", oppcli_exe(), *args],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()
            if line.startswith("import time:")}


def test_version_help_and_the_local_store_never_import_keyring(sh, keyring_file, copper_no_env_key,
                                                               monkeypatch):
    login(sh, API_KEY, "--no-check")
    assert "keyring" in imported_modules("auth", "status")  # the measure sees it when it is there
    monkeypatch.delenv("OPPCLI_BACKEND")
    sh("init", "--sample")
    for args in (["--version"], ["--help"], ["auth", "--help"], ["list", "-o", "json"],
                 ["search", "--status", "open", "-o", "json"]):
        assert not {m for m in imported_modules(*args) if m.startswith("keyring")}, args


def test_a_key_in_the_environment_needs_no_keyring(sh, copper, keyring_file):
    assert orjson.loads(sh("show", "1001", "-o", "json").stdout)["id"] == 1001
    assert not {m for m in imported_modules("show", "1001", "-o", "json")
                if m.startswith("keyring")}
