"""Dropp as a real HTTP server on loopback, driven by one headless Chromium for the session.

httpx sends neither `Origin` nor `Sec-Fetch-Site`, applies no CSP and runs no script, so
what a page does in a browser is only known from a browser. Every test gets a fresh browser
context (no cookies) whose console, script errors and CSP violations are collected; any of
them fails the test.
"""

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Response,
    Route,
    WebError,
    async_playwright,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.core.config import Settings
from dropp.embedded.seaweedfs import free_port
from dropp.main import create_app
from tests.auth.conftest import Inbox
from tests.conftest import TABLES
from tests.helpers import serve_in_thread, smtp_server
from tests.oauth.conftest import DEEP_LINK, LOOPBACK, provider_url, sign_in_settings

__all__ = ["provider_url"]  # the session's OpenID provider, shared with tests/oauth

CHROMIUM = "/usr/bin/chromium"
# Debian's Chromium, as installed by apt: nothing downloaded, nothing phoning home.
CHROMIUM_ARGS = [
    "--no-sandbox",  # tests run as root in CI containers
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
NARROW = {"width": 375, "height": 812}  # a small phone: every page must fit it
AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"

# Reports CSP violations from every frame of every page to the test (see Watch).
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.__droppCspViolation(
    `${event.effectiveDirective} blocked ${event.blockedURI || "inline"} on ${event.documentURI}`
  );
});
"""


@dataclass(frozen=True)
class Live:
    """The running server and what it talks to."""

    url: str
    settings: Settings
    provider_url: str
    inbox: Inbox


@pytest.fixture(scope="session")
def session_inbox() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    with smtp_server(inbox) as port:
        yield inbox, port


@pytest.fixture(scope="session")
def live(settings: Settings, provider_url: str, session_inbox: tuple[Inbox, int]) -> Iterator[Live]:
    """Dropp on a real port, with Google sign-in through the test provider and mail to the
    loopback SMTP server."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    inbox, smtp_port = session_inbox
    live_settings = settings.model_copy(
        update=sign_in_settings(
            provider_url,
            public_url=url,
            app_redirect_uri=(DEEP_LINK, LOOPBACK),
            smtp_host="127.0.0.1",
            smtp_port=smtp_port,
            smtp_security="none",
        )
    )
    with serve_in_thread(create_app(live_settings), port, name="dropp-live"):
        yield Live(url, live_settings, provider_url, inbox)


@asynccontextmanager
async def launched_chromium(args: list[str]) -> AsyncIterator[Browser]:
    """The system's Chromium, headless, with these command-line flags."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=args
        )
        yield browser
        await browser.close()


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[Browser]:
    async with launched_chromium(CHROMIUM_ARGS) as browser:
        yield browser


@dataclass
class Watch:
    """What went wrong in Dropp's pages during a test: console errors, uncaught script
    errors, CSP violations, requests to anywhere but loopback. The test provider's own pages
    are not Dropp's and are not judged. `expected` lists substrings of console errors a test
    provokes on purpose (a page answered 403 is logged as a failed resource)."""

    origin: str
    problems: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)

    def ours(self, url: str | None) -> bool:
        return bool(url) and str(url).startswith(self.origin)

    def console(self, message: ConsoleMessage) -> None:
        url = message.location.get("url") or (message.page.url if message.page else None)
        if message.type != "error" or not self.ours(url):
            return
        if not any(expected in message.text for expected in self.expected):
            self.problems.append(f"console: {message.text} ({url})")

    def web_error(self, error: WebError) -> None:
        if error.page is None or self.ours(error.page.url):
            self.problems.append(f"script error: {error.error}")

    def violation(self, source: dict[str, Any], description: str) -> None:
        if self.ours(source.get("frame").url if source.get("frame") else None):
            self.problems.append(f"CSP violation: {description}")

    def response(self, response: Response) -> None:
        """Every page of Dropp's comes with a CSP that lets no inline script or style run."""
        html = response.headers.get("content-type", "").startswith("text/html")
        if not html or not self.ours(response.url) or 300 <= response.status < 400:
            return
        policy = response.headers.get("content-security-policy")
        if policy is None:
            self.problems.append(f"no CSP: {response.url}")
        elif "'unsafe-inline'" in policy:
            self.problems.append(f"CSP allows inline code: {response.url}: {policy}")

    async def offline(self, route: Route) -> None:
        """Tests talk only to loopback: anything else is refused, and a problem when one of
        Dropp's pages asked for it (a page must not need the internet)."""
        request = route.request
        host = urlsplit(request.url).hostname
        if host in ("127.0.0.1", "localhost") or request.url.startswith(("data:", "blob:")):
            await route.continue_()
            return
        if self.ours(request.frame.url):
            self.problems.append(f"request to the internet: {request.url}")
        await route.abort()


