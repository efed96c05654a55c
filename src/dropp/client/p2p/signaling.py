"""The signaling socket, `GET /p2p` (docs/p2p.md): JSON messages to and from the server,
and the server's refusals turned into the client's errors and exit codes."""

import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from dropp.client.errors import ClientError, NotFound, NotSignedIn, ServerUnavailable

# The server allows 64 KiB a message; a little more is read, so that a longer one is its
# `too_big` refusal, not ours.
MAX_MESSAGE_BYTES = 256 * 1024
OPEN_TIMEOUT_SECONDS = 15.0


class SignalingError(ClientError):
    """The server ended the signaling with an error (its `code`, or the close code)."""

    def __init__(self, message: str, code: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.code = code
        self._exit_code = exit_code

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        return self._exit_code


class PeerLeft(SignalingError):
    """The other peer closed its socket before `done`."""


def signaling_url(server: str) -> str:
    """`https://host/base` -> `wss://host/base/p2p`."""
    parts = urlsplit(server)
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme.lower())
    if scheme is None:
        raise ClientError(f"{server} is not an http(s) URL.")
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/p2p", "", ""))


# Close codes without an `error` message before them (docs/p2p.md, the error table).
CLOSE_CODES = {
    1009: "too_big",
    1011: "unavailable",
    4400: "malformed",
    4401: "not_authenticated",
    4403: "not_allowed",
    4404: "unknown_code",
    4408: "timeout",
    4410: "peer_left",
    4413: "file_too_big",
    4429: "rate_limited",
}


def refusal(server: str, code: str, detail: str | None) -> SignalingError:
    """The error a refusal `code` means here, in words a person can act on."""
    said = f" ({detail})" if detail else ""
    if code == "not_authenticated":
        return SignalingError(
            f"Your session has ended to {server}: run `dropp login`.", code, NotSignedIn.exit_code
        )
    if code == "unknown_code":
        return SignalingError(
            "No transfer waits for this code: check it, or ask the sender for a new one "
            "(a code works once, and not for long).",
            code,
            NotFound.exit_code,
        )
    if code == "peer_left":
        return PeerLeft("The other side left before the file arrived.", code)
    if code == "unavailable":
        return SignalingError(
            f"{server} is unavailable{said}: try again.", code, ServerUnavailable.exit_code
        )
    if code == "invalid_name":
        return SignalingError(f"The server refuses this file name{said}.", code)
    if code == "timeout":
        return SignalingError(f"The transfer timed out{said}.", code)
    if code in ("rate_limited", "too_many_transfers"):
        return SignalingError(f"{detail or 'Too many transfers'}: try again later.", code)
    return SignalingError(f"The server ended the transfer: {detail or code}.", code)


class Signaling:
    """One signaling socket. `receive()` gives the next message; the server's `error`
    messages and abnormal closes raise, its normal close (after `done`) gives None."""

    def __init__(self, connection: ClientConnection, server: str) -> None:
        self.connection = connection
        self.server = server
        self.closed_normally = False

    @classmethod
    @asynccontextmanager
    async def connect(cls, server: str) -> AsyncIterator["Signaling"]:
        url = signaling_url(server)
        try:
            connection = await connect(
                url, max_size=MAX_MESSAGE_BYTES, open_timeout=OPEN_TIMEOUT_SECONDS
            )
        except InvalidStatus as error:
            status = error.response.status_code
            # Starlette answers a WebSocket to no route with 403: a server without p2p.
            if status in (403, 404):
                raise ClientError(
                    f"{server} does not offer peer-to-peer transfer (it answered {status})."
                ) from None
            if status in (502, 503, 504):
                raise ServerUnavailable(f"{server} is unavailable ({status}).") from None
            raise ClientError(f"{server} refused the signaling connection: {status}.") from None
        except InvalidURI as error:
            raise ClientError(f"{url}: {error.msg}") from None
        except (OSError, TimeoutError, InvalidHandshake) as error:
            raise ServerUnavailable(
                f"Cannot reach {server}: {error or type(error).__name__}."
            ) from None
        try:
            yield cls(connection, server)
        finally:
            await connection.close()

    async def send(self, message: dict[str, Any]) -> None:
        # A closed socket's reason is what `receive()` reports next.
        with contextlib.suppress(ConnectionClosed):
            await self.connection.send(json.dumps(message))

    async def receive(self) -> dict[str, Any] | None:
        try:
            raw = await self.connection.recv()
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd is not None else None
            reason = closed.rcvd.reason if closed.rcvd is not None else ""
            if code in (1000, 1001):
                self.closed_normally = True
                return None
            if code in CLOSE_CODES:
                raise refusal(self.server, CLOSE_CODES[code], reason or None) from None
            raise ServerUnavailable(
                f"The connection to {self.server} was lost"
                + (f" (close code {code})." if code is not None else ".")
            ) from None
        if isinstance(raw, bytes):
            raise ClientError("The server sent a binary signaling message.")
        try:
            message = json.loads(raw)
        except ValueError:
            raise ClientError("The server sent a signaling message that is not JSON.") from None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise ClientError("The server sent a signaling message without a type.")
        if message["type"] == "error":
            detail = message.get("detail")
            code = message.get("code")
            raise refusal(
                self.server,
                code if isinstance(code, str) else "error",
                detail if isinstance(detail, str) else None,
            )
        return message

    async def expect(self, kind: str) -> dict[str, Any]:
        """The next message, which must be of this type."""
        message = await self.receive()
        if message is None:
            raise ClientError(f"The server closed the connection instead of answering {kind!r}.")
        if message["type"] != kind:
            raise ClientError(f"The server answered {message['type']!r} instead of {kind!r}.")
        return message
