"""`dropp send` and `dropp receive` (docs/p2p.md) against a real Dropp on loopback: two
aiortc peers in this process, then the commands as two processes, then the cloud fallback
when ICE cannot connect. DROPP_P2P_HOST_ADDRESSES=127.0.0.1 makes the peers meet on
loopback (aiortc skips it otherwise); 192.0.2.1 (TEST-NET-1, which no interface here holds:
the test checks) leaves a peer without a single candidate, so ICE never starts."""

import asyncio
import hashlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import websockets
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from dropp.client.hashing import MIB
from dropp.client.p2p.peer import offer_host_addresses, pump
from dropp.client.p2p.protocol import (
    HOST_ADDRESSES_ENV,
    Outcome,
    ProtocolError,
    Route,
    Via,
    parse_offer,
)
from dropp.client.p2p.receiver import receive_file
from dropp.client.p2p.sender import SendOptions, describe, send_file
from dropp.client.p2p.signaling import signaling_url
from dropp.core.config import Settings
from dropp.storage.s3 import Storage
from tests.client.conftest import Device, DeviceFactory
from tests.client.p2p_support import (
    Running,
    Watched,
    bucket_contents,
    json_lines,
    next_of,
    send_trickled,
    signed_in,
    split_candidates,
    write_random,
)
from tests.helpers import Account, serve_dropp

LOOPBACK = ["127.0.0.1"]
NOWHERE = "192.0.2.1"
# A command that hangs fails the test in this time, not in the conftest's generous one.
RUN_SECONDS = 120


@pytest.fixture(scope="session")
def p2p_url(settings: Settings) -> Iterator[str]:
    """Dropp on loopback as `dropp_url` serves it, but for the join rate: every join here
    comes from 127.0.0.1, and the default (10 a minute) would make these tests depend on
    how many of them run within a minute."""
    with serve_dropp(settings, name="dropp-client-p2p-tests", p2p_join_rate="1000/minute") as url:
        yield url


@pytest.fixture
def devices(tmp_path: Path, p2p_url: str) -> DeviceFactory:
    """Desktops (as `make_device` makes them) talking to `p2p_url`."""
    return DeviceFactory(tmp_path, p2p_url)


@pytest.fixture(autouse=True)
def every_interface() -> Iterator[None]:
    """aioice's host addresses as they were, after a test that chose some (the lookup is
    the process's, not a peer's)."""
    yield
    offer_host_addresses(None)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def code_of(watched: Watched, sending: "asyncio.Task[Outcome]") -> str:
    """The code, or the sender's failure if it ended first."""
    assert watched.code_shown is not None
    shown: asyncio.Future[Any] = watched.code_shown
    await asyncio.wait({sending, shown}, return_when=asyncio.FIRST_COMPLETED)
    if not watched.code_shown.done():
        sending.result()
    return watched.code_shown.result()


def without_candidates(description: dict[str, str]) -> RTCSessionDescription:
    """The other side's description with its candidates dropped: the browser-like peer then
    reaches it only by answering its checks, which it sends to the trickled candidates. So
    the connection is made only if those were taken."""
    sdp, _ = split_candidates(description["sdp"])
    return RTCSessionDescription(sdp, description["type"])


# --- in this process ----------------------------------------------------------------------


@dataclass
class Direct:
    sent: Outcome
    received: Outcome
    sender_saw: list[str]
    receiver_saw: list[str]
    seconds: float  # from the code to the receiver's end


async def send_in_process(server: str, account: Account, source: Path, folder: Path) -> Direct:
    """`send_file` and `receive_file` side by side, meeting on loopback."""
    file = await describe(source)
    options = SendOptions(Route.AUTO, p2p_timeout=30, host_addresses=LOOPBACK)
    sender_saw, receiver_saw = Watched(), Watched()
    async with signed_in(server, account) as api:
        sending = asyncio.create_task(
            send_file(api, source, file, options=options, watcher=sender_saw)
        )
        code = await code_of(sender_saw, sending)
        started = time.monotonic()
        received = await receive_file(
            server, code, folder, host_addresses=LOOPBACK, watcher=receiver_saw
        )
        seconds = time.monotonic() - started
        sent = await sending
    return Direct(sent, received, sender_saw.statuses, receiver_saw.statuses, seconds)


