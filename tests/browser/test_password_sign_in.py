"""A person signs in with email and password on /login/, and signs out."""

import httpx
from playwright.async_api import expect
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.browser.conftest import Browsing, assert_accessible
from tests.browser.flows import sign_in_with_password
from tests.helpers import register_account


async def test_password_sign_in_and_sign_out(
    browsing: Browsing, api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await register_account(api, "ada@example.com", engine=engine)
    page = browsing.page

    await page.goto(browsing.url("/login/"))
    await assert_accessible(page)
    await sign_in_with_password(page, "ada@example.com")

    await expect(page.get_by_text("ada@example.com")).to_be_visible()
    await assert_accessible(page)
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_label("Email")).to_be_visible()
