"""The same forms, posted by a page of another origin: refused.

`127.0.0.1:<other port>` is the same site as Dropp (cookies cross ports; Chromium sends
`Sec-Fetch-Site: same-site`); `localhost` is another site (`cross-site`, and the SameSite=Lax
cookies stay home). Each also asks for `Origin: null` (`Referrer-Policy: no-referrer`), which
must not pass for Dropp's own. The forged device approval even carries a valid CSRF token, so
only the origin rule stands in its way.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.oauth.web_sessions import csrf_token
from tests.browser.conftest import Browsing
from tests.browser.flows import expect_heading, session_cookie, sign_in_with_password
from tests.browser.hostile import HostileSite, hostile_site
from tests.browser.test_device_approval import poll, start_device
from tests.browser.test_google_sign_in import at_provider
from tests.helpers import PASSWORD, register_account, upload_file
from tests.oauth.conftest import DEEP_LINK
from tests.oauth.flow import ClientSignIn, set_provider_user

ORIGINS = pytest.mark.parametrize(
    ("host", "no_referrer"),
    [("127.0.0.1", False), ("127.0.0.1", True), ("localhost", False), ("localhost", True)],
    ids=["same-site", "same-site-null", "cross-site", "cross-site-null"],
)
# Where the browser's cookies go along, so that only the origin rule can refuse.
SAME_SITE = pytest.mark.parametrize(
    ("host", "no_referrer"),
    [("127.0.0.1", False), ("127.0.0.1", True)],
    ids=["same-site", "same-site-null"],
)


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileSite]:
    with hostile_site() as site:
        yield site


@dataclass(frozen=True)
class Forgery:
    """The hostile site's page for this test's origin (`host`, `no_referrer`)."""

    browsing: Browsing
    hostile: HostileSite
    host: str
    no_referrer: bool

    async def post(self, path: str, fields: dict[str, str]) -> None:
        """Open a page of the hostile site that posts `fields` to Dropp's `path` at once, and
        wait for Dropp's answer."""
        self.browsing.watch.expected.append("status of 403")
        forged = self.hostile.forged_form(
            self.browsing.url(path), fields, host=self.host, no_referrer=self.no_referrer
        )
        await self.browsing.page.goto(forged)
        await self.browsing.page.wait_for_url(self.browsing.url(path))


@pytest.fixture
def forgery(browsing: Browsing, hostile: HostileSite, host: str, no_referrer: bool) -> Forgery:
    return Forgery(browsing, hostile, host, no_referrer)


@ORIGINS
async def test_a_forged_password_sign_in_is_refused(
    browsing: Browsing, api: httpx.AsyncClient, engine: AsyncEngine, forgery: Forgery
) -> None:
    await register_account(api, "victim@example.com", engine=engine)

    await forgery.post("/login/", {"email": "victim@example.com", "password": PASSWORD})

    await expect_heading(browsing.page, "Sign-in refused")
    cookies = await browsing.context.cookies(browsing.live.url)
    assert "dropp_session" not in {cookie["name"] for cookie in cookies}


@SAME_SITE
async def test_a_forged_device_approval_is_refused(
    browsing: Browsing, api: httpx.AsyncClient, engine: AsyncEngine, forgery: Forgery
) -> None:
    await register_account(api, "victim@example.com", engine=engine)
    page = browsing.page
    await page.goto(browsing.url("/login/"))
    await sign_in_with_password(page, "victim@example.com")
    device = await start_device(api)
    token = csrf_token(browsing.live.settings, "device", await session_cookie(page))

    await forgery.post(
        "/auth/device/verify",
        {"user_code": device["user_code"], "action": "approve", "csrf": token},
    )

    await expect_heading(page, "Refused")
    answer = await poll(api, device)
    assert answer.json()["error"] == "authorization_pending", answer.text


@SAME_SITE
async def test_a_forged_sign_in_confirmation_is_refused(
    browsing: Browsing, forgery: Forgery
) -> None:
    """A page that learnt a waiting sign-in's fields (and the browser's cookie goes along)
    still cannot confirm it for the person."""
    await set_provider_user(browsing.live.provider_url, "g-victim", email="victim@example.com")
    page = browsing.page
    sign_in = ClientSignIn(redirect_uri=DEEP_LINK)
    await page.goto(browsing.url(f"/auth/google?{urlencode(sign_in.authorize_params())}"))
    await at_provider(page, "g-victim")
    await expect_heading(page, "Sign in to Dropp on this device?")
    fields = {
        name: await page.locator(f'input[name="{name}"]').get_attribute("value") or ""
        for name in ("sign_in", "csrf")
    }

    await forgery.post("/auth/google/confirm", {**fields, "action": "allow"})

    await expect_heading(page, "Sign-in refused")


@SAME_SITE
async def test_a_forged_file_browser_form_is_refused(
    browsing: Browsing, api: httpx.AsyncClient, engine: AsyncEngine, forgery: Forgery
) -> None:
    """Even with the session's own form token, a page of another origin cannot trash a
    file through the web app."""
    victim = await register_account(api, "victim@example.com", engine=engine)
    async with httpx.AsyncClient(timeout=30) as web:
        kept = await upload_file(api, web, victim, "thesis.pdf", b"years of work")
    page = browsing.page
    await page.goto(browsing.url("/login/"))
    await sign_in_with_password(page, "victim@example.com")
    token = csrf_token(browsing.live.settings, "web", await session_cookie(page))

    await forgery.post(f"/app/file/{kept['file_id']}/trash", {"csrf": token, "back": "/"})

    await expect_heading(page, "Refused")
    still = await api.get(f"/files/{kept['file_id']}", headers=victim.headers)
    assert still.status_code == 200, still.text