async def test_two_peers_move_a_file_directly_and_storage_never_holds_it(
    p2p_url: str, account: Account, storage: Storage, tmp_path: Path
) -> None:
    data = write_random(tmp_path / "out" / "data.bin", 3 * MIB + 123)
    folder = tmp_path / "in"
    folder.mkdir()
    # The name is taken where it lands: the file takes the next free one, nothing replaced.
    (folder / "data.bin").write_bytes(b"already here")
    before = await bucket_contents(storage)

    direct = await send_in_process(p2p_url, account, tmp_path / "out" / "data.bin", folder)

    assert direct.sent.via == direct.received.via == Via.P2P
    assert direct.sent.sha256 == direct.received.sha256 == sha256_of(data)
    assert direct.received.name == "data (2).bin"
    assert direct.received.path == str(folder / "data (2).bin")
    assert (folder / "data (2).bin").read_bytes() == data
    assert (folder / "data.bin").read_bytes() == b"already here"
    # No partial file is left beside them.
    assert sorted(p.name for p in folder.iterdir()) == ["data (2).bin", "data.bin"]
    assert "Connected peer to peer." in direct.sender_saw
    assert "Connected peer to peer." in direct.receiver_saw
    assert not any("cloud" in status for status in direct.sender_saw + direct.receiver_saw)
    # Not a byte went to storage.
    assert (await bucket_contents(storage)).objects == before.objects
    assert direct.seconds < 60


async def test_a_direct_transfer_leaves_not_even_a_delete_marker(
    p2p_url: str, account: Account, storage: Storage, tmp_path: Path
) -> None:
    write_random(tmp_path / "small.txt", 1000)
    before = await bucket_contents(storage)
    direct = await send_in_process(p2p_url, account, tmp_path / "small.txt", tmp_path)
    assert direct.received.via == Via.P2P
    assert (await bucket_contents(storage)).markers == before.markers


async def test_a_browser_like_sender_trickling_its_candidates_reaches_the_receiver(
    p2p_url: str, account: Account, tmp_path: Path
) -> None:
    data = write_random(tmp_path / "photo.jpg", MIB + 7)
    offer_host_addresses(LOOPBACK)
    file = {"name": "photo.jpg", "size": len(data), "sha256": sha256_of(data)}
    async with websockets.connect(signaling_url(p2p_url)) as socket:
        await socket.send(json.dumps({"type": "open", "token": account.access_token, "file": file}))
        opened = await next_of(socket, "opened")
        receiving = asyncio.create_task(
            receive_file(
                p2p_url,
                opened["code"],
                tmp_path / "in",
                host_addresses=LOOPBACK,
                watcher=Watched(),
            )
        )
        (tmp_path / "in").mkdir()
        await next_of(socket, "peer_joined")
        peer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        try:
            channel = peer.createDataChannel("dropp-file")
            ready = asyncio.Event()
            channel.on("open", ready.set)
            await peer.setLocalDescription(await peer.createOffer())
            candidates = await send_trickled(socket, peer.localDescription)
            assert candidates, "nothing to trickle: the test would prove nothing"
            answer = (await next_of(socket, "signal"))["data"]["sdp"]
            await peer.setRemoteDescription(without_candidates(answer))
            await asyncio.wait_for(ready.wait(), 30)
            await pump(channel, tmp_path / "photo.jpg", len(data), sha256_of(data), lambda _: None)
            done = await next_of(socket, "done")
        finally:
            await peer.close()
    received = await receiving
    assert done == {"type": "done", "via": "p2p", "sha256": sha256_of(data)}
    assert received.via == Via.P2P
    assert (tmp_path / "in" / "photo.jpg").read_bytes() == data


