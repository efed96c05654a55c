"""The web app's file browser, as a person uses it in Chromium: folders and breadcrumbs,
downloads, rename, move, the trash and back; refusals shown on the page."""

import hashlib
import os
from pathlib import Path

import httpx
from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.browser.conftest import Browsing, assert_accessible
from tests.browser.flows import expect_heading, sign_in_with_password
from tests.helpers import Account, download_bytes, register_account, upload_file

# `DROPP_SCREENSHOTS=docs/images pytest tests/browser/test_file_browser.py` refreshes the
# README's pictures of the web app from what this test sees.
SCREENSHOTS = os.environ.get("DROPP_SCREENSHOTS")


async def screenshot(page: Page, name: str, *, width: int) -> None:
    if SCREENSHOTS:
        await page.set_viewport_size({"width": width, "height": 640})
        await page.screenshot(path=Path(SCREENSHOTS) / name)
        await page.set_viewport_size({"width": 375, "height": 812})


async def open_actions(page: Page, name: str) -> None:
    await page.get_by_role("row").filter(has_text=name).get_by_text("Actions").click()


async def signed_in(browsing: Browsing, api: httpx.AsyncClient, engine: AsyncEngine) -> Account:
    account = await register_account(api, "ada@example.com", engine=engine)
    await browsing.page.goto(browsing.url("/login/"))
    await sign_in_with_password(browsing.page, "ada@example.com")
    return account


