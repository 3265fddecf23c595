"""Settings: flag > environment > the selected profile in the config file > defaults.

The config file is TOML (read with tomllib, written with tomli-w), 0600 in a 0700 directory
because it can hold the Copper API key:

    [profiles.default]
    backend = "local"
    store = "/home/me/deals"
    date_order = "MDY"

    [profiles.work.copper]
    api_key = "..."
    user_email = "me@example.com"
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oppcli.errors import ConfigError, ValidationError

DEFAULT_PROFILE = "default"
DEFAULT_COPPER_URL = "https://api.copper.com/developer_api/v1"
CONFIG_FILE = "config.toml"


@dataclass(frozen=True)
class Key:
    name: str
    help: str
    env: tuple[str, ...]
    choices: tuple[str, ...] = ()
    secret: bool = False
    number: type[int] | type[float] | None = None  # int or float: a positive number


KEYS: dict[str, Key] = {k.name: k for k in (
    Key("backend", "Where data lives: local (the JSON store) or copper (the API).",
        ("OPPCLI_BACKEND",), ("local", "copper")),
    Key("store", "Path of the local store directory.", ("OPPCLI_STORE",)),
    Key("date_order", "How close dates are written: MDY (MM/DD/YYYY) or DMY (DD/MM/YYYY).",
        ("OPPCLI_DATE_ORDER",), ("MDY", "DMY")),
    Key("copper.url", "Copper API base URL.", ("OPPCLI_COPPER_URL",)),
    Key("copper.api_key", "Copper API key.", ("COPPER_API_KEY", "OPPCLI_COPPER_API_KEY"),
        secret=True),
    Key("copper.user_email", "Email of the API key's owner.",
        ("COPPER_USER_EMAIL", "OPPCLI_COPPER_USER_EMAIL")),
    Key("copper.rate_limit", "Requests allowed per copper.rate_window (Copper: 180 a minute).",
        ("OPPCLI_COPPER_RATE_LIMIT",), number=int),
    Key("copper.rate_window", "Length of the rolling rate-limit window, in seconds.",
        ("OPPCLI_COPPER_RATE_WINDOW",), number=float),
    Key("copper.timeout", "Seconds to wait for Copper to answer a request.",
        ("OPPCLI_COPPER_TIMEOUT",), number=float),
    Key("copper.retries", "Times a failed request is retried (429, 5xx, network; never a create "
        "that may have happened).", ("OPPCLI_COPPER_RETRIES",), number=int),
    Key("copper.backoff", "First wait before a retry, in seconds; it doubles each time, with "
        "jitter.", ("OPPCLI_COPPER_BACKOFF",), number=float),
    Key("copper.cache_ttl", "Seconds the cached lookup tables (pipelines, users, ...) stay fresh.",
        ("OPPCLI_COPPER_CACHE_TTL",), number=float),
    Key("copper.timezone", "The Copper account's time zone (an IANA name such as "
        "America/Los_Angeles, or +HH:MM): Date custom fields are midnights there.",
        ("OPPCLI_COPPER_TIMEZONE",)),
    Key("copper.concurrency", "Search pages a long search or export keeps in flight at once "
        "(1: one at a time); the rate limit holds whatever it is.",
        ("OPPCLI_COPPER_CONCURRENCY",), number=int),
)}
ALIASES = {"copper.date_order": "date_order"}


def canonical_key(name: str) -> str:
    key = ALIASES.get(name, name)
    if key not in KEYS:
        raise ValidationError(f"unknown config key {name!r}", "valid keys: " + ", ".join(KEYS))
    return key


def config_dir() -> Path:
    env = os.environ.get("OPPCLI_CONFIG_DIR")
    if env:
        return Path(env).expanduser()
    import typer

    return Path(typer.get_app_dir("oppcli"))


def config_path() -> Path:
    return config_dir() / CONFIG_FILE


def cache_dir() -> Path:
    """Where the Copper lookup tables are cached: OPPCLI_CACHE_DIR, else the XDG cache dir."""
    env = os.environ.get("OPPCLI_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "oppcli"


def default_store() -> Path:
    if sys.platform.startswith("linux") or os.environ.get("XDG_DATA_HOME"):
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
        return base / "oppcli" / "store"
    return config_dir() / "store"


def defaults() -> dict[str, Any]:
    return {"backend": "local", "store": str(default_store()), "date_order": "MDY",
            "copper.url": DEFAULT_COPPER_URL, "copper.api_key": None, "copper.user_email": None,
            "copper.rate_limit": 180, "copper.rate_window": 60.0, "copper.timeout": 30.0,
            "copper.retries": 5, "copper.backoff": 1.0, "copper.cache_ttl": 3600.0, "copper.concurrency": 4,
            "copper.timezone": "UTC"}


def read_config(path: Path | None = None) -> dict[str, Any]:
    path = path or config_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}",
                          "check its permissions, or point OPPCLI_CONFIG_DIR elsewhere") from exc
    import tomllib  # here: most runs have no config file, and the parser costs ~5 ms to import

    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config {path} is not valid TOML ({exc})",
                          "fix it by hand or remove it") from exc
    profiles = doc.get("profiles", {})
    if not isinstance(profiles, dict) or not all(isinstance(v, dict) for v in profiles.values()):
        raise ConfigError(f"config {path}: [profiles] must hold tables like [profiles.default]",
                          "fix it by hand or remove it")
    _check_private(path, profiles)
    return doc


def _check_private(path: Path, profiles: Mapping[str, Any]) -> None:
    """A config file holding an API key must be readable by its owner only."""
    holds_key = any(_flatten(p).get("copper.api_key") for p in profiles.values())
    if not holds_key:
        return
    try:
        st = path.stat()
    except OSError:
        return
    if st.st_mode & 0o077:
        raise ConfigError(f"config {path} holds a Copper API key and others can read it "
                          f"(mode {st.st_mode & 0o777:04o})",
                          f"run `chmod 600 {path}` (oppcli writes it 0600); the key may have "
                          "been seen: consider replacing it")
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise ConfigError(f"config {path} holds a Copper API key and belongs to another user",
                          "use your own config (OPPCLI_CONFIG_DIR) or fix its owner")


def _flatten(profile: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in profile.items():
        if isinstance(v, dict):
            for k2, v2 in v.items():
                out[f"{k}.{k2}"] = v2
        else:
            out[k] = v
    return {ALIASES.get(k, k): v for k, v in out.items()}


def check_value(key: str, value: str) -> str:
    spec = KEYS[key]
    if key == "date_order":
        from oppcli.domain.values import check_date_order

        return check_date_order(value)
    if spec.choices:
        low = value.strip().lower()
        if low not in spec.choices:
            raise ValidationError(f"invalid {key} {value!r}", "valid: " + ", ".join(spec.choices))
        return low
    if key == "copper.url":
        check_url(value)
    if key == "copper.timezone":
        from oppcli.domain.values import parse_timezone

        parse_timezone(value)
        return value.strip()
    if key == "store":  # absolute, so the store does not depend on the current directory
        if not value.strip():
            raise ValidationError("store cannot be empty (it would be the current directory)",
                                  "give the store directory's path, or `oppcli config unset "
                                  "store` for the default")
        return str(Path(value).expanduser().resolve())
    if spec.number is not None:
        parse_setting_number(key, value)
    return value


def parse_setting_number(key: str, value: Any) -> int | float:
    """A numeric key's value as its type; ValidationError unless positive (retries: >= 0)."""
    spec = KEYS[key]
    kind = spec.number or float
    try:
        if isinstance(value, bool):
            raise ValueError
        number = kind(value) if not isinstance(value, str) else kind(value.strip())
    except (TypeError, ValueError):
        noun = "a whole number" if kind is int else "a number"
        raise ValidationError(f"invalid {key} {value!r}", f"give {noun}") from None
    if number < 0 or (number == 0 and key != "copper.retries") or number != number:
        raise ValidationError(f"invalid {key} {value!r}", "give a positive number")
    top = NUMBER_LIMITS.get(key)
    if top is not None and number > top:  # inf, 1e12: an overflow or a wait of centuries
        raise ValidationError(f"invalid {key} {value!r}: at most {top:g}",
                              f"give a number from {0 if key == 'copper.retries' else 'above 0'} "
                              f"to {top:g}")
    return number


