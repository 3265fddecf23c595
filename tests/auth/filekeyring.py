"""Keyring backends the tests control, chosen for an `oppcli` subprocess with
PYTHON_KEYRING_BACKEND (this folder on its PYTHONPATH):

    filekeyring.FileKeyring     passwords in the JSON file named by FILE_KEYRING,
                                {"service": {"user": "password"}}; nothing else touched
    filekeyring.LockedKeyring   every operation fails as a locked keyring does
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import KeyringLocked, PasswordDeleteError


def read_file_keyring(path: Path) -> dict[str, dict[str, str]]:
    return json.loads(path.read_text()) if path.exists() else {}


class FileKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    @property
    def path(self) -> Path:
        return Path(os.environ["FILE_KEYRING"])

    def get_password(self, service: str, username: str) -> str | None:
        return read_file_keyring(self.path).get(service, {}).get(username)

    def set_password(self, service: str, username: str, password: str) -> None:
        data = read_file_keyring(self.path)
        data.setdefault(service, {})[username] = password
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.path)

    def delete_password(self, service: str, username: str) -> None:
        data = read_file_keyring(self.path)
        if username not in data.get(service, {}):
            raise PasswordDeleteError("no such password")
        del data[service][username]
        self.path.write_text(json.dumps(data))


class LockedKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringLocked("Failed to unlock the collection!")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise KeyringLocked("Failed to unlock the collection!")

    def delete_password(self, service: str, username: str) -> None:
        raise KeyringLocked("Failed to unlock the collection!")
