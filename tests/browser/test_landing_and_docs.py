"""The landing page at `/`, and the API docs served from the package."""

import httpx
from playwright.async_api import expect
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.browser.conftest import Browsing, assert_accessible
from tests.browser.flows import expect_heading, sign_in_with_password
from tests.helpers import register_account


async def test_the_landing_page_says_what_this_is_and_where_to_go(browsing: Browsing) -> None:
    page = browsing.page

    await page.goto(browsing.url("/"))

    await expect_heading(page, "Dropp")
    await assert_accessible(page)
    await page.get_by_role("link", name="Sign in").click()
    await expect_heading(page, "Sign in to Dropp")
    await page.go_back()
    await page.get_by_role("link", name="API documentation").click()
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("Dropp")


async def test_signed_in_the_top_page_is_the_file_browser_and_signs_out(
    browsing: Browsing, api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await register_account(api, "ada@example.com", engine=engine)
    page = browsing.page
    await page.goto(browsing.url("/login/"))
    await sign_in_with_password(page, "ada@example.com")
    await expect(page.get_by_role("link", name="API documentation")).to_be_visible()

    await page.goto(browsing.url("/"))
    await expect_heading(page, "Files")
    await expect(page.get_by_text("Signed in as ada@example.com")).to_be_visible()
    await assert_accessible(page)
    await page.get_by_role("link", name="Connect a device").click()
    await expect_heading(page, "Connect a device")
    await page.goto(browsing.url("/"))
    await page.get_by_role("button", name="Sign out").click()
    await page.goto(browsing.url("/"))
    await expect(page.get_by_role("link", name="Sign in")).to_be_visible()


async def test_the_docs_render_offline_under_their_csp(browsing: Browsing) -> None:
    page = browsing.page

    answer = await page.goto(browsing.url("/docs"))

    assert answer is not None
    policy = answer.headers["content-security-policy"]
    assert "'unsafe-inline'" not in policy.partition("script-src")[2].partition(";")[0]
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("Dropp")
    await expect(page.locator(".opblock").first).to_be_visible()
