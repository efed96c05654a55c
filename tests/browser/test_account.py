"""The web app's account page in Chromium: usage against the quota, a new verification
link, and a password change that signs every other session out."""

import httpx
from playwright.async_api import expect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.browser.conftest import Browsing, assert_accessible
from tests.browser.flows import expect_heading, mailed_link, sign_in_with_password
from tests.helpers import PASSWORD, register_account, upload_file

NEW_PASSWORD = "a much longer passphrase"


async def test_usage_and_a_password_change(
    browsing: Browsing, api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    account = await register_account(api, "ada@example.com", engine=engine)
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE user_account SET quota_bytes = 1000000 WHERE email = :email"),
            {"email": account.email},
        )
    async with httpx.AsyncClient(timeout=30) as web:
        await upload_file(api, web, account, "photo.jpg", b"x" * 250_000)
    page = browsing.page
    await page.goto(browsing.url("/login/?next=/app/account"))
    await sign_in_with_password(page, account.email)

    await expect_heading(page, "Account")
    await expect(page.get_by_text("250.0 KB of 1.0 MB used, in 1 file.")).to_be_visible()
    await expect(page.get_by_label("250.0 KB of 1.0 MB used")).to_have_attribute("value", "250000")
    await expect(page.get_by_text("verified", exact=True)).to_be_visible()
    await assert_accessible(page)

    # Refused with nothing changed: a wrong current password, a repetition that differs.
    browsing.watch.expected += ["status of 401", "status of 422"]
    for current, again, why in [
        ("not my password", NEW_PASSWORD, "current password is incorrect"),
        (PASSWORD, "something else entirely", "differ"),
    ]:
        await page.get_by_label("Current password").fill(current)
        await page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
        await page.get_by_label("New password again").fill(again)
        await page.get_by_role("button", name="Change the password").click()
        await expect(page.get_by_role("alert")).to_contain_text(why)
    assert (await api.get("/me", headers=account.headers)).status_code == 200

    await page.get_by_label("Current password").fill(PASSWORD)
    await page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await page.get_by_label("New password again").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Change the password").click()

    await expect(page.get_by_role("status")).to_contain_text("Your password was changed")
    # This browser stays signed in; the API session from before does not.
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Files").click()
    await expect_heading(page, "Files")
    refreshed = await api.post("/auth/refresh", json={"refresh_token": account.refresh_token})
    assert refreshed.status_code == 401
    signed_in = await api.post(
        "/auth/login", json={"email": account.email, "password": NEW_PASSWORD}
    )
    assert signed_in.status_code == 200, signed_in.text


async def test_an_unverified_address_gets_a_new_link(
    browsing: Browsing, api: httpx.AsyncClient
) -> None:
    await register_account(api, "new@example.com")
    page = browsing.page
    await page.goto(browsing.url("/login/?next=/app/account"))
    await sign_in_with_password(page, "new@example.com")
    before = len(browsing.live.inbox.to("new@example.com"))

    await expect(page.get_by_text("not verified yet")).to_be_visible()
    await page.get_by_role("button", name="Send a new verification link").click()

    await expect(page.get_by_role("status")).to_contain_text("verification link is on its way")
    link = await mailed_link(browsing.live.inbox, "new@example.com", before + 1)
    await page.goto(browsing.url(link))
    await page.get_by_role("button", name="Verify my email").click()
    await expect_heading(page, "Your email address is confirmed")
    await page.goto(browsing.url("/app/account"))
    await expect(page.get_by_text("verified", exact=True)).to_be_visible()


async def test_sign_up_verify_and_sign_in_then_forget_the_password_and_set_a_new_one(
    browsing: Browsing,
) -> None:
    page = browsing.page
    inbox = browsing.live.inbox
    await page.goto(browsing.url("/login/"))
    await page.get_by_role("link", name="Create an account").click()
    await expect_heading(page, "Create a Dropp account")
    await assert_accessible(page)
    browsing.watch.expected.append("status of 422")
    await page.get_by_label("Email").fill("zoe@example.com")
    await page.get_by_label("Password (at least 8 characters)").fill(PASSWORD)
    await page.get_by_label("Password again").fill("not the same at all")
    await page.get_by_role("button", name="Create the account").click()
    await expect(page.get_by_role("alert")).to_contain_text("differ")
    await page.get_by_label("Password (at least 8 characters)").fill(PASSWORD)
    await page.get_by_label("Password again").fill(PASSWORD)
    await page.get_by_role("button", name="Create the account").click()
    await expect_heading(page, "Check your inbox")

    await page.goto(browsing.url(await mailed_link(inbox, "zoe@example.com")))
    await page.get_by_role("button", name="Verify my email").click()
    await expect_heading(page, "Your email address is confirmed")
    await page.goto(browsing.url("/login/?next=/app/account"))
    await sign_in_with_password(page, "zoe@example.com")
    await expect(page.get_by_text("verified", exact=True)).to_be_visible()
    await page.get_by_role("button", name="Sign out").click()

    await page.goto(browsing.url("/login/"))
    await page.get_by_role("link", name="Forgot your password?").click()
    await expect_heading(page, "Set a new password")
    await assert_accessible(page)
    await page.get_by_label("Email").fill("zoe@example.com")
    await page.get_by_role("button", name="Mail me a link").click()
    await expect_heading(page, "Check your inbox")
    await page.goto(browsing.url(await mailed_link(inbox, "zoe@example.com", count=2)))
    await page.get_by_label("New password").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Set new password").click()
    await expect_heading(page, "Your password is changed")
    await page.goto(browsing.url("/login/?next=/app/account"))
    await sign_in_with_password(page, "zoe@example.com", NEW_PASSWORD)
    await expect_heading(page, "Account")
