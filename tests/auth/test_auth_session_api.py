"""The Copper API key through the library: Session.login, logout and auth_status return what
`oppcli auth login|logout|status` render (where the key went, what was removed, where it comes
from), say what a person should know through the session's Streams, and never print to stdout.

In-process, with a keyring backend each test sets for keyring itself (keyring.core keeps the
backend it chose on first use, so PYTHON_KEYRING_BACKEND would come too late):
filekeyring.FileKeyring (a JSON file), filekeyring.LockedKeyring, or keyring's null backend.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from filekeyring import FileKeyring, LockedKeyring, read_file_keyring

import oppcli
from conftest import API_KEY, USER_EMAIL
from oppcli import errors as E
from oppcli.io import Streams

KEYRING_ENTRY = "the system keyring (service 'oppcli', user 'default')"


def use_keyring(monkeypatch: pytest.MonkeyPatch, backend: object) -> None:
    import keyring.core

    monkeypatch.setattr(keyring.core, "_keyring_backend", backend)  # restored after the test


@pytest.fixture
def keyring_file(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = isolated / "keyring.json"
    monkeypatch.setenv("FILE_KEYRING", str(path))
    use_keyring(monkeypatch, FileKeyring())
    return path


@pytest.fixture
def copper_no_env_key(copper, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("COPPER_API_KEY")
    return copper


@pytest.fixture
def streams():
    streams = Streams.test()
    yield streams
    assert streams.stdout.getvalue() == "", "the library wrote to stdout"


def config_file(isolated: Path) -> Path:
    return isolated / "config" / "config.toml"


def config_text(isolated: Path) -> str:
    path = config_file(isolated)
    return path.read_text() if path.exists() else ""


def test_login_status_logout_with_a_keyring(copper_no_env_key, keyring_file, isolated, streams):
    s = oppcli.connect(streams=streams)
    result = s.login(API_KEY)
    assert (result.profile, result.stored_in, result.location) == ("default", "keyring",
                                                                   KEYRING_ENTRY)
    assert result.keyring_backend == "filekeyring.FileKeyring"
    assert (result.config_reason, result.removed_from, result.keyring_error) == (None, None, None)
    assert result.user is not None and result.user["email"] == USER_EMAIL
    assert (result.email, result.email_set, result.environment) == (USER_EMAIL, False, None)
    assert read_file_keyring(keyring_file) == {"oppcli": {"default": API_KEY}}
    assert API_KEY not in config_text(isolated)
    told = streams.stderr.getvalue()
    assert "accepts the key: Ada Park <ada.park@example.com>" in told
    assert f"stored the API key of profile 'default' in {KEYRING_ENTRY}" in told
    assert API_KEY not in told

    status = s.auth_status()
    assert (status.key_source, status.key_location, status.key) == ("keyring", KEYRING_ENTRY,
                                                                    "****cret")
    assert status.as_json() == {
        "profile": "default", "backend": "copper", "url": copper_no_env_key.url,
        "email": USER_EMAIL, "email_source": "environment COPPER_USER_EMAIL",
        "key_source": "keyring", "key_location": KEYRING_ENTRY, "key": "****cret",
        "environment": None,
        "keyring": {"backend": "filekeyring.FileKeyring", "service": "oppcli",
                    "username": "default", "holds_key": True, "error": None},
        "config_file": {"path": str(config_file(isolated)), "holds_key": False}}
    status.check()
    assert s.get(1001)["id"] == 1001  # the session authenticates with the key it stored

    gone = s.logout()
    assert (gone.from_keyring, gone.from_config, gone.removed) == (True, False, True)
    assert read_file_keyring(keyring_file) == {"oppcli": {}}
    status = s.auth_status()
    assert (status.key_source, status.key, status.keyring.holds_key) == (None, None, False)
    with pytest.raises(E.ConfigError) as caught:
        status.check()
    assert caught.value.exit_code == E.CONFIG and "no Copper API key for profile 'default'" \
        in caught.value.message
    again = s.logout()
    assert not again.removed
    assert streams.stderr.getvalue().endswith("nothing removed\n")


def test_login_keeps_the_key_in_one_place_only(copper_no_env_key, keyring_file, isolated,
                                               streams):
    s = oppcli.connect(streams=streams)
    s.login("old-key-111111111111", check=False)
    result = s.login(API_KEY, keyring=False)
    assert (result.stored_in, result.location) == ("config", str(config_file(isolated)))
    assert (result.config_reason, result.removed_from) == ("no-keyring", KEYRING_ENTRY)
    assert result.keyring_backend is None
    assert read_file_keyring(keyring_file) == {"oppcli": {}}
    assert s.auth_status().key_source == "config"

    result = s.login(API_KEY)
    assert (result.stored_in, result.removed_from) == ("keyring", str(config_file(isolated)))
    assert API_KEY not in config_text(isolated)


def test_without_a_usable_keyring_the_key_goes_to_the_config_file(
        copper_no_env_key, isolated, monkeypatch, streams):
    from keyring.backends import null

    use_keyring(monkeypatch, null.Keyring())
    s = oppcli.connect(streams=streams)
    result = s.login(API_KEY, check=False)
    assert (result.stored_in, result.config_reason, result.user) == ("config",
                                                                     "no-usable-keyring", None)
    status = s.auth_status()
    assert (status.key_source, status.keyring.backend, status.config_holds_key) == (
        "config", None, True)
    gone = s.logout()
    assert (gone.from_keyring, gone.from_config, gone.config_file) == (
        False, True, config_file(isolated))
    assert API_KEY not in config_text(isolated)


def test_a_locked_keyring_is_reported_never_a_crash(copper_no_env_key, isolated, monkeypatch,
                                                    streams):
    use_keyring(monkeypatch, LockedKeyring())
    s = oppcli.connect(streams=streams)
    result = s.login(API_KEY)
    assert (result.stored_in, result.config_reason) == ("config", "keyring-failed")
    assert result.keyring_error is not None and "KeyringLocked" in result.keyring_error
    assert "warning: cannot write to the system keyring (KeyringLocked" \
        in streams.stderr.getvalue()
    status = s.auth_status()
    assert status.key_source == "config" and status.keyring.holds_key is None
    assert status.keyring.error is not None and "KeyringLocked" in status.keyring.error
    with pytest.raises(E.ConfigError, match="is still there") as caught:
        s.logout()
    assert caught.value.exit_code == E.CONFIG
    assert API_KEY not in config_text(isolated)  # the config file's copy went all the same


def test_a_key_copper_refuses_or_that_cannot_be_one_stores_nothing(
        copper_no_env_key, keyring_file, isolated, monkeypatch, streams):
    s = oppcli.connect(streams=streams)
    with pytest.raises(E.ConfigError, match="nothing stored") as caught:
        s.login("wrong-key-1234567890")
    assert caught.value.exit_code == E.CONFIG
    for bad in ("", "two\nlines", "k\u2019ey"):
        with pytest.raises(E.UsageError):
            s.login(bad, check=False)
    with pytest.raises(E.UsageError, match="invalid email"):
        s.login(API_KEY, "not-an-email", check=False)
    monkeypatch.delenv("COPPER_USER_EMAIL")
    s = oppcli.connect(streams=streams)
    assert s.login_email() is None
    with pytest.raises(E.UsageError, match="no email for the API key"):
        s.login(API_KEY)
    assert not keyring_file.exists() and not config_file(isolated).exists()


def test_login_makes_a_new_profile_and_the_session_uses_what_it_stored(
        copper_no_env_key, keyring_file, isolated, monkeypatch, streams):
    monkeypatch.delenv("COPPER_USER_EMAIL")
    monkeypatch.setenv("COPPER_API_KEY", "env-key-abcdefghijkl")
    s = oppcli.connect(profile="work", streams=streams)
    assert s.login_email() is None  # a profile not in the config file yet
    result = s.login(API_KEY, USER_EMAIL)
    assert (result.profile, result.email, result.email_set) == ("work", USER_EMAIL, True)
    assert result.environment == "COPPER_API_KEY"
    assert "COPPER_API_KEY is set: it is used instead" in streams.stderr.getvalue()
    assert read_file_keyring(keyring_file) == {"oppcli": {"work": API_KEY}}
    assert s.login_email() == USER_EMAIL  # read again after the login
    monkeypatch.delenv("COPPER_API_KEY")
    s.settings.resolve_api_key()
    assert s.settings.values["copper.api_key"] == API_KEY
    assert s.settings.source("copper.api_key") == "the system keyring (service 'oppcli', user 'work')"
