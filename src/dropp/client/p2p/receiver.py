"""`dropp receive`: join a transfer with its code and take the file, peer to peer or from
storage, verified before it takes its name."""

import asyncio
from pathlib import Path

from dropp.client.cli.app import human_size
from dropp.client.errors import ClientError
from dropp.client.p2p import cloud
from dropp.client.p2p.inbox import (
    Arrived,
    ChannelOpen,
    Closed,
    Disconnected,
    Inbox,
    Message,
    TaskEnded,
    TimedOut,
)
from dropp.client.p2p.landing import PartFile
from dropp.client.p2p.peer import Peer, PeerError, offer_host_addresses
from dropp.client.p2p.protocol import (
    FileOffer,
    IceServer,
    Outcome,
    Pace,
    ProtocolError,
    Via,
    Watcher,
    fallback_message,
    parse_ice_servers,
    parse_offer,
)
from dropp.client.p2p.signaling import Signaling
from dropp.client.transfers import Progress, TransferError

# After `done`, the server closes the socket once it has recorded the end (and deleted the
# stored copy); waiting for that close keeps a script from racing it.
CLOSE_WAIT_SECONDS = 10.0


async def receive_file(
    server: str,
    code: str,
    folder: Path,
    *,
    host_addresses: list[str] | None = None,
    watcher: Watcher,
    progress: Progress | None = None,
) -> Outcome:
    """Join with `code` and save the file in `folder`."""
    async with Signaling.connect(server) as signaling:
        await signaling.send({"type": "join", "code": code})
        joined = await signaling.expect("joined")
        offer = parse_offer(joined.get("file"))
        watcher.status(f"Receiving {offer.name} ({human_size(offer.size)}).")
        part = await asyncio.to_thread(PartFile, folder, offer)
        inbox = Inbox()
        inbox.follow(signaling)
        receiving = _Receiving(signaling, inbox, part, offer, watcher, progress)
        try:
            offer_host_addresses(host_addresses)
            try:
                outcome = await receiving.run(parse_ice_servers(joined.get("ice_servers")))
            finally:
                await receiving.close()
            await receiving.wait_for_close()
            return outcome
        except BaseException:
            # Nothing partial stays behind: a direct transfer cannot be resumed.
            part.discard()
            raise
        finally:
            await inbox.close()


class _Receiving:
    def __init__(
        self,
        signaling: Signaling,
        inbox: Inbox,
        part: PartFile,
        offer: FileOffer,
        watcher: Watcher,
        progress: Progress | None,
    ) -> None:
        self.signaling = signaling
        self.inbox = inbox
        self.part = part
        self.offer = offer
        self.watcher = watcher
        self.progress = progress
        self.task: int | None = None
        # P2P while bytes may come over the channel, CLOUD while the link is awaited, None
        # once no more bytes are taken (all arrived, refused, or downloading).
        self.via: Via | None = Via.P2P
        self.peer: Peer | None = None
        self.pace = Pace()

    def _advance(self, amount: int) -> None:
        if self.progress is not None:
            if self.task is None:
                self.task = self.progress.add(self.offer.name, self.offer.size)
            self.progress.advance(self.task, amount)
        if self.pace.due(self.part.received):
            self.inbox.start(self.signaling.send({"type": "progress", "bytes": self.part.received}))

    def _bytes(self, data: bytes | str) -> None:
        """aiortc's `message` callback: each message written as it comes, in order."""
        if self.via != Via.P2P:
            return
        if isinstance(data, str):
            self.via = None
            self.inbox.fail(ProtocolError("The sender sent text over the data channel."))
            return
        try:
            self.part.write(data)
        except TransferError as error:
            self.via = None
            self.inbox.fail(error)
            return
        self._advance(len(data))
        if self.part.complete:
            self.via = None
            self.inbox.put(Arrived())

    async def run(self, ice_servers: list[IceServer]) -> Outcome:
        self.peer = Peer(ice_servers, self.inbox.put, on_message=self._bytes)
        while True:
            event = await self.inbox.get()
            match event:
                case Arrived():
                    return await self._finish(Via.P2P)
                case ChannelOpen() if self.via == Via.P2P:
                    self.watcher.status("Connected peer to peer.")
                    if self.part.complete:  # an empty file: nothing will come
                        self.via = None
                        return await self._finish(Via.P2P)
                case Disconnected(reason) if self.via == Via.P2P:
                    await self._fall_back(reason, tell=True)
                case Message() as message:
                    outcome = await self._message(message)
                    if outcome is not None:
                        return outcome
                case TaskEnded(task):
                    if not task.cancelled() and (error := task.exception()) is not None:
                        raise error
                case Closed():
                    raise ClientError("The server ended the transfer before the file arrived.")
                case _:
                    pass

    async def _message(self, message: Message) -> Outcome | None:
        kind = message.type
        if kind == "signal" and self.via == Via.P2P and self.peer is not None:
            try:
                answer = await self.peer.take(message.body.get("data"))
            except PeerError as error:
                await self._fall_back(f"the sender's offer was unusable ({error})", tell=True)
                return None
            if answer is not None:
                await self.signaling.send({"type": "signal", "data": answer})
        elif kind == "fallback" and self.via == Via.P2P:
            reason = message.body.get("reason")
            await self._fall_back(reason if isinstance(reason, str) else "", tell=False)
        elif kind == "download":
            url = message.body.get("url")
            if not isinstance(url, str):
                raise ProtocolError("The server sent a download without a link.")
            if self.via == Via.P2P:
                await self._fall_back("", tell=False)
            self.via = None
            self.watcher.status("Downloading from the cloud.")
            await cloud.download(url, self.part, self._advance)
            return await self._finish(Via.CLOUD)
        return None

    async def _fall_back(self, reason: str, *, tell: bool) -> None:
        """No more bytes peer to peer: the sender uploads, the link will come."""
        self.via = Via.CLOUD
        if tell:
            await self.signaling.send(fallback_message(reason))
        await self.close()
        if self.progress is not None and self.task is not None and self.part.received:
            self.progress.advance(self.task, -self.part.received)
        await asyncio.to_thread(self.part.reset)
        self.pace = Pace()
        said = f": {reason}" if reason else ""
        self.watcher.status(f"The file comes through the cloud{said}.")

    async def _finish(self, via: Via) -> Outcome:
        target = await asyncio.to_thread(self.part.finish)
        await self.signaling.send({"type": "done", "via": str(via), "sha256": self.offer.sha256})
        if self.progress is not None and self.task is not None:
            self.progress.done(self.task)
        return Outcome(via, self.offer.sha256, target.name, self.offer.size, path=str(target))

    async def close(self) -> None:
        if self.peer is not None:
            peer, self.peer = self.peer, None
            await peer.close()

    async def wait_for_close(self) -> None:
        """Until the server closes the socket after `done` (or a while has passed)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLOSE_WAIT_SECONDS
        while (left := deadline - loop.time()) > 0:
            try:
                event = await self.inbox.get(left)
            except ClientError:
                return
            if isinstance(event, Closed | TimedOut):
                return