async def test_folders_files_and_the_trash_from_the_browser(
    browsing: Browsing, api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    page = browsing.page
    account = await signed_in(browsing, api, engine)
    await page.goto(browsing.url("/"))
    await expect_heading(page, "Files")
    await expect(page.get_by_text("This folder is empty.")).to_be_visible()
    await expect(page.get_by_text("Signed in as ada@example.com")).to_be_visible()
    await assert_accessible(page)

    # A new folder, then a file another device put in it.
    await page.get_by_label("New folder").fill("Photos")
    await page.get_by_role("button", name="Create").click()
    await expect(page.get_by_role("link", name="Photos", exact=True)).to_be_visible()
    photo = os.urandom(300_000)
    async with httpx.AsyncClient(timeout=30) as web:
        await upload_file(api, web, account, "beach.jpg", photo, folder="/Photos")

    await page.get_by_role("link", name="Photos", exact=True).click()
    await expect_heading(page, "Photos")
    breadcrumbs = page.get_by_role("navigation", name="Breadcrumbs")
    await expect(breadcrumbs.get_by_role("link", name="Files")).to_be_visible()
    await expect(page.get_by_role("row").filter(has_text="beach.jpg")).to_contain_text("300.0 KB")
    await assert_accessible(page)
    await screenshot(page, "web-folder.png", width=1024)
    await open_actions(page, "beach.jpg")
    await screenshot(page, "web-folder-phone.png", width=375)
    await page.reload()

    # The bytes come back as they went.
    async with page.expect_download() as downloading:
        await page.get_by_role("link", name="beach.jpg", exact=True).click()
    download = await downloading.value
    saved = await download.path()
    assert hashlib.sha256(saved.read_bytes()).digest() == hashlib.sha256(photo).digest()
    assert download.suggested_filename == "beach.jpg"

    # Rename, and a name that is taken refused on the page with nothing changed.
    await open_actions(page, "beach.jpg")
    await page.get_by_label("New name").fill("sunset.jpg")
    await page.get_by_role("button", name="Rename").click()
    await expect(page.get_by_role("link", name="sunset.jpg", exact=True)).to_be_visible()
    async with httpx.AsyncClient(timeout=30) as web:
        await upload_file(api, web, account, "taken.jpg", b"x", folder="/Photos")
    await page.reload()
    await open_actions(page, "sunset.jpg")
    await (
        page.get_by_role("row")
        .filter(has_text="sunset.jpg")
        .get_by_label("New name")
        .fill("taken.jpg")
    )
    browsing.watch.expected.append("status of 409")
    await (
        page.get_by_role("row")
        .filter(has_text="sunset.jpg")
        .get_by_role("button", name="Rename", exact=True)
        .click()
    )
    await expect(page.get_by_role("alert")).to_contain_text("taken.jpg")
    await expect(page.get_by_role("link", name="sunset.jpg", exact=True)).to_be_visible()

    # Moved to the top level, by its path.
    await open_actions(page, "sunset.jpg")
    await (
        page.get_by_role("row")
        .filter(has_text="sunset.jpg")
        .get_by_label("Move to folder")
        .fill("/")
    )
    await (
        page.get_by_role("row")
        .filter(has_text="sunset.jpg")
        .get_by_role("button", name="Move", exact=True)
        .click()
    )
    await expect(page.get_by_role("link", name="sunset.jpg", exact=True)).to_have_count(0)
    await breadcrumbs.get_by_role("link", name="Files").click()
    await expect_heading(page, "Files")
    await expect(page.get_by_role("link", name="sunset.jpg", exact=True)).to_be_visible()

    # To the trash and back.
    await open_actions(page, "sunset.jpg")
    await page.get_by_role("button", name="Move sunset.jpg to the trash").click()
    await expect(page.get_by_role("link", name="sunset.jpg", exact=True)).to_have_count(0)
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Trash").click()
    await expect_heading(page, "Trash")
    await expect(page.get_by_role("row").filter(has_text="sunset.jpg")).to_contain_text(
        "/sunset.jpg"
    )
    await assert_accessible(page)
    await page.get_by_role("button", name="Restore sunset.jpg").click()
    await expect(page.get_by_text("The trash is empty.")).to_be_visible()
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Files").click()
    await expect(page.get_by_role("link", name="sunset.jpg", exact=True)).to_be_visible()

    # Emptied for good: the file is gone from the server too.
    files = (await api.get("/list/", headers=account.headers)).json()["files"]
    sunset = next(f["file_id"] for f in files if f["name"] == "sunset.jpg")
    await open_actions(page, "sunset.jpg")
    await page.get_by_role("button", name="Move sunset.jpg to the trash").click()
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Trash").click()
    await page.get_by_role("button", name="Empty the trash for good").click()
    await expect(page.get_by_text("The trash is empty.")).to_be_visible()
    gone = await api.get(f"/files/{sunset}", headers=account.headers)
    assert gone.status_code == 404


async def test_another_accounts_folder_and_file_are_not_found(
    browsing: Browsing, api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    bob = await register_account(api, "bob@example.com", engine=engine)
    folder = await api.post("/folders", json={"path": "/private"}, headers=bob.headers)
    async with httpx.AsyncClient(timeout=30) as web:
        secret = await upload_file(api, web, bob, "secret.txt", b"bob's")
    page = browsing.page
    await signed_in(browsing, api, engine)
    browsing.watch.expected.append("status of 404")

    await page.goto(browsing.url(f"/app/folder/{folder.json()['id']}"))
    await expect_heading(page, "Not found")
    for path in (f"/app/get/{secret['file_id']}", f"/app/file/{secret['file_id']}/revisions"):
        answer = await page.goto(browsing.url(path))
        assert answer is not None
        assert answer.status == 404
        await expect_heading(page, "Not found")


async def test_signed_out_pages_ask_to_sign_in_and_come_back(
    browsing: Browsing, api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await register_account(api, "ada@example.com", engine=engine)
    page = browsing.page

    await page.goto(browsing.url("/app/trash"))
    await expect_heading(page, "Sign in to Dropp")
    await sign_in_with_password(page, "ada@example.com")
    await expect_heading(page, "Trash")


async def test_versions_come_back_and_a_conflicted_copy_says_what_it_is(
    browsing: Browsing, api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    page = browsing.page
    account = await signed_in(browsing, api, engine)
    async with httpx.AsyncClient(timeout=30) as web:
        first = await upload_file(api, web, account, "report.txt", b"first draft")
        await upload_file(api, web, account, "report.txt", b"second draft")
        # A laptop that last saw the first draft saves its own edit: both are kept.
        await upload_file(
            api,
            web,
            account,
            "report.txt",
            b"laptop's edit",
            base_revision=first["revision_id"],
            conflict="keep_both",
            device="laptop",
        )

    await page.goto(browsing.url("/"))
    copy = page.get_by_role("row").filter(has_text="conflicted copy laptop")
    await expect(copy.get_by_text("conflicted copy", exact=True)).to_be_visible()
    await open_actions(page, "report.txt")
    await page.get_by_role("link", name="Versions of report.txt").click()
    await expect_heading(page, "Versions of report.txt")
    await expect(page.get_by_role("row")).to_have_count(3)  # the header and two versions
    await assert_accessible(page)

    older = page.get_by_role("row").filter(has_not_text="(current)").nth(1)
    async with page.expect_download() as downloading:
        await older.get_by_role("link", name="Download").click()
    saved = await (await downloading.value).path()
    assert saved.read_bytes() == b"first draft"

    await older.get_by_role("button", name="Restore the version").click()
    await expect(page.get_by_role("row")).to_have_count(4)
    async with httpx.AsyncClient(timeout=30) as web:
        current = await download_bytes(api, web, account, first["file_id"])
    assert current.content == b"first draft"


async def test_search_finds_by_a_piece_of_the_name_and_leads_to_the_folder(
    browsing: Browsing, api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    page = browsing.page
    account = await signed_in(browsing, api, engine)
    async with httpx.AsyncClient(timeout=30) as web:
        await upload_file(api, web, account, "Tax Return 2025.pdf", b"a", folder="/Papers/Tax")
        await upload_file(api, web, account, "holiday.jpg", b"b", folder="/Photos")

    await page.goto(browsing.url("/"))
    await page.get_by_role("searchbox", name="Search your files").fill("return")
    await page.get_by_role("button", name="Search").click()

    await expect_heading(page, "Found for “return”")
    found = page.get_by_role("row").filter(has_text="Tax Return 2025.pdf")
    await expect(found).to_contain_text("/Papers/Tax")
    await expect(page.get_by_role("row")).to_have_count(2)
    await assert_accessible(page)
    await found.get_by_role("link", name="/Papers/Tax").click()
    await expect_heading(page, "Tax")

    await page.get_by_role("searchbox", name="Search your files").fill("nothing like it")
    await page.get_by_role("button", name="Search").click()
    await expect(page.get_by_text("Nothing in your files has a name with")).to_be_visible()
