"""What someone holding a share link sees: a file, a password-protected file, a folder."""

from typing import Any

import httpx
from playwright.async_api import expect
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.browser.conftest import Browsing, assert_accessible
from tests.browser.flows import expect_heading
from tests.helpers import Account, register_account, upload_file
from tests.sharing.link_helpers import LINK_PASSWORD

# Long enough to overflow a phone's width if names did not wrap.
PHOTO = "a-photo-with-a-rather-long-name-taken-on-the-trip-2026-07-14-at-noon.jpg"


async def owner(api: httpx.AsyncClient, engine: AsyncEngine) -> Account:
    return await register_account(api, "owner@example.com", engine=engine)


async def share(api: httpx.AsyncClient, account: Account, **body: Any) -> str:
    made = await api.post("/shares", json=body, headers=account.headers)
    assert made.status_code == 201, made.text
    url: str = made.json()["url"]
    return url


async def downloaded(browsing: Browsing, name: str) -> bytes:
    """Click the link called `name`; the bytes the browser saves."""
    async with browsing.page.expect_download() as started:
        await browsing.page.get_by_role("link", name=name).click()
    saved = await (await started.value).path()
    return saved.read_bytes()


async def test_a_file_link_downloads_the_file(
    browsing: Browsing, api: httpx.AsyncClient, web: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    alice = await owner(api, engine)
    file = await upload_file(api, web, alice, "report.txt", b"quarterly figures")
    url = await share(api, alice, file_id=file["file_id"])
    page = browsing.page

    await page.goto(url)
    await expect_heading(page, "report.txt")
    await assert_accessible(page)
    assert await downloaded(browsing, "Download") == b"quarterly figures"


async def test_a_password_link_opens_with_its_password(
    browsing: Browsing, api: httpx.AsyncClient, web: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    alice = await owner(api, engine)
    file = await upload_file(api, web, alice, "secret.txt", b"behind a password")
    url = await share(api, alice, file_id=file["file_id"], password=LINK_PASSWORD)
    page = browsing.page
    # The locked page answers 401 and a wrong password 401: logged as failed loads.
    browsing.watch.expected.append("status of 401")

    await page.goto(url)
    await expect_heading(page, "This link needs a password")
    await assert_accessible(page)
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Open").click()
    await expect(page.get_by_role("alert")).to_be_visible()
    await assert_accessible(page)
    await page.get_by_label("Password").fill(LINK_PASSWORD)
    await page.get_by_role("button", name="Open").click()

    await expect_heading(page, "secret.txt")
    assert await downloaded(browsing, "Download") == b"behind a password"


async def test_a_folder_link_browses_and_downloads(
    browsing: Browsing, api: httpx.AsyncClient, web: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    alice = await owner(api, engine)
    made = await api.post("/folders", json={"path": "/trip"}, headers=alice.headers)
    assert made.status_code in (200, 201), made.text
    await upload_file(api, web, alice, "notes.txt", b"pack light", folder="/trip")
    await upload_file(api, web, alice, PHOTO, b"jpeg", folder="/trip/photos")
    url = await share(api, alice, folder_id=made.json()["folder_id"])
    page = browsing.page

    await page.goto(url)
    await expect_heading(page, "trip")
    await assert_accessible(page)
    assert await downloaded(browsing, "notes.txt") == b"pack light"
    await page.get_by_role("link", name="photos/").click()
    await expect(page.get_by_role("link", name=PHOTO)).to_be_visible()
    await assert_accessible(page)
    await page.get_by_role("link", name="trip", exact=True).click()
    await expect(page.get_by_role("link", name="notes.txt")).to_be_visible()
