"""`dropp login` as a person runs it: in the system browser (a loopback redirect with PKCE,
RFC 8252) against the test OpenID provider, and with a code approved in a browser (the
device grant, RFC 8628). The browser is a real Chromium, the one the browser tests drive."""

import asyncio
import json
import re
import subprocess
import threading
from pathlib import Path
from typing import IO
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.browser.conftest import (
    Browsing,
    Live,
    api,
    browsing,
    chromium,
    live,
    provider_url,
    session_inbox,
)
from tests.browser.flows import expect_heading, sign_in_with_password
from tests.client.conftest import Device, DeviceFactory
from tests.helpers import register_account
from tests.oauth.flow import set_provider_user

# The browser tests' fixtures: Dropp with the test OpenID provider, and Chromium.
__all__ = ["api", "browsing", "chromium", "live", "provider_url", "session_inbox"]

URL_LINE = re.compile(r"Open this URL to sign in: (?P<url>\S+)")
CODE_LINE = re.compile(r"Open (?P<uri>\S+) in a browser and enter the code (?P<code>\S+)")
LOGIN_TIMEOUT = 120
# For a line the command prints, on a loaded machine.
WAIT_SECONDS = 60


def device_for(live: Live, root: Path) -> Device:
    """A desktop whose browser does nothing (`BROWSER=true`): the test opens the URL."""
    device = Device("cli", root / "cli", live.url, env={"BROWSER": "true"})
    device.home.mkdir(parents=True)
    return device


class Lines:
    """A running command's stderr, line by line, read in a thread so a test can wait."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._arrived = threading.Condition()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._arrived:
                self.lines.append(line)
                self._arrived.notify_all()
        stream.close()
        with self._arrived:
            self.lines.append("")  # the end
            self._arrived.notify_all()

    def _match(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        with self._arrived:
            for line in self.lines:
                if (found := pattern.search(line)) is not None:
                    return found
        return None

    async def wait_for(self, pattern: re.Pattern[str]) -> re.Match[str]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_SECONDS
        while loop.time() < deadline:
            if (found := self._match(pattern)) is not None:
                return found
            if self.lines and self.lines[-1] == "":
                break
            await asyncio.sleep(0.05)
        raise AssertionError(f"no line matching {pattern.pattern}:\n{''.join(self.lines)}")

    async def closed(self) -> str:
        """Everything the command wrote, once it closed its stderr."""
        for _ in range(int(WAIT_SECONDS / 0.05)):
            if self.lines and self.lines[-1] == "":
                return self.text()
            await asyncio.sleep(0.05)
        raise AssertionError(f"stderr still open:\n{self.text()}")

    def text(self) -> str:
        with self._arrived:
            return "".join(self.lines)


async def finished(process: subprocess.Popen[str], errors: Lines) -> tuple[int, str, str]:
    """The command's exit status, stdout and stderr once it ends."""
    assert process.stdout is not None
    stdout = await asyncio.to_thread(process.stdout.read)
    process.stdout.close()
    code = await asyncio.to_thread(process.wait, LOGIN_TIMEOUT)
    return code, stdout, await errors.closed()


def start(device: Device, *args: str) -> tuple[subprocess.Popen[str], Lines]:
    process = device.start("login", *args)
    assert process.stderr is not None
    return process, Lines(process.stderr)


async def at_provider(page: Page, sub: str) -> None:
    """The test provider's page: sign in there as `sub`."""
    await expect(page.get_by_role("heading", name="Authorize Client")).to_be_visible()
    await page.get_by_placeholder("sub").fill(sub)
    await page.get_by_role("button", name="Authorize").click()


def whoami(device: Device) -> str:
    email: str = json.loads(device.run("whoami", "--json").stdout)["account"]["email"]
    return email


