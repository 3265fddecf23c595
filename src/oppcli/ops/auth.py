"""The Copper API key: log in, log out, and where the key comes from (Session.login, logout,
auth_status; `oppcli auth login|logout|status`).

Where a key is looked for, first found wins: COPPER_API_KEY (or OPPCLI_COPPER_API_KEY) in the
environment, then the system keyring (service "oppcli", user the profile's name; see
oppcli.credentials), then the profile's 0600 config file. login() stores in the keyring when a
usable one exists, else in the config file, and leaves the key in one of the two only: a copy left
in the other would shadow it or outlive a logout. What a person should know is said through the
session's Streams as it happens (notice, warn); the results hold the facts. Nothing here prompts:
the caller reads the key (and the email) and passes them in.

`keyring` is imported only by the credentials functions these call, never on import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oppcli.errors import ConfigError, OppcliError, UsageError

if TYPE_CHECKING:
    from oppcli.config import Settings
    from oppcli.io import Streams


# ---- the facts --------------------------------------------------------------------------------
def env_key_name() -> str | None:
    """The environment variable giving a key (COPPER_API_KEY, OPPCLI_COPPER_API_KEY), if one is
    set: it wins over the keyring and the config file while it is."""
    from oppcli.config import KEYS

    return next((name for name in KEYS["copper.api_key"].env if os.environ.get(name)), None)


def stored_in_config(profile: str) -> tuple[dict[str, Any], Path]:
    """The profile's own settings in the config file (flattened), and the file's path."""
    from oppcli.config import _flatten, config_path, read_config

    path = config_path()
    table = read_config(path).get("profiles", {}).get(profile, {})
    return (_flatten(table) if isinstance(table, dict) else {}), path


def keyring_holds_key(profile: str) -> bool:
    """Whether the keyring holds a key for the profile (False with no keyring, or one failing)."""
    from oppcli import credentials

    try:
        return bool(credentials.get(profile))
    except credentials.KeyringFailed:
        return False


def current_email(settings: Settings) -> str | None:
    """The email a key is checked and kept with when none is given: copper.user_email (from the
    environment or the profile); None when there is none yet."""
    return str(settings.values.get("copper.user_email") or "").strip() or None


# ---- what a key and an email may be -------------------------------------------------------------
def checked_key(text: str, where: str = "given") -> str:
    """The key as typed or piped, stripped; UsageError (never echoing it) when it cannot be one.
    `where` says where it came from in the message ("given", "on stdin")."""
    key = text.strip().lstrip("\ufeff").strip()
    if not key:
        raise UsageError(f"no API key {where}", "give the key Copper shows under Settings > "
                         "Integrations > API Keys")
    if "\n" in key or "\r" in key:
        raise UsageError(f"the API key {where} holds more than one line", "give the key alone")
    try:
        key.encode("latin-1")
    except UnicodeEncodeError:
        ok = False
    else:
        ok = "\0" not in key and " " not in key and "\t" not in key
    if not ok:
        raise UsageError(f"the API key {where} holds characters a key cannot have (a space, a "
                         "pasted quote?)", "give the key as Copper shows it")
    return key


def checked_email(text: str) -> str:
    email = text.strip()
    if "@" not in email or any(ch in email for ch in "\r\n\0 "):
        raise UsageError(f"invalid email {email!r}", "give the email of the key's owner, "
                         "such as you@example.com")
    return email


# ---- login --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoginResult:
    """What login() did.

    `stored_in` is "keyring" or "config"; `location` where exactly: the keyring entry as
    messages name it, or the config file's path. `keyring_backend`: the keyring's backend, when
    it holds the key. `config_reason`, when the key went to the config file: "no-keyring" (not
    wanted), "keyring-failed" or "no-usable-keyring". `removed_from`: the older copy taken out
    of the other place (its location), if there was one. `keyring_error`: the keyring failed
    (writing, so the config file; or removing the older copy, which then still shadows this
    key). `user`: whom Copper says the key belongs to (GET /users/me; None unchecked). `email`:
    the email the key goes with (given, else the profile's; None: none yet); `email_set`:
    written to the profile. `environment`: a variable whose key is used instead while set.
    `backend`: the profile's backend (login leaves it as it is)."""

    profile: str
    stored_in: str
    location: str
    keyring_backend: str | None = None
    config_reason: str | None = None
    removed_from: str | None = None
    keyring_error: str | None = None
    user: dict[str, Any] | None = None
    email: str | None = None
    email_set: bool = False
    environment: str | None = None
    backend: str = "local"


_WHY_CONFIG = {"no-keyring": "--no-keyring", "keyring-failed": "the keyring failed",
               "no-usable-keyring": "no usable system keyring"}


def whoami(settings: Settings, key: str, email: str, *, streams: Streams,
           debug: bool = False) -> dict[str, Any]:
    """GET /users/me with this key and email (not the stored ones); an error says nothing was
    stored."""
    from oppcli.backends.copper import CopperBackend

    trial = replace(settings, values={**settings.values, "copper.api_key": key,
                                      "copper.user_email": email},
                    sources={**settings.sources, "copper.api_key": "auth login",
                             "copper.user_email": "auth login"},
                    keyring_checked=True)
    try:
        return CopperBackend.from_settings(trial, debug=debug, notice=streams.notice).whoami()
    except ConfigError as exc:
        if exc.message.startswith("Copper refused"):
            raise ConfigError(f"{exc.message}: nothing stored",
                              f"check the key, and that {email} is its owner's email (--email)"
                              ) from None
        exc.message += ": nothing stored"
        raise
    except OppcliError as exc:
        exc.message += ": nothing stored"
        exc.hint = f"{exc.hint}; or add --no-check" if exc.hint else "try again, or add --no-check"
        raise


def login(settings: Settings, key: str, *, email: str | None, check: bool, keyring: bool,
          streams: Streams, debug: bool = False) -> LoginResult:
    """Check the key with Copper (unless not `check`: then nothing is asked), then keep it for
    the settings' profile in one place only: the keyring (when `keyring` and one is usable) or
    the config file; `email`, when given, goes to the profile as copper.user_email. A refused
    or uncheckable key stores nothing (ConfigError, ServiceError...: "nothing stored")."""
    from oppcli import credentials
    from oppcli.config import set_value

    profile = settings.profile
    key = checked_key(key)
    if email is not None:
        email = checked_email(email)
    use_email = email or current_email(settings)

    user: dict[str, Any] | None = None
    if check:
        if not use_email:
            raise UsageError("no email for the API key: Copper checks the two together",
                             "add --email you@example.com (or --no-check to store the key "
                             "unchecked)")
        user = whoami(settings, key, use_email, streams=streams, debug=debug)
        name = user.get("name") or "?"
        streams.notice(f"Copper at {str(settings.values['copper.url']).rstrip('/')} accepts the "
                       f"key: {name} <{user.get('email') or use_email}>, user id {user.get('id')}")

    stored_in: str | None = None  # the keyring backend's name, once it holds the key
    keyring_error: str | None = None
    if keyring:
        try:
            stored_in = credentials.store(profile, key)
        except credentials.KeyringFailed as exc:
            keyring_error = str(exc)
            streams.warn(f"{exc}; keeping the key in the config file instead")
    own, path = stored_in_config(profile)
    removed_from: str | None = None
    reason: str | None = None
    if stored_in is not None:
        location = credentials.describe(profile)
        streams.notice(f"stored the API key of profile {profile!r} in {location}, backend "
                       f"{stored_in}")
        if own.get("copper.api_key"):
            set_value(profile, "copper.api_key", None)
            removed_from = str(path)
            streams.notice(f"removed the older key from the config file {path}")
    else:
        path = set_value(profile, "copper.api_key", key)
        location = str(path)
        reason = ("no-keyring" if not keyring else "keyring-failed" if keyring_error
                  else "no-usable-keyring")
        streams.notice(f"stored the API key of profile {profile!r} in the config file {path} "
                       f"(0600; {_WHY_CONFIG[reason]})")
        if not keyring:
            try:
                if credentials.delete(profile):
                    removed_from = credentials.describe(profile)
                    streams.notice(f"removed the older key from {removed_from}")
            except credentials.KeyringFailed as exc:
                keyring_error = str(exc)
                streams.warn(f"{exc}: a key it holds for profile {profile!r} would be used "
                             "instead of this one")
    email_set = False
    if email is not None and email != own.get("copper.user_email"):
        set_value(profile, "copper.user_email", email)
        email_set = True
        streams.notice(f"set copper.user_email in profile {profile!r} ({path})")
    elif not use_email:
        streams.notice(f"no email for the key yet: set it with `oppcli --profile {profile} config "
                       "set copper.user_email you@example.com`")
    env_name = env_key_name()
    if env_name:
        streams.warn(f"{env_name} is set: it is used instead of the stored key while it is")
    if settings.backend != "copper":
        streams.notice(f"profile {profile!r} uses the {settings.backend} backend (from "
                       f"{settings.source('backend')}); `oppcli --profile {profile} config set "
                       "backend copper` makes Copper its default")
    return LoginResult(profile=profile, stored_in="config" if stored_in is None else "keyring",
                       location=location, keyring_backend=stored_in, config_reason=reason,
                       removed_from=removed_from, keyring_error=keyring_error, user=user,
                       email=use_email or None, email_set=email_set, environment=env_name,
                       backend=settings.backend)


# ---- logout -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LogoutResult:
    """What logout() removed: the keyring's entry for the profile (`from_keyring`), the config
    file's key (`from_config`, the file at `config_file`). `environment`: a variable giving a
    key, which logout cannot unset."""

    profile: str
    from_keyring: bool
    from_config: bool
    config_file: Path
    environment: str | None = None

    @property
    def removed(self) -> bool:
        return self.from_keyring or self.from_config


def logout(profile: str, *, streams: Streams) -> LogoutResult:
    """Remove the profile's key from the keyring and the config file (the email stays). No key
    stored: says so, and is no error. A keyring that fails: the config file's key is removed
    all the same, then ConfigError (exit 3) saying the keyring's may still be there."""
    from oppcli import credentials
    from oppcli.config import set_value

    from_keyring = False
    problem: credentials.KeyringFailed | None = None
    try:
        if credentials.delete(profile):
            from_keyring = True
            streams.notice(f"removed the API key of profile {profile!r} from "
                           f"{credentials.describe(profile)}")
    except credentials.KeyringFailed as exc:
        problem = exc
    own, path = stored_in_config(profile)
    from_config = bool(own.get("copper.api_key"))
    if from_config:
        set_value(profile, "copper.api_key", None)
        streams.notice(f"removed the API key of profile {profile!r} from the config file {path}")
    env_name = env_key_name()
    if env_name:
        streams.notice(f"{env_name} is still set in the environment: unset it too")
    if problem is not None:
        raise ConfigError(f"{problem}: a key it holds for profile {profile!r} is still there",
                          "unlock the keyring and run `oppcli auth logout` again")
    if not (from_keyring or from_config):
        streams.notice(f"no API key stored for profile {profile!r} (keyring or config file): "
                       "nothing removed")
    return LogoutResult(profile=profile, from_keyring=from_keyring, from_config=from_config,
                        config_file=path, environment=env_name)


# ---- status -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeyringState:
    """The profile's keyring entry: the usable backend's name (None: none usable, or it failed
    to load), where the entry is (`location`, for messages), whether it holds a key (None: it
    could not be read) and why not (`error`)."""

    backend: str | None
    service: str
    username: str
    location: str
    holds_key: bool | None
    error: str | None


@dataclass(frozen=True)
class AuthStatus:
    """Where the profile's key comes from, never the key: `key_source` "environment",
    "keyring", "config" or None (no key anywhere); `key_location` the variable's name, the
    keyring entry or the config file's path; `key` masked. Also the profile, backend, Copper
    URL and email (with its source), and every place holding a key for the profile."""

    profile: str
    backend: str
    url: str
    email: str | None
    email_source: str
    key_source: str | None
    key_location: str | None
    key: str | None
    environment: str | None
    keyring: KeyringState
    config_file: Path
    config_holds_key: bool

    def as_json(self) -> dict[str, Any]:
        """As `oppcli auth status -o json` prints it."""
        return {
            "profile": self.profile,
            "backend": self.backend,
            "url": self.url,
            "email": self.email,
            "email_source": self.email_source,
            "key_source": self.key_source,
            "key_location": self.key_location,
            "key": self.key,
            "environment": self.environment,
            "keyring": {"backend": self.keyring.backend, "service": self.keyring.service,
                        "username": self.keyring.username, "holds_key": self.keyring.holds_key,
                        "error": self.keyring.error},
            "config_file": {"path": str(self.config_file), "holds_key": self.config_holds_key},
        }

    def check(self) -> None:
        """ConfigError (exit 3) when there is no key at all, as `auth status` exits."""
        if not self.key_source:
            why = f" ({self.keyring.error})" if self.keyring.error else ""
            raise ConfigError(f"no Copper API key for profile {self.profile!r}{why}",
                              "run `oppcli auth login`, or set COPPER_API_KEY")


def status(settings: Settings, *, streams: Streams) -> AuthStatus:
    """Where the settings' profile's key comes from; a keyring that fails is warned about
    (and in .keyring.error), never an error. Asks nothing of Copper."""
    from oppcli import credentials
    from oppcli.config import mask

    profile = settings.profile
    own, path = stored_in_config(profile)
    env_name = env_key_name()
    backend_name: str | None = None
    from_keyring: str | None = None
    error: str | None = None
    try:
        backend_name = credentials.backend_name()
        from_keyring = credentials.get(profile) if backend_name else None
    except credentials.KeyringFailed as exc:
        error = str(exc)
        streams.warn(error)
    from_config = str(own.get("copper.api_key") or "")
    source: str | None
    location: str | None
    if env_name:
        source, location, key = "environment", env_name, str(os.environ[env_name])
    elif from_keyring:
        source, location, key = "keyring", credentials.describe(profile), from_keyring
    elif from_config:
        source, location, key = "config", str(path), from_config
    else:
        source, location, key = None, None, ""
    return AuthStatus(
        profile=profile, backend=settings.backend, url=settings.values["copper.url"],
        email=settings.values.get("copper.user_email"),
        email_source=settings.source("copper.user_email"), key_source=source,
        key_location=location, key=mask(key) if key else None, environment=env_name,
        keyring=KeyringState(backend=backend_name, service=credentials.SERVICE, username=profile,
                             location=credentials.describe(profile),
                             holds_key=None if error else bool(from_keyring), error=error),
        config_file=path, config_holds_key=bool(from_config))
