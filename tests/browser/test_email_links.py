"""The links Dropp mails: verifying an address, and resetting a password."""

import httpx
from playwright.async_api import expect

from tests.auth.conftest import Inbox
from tests.browser.conftest import Browsing, assert_accessible
from tests.browser.flows import expect_heading, mailed_link
from tests.helpers import PASSWORD

NEW_PASSWORD = "a much longer new passphrase"


async def register(api: httpx.AsyncClient, email: str) -> None:
    registered = await api.post("/auth/register", json={"email": email, "password": PASSWORD})
    assert registered.status_code == 201, registered.text


async def test_the_verification_link_verifies_the_address(
    browsing: Browsing, api: httpx.AsyncClient
) -> None:
    inbox: Inbox = browsing.live.inbox
    await register(api, "erin@example.com")
    page = browsing.page

    await page.goto(browsing.url(await mailed_link(inbox, "erin@example.com")))
    await expect_heading(page, "Confirm your email address")
    await assert_accessible(page)
    await page.get_by_role("button", name="Verify my email").click()

    await expect_heading(page, "Your email address is confirmed")
    await assert_accessible(page)
    signed_in = await api.post(
        "/auth/login", json={"email": "erin@example.com", "password": PASSWORD}
    )
    assert signed_in.status_code == 200, signed_in.text
    me = await api.get(
        "/me", headers={"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    )
    assert me.json()["email_verified"] is True


async def test_the_reset_link_sets_a_new_password(
    browsing: Browsing, api: httpx.AsyncClient
) -> None:
    inbox: Inbox = browsing.live.inbox
    await register(api, "finn@example.com")
    asked = await api.post("/auth/password-reset", json={"email": "finn@example.com"})
    assert asked.status_code == 202, asked.text
    page = browsing.page

    await page.goto(browsing.url(await mailed_link(inbox, "finn@example.com", count=2)))
    await expect_heading(page, "Choose a new password")
    await assert_accessible(page)
    await page.get_by_label("New password").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Set new password").click()

    await expect_heading(page, "Your password is changed")
    await expect(page.get_by_role("link", name="Sign in")).to_be_visible()
    await assert_accessible(page)
    signed_in = await api.post(
        "/auth/login", json={"email": "finn@example.com", "password": NEW_PASSWORD}
    )
    assert signed_in.status_code == 200, signed_in.text
