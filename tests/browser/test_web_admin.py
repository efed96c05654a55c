"""The web app's admin pages in Chromium: accounts changed by an admin, the statistics as
charts, and neither open to anyone else."""

import httpx
from playwright.async_api import expect
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.browser.conftest import Browsing, assert_accessible
from tests.browser.flows import expect_heading, sign_in_with_password
from tests.helpers import PASSWORD, register_account, upload_file


async def test_an_admin_changes_an_account_and_reads_the_charts(
    browsing: Browsing, api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    admin = await register_account(api, "root@example.com", engine=engine, role="admin")
    member = await register_account(api, "member@example.com", engine=engine)
    async with httpx.AsyncClient(timeout=30) as web:
        await upload_file(api, web, member, "a.txt", b"x" * 2048)
    page = browsing.page
    await page.goto(browsing.url("/login/?next=/"))
    await sign_in_with_password(page, admin.email)

    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
    await expect_heading(page, "Accounts")
    await assert_accessible(page)
    await page.get_by_label("Quota of member@example.com in bytes").fill("1000000")
    await page.get_by_label("member@example.com may sign in").uncheck()
    await page.get_by_role("button", name="Save member@example.com").click()

    await expect(page.get_by_label("Quota of member@example.com in bytes")).to_have_value("1000000")
    await expect(page.get_by_role("row").filter(has_text="member@example.com")).to_contain_text(
        "disabled"
    )
    refused = await api.post("/auth/login", json={"email": member.email, "password": PASSWORD})
    assert refused.status_code == 401

    await page.get_by_role("link", name="Statistics").click()
    await expect_heading(page, "Statistics")
    await expect(page.get_by_role("img", name="Uploads per day: 1 in 30 days")).to_be_visible()
    await expect(
        page.get_by_role("img", name="Bytes uploaded per day: 2.0 KB in 30 days")
    ).to_be_visible()
    await assert_accessible(page)


async def test_the_admin_pages_are_for_admins_only(
    browsing: Browsing, api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    member = await register_account(api, "member@example.com", engine=engine)
    page = browsing.page
    await page.goto(browsing.url("/login/?next=/"))
    await sign_in_with_password(page, member.email)
    browsing.watch.expected.append("status of 403")

    await expect(page.get_by_role("link", name="Admin")).to_have_count(0)
    for path in ("/app/admin/users", "/app/admin/stats"):
        answer = await page.goto(browsing.url(path))
        assert answer is not None
        assert answer.status == 403
        await expect_heading(page, "Admins only")
