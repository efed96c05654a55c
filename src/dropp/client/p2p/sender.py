"""`dropp send`: open a transfer, show its code, and move the file to whoever joins,
peer to peer when the two can reach each other and through storage otherwise."""

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dropp.client.api import Api
from dropp.client.errors import ClientError, NotFound
from dropp.client.hashing import FileChanged, hash_file
from dropp.client.p2p import cloud
from dropp.client.p2p.inbox import (
    ChannelOpen,
    Closed,
    Disconnected,
    Event,
    Inbox,
    Message,
    TaskEnded,
    TimedOut,
)
from dropp.client.p2p.peer import ChannelLost, Peer, PeerError, offer_host_addresses, pump
from dropp.client.p2p.protocol import (
    DEFAULT_P2P_TIMEOUT,
    FileOffer,
    Outcome,
    Pace,
    ProtocolError,
    Route,
    Via,
    Watcher,
    fallback_message,
    parse_ice_servers,
    unsafe_name,
)
from dropp.client.p2p.signaling import Signaling
from dropp.client.transfers import Progress, TransferError

# How long a channel lost mid-file waits for the receiver's word before the cloud takes over.
LOST_GRACE_SECONDS = 2.0


@dataclass(frozen=True)
class SendOptions:
    route: Route = Route.AUTO
    p2p_timeout: float = DEFAULT_P2P_TIMEOUT
    # DROPP_P2P_HOST_ADDRESSES; None: every interface.
    host_addresses: list[str] | None = None


@dataclass(frozen=True)
class _FallBack:
    reason: str
    tell: bool  # whether the other side still has to hear it


async def describe(source: Path) -> FileOffer:
    """The name, size and SHA-256 the server is told (and the receiver checks)."""
    return await asyncio.to_thread(_describe, source)


def _describe(source: Path) -> FileOffer:
    if not os.path.lexists(source):
        raise NotFound(f"No such file: {source}.")
    if not source.is_file():
        raise TransferError(f"{source}: not a file (send sends one regular file).")
    reason = unsafe_name(source.name)
    if reason is not None:
        raise TransferError(f"{source}: {reason}.")
    try:
        hashed = hash_file(source)
    except FileChanged as error:
        raise TransferError(f"{source} changed while it was read: run again.") from error
    except OSError as error:
        raise TransferError(f"{source}: {error.strerror or error}") from error
    return FileOffer(source.name, hashed.size, hashed.sha256.hex())


async def send_file(
    api: Api,
    source: Path,
    file: FileOffer,
    *,
    options: SendOptions,
    watcher: Watcher,
    progress: Progress | None = None,
) -> Outcome:
    """Offer `file` (read from `source`) under a new code, and send it to its receiver."""
    token = await api.access_token()
    async with Signaling.connect(api.server) as signaling:
        await signaling.send({"type": "open", "token": token, "file": file.message()})
        opened = await signaling.expect("opened")
        code, expires_at = opened.get("code"), opened.get("expires_at")
        if not isinstance(code, str) or not isinstance(opened.get("transfer_id"), str):
            raise ProtocolError("The server opened the transfer without a code or an id.")
        watcher.code(code, expires_at if isinstance(expires_at, str) else None)
        await signaling.expect("peer_joined")
        watcher.status("The receiver joined.")
        inbox = Inbox()
        inbox.follow(signaling)
        try:
            return await _Sending(
                api, signaling, inbox, source, file, opened, options, watcher, progress
            ).run()
        finally:
            await inbox.close()