@dataclass
class Browsing:
    """One test's browser context: its first page, and what the watch collected."""

    context: BrowserContext
    page: Page
    watch: Watch
    live: Live

    def url(self, path: str) -> str:
        return f"{self.live.url}{path}"


@pytest.fixture
async def browsing(chromium: Browser, live: Live, engine: AsyncEngine) -> AsyncIterator[Browsing]:
    watch = Watch(live.url)
    context = await chromium.new_context(viewport=NARROW)
    await context.route("**/*", watch.offline)
    context.set_default_timeout(15_000)
    await context.expose_binding("__droppCspViolation", watch.violation)
    await context.add_init_script(REPORT_VIOLATIONS)
    context.on("console", watch.console)
    context.on("weberror", watch.web_error)
    context.on("response", watch.response)
    try:
        yield Browsing(context, await context.new_page(), watch, live)
        # Violations are reported through a binding: let the last ones arrive.
        await asyncio.sleep(0.1)
        assert watch.problems == [], "\n".join(watch.problems)
    finally:
        await context.close()
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))


@pytest.fixture
def page(browsing: Browsing) -> Page:
    return browsing.page


@pytest.fixture
async def api(live: Live) -> AsyncIterator[httpx.AsyncClient]:
    """The JSON API over real HTTP, for what a test sets up outside the browser."""
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
        yield client


async def assert_accessible(page: Page) -> None:
    """axe-core finds no serious or critical violation, and the page fits 375 px."""
    # Evaluated through the DevTools protocol, which the page's CSP does not govern; a
    # <script> tag would be (rightly) refused by it.
    await page.evaluate(AXE.read_text())
    found: list[str] = await page.evaluate(
        """async () => {
          const result = await axe.run(document, {resultTypes: ["violations"]});
          return result.violations
            .filter((v) => v.impact === "serious" || v.impact === "critical")
            .map((v) => `${v.id} (${v.impact}): ` + v.nodes.map((n) => n.target.join(" ")));
        }"""
    )
    assert found == [], f"{page.url}:\n" + "\n".join(found)
    faint: list[str] = await page.evaluate(FAINT_BORDERS)
    assert faint == [], f"{page.url}: input borders under 3:1 against the page: {faint}"
    await assert_fits(page)


# axe checks text contrast only; WCAG 1.4.11 asks 3:1 of what identifies a control, here the
# border of a text field against the page behind it.
FAINT_BORDERS = """() => {
  const rgb = (color) => color.match(/[0-9.]+/g).slice(0, 3).map(Number);
  const luminance = (color) => {
    const [r, g, b] = rgb(color).map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ratio = (a, b) => {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  };
  const page = getComputedStyle(document.body).backgroundColor;
  const behind = page === "rgba(0, 0, 0, 0)" ? "rgb(255, 255, 255)" : page;
  return Array.from(document.querySelectorAll("input:not([type=hidden]), select, textarea"))
    .filter((field) => field.getClientRects().length > 0)
    .map((field) => [field, getComputedStyle(field)])
    .filter(([, style]) => style.borderTopStyle !== "none" && parseFloat(style.borderTopWidth) > 0)
    .filter(([, style]) => ratio(style.borderTopColor, behind) < 3)
    .map(([field, style]) => `#${field.id || field.name}: ${style.borderTopColor}`);
}"""


async def assert_fits(page: Page) -> None:
    width: int = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= NARROW["width"], f"{page.url} is {width} px wide at {NARROW['width']} px"
