"""Tokens at rest: the OS keyring when one is available, else a file only the user can read.

Each entry is keyed by server and device id, so two config directories on one machine (two
"devices") never share a session.
"""

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from dropp.client.config import config_dir, write_private

CREDENTIALS_FILE = "credentials.json"
KEYRING_SERVICE = "dropp"


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    # Seconds since the epoch when the access token runs out, by this machine's clock.
    expires_at: float

    @classmethod
    def from_answer(cls, answer: dict[str, Any]) -> "Tokens":
        return cls(
            access_token=answer["access_token"],
            refresh_token=answer["refresh_token"],
            expires_at=time.time() + float(answer["expires_in"]),
        )


class CredentialStore(Protocol):
    """Where one device keeps its session for each server."""

    name: str

    def load(self, server: str) -> Tokens | None: ...

    def save(self, server: str, tokens: Tokens) -> None: ...

    def delete(self, server: str) -> None: ...


class FileStore:
    """`credentials.json` in the config directory, mode 0600, replaced atomically."""

    name = "file"

    def __init__(self, directory: Path | None = None) -> None:
        self.path = (directory or config_dir()) / CREDENTIALS_FILE

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        return data if isinstance(data, dict) else {}

    def load(self, server: str) -> Tokens | None:
        entry = self._read().get(server)
        return Tokens(**entry) if entry else None

    def save(self, server: str, tokens: Tokens) -> None:
        data = self._read()
        data[server] = asdict(tokens)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_private(self.path, json.dumps(data, indent=2) + "\n")

    def delete(self, server: str) -> None:
        data = self._read()
        if data.pop(server, None) is not None:
            write_private(self.path, json.dumps(data, indent=2) + "\n")


class KeyringStore:
    """The OS keyring (Keychain, Credential Manager, Secret Service)."""

    name = "keyring"

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id

    def _user(self, server: str) -> str:
        return f"{server} {self.device_id}"

    def load(self, server: str) -> Tokens | None:
        import keyring

        stored = keyring.get_password(KEYRING_SERVICE, self._user(server))
        return Tokens(**json.loads(stored)) if stored else None

    def save(self, server: str, tokens: Tokens) -> None:
        import keyring

        keyring.set_password(KEYRING_SERVICE, self._user(server), json.dumps(asdict(tokens)))

    def delete(self, server: str) -> None:
        import keyring
        from keyring.errors import PasswordDeleteError

        with contextlib.suppress(PasswordDeleteError):
            keyring.delete_password(KEYRING_SERVICE, self._user(server))


def _keyring_usable() -> bool:
    """A real backend, not keyring's `fail` one (headless Linux has no Secret Service)."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return False
    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring):
        return False
    # The chainer with no backends behind it stores nothing.
    return getattr(backend, "priority", 0) > 0


def open_store(device_id: str, directory: Path | None = None) -> CredentialStore:
    """DROPP_CREDENTIALS=file (or keyring) forces one; otherwise the keyring when usable."""
    choice = os.environ.get("DROPP_CREDENTIALS", "").lower()
    if choice == "file" or (choice != "keyring" and not _keyring_usable()):
        return FileStore(directory)
    return KeyringStore(device_id)
