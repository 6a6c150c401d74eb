"""Keyring backends for tests, so no test needs a desktop keyring: in memory, always locked, and one that
keeps its passwords in the JSON file $TEST_KEYRING_FILE, which a CLI process finds through keyring's
own PYTHON_KEYRING_BACKEND setting."""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import KeyringLocked, PasswordDeleteError


class FileBackedKeyring(KeyringBackend):
    """Passwords in one JSON file: {"service\\nname": password}."""

    priority = 1  # type: ignore[assignment]

    @property
    def _path(self) -> Path:
        return Path(os.environ["TEST_KEYRING_FILE"])

    def _load(self) -> dict[str, str]:
        return json.loads(self._path.read_text()) if self._path.exists() else {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(f"{service}\n{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        self._path.write_text(json.dumps({**self._load(), f"{service}\n{username}": password}))

    def delete_password(self, service: str, username: str) -> None:
        stored = self._load()
        if stored.pop(f"{service}\n{username}", None) is None:
            raise PasswordDeleteError(username)
        self._path.write_text(json.dumps(stored))


class MemoryKeyring(KeyringBackend):
    """A keyring backend that keeps passwords in a dict, as a desktop keyring would keep them."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if (service, username) not in self.passwords:
            raise PasswordDeleteError(username)
        del self.passwords[(service, username)]


class LockedKeyring(MemoryKeyring):
    """A keyring whose every use fails, as a locked desktop keyring in a session without a prompt."""

    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringLocked("the collection is locked")
