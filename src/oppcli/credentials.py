"""The Copper API key in the OS keyring (macOS Keychain, Windows Credential Locker, the Secret
Service on Linux), through the `keyring` library.

One entry per profile: service "oppcli", user name the profile's name. When a key is read,
the environment wins (COPPER_API_KEY: cron and containers need no keyring), then this entry,
then the profile's 0600 config file (config.Settings.resolve_api_key).

`keyring` is imported here only, inside the functions: it costs ~0.1 s, paid only by a command
that needs a Copper key and finds none in the environment, never by `--version`, `--help` or
the local store. Which backend is keyring's own choice: PYTHON_KEYRING_BACKEND or its
keyringrc.cfg may name one (`keyring.backends.null.Keyring` turns it off); with none usable,
get() finds nothing and store() returns None, so the caller keeps the key in the config file.
A backend that fails (locked, refused, its D-Bus gone) raises KeyringFailed, one line.
"""

from __future__ import annotations

from typing import Any

SERVICE = "oppcli"


class KeyringFailed(Exception):
    """The keyring was there but failed (locked, refused, misconfigured): one line saying how."""


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "no message"
    if len(text) > 200:
        text = text[:197] + "..."
    return f"{type(exc).__name__}: {text}"


def _backend() -> Any | None:
    """keyring's backend, or None when there is no usable one (keyring not installed, its
    `fail` or `null` backend, a chainer with nothing to chain)."""
    try:
        import keyring
        from keyring.backends import chainer, fail, null
    except ImportError:
        return None
    try:
        kr = keyring.get_keyring()
    except Exception as exc:  # a PYTHON_KEYRING_BACKEND naming nothing importable, a bad keyringrc
        raise KeyringFailed(f"the keyring could not be loaded ({_one_line(exc)})") from None
    if isinstance(kr, (fail.Keyring, null.Keyring)):
        return None
    if isinstance(kr, chainer.ChainerBackend) and not kr.backends:
        return None
    return kr


def backend_name() -> str | None:
    """The usable backend as PYTHON_KEYRING_BACKEND would name it; None when there is none."""
    kr = _backend()
    return None if kr is None else f"{type(kr).__module__}.{type(kr).__qualname__}"


def describe(profile: str) -> str:
    """Where a profile's key lives in the keyring, for messages."""
    return f"the system keyring (service {SERVICE!r}, user {profile!r})"


def get(profile: str) -> str | None:
    """The profile's key from the keyring; None when it holds none or there is no keyring."""
    kr = _backend()
    if kr is None:
        return None
    try:
        value = kr.get_password(SERVICE, profile)
    except Exception as exc:
        raise KeyringFailed(f"cannot read the system keyring ({_one_line(exc)})") from None
    return str(value) if value else None


def store(profile: str, key: str) -> str | None:
    """Keep the key as the profile's entry; the backend's name, or None when there is no
    usable keyring (nothing stored)."""
    kr = _backend()
    if kr is None:
        return None
    try:
        kr.set_password(SERVICE, profile, key)
    except Exception as exc:
        raise KeyringFailed(f"cannot write to the system keyring ({_one_line(exc)})") from None
    return f"{type(kr).__module__}.{type(kr).__qualname__}"


def delete(profile: str) -> bool:
    """Remove the profile's entry; whether there was one (False too with no keyring)."""
    kr = _backend()
    if kr is None:
        return False
    try:
        if kr.get_password(SERVICE, profile) is None:
            return False
        kr.delete_password(SERVICE, profile)
    except Exception as exc:
        raise KeyringFailed(f"cannot remove the key from the system keyring "
                            f"({_one_line(exc)})") from None
    return True