class _Sending:
    def __init__(
        self,
        api: Api,
        signaling: Signaling,
        inbox: Inbox,
        source: Path,
        file: FileOffer,
        opened: dict[str, Any],
        options: SendOptions,
        watcher: Watcher,
        progress: Progress | None,
    ) -> None:
        self.api = api
        self.signaling = signaling
        self.inbox = inbox
        self.source = source
        self.file = file
        self.transfer_id = str(opened["transfer_id"])
        self.ice_servers = parse_ice_servers(opened.get("ice_servers"))
        self.options = options
        self.watcher = watcher
        self.progress = progress
        self.task: int | None = None
        self.shown = 0
        self.pace = Pace()

    # --- progress: the bar here, `progress` messages for the other side ---------------------

    def _advance(self, amount: int) -> None:
        self.shown += amount
        if self.progress is not None:
            if self.task is None:
                self.task = self.progress.add(self.file.name, self.file.size)
            self.progress.advance(self.task, amount)
        if self.pace.due(self.shown):
            self.inbox.start(self.signaling.send({"type": "progress", "bytes": self.shown}))

    def _take_back(self) -> None:
        if self.shown:
            self._advance(-self.shown)
        self.pace = Pace()

    # --- the transfer -----------------------------------------------------------------------

    async def run(self) -> Outcome:
        if self.options.route == Route.CLOUD:
            return await self._cloud(_FallBack("the sender chose the cloud", tell=True))
        offer_host_addresses(self.options.host_addresses)
        peer = Peer(self.ice_servers, self.inbox.put)
        try:
            result = await self._direct(peer)
        finally:
            await peer.close()
        if isinstance(result, Outcome):
            return result
        if self.options.route == Route.P2P:
            raise ClientError(
                f"No peer-to-peer transfer: {result.reason} (with --via p2p, nothing goes "
                "through the cloud)."
            )
        return await self._cloud(result)

    async def _direct(self, peer: Peer) -> Outcome | _FallBack:
        await self.signaling.send({"type": "signal", "data": await peer.offer()})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.p2p_timeout
        pumping: asyncio.Task[None] | None = None
        handed_over = False
        # Why the channel went away mid-file, while the receiver has a moment to speak.
        lost: str | None = None

        def waiting() -> float | None:
            if pumping is None:
                return max(0.0, deadline - loop.time())
            return None if lost is None else max(0.0, deadline - loop.time())

        def stop() -> None:
            if pumping is not None:
                pumping.cancel()
            self._take_back()

        def lose(reason: str) -> None:
            """A channel lost mid-file is most often a receiver that left (Ctrl-C): its
            `peer_left`, or its own `fallback`, decides before the sender uploads anything."""
            nonlocal lost, deadline
            stop()
            if lost is None:
                lost, deadline = reason, loop.time() + LOST_GRACE_SECONDS

        while True:
            event = await self.inbox.get(waiting())
            match event:
                case TimedOut() if lost is not None:
                    return _FallBack(lost, tell=True)
                case TimedOut():
                    return _FallBack(
                        f"no direct connection within {self.options.p2p_timeout:g} s", tell=True
                    )
                case ChannelOpen(channel) if pumping is None:
                    self.watcher.status("Connected peer to peer.")
                    pumping = self.inbox.start(
                        pump(channel, self.source, self.file.size, self.file.sha256, self._advance)
                    )
                case Disconnected(reason) if pumping is None:
                    return _FallBack(reason, tell=True)
                case Disconnected(reason) if not handed_over:
                    # Once every byte is in the channel the receiver decides: it confirms,
                    # or asks for the cloud if the bytes did not all reach it.
                    lose(reason)
                case TaskEnded(task) if task is pumping:
                    error = task.exception()
                    if isinstance(error, ChannelLost):
                        lose("the direct connection closed")
                    elif error is not None:
                        raise error
                    else:
                        handed_over = True
                case Message() as message:
                    kind = message.type
                    if kind == "signal":
                        try:
                            await peer.take(message.body.get("data"))
                        except PeerError as error:
                            if pumping is None:
                                reason = f"the receiver's answer was unusable ({error})"
                                return _FallBack(reason, tell=True)
                    elif kind == "fallback":
                        stop()
                        reason = _reason(message.body, "the receiver asked for it")
                        return _FallBack(reason, tell=False)
                    elif kind == "done":
                        return self._done(message.body, Via.P2P)
                case _:
                    self._other(event)

    async def _cloud(self, fallback: _FallBack) -> Outcome:
        if fallback.tell:
            await self.signaling.send(fallback_message(fallback.reason))
        self.watcher.status(f"Sending through the cloud: {fallback.reason}.")
        uploading = self.inbox.start(
            cloud.upload(self.api, self.transfer_id, self.source, self.file.size, self._advance)
        )
        while True:
            event = await self.inbox.get()
            match event:
                case TaskEnded(task) if task is uploading:
                    if (error := task.exception()) is not None:
                        raise error
                case Message() as message if message.type == "stored":
                    self.watcher.status("Stored; waiting for the receiver to download it.")
                case Message() as message if message.type == "done":
                    return self._done(message.body, Via.CLOUD)
                case _:
                    self._other(event)

    def _other(self, event: Event) -> None:
        """What neither phase waits for: a failed side task or the server's close end it;
        the rest (progress, late candidates, the closed peer's states) is let pass."""
        if isinstance(event, TaskEnded) and not event.task.cancelled():
            error = event.task.exception()
            if error is not None:
                raise error
        if isinstance(event, Closed):
            raise ClientError("The server ended the transfer before the receiver confirmed it.")

    def _done(self, body: dict[str, Any], via: Via) -> Outcome:
        if body.get("sha256") != self.file.sha256:
            raise ClientError("The receiver confirmed other bytes than the ones sent.")
        # The receiver knows how the bytes came (the last ones of a channel lost just as a
        # fallback began may still have made it).
        if body.get("via") in (Via.P2P, Via.CLOUD):
            via = Via(body["via"])
        if self.progress is not None and self.task is not None:
            self.progress.done(self.task)
        return Outcome(via, self.file.sha256, self.file.name, self.file.size, self.transfer_id)


def _reason(body: dict[str, Any], default: str) -> str:
    reason = body.get("reason")
    return reason if isinstance(reason, str) and reason else default
