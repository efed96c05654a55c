"""One peer's signaling socket (docs/p2p.md): its first message says which side it is, then
it relays between exactly the two peers of one transfer, through the database.

Every refusal ends the socket with an `error` message and a close code the document lists; a
peer that leaves before `done` ends the transfer for the other.
"""

import asyncio
import json
import logging
import time
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar
from uuid import UUID

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.websockets import WebSocket, WebSocketDisconnect

from dropp.auth.errors import InvalidToken
from dropp.auth.tokens import AccessTokenSigner
from dropp.core.config import Settings
from dropp.core.errors import outage_of
from dropp.core.rate_limit import RateLimited, RateLimiter, client_address
from dropp.files.name_policy import name_policy
from dropp.p2p import service
from dropp.p2p.errors import TooManyTransfers
from dropp.p2p.models import Transfer, TransferState, Via
from dropp.p2p.relay import Relay
from dropp.p2p.schemas import (
    Done,
    Fallback,
    FileOffer,
    Join,
    Open,
    Progress,
    Signal,
    first_message,
    relayed_message,
)
from dropp.storage.s3 import Storage

logger = logging.getLogger(__name__)

FIRST_MESSAGE_SECONDS = 10.0
# Progress reaches the sender's event stream at most this often per socket.
PROGRESS_RECORD_SECONDS = 1.0
SENDER, RECEIVER = "sender", "receiver"

M = TypeVar("M")


