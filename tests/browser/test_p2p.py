"""Send and Receive in the web app (docs/p2p.md): a file from a signed-in browser to an
anonymous one over a WebRTC data channel on loopback, between a browser and the `dropp`
command (aiortc) both ways, through storage when the sender asks or the receiver does, and a
wrong code said in words.

These tests drive their own Chromium, launched with the WebRTC switch below, so that
candidates carry real addresses: with the default, Chromium hides them behind mDNS names,
which a peer outside the browser resolves only where multicast works.
"""

import asyncio
import hashlib
import json
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

import httpx
import pytest
import websockets
from playwright.async_api import (
    Browser,
    BrowserContext,
    Page,
    ViewportSize,
    expect,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.p2p.service import storage_key
from dropp.storage.s3 import Storage
from tests.browser.conftest import (
    CHROMIUM_ARGS,
    NARROW,
    REPORT_VIOLATIONS,
    Live,
    Watch,
    assert_accessible,
    launched_chromium,
)
from tests.browser.flows import expect_heading, sign_in_with_password
from tests.client.conftest import Device
from tests.conftest import TABLES
from tests.helpers import MIB, Account, register_account

WEBRTC_ARGS = [*CHROMIUM_ARGS, "--disable-features=WebRtcHideLocalIpsWithMdns"]
CODE = re.compile(r"^\d{4}-\d{4}-\d{4}$")


@pytest.fixture(scope="module")
async def webrtc_chromium() -> AsyncIterator[Browser]:
    async with launched_chromium(WEBRTC_ARGS) as browser:
        yield browser


@dataclass
class Peers:
    """The browsers of one test, each its own context (cookies apart), all watched as the
    `browsing` fixture watches its one: a console error, script error or CSP violation on
    any of Dropp's pages fails the test."""

    browser: Browser
    live: Live
    watch: Watch
    contexts: list[BrowserContext] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"{self.live.url}{path}"

    async def page(self) -> Page:
        context = await self.browser.new_context(
            viewport=ViewportSize(width=NARROW["width"], height=NARROW["height"]),
            accept_downloads=True,
        )
        self.contexts.append(context)
        await context.route("**/*", self.watch.offline)
        context.set_default_timeout(15_000)
        await context.expose_binding("__droppCspViolation", self.watch.violation)
        await context.add_init_script(REPORT_VIOLATIONS)
        context.on("console", self.watch.console)
        context.on("weberror", self.watch.web_error)
        context.on("response", self.watch.response)
        return await context.new_page()


@pytest.fixture
async def peers(webrtc_chromium: Browser, live: Live, engine: AsyncEngine) -> AsyncIterator[Peers]:
    found = Peers(webrtc_chromium, live, Watch(live.url))
    try:
        yield found
        await asyncio.sleep(0.1)  # the last CSP reports arrive through a binding
        assert found.watch.problems == [], "\n".join(found.watch.problems)
    finally:
        for context in found.contexts:
            await context.close()
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))


async def sender_page(peers: Peers, api: httpx.AsyncClient, engine: AsyncEngine) -> Page:
    """A signed-in person on the Send page, reached from the header's navigation."""
    account = await register_account(api, "sender@example.com", engine=engine)
    page = await peers.page()
    await page.goto(peers.url("/login/?next=/"))
    await sign_in_with_password(page, account.email)
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Send").click()
    await expect_heading(page, "Send a file")
    return page


async def offer(page: Page, path: Path) -> str:
    """Pick the file on the Send page; the code it shows for the receiver."""
    await page.get_by_label("File to send").set_input_files(path)
    shown = page.locator("#send-code")
    await expect(shown).to_have_text(CODE)
    return await shown.inner_text()


async def receive(page: Page, code: str) -> None:
    await page.get_by_label("Code").fill(code)
    await page.get_by_role("button", name="Receive", exact=True).click()


async def saved(page: Page, name: str) -> bytes:
    """What the Receive page's link saves, by a real download."""
    async with page.expect_download() as started:
        await page.get_by_role("link", name=f"Save {name}").click()
    download = await started.value
    assert download.suggested_filename == name
    return await asyncio.to_thread(Path(await download.path()).read_bytes)


