"""`dropp sync --watch` hears remote changes on the event stream (`GET /events`), and falls
back to the long-poll when something stands in its way; against a real Dropp behind a gate
that counts what reaches it and can block, buffer or cut the stream as proxies do."""

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dropp.client.api import Api
from dropp.client.auth import sign_in_with_password
from dropp.client.credentials import Tokens
from dropp.client.sync.events import EventStream
from dropp.client.sync.remote_state import Waiter
from dropp.core.config import Settings
from dropp.embedded.seaweedfs import free_port
from dropp.main import create_app
from tests.client.conftest import DeviceFactory
from tests.client.test_remote_state import MemoryStore
from tests.client.test_sync import stop, sync, wait_for, write
from tests.helpers import PASSWORD, Account, serve_in_thread

Mode = Literal["pass", "404", "html", "buffer", "cut once"]


@dataclass
class Gate:
    """What stands before Dropp: counts requests by path, and answers `/events` as `mode`
    says: passed on; 404 (an older server); a page of HTML (a captive portal, a proxy's
    error page); held back until it ends (a proxy that buffers); or ended once, right after
    its `ready` (a dropped connection)."""

    app: ASGIApp
    mode: Mode = "pass"
    paths: Counter[str] = field(default_factory=Counter)
    # The Last-Event-ID of each /events request, "" when it had none.
    resumed_from: list[str] = field(default_factory=list)
    cuts: int = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.paths[scope["path"]] += 1
        if scope["path"] != "/events":
            await self.app(scope, receive, send)
            return
        self.resumed_from.append(dict(scope["headers"]).get(b"last-event-id", b"").decode())
        if self.mode == "404":
            body = {"title": "Not Found", "status": 404, "code": "not_found"}
            await answer(send, 404, "application/problem+json", json.dumps(body).encode())
        elif self.mode == "html":
            await answer(send, 200, "text/html", b"<html><body>Sign in to the Wi-Fi</body></html>")
        elif self.mode == "buffer":
            await self.app(scope, receive, held_back(send))
        elif self.mode == "cut once":
            self.mode = "pass"
            await self._cut_after_ready(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _cut_after_ready(self, scope: Scope, receive: Receive, send: Send) -> None:
        cut = asyncio.Event()

        async def cutting(message: Message) -> None:
            if cut.is_set():
                return
            if message["type"] == "http.response.body" and b"event: ready" in message["body"]:
                await send({**message, "more_body": False})
                self.cuts += 1
                cut.set()
                return
            await send(message)

        async def hung_up() -> Message:
            # The app hears its client leave once the response is cut.
            received = asyncio.ensure_future(receive())
            gone = asyncio.ensure_future(cut.wait())
            done, _ = await asyncio.wait({received, gone}, return_when=asyncio.FIRST_COMPLETED)
            if received in done:
                gone.cancel()
                return received.result()
            received.cancel()
            return {"type": "http.disconnect"}

        await self.app(scope, hung_up, cutting)


async def answer(send: Send, status: int, content_type: str, body: bytes) -> None:
    headers = [(b"content-type", content_type.encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def held_back(send: Send) -> Send:
    """The headers at once, the body only once it is whole: what a buffering proxy does."""
    held: list[bytes] = []

    async def holding(message: Message) -> None:
        if message["type"] == "http.response.body":
            held.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            message = {**message, "body": b"".join(held)}
        await send(message)

    return holding


@pytest.fixture(scope="module")
def gated(settings: Settings) -> Iterator[tuple[str, Gate]]:
    """Dropp on a port of its own, behind a gate."""
    port = free_port()
    app = create_app(
        settings.model_copy(
            update={
                "public_url": f"http://127.0.0.1:{port}",
                "longpoll_max_seconds": 30,
                # Not the default: clients learn it from `ready`.
                "events_heartbeat_seconds": 5,
            }
        )
    )
    gate = Gate(app)
    with serve_in_thread(gate, port, name="dropp-gated") as url:  # type: ignore[arg-type]
        yield url, gate


@pytest.fixture
def gate(gated: tuple[str, Gate]) -> Iterator[Gate]:
    _, gate = gated
    gate.mode, gate.cuts = "pass", 0
    gate.paths.clear()
    gate.resumed_from.clear()
    yield gate
    gate.mode = "pass"


@pytest.fixture
def devices(tmp_path: Path, gated: tuple[str, Gate]) -> DeviceFactory:
    return DeviceFactory(tmp_path, gated[0])


@pytest.fixture
async def api(gated: tuple[str, Gate], account: Account) -> AsyncIterator[Api]:
    async with Api(gated[0], MemoryStore()) as signed_in:
        await sign_in_with_password(signed_in, account.email, PASSWORD)
        yield signed_in


async def cursor_now(api: Api) -> str:
    """The feed's cursor after everything so far, as a synced client holds it."""
    page = await api.get("/sync/changes", params={"limit": 1000})
    while page["has_more"]:
        page = await api.get("/sync/changes", params={"cursor": page["cursor"], "limit": 1000})
    cursor: str = page["cursor"]
    return cursor


async def eventually(condition: Callable[[], bool]) -> None:
    """Until what the gate's thread counts comes true."""
    await asyncio.to_thread(wait_for, condition, 20)


def test_watch_hears_another_devices_changes_on_one_event_stream(
    devices: DeviceFactory, account: Account, gate: Gate
) -> None:
    a, b = devices("a", account), devices("b", account)
    root_a, root_b = a.home / "Dropp", b.home / "Dropp"
    root_a.mkdir()
    watching = a.start("sync", str(root_a), "--watch")
    try:
        for name in ("first.txt", "second.txt"):
            write(root_b / name, f"{name} from b\n")
            sync(b, root_b)
            wait_for((root_a / name).exists, timeout=30)
    finally:
        stderr = stop(watching)
    assert (root_a / "second.txt").read_text() == "second.txt from b\n", stderr
    # Both heard on the one stream, kept open between them; never a long-poll.
    assert gate.paths["/events"] == 1, stderr
    assert gate.paths["/sync/longpoll"] == 0, stderr


@pytest.mark.parametrize("mode", ["404", "html"])
def test_watch_falls_back_to_the_long_poll_when_the_stream_cannot_be_opened(
    devices: DeviceFactory, account: Account, gate: Gate, mode: Mode
) -> None:
    gate.mode = mode
    a, b = devices("a", account), devices("b", account)
    root_a, root_b = a.home / "Dropp", b.home / "Dropp"
    root_a.mkdir()
    watching = a.start("sync", str(root_a), "--watch")
    try:
        wait_for(lambda: gate.paths["/sync/longpoll"] > 0, timeout=30)
        write(root_b / "from b.txt", "from b\n")
        sync(b, root_b)
        wait_for(lambda: (root_a / "from b.txt").exists(), timeout=30)
    finally:
        stderr = stop(watching)
    assert (root_a / "from b.txt").read_text() == "from b\n", stderr
    # Tried once; the long-poll stands in for minutes before the stream is tried again.
    assert gate.paths["/events"] == 1, stderr


async def test_a_stream_held_back_by_a_buffering_proxy_gives_way_to_the_long_poll(
    api: Api, gate: Gate
) -> None:
    gate.mode = "buffer"
    cursor = await cursor_now(api)
    await api.post("/folders", {"path": "/made meanwhile"})
    async with contextlib.aclosing(
        Waiter(api, 1, stream=EventStream(api, ready_seconds=1.0))
    ) as waiter:
        started = time.monotonic()
        assert await waiter.wait(cursor)
        assert 1.0 <= time.monotonic() - started < 3
        assert gate.paths["/events"] == 1
        assert gate.paths["/sync/longpoll"] == 1
        # Not tried again while the long-poll stands in.
        assert not await waiter.wait(await cursor_now(api))
        assert gate.paths["/events"] == 1


async def test_a_dropped_stream_resumes_from_its_last_event_and_misses_nothing(
    api: Api, gate: Gate
) -> None:
    gate.mode = "cut once"
    stream = EventStream(api)
    try:
        heard = asyncio.create_task(stream.changed(await cursor_now(api)))
        await eventually(lambda: gate.cuts == 1)
        # Made while no stream was open.
        await api.post("/folders", {"path": "/made while away"})
        await asyncio.wait_for(heard, 20)
    finally:
        await stream.aclose()
    first, resumed = gate.resumed_from
    assert first == ""
    assert resumed.count(".") == 2
    assert gate.paths["/sync/longpoll"] == 0


async def test_a_silent_stream_is_taken_for_dead_and_reopened(api: Api, gate: Gate) -> None:
    # Heartbeats expected every 0.2 s, so the server's (every 15 s) come far too late.
    stream = EventStream(api, heartbeat_seconds=0.2)
    try:
        heard = asyncio.create_task(stream.changed(await cursor_now(api)))
        await eventually(lambda: len(gate.resumed_from) >= 2)
        await api.post("/folders", {"path": "/after the silence"})
        await asyncio.wait_for(heard, 20)
    finally:
        await stream.aclose()
    assert gate.resumed_from[0] == ""
    assert gate.resumed_from[1] != ""


async def test_the_stream_keeps_to_the_heartbeat_the_server_announces(api: Api, gate: Gate) -> None:
    stream = EventStream(api)
    heard = asyncio.create_task(stream.changed(await cursor_now(api)))
    try:
        await eventually(lambda: stream.heartbeat_seconds == 5)
    finally:
        heard.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heard
        await stream.aclose()


async def test_a_refused_token_is_renewed_once_and_the_stream_opens(api: Api, gate: Gate) -> None:
    cursor = await cursor_now(api)
    assert api.tokens is not None
    api.adopt(Tokens("not-a-token", api.tokens.refresh_token, time.time() + 600))
    stream = EventStream(api)
    try:
        heard = asyncio.create_task(stream.changed(cursor))
        await eventually(lambda: gate.paths["/events"] >= 1)
        await api.post("/folders", {"path": "/with a fresh token"})
        await asyncio.wait_for(heard, 20)
    finally:
        await stream.aclose()
    assert api.tokens.access_token != "not-a-token"
    # Refused, then opened.
    assert gate.paths["/events"] == 2