async def test_a_browser_like_receiver_trickling_its_answer_gets_the_file(
    p2p_url: str, account: Account, tmp_path: Path
) -> None:
    data = write_random(tmp_path / "notes.txt", 700_000)
    offer_host_addresses(LOOPBACK)
    file = await describe(tmp_path / "notes.txt")
    shown = Watched()
    options = SendOptions(Route.AUTO, p2p_timeout=30, host_addresses=LOOPBACK)
    async with signed_in(p2p_url, account) as api:
        sending = asyncio.create_task(
            send_file(api, tmp_path / "notes.txt", file, options=options, watcher=shown)
        )
        code = await code_of(shown, sending)
        got = bytearray()
        arrived = asyncio.Event()
        async with websockets.connect(signaling_url(p2p_url)) as socket:
            await socket.send(json.dumps({"type": "join", "code": code}))
            joined = await next_of(socket, "joined")
            peer = RTCPeerConnection(RTCConfiguration(iceServers=[]))

            def take(message: bytes) -> None:
                got.extend(message)
                if len(got) >= len(data):
                    arrived.set()

            peer.on("datachannel", lambda channel: channel.on("message", take))
            try:
                offer = (await next_of(socket, "signal"))["data"]["sdp"]
                await peer.setRemoteDescription(without_candidates(offer))
                await peer.setLocalDescription(await peer.createAnswer())
                assert await send_trickled(socket, peer.localDescription)
                await asyncio.wait_for(arrived.wait(), 30)
                await socket.send(
                    json.dumps({"type": "done", "via": "p2p", "sha256": sha256_of(bytes(got))})
                )
                await socket.wait_closed()
            finally:
                await peer.close()
        sent = await sending
    assert joined["file"] == {"name": "notes.txt", "size": len(data), "sha256": sha256_of(data)}
    assert bytes(got) == data
    assert sent.via == Via.P2P


@pytest.mark.parametrize(
    "name", ["", ".", "..", "../escape.txt", "a/b.txt", "a\\b.txt", "nul\0.txt", "x" * 300]
)
def test_a_file_name_that_is_not_one_plain_name_is_refused(name: str) -> None:
    with pytest.raises(ProtocolError, match="Refused the file name"):
        parse_offer({"name": name, "size": 1, "sha256": "0" * 64})


def test_a_plain_file_name_is_taken_as_the_server_gives_it() -> None:
    offer = parse_offer({"name": "Résumé (final).PDF", "size": 3, "sha256": "AB" * 32})
    assert (offer.name, offer.size, offer.sha256) == ("Résumé (final).PDF", 3, "ab" * 32)


# --- the commands, as two processes -------------------------------------------------------


def pair(devices: DeviceFactory, account: Account, address: str) -> tuple[Device, Device]:
    """A signed-in laptop and an anonymous desktop, offering `address` as their host."""
    laptop, desktop = devices("laptop", account), devices("desktop")
    for device in (laptop, desktop):
        device.env[HOST_ADDRESSES_ENV] = address
    return laptop, desktop


async def exchange(
    sender: Device, receiver: Device, send: list[str], target: Path, *, receive_json: bool = True
) -> tuple[str, tuple[int, list[str], str], subprocess.CompletedProcess[str]]:
    """`dropp send` in the background, `dropp receive` of its code into `target`: the code,
    the sender's (exit status, stdout lines, stderr), and the finished receiver."""
    sending = Running(sender.start(*send))
    try:
        code = (await asyncio.to_thread(sending.first_json))["code"]
        flags = ["--json"] if receive_json else []
        receiving = await asyncio.to_thread(
            receiver.run, "receive", code, str(target), *flags, timeout=RUN_SECONDS
        )
        return code, await asyncio.to_thread(sending.finish), receiving
    finally:
        sending.kill()


async def test_send_and_receive_commands_connect_peer_to_peer_on_loopback(
    devices: DeviceFactory, account: Account, storage: Storage, tmp_path: Path
) -> None:
    laptop, desktop = pair(devices, account, "127.0.0.1")
    data = write_random(tmp_path / "report.pdf", 2 * MIB + 5)
    before = await bucket_contents(storage)

    code, (status, out, err), receiving = await exchange(
        laptop, desktop, ["send", str(tmp_path / "report.pdf"), "--json"], tmp_path / "got"
    )

    assert status == 0, err
    sent = json_lines(out)
    received = json_lines(receiving.stdout.splitlines())
    assert len(sent) == 2
    assert len(received) == 1
    assert sent[0]["code"] == code
    expected = {"via": "p2p", "sha256": sha256_of(data), "name": "report.pdf", "size": len(data)}
    assert sent[1].items() >= expected.items()
    assert received[0].items() >= expected.items()
    assert Path(received[0]["path"]) == tmp_path / "got" / "report.pdf"
    assert (tmp_path / "got" / "report.pdf").read_bytes() == data
    assert (await bucket_contents(storage)).objects == before.objects


