"""Where the client keeps its settings: one directory per device.

`DROPP_CONFIG_DIR` overrides the platform's config directory, so two "devices" can run side
by side on one machine (the tests do). The directory holds `config.json` (the server, this
device's id and name) and, when no OS keyring is available, `credentials.json`.
"""

import json
import os
import socket
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import platformdirs

CONFIG_FILE = "config.json"


def config_dir() -> Path:
    override = os.environ.get("DROPP_CONFIG_DIR")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_config_dir("dropp", appauthor=False))


def _default_device_name() -> str:
    # The server names conflicted copies after the device: short and printable.
    name = "".join(c for c in socket.gethostname() if c.isprintable()).strip()
    return (name or "desktop")[:64]


@dataclass
class ClientConfig:
    server: str | None = None
    device_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    device_name: str = field(default_factory=_default_device_name)

    @classmethod
    def load(cls, directory: Path | None = None) -> "ClientConfig":
        path = (directory or config_dir()) / CONFIG_FILE
        try:
            raw = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            config = cls()
            # The device id must stay stable from the first run on: it keys the keyring entry.
            config.save(directory)
            return config
        known = {key: raw[key] for key in ("server", "device_id", "device_name") if key in raw}
        return cls(**known)

    def save(self, directory: Path | None = None) -> None:
        directory = directory or config_dir()
        directory.mkdir(parents=True, exist_ok=True)
        write_private(directory / CONFIG_FILE, json.dumps(asdict(self), indent=2) + "\n")


def normalize_server(url: str) -> str:
    """`https://host/` and `https://host` are one server; a bare host means https."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "https://" + url
    return url


def resolve_server(option: str | None, config: ClientConfig) -> str | None:
    """`--server` first, then DROPP_SERVER, then what `dropp login` saved."""
    chosen = option or os.environ.get("DROPP_SERVER") or config.server
    return normalize_server(chosen) if chosen else None


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, replacing it atomically: a crash mid-write
    leaves the previous version, never half of one."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