class Refusal(Exception):
    """Ends the socket: `{"type": "error", "code", "detail"}`, then `close_code`."""

    def __init__(self, close_code: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.close_code = close_code
        self.code = code
        self.detail = detail


class PeerGone(Exception):
    """This peer's socket closed."""


class Finished(Exception):
    """The transfer is done: the socket closes normally."""


@dataclass(frozen=True)
class Signaling:
    """What every socket needs of the app."""

    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    storage: Storage
    signer: AccessTokenSigner
    rate_limiter: RateLimiter
    relay: Relay
    code_key: bytes


class PeerSocket:
    def __init__(self, websocket: WebSocket, signaling: Signaling) -> None:
        self.websocket = websocket
        self.signaling = signaling
        self.role = ""
        self.transfer_id: UUID | None = None
        self.offer: FileOffer | None = None
        # The sender's socket until `peer_joined` arrives: nobody to signal to yet.
        self.peer_here = False
        self.finished = False
        self.deadline = 0.0
        self.progress_recorded_at = 0.0

    async def serve(self) -> None:
        await self.websocket.accept()
        try:
            try:
                async with asyncio.timeout(FIRST_MESSAGE_SECONDS):
                    first = await self._receive(first_message)
            except TimeoutError:
                raise Refusal(4408, "timeout", "Say `open` or `join` first.") from None
            if isinstance(first, Open):
                await self._open(first)
            else:
                await self._join(first)
            await self._relay()
        except Refusal as refusal:
            await self._refuse(refusal)
        except Finished:
            await self._close(1000, "done")
        except PeerGone:
            pass
        except Exception as error:
            if outage_of(error) is None:
                logger.exception("p2p: signaling failed")
                await self._refuse(Refusal(1011, "internal_error", "The server failed."))
            else:
                await self._refuse(
                    Refusal(1011, "unavailable", "The database is unavailable: try again.")
                )
        finally:
            await self._leave()

    # --- the first message ---

    async def _open(self, message: Open) -> None:
        signaling = self.signaling
        try:
            claims = signaling.signer.verify(message.token)
        except InvalidToken as error:
            raise Refusal(4401, "not_authenticated", error.detail) from error
        try:
            async with signaling.sessionmaker.begin() as session:
                transfer, code = await service.open_transfer(
                    session, signaling.settings, signaling.code_key, claims.user_id, message.file
                )
        except TooManyTransfers as error:
            raise Refusal(4429, error.code, error.detail) from error
        self.role, self.transfer_id, self.offer = SENDER, transfer.id, message.file
        self.deadline = transfer.expires_at.timestamp()
        await self._send(
            {
                "type": "opened",
                "transfer_id": str(transfer.id),
                "code": code,
                "expires_at": transfer.expires_at.isoformat(),
                "ice_servers": self._ice_servers(),
            }
        )

    async def _join(self, message: Join) -> None:
        signaling = self.signaling
        try:
            await signaling.rate_limiter.check(
                "p2p-join",
                client_address(self.websocket),
                per_ip=signaling.rate_limiter.config.p2p_join,
            )
        except RateLimited as error:
            raise Refusal(4429, error.code, error.detail) from error
        async with signaling.sessionmaker.begin() as session:
            transfer = await service.join(
                session, signaling.settings, signaling.code_key, message.code
            )
            if transfer is not None:
                await service.send(session, transfer.id, SENDER, {"type": "peer_joined"})
        if transfer is None:
            # One answer for a code never issued, taken, or expired: a guess learns nothing.
            raise Refusal(
                4404,
                "unknown_code",
                "No transfer is waiting for this code: it may be mistyped, used or expired.",
            )
        self.role, self.transfer_id, self.peer_here = RECEIVER, transfer.id, True
        self.offer = _offer_of(transfer)
        self.deadline = transfer.expires_at.timestamp()
        await self._send(
            {
                "type": "joined",
                "transfer_id": str(transfer.id),
                "file": self.offer.model_dump(),
                "ice_servers": self._ice_servers(),
            }
        )

    def _ice_servers(self) -> list[dict[str, Any]]:
        return [
            server.model_dump(exclude_none=True)
            for server in self.signaling.settings.p2p_ice_servers
        ]

    # --- relaying ---

    async def _relay(self) -> None:
        assert self.transfer_id is not None
        with self.signaling.relay.mailbox(self.transfer_id) as mail:
            receiving = asyncio.ensure_future(self._receive(relayed_message))
            try:
                while True:
                    waiting = asyncio.ensure_future(mail.wait())
                    done, _ = await asyncio.wait(
                        {receiving, waiting},
                        timeout=max(0.0, self.deadline - time.time()),
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    waiting.cancel()
                    if not done:
                        await self._time_out()
                    if mail.is_set():
                        # Cleared before taking: a message queued meanwhile wakes it again.
                        mail.clear()
                        async with self.signaling.sessionmaker.begin() as session:
                            messages = await service.take(session, self.transfer_id, self.role)
                        for message in messages:
                            await self._deliver(message)
                    if receiving in done:
                        await self._handle(receiving.result())
                        receiving = asyncio.ensure_future(self._receive(relayed_message))
            finally:
                receiving.cancel()

    async def _time_out(self) -> NoReturn:
        assert self.transfer_id is not None
        async with self.signaling.sessionmaker.begin() as session:
            await service.move_on(session, self.transfer_id, TransferState.EXPIRED)
        self.finished = True
        detail = (
            "The transfer took longer than it may."
            if self.peer_here
            else "Nobody joined before the code expired."
        )
        raise Refusal(4408, "timeout", detail)

    async def _deliver(self, message: dict[str, Any]) -> None:
        """A message the other peer (or the server) queued for this one."""
        kind = message.get("type")
        if kind == "peer_left":
            raise Refusal(4410, "peer_left", "The other peer left before the file arrived.")
        if kind == "expired":
            self.finished = True
            raise Refusal(4408, "timeout", "The transfer took longer than it may.")
        if kind == "peer_joined":
            self.peer_here = True
        await self._send(message)
        if kind == "done":
            self.finished = True
            raise Finished

    async def _handle(self, message: Signal | Progress | Fallback | Done) -> None:
        """A message from this socket's own peer."""
        if not self.peer_here:
            raise Refusal(4403, "not_allowed", "Nobody has joined yet: wait for `peer_joined`.")
        assert self.transfer_id is not None
        assert self.offer is not None
        other = RECEIVER if self.role == SENDER else SENDER
        match message:
            case Signal():
                await self._queue(
                    other, {"type": "signal", "from": self.role, "data": message.data}
                )
            case Fallback():
                await self._queue(
                    other, {"type": "fallback", "from": self.role, "reason": message.reason}
                )
            case Progress():
                if message.bytes > self.offer.size:
                    raise Refusal(4400, "malformed", "`bytes` is more than the file holds.")
                await self._progress(other, message.bytes)
            case Done():
                await self._done(message)

    async def _progress(self, other: str, bytes_done: int) -> None:
        assert self.transfer_id is not None
        now = time.monotonic()
        record = now - self.progress_recorded_at >= PROGRESS_RECORD_SECONDS
        async with self.signaling.sessionmaker.begin() as session:
            await service.send(
                session,
                self.transfer_id,
                other,
                {"type": "progress", "from": self.role, "bytes": bytes_done},
            )
            # The receiver's count is what arrived; the sender's, what left.
            if record and self.role == RECEIVER:
                await service.record_progress(session, self.transfer_id, bytes_done)
        if record:
            self.progress_recorded_at = now

    async def _done(self, message: Done) -> None:
        assert self.transfer_id is not None
        assert self.offer is not None
        if self.role != RECEIVER:
            raise Refusal(4403, "not_allowed", "Only the receiver says `done`.")
        if message.sha256 != self.offer.sha256:
            raise Refusal(
                4400, "malformed", "`sha256` is not the declared one: the file did not arrive."
            )
        via = Via(message.via)
        async with self.signaling.sessionmaker.begin() as session:
            finished = await service.move_on(
                session, self.transfer_id, TransferState.DONE, via=via, bytes_done=self.offer.size
            )
            if finished is not None:
                await service.send(
                    session,
                    self.transfer_id,
                    SENDER,
                    {"type": "done", "via": via, "sha256": message.sha256},
                )
        self.finished = True
        if via == Via.CLOUD:
            await self._discard_stored()
        raise Finished

    async def _queue(self, to_peer: str, message: dict[str, Any]) -> None:
        assert self.transfer_id is not None
        async with self.signaling.sessionmaker.begin() as session:
            await service.send(session, self.transfer_id, to_peer, message)

    async def _leave(self) -> None:
        """This socket is closing: unless the transfer is done, it ends for the other too.
        A sender whose file storage holds may go: the receiver still fetches it."""
        if self.transfer_id is None or self.finished:
            return
        try:
            async with self.signaling.sessionmaker.begin() as session:
                transfer = await service.get(session, self.transfer_id)
                if transfer is None:
                    return
                if self.role == SENDER and transfer.state == TransferState.STORED:
                    return
                # Only a fallback puts anything in storage: deleting a key that was never
                # written would leave a delete marker in a versioned bucket.
                stored = transfer.state in (TransferState.FALLBACK, TransferState.STORED)
                ended = await service.move_on(session, self.transfer_id, TransferState.FAILED)
                if ended is not None and self.peer_here:
                    other = RECEIVER if self.role == SENDER else SENDER
                    await service.send(session, self.transfer_id, other, {"type": "peer_left"})
            if stored:
                await self._discard_stored()
        except Exception:
            # The sweeper ends what is left unfinished once it expires.
            logger.warning("p2p: could not record that a peer left", exc_info=True)

    async def _discard_stored(self) -> None:
        assert self.transfer_id is not None
        try:
            await self.signaling.storage.delete(service.storage_key(self.transfer_id))
        except Exception:
            logger.warning("p2p: the stored copy stays until the sweeper", exc_info=True)

    # --- the socket ---

    async def _receive(self, adapter: TypeAdapter[M]) -> M:
        message = await self.websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise PeerGone
        text: str | None = message.get("text")
        if text is None:
            raise Refusal(4400, "malformed", "Messages are JSON objects in text frames.")
        limit = self.signaling.settings.p2p_max_message_bytes
        if len(text) > limit or len(text.encode()) > limit:
            raise Refusal(1009, "too_big", f"A message may hold at most {limit} bytes.")
        try:
            data = json.loads(text)
        except ValueError:
            raise Refusal(4400, "malformed", "A message must be JSON.") from None
        try:
            with name_policy(
                allow_windows_incompatible_names=(
                    self.signaling.settings.allow_windows_incompatible_names
                )
            ):
                return adapter.validate_python(data)
        except ValidationError as error:
            raise Refusal(4400, *_why(error)) from None

    async def _send(self, message: dict[str, Any]) -> None:
        try:
            await self.websocket.send_text(json.dumps(message))
        except (WebSocketDisconnect, RuntimeError, OSError):
            raise PeerGone from None

    async def _refuse(self, refusal: Refusal) -> None:
        try:
            await self.websocket.send_text(
                json.dumps({"type": "error", "code": refusal.code, "detail": refusal.detail})
            )
        except (WebSocketDisconnect, RuntimeError, OSError):
            return
        await self._close(refusal.close_code, refusal.code)

    async def _close(self, code: int, reason: str) -> None:
        with suppress(WebSocketDisconnect, RuntimeError, OSError):
            await self.websocket.close(code=code, reason=reason)


def _offer_of(transfer: Transfer) -> FileOffer:
    return FileOffer.model_construct(
        name=transfer.file_name, size=transfer.file_size, sha256=transfer.file_sha256.hex()
    )


def _why(error: ValidationError) -> tuple[str, str]:
    """(code, detail) for a message that is not what the protocol says."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    if first["loc"][:2] == ("open", "file") and first["loc"][-1:] == ("name",):
        return "invalid_name", f"file.name: {first['msg']}"
    return "malformed", f"{where}: {first['msg']}" if where else first["msg"]