async def test_login_in_the_browser_comes_back_on_loopback_with_pkce(
    browsing: Browsing, tmp_path: Path
) -> None:
    live = browsing.live
    await set_provider_user(
        live.provider_url, "g-cli", email="cli@example.com", email_verified=True
    )
    device = device_for(live, tmp_path)
    process, errors = start(device)

    url = (await errors.wait_for(URL_LINE))["url"]
    assert url.startswith(f"{live.url}/auth/google?")
    asked = {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
    assert re.fullmatch(r"http://127\.0\.0\.1:[0-9]+/callback", asked["redirect_uri"])
    assert asked["code_challenge_method"] == "S256"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", asked["code_challenge"])
    assert len(asked["state"]) >= 22

    page = browsing.page
    await page.goto(url)
    await at_provider(page, "g-cli")
    await expect_heading(page, "Sign in to Dropp on this device?")
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.wait_for_url(f"{asked['redirect_uri']}?*")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Signed in")
    await expect(page.get_by_text("You can close this window")).to_be_visible()

    code, stdout, stderr = await finished(process, errors)
    assert code == 0, stderr
    assert stdout == f"Signed in to {live.url} as cli@example.com.\n"
    assert whoami(device) == "cli@example.com"
    saved = json.loads((device.config_dir / "config.json").read_text())
    assert saved["server"] == live.url


async def test_login_cancelled_in_the_browser_signs_nothing_in(
    browsing: Browsing, tmp_path: Path
) -> None:
    await set_provider_user(browsing.live.provider_url, "g-no", email="no@example.com")
    device = device_for(browsing.live, tmp_path)
    process, errors = start(device)
    url = (await errors.wait_for(URL_LINE))["url"]

    page = browsing.page
    await page.goto(url)
    await at_provider(page, "g-no")
    await page.get_by_role("button", name="Cancel").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Not signed in")

    code, _, stderr = await finished(process, errors)
    assert code == 1
    assert "access_denied" in stderr
    assert device.run("whoami", check=False).returncode == 3


async def test_login_waits_for_its_own_state_then_gives_up(live: Live, tmp_path: Path) -> None:
    device = device_for(live, tmp_path)
    process, errors = start(device, "--timeout", "3")
    url = (await errors.wait_for(URL_LINE))["url"]
    redirect_uri = parse_qs(urlsplit(url).query)["redirect_uri"][0]

    # A page that sends the browser to the listener with a code of its own (login CSRF)
    # cannot know the state: refused, and the command keeps waiting for the real one.
    async with httpx.AsyncClient(timeout=10) as browser:
        forged = await browser.get(redirect_uri, params={"code": "forged", "state": "guess"})
        assert forged.status_code == 400
        # Its page lets no inline code run but its own style, admitted by its hash.
        policy = forged.headers["content-security-policy"]
        assert "'unsafe-inline'" not in policy
        assert "style-src 'sha256-" in policy
        assert "<style>" in forged.text
        elsewhere = await browser.get(redirect_uri.replace("/callback", "/other"))
        assert elsewhere.status_code == 404

    code, stdout, stderr = await finished(process, errors)
    assert code == 1
    assert stdout == ""
    assert "No sign-in came back from the browser within 3 seconds" in stderr
    assert "Traceback" not in stderr
    assert device.run("whoami", check=False).returncode == 3


@pytest.mark.parametrize(
    ("button", "heading"), [("Approve", "Device connected"), ("Deny", "Device refused")]
)
async def test_login_with_a_code_approved_in_the_browser(
    browsing: Browsing,
    api: httpx.AsyncClient,
    engine: AsyncEngine,
    tmp_path: Path,
    button: str,
    heading: str,
) -> None:
    await register_account(api, "desk@example.com", engine=engine)
    device = device_for(browsing.live, tmp_path)
    process, errors = start(device, "--device")
    shown = await errors.wait_for(CODE_LINE)
    assert shown["uri"] == f"{browsing.live.url}/auth/device/verify"
    assert re.fullmatch(r"[A-Z]{4}-[A-Z]{4}", shown["code"])

    # The person opens the address, signs in there, and types the code.
    page = browsing.page
    await page.goto(shown["uri"])
    await sign_in_with_password(page, "desk@example.com")
    await expect_heading(page, "Connect a device")
    await page.get_by_label("Code").fill(shown["code"])
    await page.get_by_role("button", name=button).click()
    await expect_heading(page, heading)

    code, stdout, stderr = await finished(process, errors)
    if button == "Approve":
        assert code == 0, stderr
        assert stdout == f"Signed in to {browsing.live.url} as desk@example.com.\n"
        assert whoami(device) == "desk@example.com"
    else:
        assert code == 1
        assert "refused" in stderr
        assert device.run("whoami", check=False).returncode == 3


async def test_without_browser_sign_in_login_shows_a_code_instead(
    make_device: DeviceFactory,
) -> None:
    # The client tests' server has no OpenID provider set up.
    device = make_device("plain")
    process, errors = start(device)
    try:
        await errors.wait_for(re.compile(r"has no browser sign-in"))
        await errors.wait_for(CODE_LINE)
        assert URL_LINE.search(errors.text()) is None
    finally:
        process.kill()
        await asyncio.to_thread(process.wait)
        assert process.stdout is not None
        process.stdout.close()
        await errors.closed()
