"""What a person does in the browser, step by step, shared by the browser tests."""

import asyncio

from playwright.async_api import Page, expect

from tests.auth.conftest import Inbox
from tests.helpers import PASSWORD


async def sign_in_with_password(page: Page, email: str, password: str = PASSWORD) -> None:
    """On the sign-in page Dropp shows (/login/, or where a page sent the person)."""
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    async with page.expect_navigation():
        await page.get_by_role("button", name="Sign in", exact=True).click()


async def session_cookie(page: Page) -> str:
    for cookie in await page.context.cookies():
        if cookie["name"] == "dropp_session":
            return cookie["value"]
    raise AssertionError("not signed in: no dropp_session cookie")


async def expect_heading(page: Page, name: str) -> None:
    await expect(page.get_by_role("heading", level=1)).to_have_text(name)


async def mailed_link(inbox: Inbox, address: str, count: int = 1) -> str:
    """The link in the `count`th message to `address`, once it arrived (mail is sent after
    the answer)."""
    for _ in range(200):
        if len(inbox.to(address)) >= count:
            return inbox.last_link(address)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no message {count} to {address}")
