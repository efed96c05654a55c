"""Signing in through the OpenID provider (the test provider stands in for Google): on
Dropp's own pages, for the desktop app (deep link and loopback), and for the docs UI."""

import asyncio
import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from playwright.async_api import Page, Route, expect

from tests.browser.conftest import Browsing, assert_accessible
from tests.browser.flows import expect_heading
from tests.browser.hostile import HostileSite, hostile_site
from tests.oauth.conftest import DEEP_LINK
from tests.oauth.flow import ClientSignIn, redeem, set_provider_user


@pytest.fixture(scope="module")
def loopback_app() -> Iterator[HostileSite]:
    """The desktop app's loopback listener (RFC 8252), on its own port of 127.0.0.1."""
    with hostile_site() as site:
        yield site


async def at_provider(page: Page, sub: str) -> None:
    """On the provider's page: sign in as `sub`."""
    await expect(page.get_by_role("heading", name="Authorize Client")).to_be_visible()
    await page.get_by_placeholder("sub").fill(sub)
    await page.get_by_role("button", name="Authorize").click()


async def test_sign_in_with_google_from_the_login_page(browsing: Browsing) -> None:
    page = browsing.page
    await set_provider_user(
        browsing.live.provider_url, "g-ada", email="ada@example.com", email_verified=True
    )

    await page.goto(browsing.url("/login/"))
    # By its text: a link now; a form button once, which the page's own CSP blocked.
    await page.get_by_text("Sign in with Google", exact=True).click()
    await at_provider(page, "g-ada")

    await page.wait_for_url(browsing.url("/login/"))
    await expect(page.get_by_text("You are signed in as ada@example.com")).to_be_visible()
    await assert_accessible(page)


async def confirm_and_catch_redirect(browsing: Browsing, sign_in: ClientSignIn) -> str:
    """Run the browser part of an app's sign-in up to the confirmation page, accept it, and
    return where Dropp sends the browser."""
    page = browsing.page
    await page.goto(browsing.url(f"/auth/google?{urlencode(sign_in.authorize_params())}"))
    await at_provider(page, "g-app")
    await expect_heading(page, "Sign in to Dropp on this device?")
    await assert_accessible(page)
    # Chromium hands the redirect to the app's URL without reporting it as a response: the
    # test passes Dropp's answer through and reads where it sends the browser.
    locations: list[str] = []

    async def pass_through(route: Route) -> None:
        answer = await route.fetch(max_redirects=0)
        assert answer.status == 303, await answer.text()
        locations.append(answer.headers["location"])
        await route.fulfill(response=answer)

    await page.route(re.compile(r"/auth/google/confirm$"), pass_through)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    for _ in range(100):
        if locations:
            return locations[0]
        await asyncio.sleep(0.05)
    raise AssertionError("the confirmation was not answered")


async def test_the_desktop_app_receives_its_code_on_the_deep_link(
    browsing: Browsing, api: httpx.AsyncClient
) -> None:
    await set_provider_user(browsing.live.provider_url, "g-app", email="app@example.com")
    sign_in = ClientSignIn(redirect_uri=DEEP_LINK)
    # Chromium hands dropp:// to the operating system, which has no handler here; the
    # page's CSP must let the confirmation's redirect go there (a violation fails the test).
    browsing.watch.expected.append("dropp://")

    location = await confirm_and_catch_redirect(browsing, sign_in)

    assert location.startswith(f"{DEEP_LINK}?")
    received = parse_qs(urlsplit(location).query)
    assert received["state"] == [sign_in.state]
    tokens = await redeem(api, sign_in, received["code"][0])
    assert tokens.status_code == 200, tokens.text


async def test_the_desktop_app_receives_its_code_on_loopback(
    browsing: Browsing, api: httpx.AsyncClient, loopback_app: HostileSite
) -> None:
    await set_provider_user(browsing.live.provider_url, "g-app", email="app@example.com")
    redirect_uri = f"http://127.0.0.1:{loopback_app.port}/callback"
    loopback_app.pages["/callback"] = b"<!doctype html><title>Signed in</title>You can close this."
    sign_in = ClientSignIn(redirect_uri=redirect_uri)

    await confirm_and_catch_redirect(browsing, sign_in)

    await browsing.page.wait_for_url(f"{redirect_uri}?*")
    (arrived,) = [path for path in loopback_app.requested if path.startswith("/callback?")]
    received = parse_qs(urlsplit(arrived).query)
    assert received["state"] == [sign_in.state]
    tokens = await redeem(api, sign_in, received["code"][0])
    assert tokens.status_code == 200, tokens.text


async def test_the_docs_ui_authorizes_and_calls_the_api(browsing: Browsing) -> None:
    page = browsing.page
    await set_provider_user(browsing.live.provider_url, "g-docs", email="docs@example.com")

    await page.goto(browsing.url("/docs"))
    await page.locator(".scheme-container").get_by_role("button", name="Authorize").click()
    dialog = page.locator(".modal-ux")
    async with page.context.expect_page() as opened:
        await dialog.get_by_role("button", name="Apply given OAuth2 credentials").click()
    window = await opened.value
    await at_provider(window, "g-docs")
    await window.get_by_role("button", name="Sign in", exact=True).click()
    await window.wait_for_event("close")

    await expect(dialog.get_by_role("button", name="Remove authorization")).to_have_count(1)
    await dialog.locator(".auth-container").last.get_by_role("button", name="Close").click()
    operation = page.locator(".opblock-get").filter(has=page.locator('[data-path="/me"]'))
    await operation.locator(".opblock-summary").click()
    await operation.get_by_role("button", name="Try it out").click()
    async with page.expect_response(re.compile(r"/me$")) as answered:
        await operation.get_by_role("button", name="Execute").click()
    assert (await answered.value).status == 200