async def test_peers_that_cannot_connect_get_the_file_through_storage_which_then_forgets_it(
    devices: DeviceFactory, account: Account, storage: Storage, tmp_path: Path
) -> None:
    # What makes ICE impossible: no socket can take this address, so no candidate exists.
    unbindable = pytest.raises(OSError, match="assign requested address")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe, unbindable:
        probe.bind((NOWHERE, 0))
    laptop, desktop = pair(devices, account, NOWHERE)
    data = write_random(tmp_path / "video.mp4", MIB + 3)
    before = await bucket_contents(storage)

    started = time.monotonic()
    _, (status, out, err), receiving = await exchange(
        laptop,
        desktop,
        ["send", str(tmp_path / "video.mp4"), "--json", "--p2p-timeout", "3"],
        tmp_path / "got",
    )

    assert status == 0, err
    sent, received = json_lines(out)[-1], json_lines(receiving.stdout.splitlines())[-1]
    assert sent["via"] == received["via"] == "cloud"
    assert sent["sha256"] == received["sha256"] == sha256_of(data)
    assert (tmp_path / "got" / "video.mp4").read_bytes() == data
    # The sender waited its 3 seconds for a direct connection, then said why it gave up.
    assert "Sending through the cloud: no direct connection within 3 s." in err
    assert time.monotonic() - started >= 3
    assert "The file comes through the cloud" in receiving.stderr
    # The stored copy went as soon as the receiver confirmed it: no version is left.
    assert await bucket_contents(storage) == before
    assert not [
        key for key in (await bucket_contents(storage)).names() if sent["transfer_id"] in key
    ]


async def test_via_cloud_goes_through_storage_even_when_peers_could_connect(
    devices: DeviceFactory, account: Account, storage: Storage, tmp_path: Path
) -> None:
    laptop, desktop = pair(devices, account, "127.0.0.1")
    data = write_random(tmp_path / "notes.txt", 200_000)
    before = await bucket_contents(storage)

    # The receiver without --json, as a person reads it (not a terminal: plain lines).
    _, (status, out, err), receiving = await exchange(
        laptop,
        desktop,
        ["send", str(tmp_path / "notes.txt"), "--via", "cloud", "--json"],
        tmp_path / "got",
        receive_json=False,
    )

    assert status == 0, err
    assert json_lines(out)[-1]["via"] == "cloud"
    assert "Sending through the cloud: the sender chose the cloud." in err
    assert "through the cloud" in receiving.stdout.splitlines()[-1]
    assert f"SHA-256 {sha256_of(data)} verified" in receiving.stdout
    assert (tmp_path / "got" / "notes.txt").read_bytes() == data
    assert await bucket_contents(storage) == before


def test_a_wrong_code_is_refused_with_a_clear_message(devices: DeviceFactory) -> None:
    desktop = devices("desktop")
    done = desktop.run("receive", "0000-0000-0000", str(desktop.home / "got"), check=False)
    assert done.returncode == 4
    assert done.stderr.startswith("dropp: No transfer waits for this code")
    assert done.stdout == ""
    assert not list((desktop.home / "got").iterdir())


def test_send_needs_a_signed_in_device(devices: DeviceFactory, tmp_path: Path) -> None:
    write_random(tmp_path / "a.txt", 10)
    done = devices("stranger").run("send", str(tmp_path / "a.txt"), check=False)
    assert done.returncode == 3
    assert "not signed in" in done.stderr
    assert "dropp login" in done.stderr


def test_without_the_p2p_extra_the_commands_say_what_to_install() -> None:
    script = (
        "import sys; sys.modules['aiortc'] = None; "
        "from dropp.cli import main; "
        "main(['receive', '0000-0000-0000', '--server', 'http://127.0.0.1:9'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert "install dropp[p2p]" in done.stderr
    assert "Traceback" not in done.stderr
