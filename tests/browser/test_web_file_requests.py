"""File requests opened in the web app: the link shown once and copied, files sent through
it by someone without an account in another browser, the uses counted, the request closed;
refusals shown on the page with nothing opened."""

from pathlib import Path

import httpx
from playwright.async_api import Browser, expect
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.browser.conftest import Browsing, assert_accessible
from tests.browser.flows import expect_heading, sign_in_with_password
from tests.file_requests.flow import folder_items
from tests.helpers import download_bytes, register_account

TITLE = "Receipts for the trip"


async def test_a_request_opened_copied_filled_elsewhere_counted_and_closed(
    browsing: Browsing,
    api: httpx.AsyncClient,
    web: httpx.AsyncClient,
    engine: AsyncEngine,
    chromium: Browser,
    tmp_path: Path,
) -> None:
    owner = await register_account(api, "owner@example.com", engine=engine)
    page = browsing.page
    await browsing.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await page.goto(browsing.url("/login/?next=/"))
    await sign_in_with_password(page, owner.email)

    await (
        page.get_by_role("navigation", name="Main")
        .get_by_role("link", name="File requests")
        .click()
    )
    await expect_heading(page, "File requests")
    await expect(page.get_by_text("No open file requests.")).to_be_visible()
    await assert_accessible(page)
    await page.get_by_label("Title").fill(TITLE)
    await page.get_by_label("Open for").select_option("day")
    await page.get_by_label("Uploads allowed (optional)").fill("2")
    await page.get_by_label("Largest file, in MB (optional)").fill("5")
    await page.get_by_role("button", name="Open the request").click()

    await expect_heading(page, f"The link for {TITLE}")
    said = page.get_by_role("main")
    await expect(said).to_contain_text(f"into /File requests/{TITLE}")
    await expect(said).to_contain_text("for 2 uploads, each file up to 5.0 MB")
    await expect(said).to_contain_text("shows it only this once")
    url = await page.get_by_label("Link").input_value()
    assert url.startswith(f"{browsing.live.url}/r/")
    await assert_accessible(page)
    await page.get_by_role("button", name="Copy the link").click()
    await expect(page.get_by_role("status")).to_have_text("Copied.")
    assert await page.evaluate("navigator.clipboard.readText()") == url

    receipt = tmp_path / "receipt.txt"
    receipt.write_bytes(b"taxi, 23.50")
    # Someone else, in a browser with no Dropp session at all.
    stranger = await chromium.new_context()
    try:
        other = await stranger.new_page()
        await other.goto(url)
        await expect(other.get_by_role("heading", level=1)).to_have_text(TITLE)
        await expect(other.get_by_text("2 uploads left.")).to_be_visible()
        await other.get_by_label("Files to send").set_input_files(receipt)
        await other.get_by_role("button", name="Send", exact=True).click()
        await expect(other.get_by_text("receipt.txt: sent")).to_be_visible()

        await page.get_by_role("link", name="All your file requests").click()
        await expect_heading(page, "File requests")
        listed = page.get_by_role("row").filter(has_text=TITLE)
        await expect(listed).to_contain_text("1 of 2 uploads · 1 received")
        await expect(listed).to_contain_text("files up to 5.0 MB")
        await expect(listed).to_contain_text("Until 20")
        await assert_accessible(page)
        await listed.get_by_role("link", name=f"/File requests/{TITLE}").click()
        await expect_heading(page, TITLE)
        await expect(page.get_by_role("row").filter(has_text="receipt.txt")).to_be_visible()
        items = await folder_items(api, owner, f"/File requests/{TITLE}")
        stored = await download_bytes(api, web, owner, items["receipt.txt"]["id"])
        assert stored.content == b"taxi, 23.50"

        await page.go_back()
        await page.get_by_role("button", name=f"Close the request {TITLE}").click()
        await expect(page.get_by_text("No open file requests.")).to_be_visible()
        listing = await api.get("/file-requests", headers=owner.headers)
        assert listing.json()["file_requests"] == []

        gone = await other.goto(url)
        assert gone is not None
        assert gone.status == 404
        await expect(other.get_by_role("heading", level=1)).to_have_text(
            "This link does not take files"
        )
    finally:
        await stranger.close()


async def test_a_request_the_api_would_refuse_is_refused_on_the_page(
    browsing: Browsing, api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    owner = await register_account(api, "owner@example.com", engine=engine)
    page = browsing.page
    await page.goto(browsing.url("/login/?next=/app/requests"))
    await sign_in_with_password(page, owner.email)
    await expect_heading(page, "File requests")
    browsing.watch.expected.append("status of 422")

    # Blanks pass the browser's `required`: only the server knows a title is missing.
    await page.get_by_label("Title").fill("   ")
    await page.get_by_role("button", name="Open the request").click()
    await expect(page.get_by_role("alert")).to_have_text("Title: a title cannot be empty")

    await page.get_by_label("Title").fill("Contracts")
    await page.get_by_label("Folder (optional)").fill("/Clients/CON")
    await page.get_by_label("Uploads allowed (optional)").fill("3")
    await page.get_by_role("button", name="Open the request").click()
    await expect(page.get_by_role("alert")).to_contain_text("Folder: names may not be CON")
    # What was typed is still there, to correct rather than type again.
    await expect(page.get_by_label("Title")).to_have_value("Contracts")
    await expect(page.get_by_label("Uploads allowed (optional)")).to_have_value("3")
    await assert_accessible(page)

    listing = await api.get("/file-requests", headers=owner.headers)
    assert listing.json()["file_requests"] == []
    assert await folder_items(api, owner, "/") == {}
