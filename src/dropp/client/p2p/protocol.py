"""What crosses the wire (docs/p2p.md), read defensively: the server's words are checked
before anything on this machine acts on them."""

import ipaddress
import os
import re
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from dropp.client.errors import ClientError
from dropp.client.hashing import MIB
from dropp.client.sync.names import unstorable_name

CHANNEL_LABEL = "dropp-file"
CHUNK = 64 * 1024
# The spec's backpressure: never more than 1 MiB queued in the channel, resumed at 256 KiB.
HIGH_WATER = MIB
LOW_WATER = 256 * 1024
# `progress` messages: about every 1 MiB or second, whichever comes later.
PROGRESS_BYTES = MIB
PROGRESS_SECONDS = 1.0
DEFAULT_P2P_TIMEOUT = 15.0
HOST_ADDRESSES_ENV = "DROPP_P2P_HOST_ADDRESSES"
MAX_REASON = 200

CODE_DIGITS = 12
SEPARATORS = re.compile(r"[\s.\-]+")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class Via(StrEnum):
    P2P = "p2p"
    CLOUD = "cloud"


class Route(StrEnum):
    """`dropp send --via`: auto tries peer to peer and falls back; the others insist."""

    AUTO = "auto"
    P2P = "p2p"
    CLOUD = "cloud"


class ProtocolError(ClientError):
    """The server (or the peer through it) said something the protocol does not allow."""


@dataclass(frozen=True)
class FileOffer:
    """The file as its sender declared it to the server."""

    name: str
    size: int
    sha256: str  # 64 lowercase hex digits

    def message(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "sha256": self.sha256}


@dataclass(frozen=True)
class IceServer:
    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None


@dataclass(frozen=True)
class Outcome:
    """How a transfer ended, as `--json` prints it."""

    via: Via
    sha256: str
    name: str
    size: int
    transfer_id: str | None = None
    path: str | None = None  # where the receiver put the file

    def as_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "via": str(self.via),
            "sha256": self.sha256,
            "name": self.name,
            "size": self.size,
        }
        if self.path is not None:
            shown["path"] = self.path
        if self.transfer_id is not None:
            shown["transfer_id"] = self.transfer_id
        return shown


class Watcher(Protocol):
    """What a command shows: the code once it exists (sender), and each turn taken."""

    def code(self, code: str, expires_at: str | None) -> None: ...

    def status(self, text: str) -> None: ...


def fallback_message(reason: str) -> dict[str, Any]:
    """The `fallback` message; the server takes reasons of at most 200 characters."""
    return {"type": "fallback", "reason": reason[:MAX_REASON]}


def normalize_code(typed: str) -> str | None:
    """`4821-0937-5562` however it was typed (dashes, spaces, dots), or None if it cannot
    be a code: checked here so a typo costs no join from the rate limit."""
    digits = SEPARATORS.sub("", typed.strip())
    if len(digits) != CODE_DIGITS or not digits.isascii() or not digits.isdigit():
        return None
    return "-".join(digits[i : i + 4] for i in range(0, CODE_DIGITS, 4))


def unsafe_name(name: str) -> str | None:
    """Why `name` is not one plain name to create in the target folder; None if it is.
    The server applies its own naming rules, but a name that climbs out of the folder or
    names another would do harm here, so it is checked again."""
    if "\\" in name:
        return "a name cannot contain \\"
    return unstorable_name(name, windows=os.name == "nt")


def parse_offer(value: object) -> FileOffer:
    if not isinstance(value, dict):
        raise ProtocolError("The server described no file to receive.")
    name, size, sha256 = value.get("name"), value.get("size"), value.get("sha256")
    if not isinstance(name, str):
        raise ProtocolError("The server gave the file no name.")
    reason = unsafe_name(name)
    if reason is not None:
        raise ProtocolError(f"Refused the file name {name!r} the server gave: {reason}.")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ProtocolError(f"The server gave the file an impossible size: {size!r}.")
    if not isinstance(sha256, str) or not SHA256_HEX.fullmatch(sha256.lower()):
        raise ProtocolError("The server gave the file no valid SHA-256.")
    return FileOffer(name, size, sha256.lower())


def parse_ice_servers(value: object) -> list[IceServer]:
    """The STUN/TURN servers the server hands out; entries of other shapes are left out (a
    peer can still connect without them, on the same network)."""
    servers: list[IceServer] = []
    if not isinstance(value, list):
        return servers
    for entry in value:
        if not isinstance(entry, dict):
            continue
        urls = entry.get("urls")
        if isinstance(urls, str):
            urls = [urls]
        if not isinstance(urls, list) or not all(isinstance(url, str) for url in urls):
            continue
        # What aiortc can use; "stuns:" it cannot parse.
        usable = tuple(url for url in urls if url.split(":", 1)[0] in ("stun", "turn", "turns"))
        if not usable:
            continue
        username, credential = entry.get("username"), entry.get("credential")
        servers.append(
            IceServer(
                usable,
                username if isinstance(username, str) else None,
                credential if isinstance(credential, str) else None,
            )
        )
    return servers


def host_addresses(value: str | None) -> list[str] | None:
    """DROPP_P2P_HOST_ADDRESSES, comma-separated; None when unset (every interface)."""
    if value is None or not value.strip():
        return None
    addresses = [part.strip() for part in value.split(",") if part.strip()]
    for address in addresses:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise ClientError(f"{HOST_ADDRESSES_ENV}: {address!r} is not an IP address.") from None
    return addresses


class Pace:
    """When the next `progress` message is due: after both 1 MiB and a second."""

    def __init__(self) -> None:
        self.bytes = 0
        self.at = time.monotonic()

    def due(self, done: int) -> bool:
        now = time.monotonic()
        if done - self.bytes < PROGRESS_BYTES or now - self.at < PROGRESS_SECONDS:
            return False
        self.bytes, self.at = done, now
        return True