# The largest sensible value of each numeric key (seconds, counts).
NUMBER_LIMITS: dict[str, float] = {
    "copper.rate_limit": 1_000_000, "copper.rate_window": 86_400, "copper.timeout": 3_600,
    "copper.retries": 100, "copper.backoff": 3_600, "copper.cache_ttl": 31_536_000,
    "copper.concurrency": 64}


def check_url(value: str) -> str:
    """An https:// URL, or http:// to a loopback address only (the API key travels with it)."""
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme == "https" and parts.hostname:
        return value
    if parts.scheme == "http" and parts.hostname:
        import ipaddress

        host = parts.hostname
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            return value
        raise ValidationError(f"refusing plain http to {host} for copper.url",
                              "use https://; http:// is only for loopback test servers")
    raise ValidationError(f"invalid copper.url {value!r}", "give an https:// URL")


@dataclass
class Settings:
    profile: str
    values: dict[str, Any]
    sources: dict[str, str] = field(default_factory=dict)
    config_file: Path | None = None
    keyring_checked: bool = False  # resolve_api_key has run (or the key must not be looked up)
    keyring_error: str | None = None  # why the keyring could not be read, when it could not

    @property
    def backend(self) -> str:
        return str(self.values["backend"])

    @property
    def store_path(self) -> Path:
        return Path(str(self.values["store"])).expanduser()

    @property
    def date_order(self) -> str:
        return str(self.values["date_order"])

    @property
    def timezone(self) -> Any:
        """copper.timezone as a tzinfo; ConfigError naming where a bad value came from."""
        from oppcli.domain.values import parse_timezone

        try:
            return parse_timezone(str(self.values.get("copper.timezone") or "UTC"))
        except ValidationError as exc:
            raise ConfigError(f"{exc.message} (from {self.source('copper.timezone')})",
                              exc.hint) from None

    def number(self, key: str) -> Any:
        """A numeric setting, checked; ConfigError naming where a bad value came from."""
        try:
            return parse_setting_number(key, self.values[key])
        except ValidationError as exc:
            raise ConfigError(f"{exc.message} (from {self.source(key)})", exc.hint) from None

    def source(self, key: str) -> str:
        return self.sources.get(key, "default")

    def resolve_api_key(self, warn: Callable[[str], None] | None = None) -> None:
        """Take copper.api_key from the system keyring unless a flag or the environment gives
        it: environment > keyring > config file. Done once, and only by what needs the key
        (importing keyring costs ~0.1 s). A keyring that fails is passed over: `warn` is
        told when the config file's key is used instead; keyring_error keeps why."""
        if self.keyring_checked:
            return
        self.keyring_checked = True
        if self.source("copper.api_key").startswith(("environment", "flag")):
            return
        from oppcli import credentials

        try:
            key = credentials.get(self.profile)
        except credentials.KeyringFailed as exc:
            self.keyring_error = str(exc)
            if self.values.get("copper.api_key") and warn is not None:
                warn(f"{exc}; using the key in {self.config_file}")
            return
        if key:
            self.values["copper.api_key"] = key
            self.sources["copper.api_key"] = credentials.describe(self.profile)


