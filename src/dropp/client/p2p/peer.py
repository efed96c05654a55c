"""The WebRTC side (aiortc): one peer connection and its `dropp-file` data channel.

aiortc gathers every candidate before it describes itself, so one SDP each way is enough
between two command lines; a browser trickles `{"ice": ...}` candidates instead, which are
taken as they come. The sender always creates the channel and the offer.
"""

import asyncio
import hashlib
import ipaddress
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aioice.ice
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceCandidate,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.sdp import candidate_from_sdp

from dropp.client.hashing import MIB
from dropp.client.p2p.inbox import ChannelOpen, Disconnected, Event
from dropp.client.p2p.protocol import CHANNEL_LABEL, CHUNK, HIGH_WATER, LOW_WATER, IceServer
from dropp.client.transfers import TransferError

_every_interface = aioice.ice.get_host_addresses


def offer_host_addresses(addresses: Sequence[str] | None) -> None:
    """Make the host candidates these addresses (None: every interface but loopback, as
    aioice does). aioice skips 127.0.0.1, so two processes on one machine need this to meet;
    the setting is the process's, as aioice's lookup is."""
    if addresses is None:
        aioice.ice.get_host_addresses = _every_interface
        return
    chosen = list(addresses)

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        versions = {4} if use_ipv4 else set()
        versions |= {6} if use_ipv6 else set()
        return [a for a in chosen if ipaddress.ip_address(a).version in versions]

    aioice.ice.get_host_addresses = get_host_addresses


class PeerError(Exception):
    """What the other peer sent cannot make a connection."""


class ChannelLost(Exception):
    """The data channel closed before every byte was handed to it."""


def _candidate(ice: dict[str, Any]) -> RTCIceCandidate | None:
    """A browser's RTCIceCandidateInit; None for its end-of-candidates (an empty one)."""
    text = ice.get("candidate")
    if not isinstance(text, str) or not text.strip():
        return None
    candidate = candidate_from_sdp(text.strip().removeprefix("candidate:"))
    mid, index = ice.get("sdpMid"), ice.get("sdpMLineIndex")
    candidate.sdpMid = mid if isinstance(mid, str) else None
    candidate.sdpMLineIndex = index if isinstance(index, int) else None
    if candidate.sdpMid is None and candidate.sdpMLineIndex is None:
        # One m-line only: the data channel's.
        candidate.sdpMLineIndex = 0
    return candidate