async def transfers(engine: AsyncEngine) -> list[tuple[UUID, str, str | None]]:
    async with engine.connect() as connection:
        rows = await connection.execute(text("SELECT id, state, via FROM p2p_transfer"))
        return [(row.id, row.state, row.via) for row in rows]


async def assert_nothing_stored(storage: Storage, transfer_id: UUID) -> None:
    """No version of the transfer's object is left (the server deletes it on `done`, just
    after it tells the sender)."""
    key = storage_key(transfer_id)
    for _ in range(100):
        if not await storage.key_versions(key):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"storage still holds {key}: {await storage.key_versions(key)}")


def payload(tmp_path: Path, name: str, size: int) -> tuple[Path, bytes]:
    data = os.urandom(size)
    path = tmp_path / name
    path.write_bytes(data)
    return path, data


async def test_a_file_goes_from_browser_to_browser_peer_to_peer(
    peers: Peers, api: httpx.AsyncClient, engine: AsyncEngine, tmp_path: Path
) -> None:
    path, data = payload(tmp_path, "holiday photos.tar", 3 * MIB // 2 + 123)
    sender = await sender_page(peers, api, engine)
    code = await offer(sender, path)
    await expect(
        sender.get_by_role("status").filter(has_text="Waiting for the receiver")
    ).to_be_visible()
    await assert_accessible(sender)

    receiver = await peers.page()
    await receiver.goto(peers.url(f"/receive?code={code}"))
    await expect(receiver.get_by_label("Code")).to_have_value(code)
    await receiver.get_by_role("button", name="Receive", exact=True).click()

    await expect(receiver.get_by_role("status").filter(has_text="Received")).to_have_text(
        "Received peer to peer and checked: it came straight from the sender."
    )
    await expect(receiver.get_by_text("holiday photos.tar (1.6 MB)")).to_be_visible()
    assert await saved(receiver, "holiday photos.tar") == data
    await expect(sender.locator("#send-status")).to_contain_text("Sent peer to peer")
    [(_, state, via)] = await transfers(engine)
    assert (state, via) == ("done", "p2p")


async def test_the_sender_can_send_through_dropp_instead(
    peers: Peers,
    api: httpx.AsyncClient,
    engine: AsyncEngine,
    storage: Storage,
    tmp_path: Path,
) -> None:
    path, data = payload(tmp_path, "minutes.pdf", MIB + 7)
    sender = await sender_page(peers, api, engine)
    code = await offer(sender, path)
    # Chosen before the receiver comes: no direct connection is even tried.
    await sender.get_by_role("button", name="Send through Dropp instead").click()
    await expect(sender.locator("#send-status")).to_contain_text(
        "It will go through Dropp as soon as the receiver joins"
    )

    receiver = await peers.page()
    await receiver.goto(peers.url("/receive"))
    await receive(receiver, code.replace("-", " "))

    await expect(receiver.locator("#receive-status")).to_have_text(
        "Received through Dropp and checked: "
        "it came through Dropp's storage, which deletes it now.",
        timeout=30_000,
    )
    assert await saved(receiver, "minutes.pdf") == data
    await expect(sender.locator("#send-status")).to_contain_text("Sent through Dropp")
    [(transfer_id, state, via)] = await transfers(engine)
    assert (state, via) == ("done", "cloud")
    await assert_nothing_stored(storage, transfer_id)


async def test_the_sender_goes_through_dropp_when_the_receiver_asks(
    peers: Peers,
    api: httpx.AsyncClient,
    engine: AsyncEngine,
    storage: Storage,
    tmp_path: Path,
) -> None:
    """A receiver that never answers the offer and asks for the fallback (as `dropp receive
    --via cloud` does): the page uploads at once, without waiting out its 15 s."""
    path, data = payload(tmp_path, "notes.txt", 200_000)
    sender = await sender_page(peers, api, engine)
    code = await offer(sender, path)

    async with websockets.connect(peers.url("/p2p").replace("http", "ws", 1)) as socket:
        await socket.send(json.dumps({"type": "join", "code": code}))
        joined = json.loads(await socket.recv())
        assert joined["file"] == {
            "name": "notes.txt",
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        await socket.send(json.dumps({"type": "fallback", "reason": "testing"}))
        async for frame in socket:
            message = json.loads(frame)
            if message["type"] == "download":
                break
            # The page's offer may come before it heard the fallback: it is never answered.
            assert message["type"] in ("signal", "progress"), message
        async with httpx.AsyncClient(timeout=30) as web:
            got = await web.get(message["url"])
        assert got.content == data
        checked = hashlib.sha256(got.content).hexdigest()
        await socket.send(json.dumps({"type": "done", "via": "cloud", "sha256": checked}))
        with pytest.raises(websockets.ConnectionClosedOK):
            await socket.recv()

    await expect(sender.locator("#send-status")).to_contain_text("Sent through Dropp")
    [(transfer_id, _, via)] = await transfers(engine)
    assert via == "cloud"
    await assert_nothing_stored(storage, transfer_id)


async def test_a_wrong_code_is_said_in_words(peers: Peers) -> None:
    page = await peers.page()
    shown = await page.goto(peers.url("/receive"))
    await expect_heading(page, "Receive a file")
    assert shown is not None
    # The URL may hold a code: no Referer carries it anywhere.
    assert shown.headers["referrer-policy"] == "no-referrer"
    policy = shown.headers["content-security-policy"]
    assert f"connect-src 'self' {peers.live.url.replace('http', 'ws', 1)} " in policy
    assert "script-src 'nonce-" in policy
    await assert_accessible(page)
    await receive(page, "1234-5678-9012")

    await expect(page.get_by_role("alert")).to_have_text(
        "No file is waiting for this code: it may be mistyped, already used or expired. "
        "Check it with the sender, or ask them for a new one."
    )
    await expect(page.get_by_label("Code")).to_be_focused()
    await expect(page.get_by_role("button", name="Receive", exact=True)).to_be_enabled()
    await assert_accessible(page)


# --- with the command line ---------------------------------------------------------------


def device(tmp_path: Path, live: Live, name: str) -> Device:
    """A machine running `dropp`; its aiortc offers 127.0.0.1 (which it skips by default)."""
    made = Device(name, tmp_path / name, live.url, env={"DROPP_P2P_HOST_ADDRESSES": "127.0.0.1"})
    made.home.mkdir(parents=True)
    return made


async def start(machine: Device, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *machine.command(*args, "--json"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=machine.environment(),
    )


async def outcome(process: asyncio.subprocess.Process) -> dict[str, object]:
    """The last JSON line `--json` printed, once the command exited 0."""
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode == 0, f"exited {process.returncode}\n{out.decode()}\n{err.decode()}"
    last: dict[str, object] = json.loads(out.decode().strip().splitlines()[-1])
    return last


async def test_a_browser_sends_to_dropp_receive(
    peers: Peers, api: httpx.AsyncClient, engine: AsyncEngine, tmp_path: Path
) -> None:
    path, data = payload(tmp_path, "slides.key", MIB + 99)
    sender = await sender_page(peers, api, engine)
    code = await offer(sender, path)
    laptop = device(tmp_path, peers.live, "laptop")
    into = tmp_path / "Downloads"

    got = await outcome(await start(laptop, "receive", code, str(into)))

    assert got["via"] == "p2p", got
    assert (into / "slides.key").read_bytes() == data
    await expect(sender.locator("#send-status")).to_contain_text("Sent peer to peer")
    [(_, state, via)] = await transfers(engine)
    assert (state, via) == ("done", "p2p")


async def test_dropp_send_to_a_browser(
    peers: Peers, api: httpx.AsyncClient, engine: AsyncEngine, tmp_path: Path
) -> None:
    account: Account = await register_account(api, "desk@example.com", engine=engine)
    path, data = payload(tmp_path, "report.pdf", MIB + 5)
    desk = device(tmp_path, peers.live, "desk")
    desk.login(account)

    process = await start(desk, "send", str(path))
    assert process.stdout is not None
    async with asyncio.timeout(30):
        code = json.loads(await process.stdout.readline())["code"]
    receiver = await peers.page()
    await receiver.goto(peers.url(f"/receive?code={code}"))
    await receiver.get_by_role("button", name="Receive", exact=True).click()

    await expect(receiver.locator("#receive-status")).to_have_text(
        "Received peer to peer and checked: it came straight from the sender.", timeout=30_000
    )
    assert await saved(receiver, "report.pdf") == data
    assert (await outcome(process))["via"] == "p2p"
    [(_, state, via)] = await transfers(engine)
    assert (state, via) == ("done", "p2p")