def selected_profile(profile: str | None = None,
                     env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(profile name, where the choice came from): --profile, else OPPCLI_PROFILE, else default."""
    env = os.environ if env is None else env
    if profile:
        return profile, "--profile"
    if env.get("OPPCLI_PROFILE"):
        return env["OPPCLI_PROFILE"], "OPPCLI_PROFILE"
    return DEFAULT_PROFILE, "default"


def load_settings(*, profile: str | None = None, flags: Mapping[str, Any] | None = None,
                  env: Mapping[str, str] | None = None, missing_ok: bool = False) -> Settings:
    """Resolve every key with its source: flag > environment > profile > default (the API
    key: see Settings.resolve_api_key). `missing_ok`: a profile named but not in the file yet
    (one a command is about to create) has the defaults instead of being an error."""
    env = os.environ if env is None else env
    flags = flags or {}
    chosen, profile_source = selected_profile(profile, env)
    path = config_path()
    doc = read_config(path)
    profiles = doc.get("profiles", {})
    if chosen not in profiles and profile_source != "default" and not missing_ok:
        known = ", ".join(profiles) or "none yet"
        raise ConfigError(f"no profile {chosen!r} in {path} (from {profile_source})",
                          f"profiles: {known}; create one with "
                          f"`oppcli --profile {chosen} config set backend local`")
    from_profile = _flatten(profiles.get(chosen, {}))
    values = defaults()
    sources: dict[str, str] = {}
    for key, spec in KEYS.items():
        if flags.get(key) is not None:
            values[key], sources[key] = flags[key], f"flag --{key.replace('_', '-')}"
            continue
        env_name = next((e for e in spec.env if env.get(e)), None)
        if env_name:
            values[key], sources[key] = env[env_name], f"environment {env_name}"
            continue
        if from_profile.get(key) not in (None, ""):
            values[key], sources[key] = from_profile[key], f"profile {chosen!r} in {path}"
    for key in ("backend", "date_order"):
        if key in sources:
            try:
                values[key] = check_value(key, str(values[key]))
            except ValidationError as exc:
                if sources[key].startswith("flag"):  # a bad flag value is a usage error (2)
                    raise ValidationError(f"{exc.message} (from {sources[key]})", exc.hint) from None
                raise ConfigError(f"{exc.message} (from {sources[key]})", exc.hint) from None
    return Settings(profile=chosen, values=values, sources=sources, config_file=path)


def write_config(doc: Mapping[str, Any], path: Path | None = None) -> Path:
    import tomli_w

    from oppcli.util.files import atomic_write

    path = path or config_path()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(path, tomli_w.dumps(dict(doc)).encode("utf-8"), mode=0o600)
    except OSError as exc:
        raise ConfigError(f"cannot write config {path}: {exc.strerror}",
                          "check the directory's permissions") from exc
    return path


LOCK_TIMEOUT = 30.0


@contextlib.contextmanager
def config_locked(path: Path | None = None) -> Iterator[Path]:
    """Hold an exclusive flock on `config.toml.lock` beside the config file for a
    read-modify-write of it, so two `config set` at once both land; yields the config path."""

    path = path or config_path()
    lock = path.with_name(path.name + ".lock")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot lock config {path}: {exc.strerror}",
                          "check the directory's permissions") from exc
    try:
        from oppcli.util.locks import flock_within

        if not flock_within(fd, LOCK_TIMEOUT):
            raise ConfigError(f"config {path} stayed locked by another oppcli for "
                              f"{LOCK_TIMEOUT:g}s", f"try again; {lock} is the lock")
        yield path
    finally:
        os.close(fd)  # releases the lock


def set_value(profile: str, key: str, value: str | None) -> Path:
    """Set (or with None remove) one key of a profile in the config file: read, changed and
    replaced (atomically, 0600) under the config's lock."""
    key = canonical_key(key)
    with config_locked() as path:
        return _set_value(path, profile, key, value)


def _set_value(path: Path, profile: str, key: str, value: str | None) -> Path:
    doc = read_config(path)
    profiles = doc.setdefault("profiles", {})
    table = profiles.setdefault(profile, {})
    section, _, leaf = key.rpartition(".")
    target = table.setdefault(section, {}) if section else table
    if not isinstance(table, dict) or not isinstance(target, dict):
        raise ConfigError(f"config {path}: [profiles.{profile}] "
                          f"{'.' + section if section else ''} is not a table",
                          "fix it by hand or remove it")
    if value is None:
        target.pop(leaf, None)
        if section and not target:
            table.pop(section, None)
    else:
        target[leaf] = (parse_setting_number(key, value) if KEYS[key].number
                        else check_value(key, value))
    return write_config(doc, path)


def mask(value: Any) -> str:
    """A secret shown as its last four characters only (all hidden when short)."""
    text = str(value)
    if len(text) < 12:
        return "****"
    return "****" + text[-4:]