class Peer:
    """One RTCPeerConnection. Its state goes to `notify` as inbox events; the receiver's
    bytes go to `on_message` as they arrive, attached before any can be missed."""

    def __init__(
        self,
        ice_servers: Sequence[IceServer],
        notify: Callable[[Event], None],
        *,
        on_message: Callable[[bytes | str], None] | None = None,
    ) -> None:
        # An empty list, not None: aiortc's default is a public STUN server.
        configuration = RTCConfiguration(
            iceServers=[
                RTCIceServer(list(s.urls), username=s.username, credential=s.credential)
                for s in ice_servers
            ]
        )
        self.connection = RTCPeerConnection(configuration)
        self.notify = notify
        self.on_message = on_message
        self.offering = False
        self._described = False
        self._early: list[RTCIceCandidate] = []
        self.connection.on("connectionstatechange", self._state_changed)
        self.connection.on("datachannel", self._channel_arrived)

    def _state_changed(self) -> None:
        if self.connection.connectionState == "failed":
            self.notify(Disconnected("no direct connection could be made"))

    def _watch(self, channel: RTCDataChannel) -> None:
        if self.on_message is not None:
            channel.on("message", self.on_message)
        channel.on("open", lambda: self.notify(ChannelOpen(channel)))
        channel.on("close", lambda: self.notify(Disconnected("the direct connection closed")))
        if channel.readyState == "open":
            self.notify(ChannelOpen(channel))

    def _channel_arrived(self, channel: RTCDataChannel) -> None:
        if channel.label != CHANNEL_LABEL:
            channel.close()
            return
        self._watch(channel)

    def _described_locally(self) -> dict[str, str]:
        description = self.connection.localDescription
        return {"type": description.type, "sdp": description.sdp}

    async def offer(self) -> dict[str, Any]:
        """Create the data channel and the offer (the `signal` data to send)."""
        self.offering = True
        self._watch(self.connection.createDataChannel(CHANNEL_LABEL, ordered=True))
        await self.connection.setLocalDescription(await self.connection.createOffer())
        return {"sdp": self._described_locally()}

    async def take(self, data: object) -> dict[str, Any] | None:
        """Apply the other peer's `signal` data; returns the answer to send, for an offer.
        Raises PeerError when it cannot be used."""
        if not isinstance(data, dict):
            return None
        try:
            if isinstance(data.get("sdp"), dict):
                return await self._take_description(data["sdp"])
            if "ice" in data:
                ice = data["ice"]
                candidate = _candidate(ice) if isinstance(ice, dict) else None
                if candidate is None:
                    # The end of a browser's candidates. Told to aioice, it gives up as soon
                    # as the pairs it knows fail, before trying the peer-reflexive pair that
                    # a browser on loopback is reached by.
                    return None
                if self._described:
                    await self.connection.addIceCandidate(candidate)
                else:
                    self._early.append(candidate)
        except PeerError:
            raise
        # aiortc's refusals have no common base (ValueError, its InvalidStateError, an
        # assertion in the candidate parser); any of them means no direct connection here.
        except Exception as error:
            raise PeerError(f"{type(error).__name__}: {error}") from error
        return None

    async def _take_description(self, description: dict[str, Any]) -> dict[str, Any] | None:
        kind, sdp = description.get("type"), description.get("sdp")
        if not isinstance(sdp, str) or kind not in ("offer", "answer"):
            raise PeerError("a session description without type or SDP")
        # Only the sender offers; an offer to it (or an answer to the receiver) is ignored.
        if self._described or (kind == "offer") == self.offering:
            return None
        await self.connection.setRemoteDescription(RTCSessionDescription(sdp, kind))
        self._described = True
        for candidate in self._early:
            await self.connection.addIceCandidate(candidate)
        self._early.clear()
        if kind == "answer":
            return None
        await self.connection.setLocalDescription(await self.connection.createAnswer())
        return {"sdp": self._described_locally()}

    async def close(self) -> None:
        await self.connection.close()


async def pump(
    channel: RTCDataChannel,
    source: Path,
    size: int,
    sha256: str,
    sent: Callable[[int], None],
) -> None:
    """The file's first `size` bytes into the channel in 64 KiB messages, never more than
    1 MiB queued; `sent` hears each message handed over. Raises ChannelLost if the channel
    closes first, TransferError if the bytes are not the ones declared."""
    ready = asyncio.Event()
    channel.bufferedAmountLowThreshold = LOW_WATER
    channel.on("bufferedamountlow", ready.set)
    channel.on("close", ready.set)
    digest = hashlib.sha256()
    done = 0
    try:
        handle = await asyncio.to_thread(source.open, "rb")
    except OSError as error:
        raise TransferError(f"{source}: {error.strerror or error}") from error
    try:
        while done < size:
            try:
                block = await asyncio.to_thread(handle.read, min(MIB, size - done))
            except OSError as error:
                raise TransferError(f"{source}: {error.strerror or error}") from error
            if not block:
                raise TransferError(f"{source} got shorter while it was being sent.")
            digest.update(block)
            for start in range(0, len(block), CHUNK):
                message = block[start : start + CHUNK]
                while channel.bufferedAmount + len(message) > HIGH_WATER:
                    ready.clear()
                    await ready.wait()
                    if channel.readyState != "open":
                        raise ChannelLost
                if channel.readyState != "open":
                    raise ChannelLost
                channel.send(message)
                done += len(message)
                sent(len(message))
    finally:
        handle.close()
    if digest.hexdigest() != sha256:
        raise TransferError(
            f"{source} changed after it was hashed: the receiver will refuse it; send it again."
        )
