"""Someone sends files through a file request's link, from the upload page."""

from pathlib import Path

import httpx
from playwright.async_api import expect
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.browser.conftest import Browsing, assert_accessible
from tests.browser.flows import expect_heading
from tests.file_requests.flow import folder_items, open_request
from tests.helpers import download_bytes, register_account


async def test_a_file_sent_from_the_upload_page_reaches_the_folder(
    browsing: Browsing,
    api: httpx.AsyncClient,
    web: httpx.AsyncClient,
    engine: AsyncEngine,
    tmp_path: Path,
) -> None:
    alice = await register_account(api, "alice@example.com", engine=engine)
    request = await open_request(api, alice, title="Receipts for the trip")
    receipt = tmp_path / "receipt.txt"
    receipt.write_bytes(b"taxi, 23.50")
    page = browsing.page

    await page.goto(request["url"])
    await expect_heading(page, "Receipts for the trip")
    await assert_accessible(page)
    await page.get_by_label("Files to send").set_input_files(receipt)
    await page.get_by_role("button", name="Send", exact=True).click()

    await expect(page.get_by_text("receipt.txt: sent")).to_be_visible()
    await assert_accessible(page)
    items = await folder_items(api, alice, "/inbox")
    assert set(items) == {"receipt.txt"}
    stored = await download_bytes(api, web, alice, items["receipt.txt"]["id"])
    assert stored.content == b"taxi, 23.50"
