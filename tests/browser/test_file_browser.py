"""The web app's file browser, as a person uses it in Chromium: folders and breadcrumbs,
downloads, rename, move, the trash and back; refusals shown on the page."""

import hashlib
import os
import re
from pathlib import Path

import httpx
from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.browser.conftest import NARROW, Browsing, assert_accessible
from tests.browser.flows import expect_heading, sign_in_with_password
from tests.helpers import PASSWORD, Account, download_bytes, register_account, upload_file

# `DROPP_SCREENSHOTS=docs/images pytest tests/browser/test_file_browser.py` refreshes the
# README's pictures of the web app from what this test sees.
SCREENSHOTS = os.environ.get("DROPP_SCREENSHOTS")
WIDE = {"width": 1200, "height": 800}


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


async def listed_names(page: Page) -> list[str]:
    return [name.strip() for name in await page.locator("tbody td.name a").all_inner_texts()]


async def test_a_folder_sorts_by_any_column_both_ways_and_stays_sorted(
    browsing: Browsing, api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    page = browsing.page
    await page.set_viewport_size(WIDE)
    account = await signed_in(browsing, api, engine)
    async with httpx.AsyncClient(timeout=30) as web:
        for name, size in (("medium.txt", 2_000), ("large.txt", 30_000), ("small.txt", 10)):
            await upload_file(api, web, account, name, b"x" * size, folder="/Docs")
    await api.post("/folders", json={"path": "/Docs/Inbox"}, headers=account.headers)

    await page.goto(browsing.url("/app/path?p=/Docs"))
    await expect_heading(page, "Docs")
    assert await listed_names(page) == ["Inbox", "large.txt", "medium.txt", "small.txt"]
    size = page.get_by_role("columnheader", name="Size")
    await size.get_by_role("link").click()
    await expect(size).to_have_attribute("aria-sort", "ascending")
    assert await listed_names(page) == ["Inbox", "small.txt", "medium.txt", "large.txt"]
    await page.set_viewport_size(NARROW)
    await assert_accessible(page)
    await page.set_viewport_size(WIDE)
    await size.get_by_role("link", name="Size, sort largest first").click()
    await expect(size).to_have_attribute("aria-sort", "descending")
    assert await listed_names(page) == ["Inbox", "large.txt", "medium.txt", "small.txt"]

    # A form sent from the sorted page comes back to it, sorted the same way.
    await open_actions(page, "medium.txt")
    medium = page.get_by_role("row").filter(has_text="medium.txt")
    await medium.get_by_label("New name").fill("average.txt")
    await medium.get_by_role("button", name="Rename").click()
    await expect(size).to_have_attribute("aria-sort", "descending")
    assert await listed_names(page) == ["Inbox", "large.txt", "average.txt", "small.txt"]

    # A phone, without the size and date headings, sorts with the form in their place.
    await page.set_viewport_size(NARROW)
    await expect(size).to_be_hidden()
    await page.get_by_label("Sort by").select_option("size")
    await page.get_by_label("Order").select_option("asc")
    await page.get_by_role("button", name="Sort", exact=True).click()
    assert await listed_names(page) == ["Inbox", "small.txt", "average.txt", "large.txt"]
    await expect(page.get_by_label("Sort by")).to_have_value("size")
    await page.set_viewport_size(WIDE)
    await expect(page.get_by_label("Sort by")).to_be_hidden()

    # Newest first is a date's first click: the renamed file changed last.
    modified = page.get_by_role("columnheader", name="Modified")
    await modified.get_by_role("link", name="Modified, sort newest first").click()
    await expect(modified).to_have_attribute("aria-sort", "descending")
    await expect(size).not_to_have_attribute("aria-sort", "descending")
    assert (await listed_names(page))[:2] == ["Inbox", "average.txt"]


async def test_a_folder_shows_changes_from_other_devices_without_a_reload(
    browsing: Browsing, api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    page = browsing.page
    account = await signed_in(browsing, api, engine)
    async with httpx.AsyncClient(timeout=30) as web:
        await upload_file(api, web, account, "first.txt", b"1", folder="/Docs")
        await page.goto(browsing.url("/app/path?p=/Docs"))
        await expect_heading(page, "Docs")

        # Another device adds a file here: it appears, and a screen reader hears of it.
        await upload_file(api, web, account, "from the phone.txt", b"2", folder="/Docs")
        await expect(page.get_by_role("link", name="from the phone.txt")).to_be_visible()
        await expect(page.get_by_role("status")).to_have_text("The folder was updated.")

        # While the person is busy in the listing, it is only said, and shown when asked.
        await open_actions(page, "first.txt")
        await upload_file(api, web, account, "from the laptop.txt", b"3", folder="/Docs")
        await expect(page.get_by_text("This folder changed.")).to_be_visible()
        await expect(page.get_by_role("link", name="from the laptop.txt")).to_have_count(0)
        await page.get_by_role("button", name="Show the changes").click()
        await expect(page.get_by_role("link", name="from the laptop.txt")).to_be_visible()
        await expect(page.get_by_text("This folder changed.")).to_be_hidden()
        await assert_accessible(page)
        # Renamed elsewhere: gone from here under its old name.
        listed = await api.get("/folders", params={"path": "/Docs"}, headers=account.headers)
        phone = next(i for i in listed.json()["items"] if i["name"] == "from the phone.txt")
        await api.patch(
            f"/files/{phone['id']}", json={"name": "renamed.txt"}, headers=account.headers
        )
        await expect(page.get_by_role("link", name="renamed.txt")).to_be_visible()
        await expect(page.get_by_role("link", name="from the phone.txt")).to_have_count(0)


async def tab_to(page: Page, name: str, *, field: bool = False, limit: int = 80) -> None:
    """Tab until what is focused is called `name` (its label, its text or its words for a
    screen reader; with `field`, exactly the label of a form field): the page is used by
    keyboard alone."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        label, words = await page.evaluate(
            """() => {
              const e = document.activeElement;
              const label = e.labels?.[0]?.innerText ?? "";
              const words = [e.getAttribute("aria-label"), label, e.innerText]
                .filter(Boolean).join(" ").replace(/\\s+/g, " ");
              return [label.trim(), words];
            }"""
        )
        if (label == name) if field else (name in words):
            return
    raise AssertionError(f"Tab never reached {name!r}")


async def test_the_file_browser_works_from_the_keyboard_alone(
    browsing: Browsing, api: httpx.AsyncClient, engine: AsyncEngine, tmp_path: Path
) -> None:
    page = browsing.page
    account = await register_account(api, "ada@example.com", engine=engine)
    async with httpx.AsyncClient(timeout=30) as web:
        await upload_file(api, web, account, "notes.txt", b"n", folder="/Docs")
    await page.goto(browsing.url("/login/?next=/"))
    await tab_to(page, "Email")
    await page.keyboard.type(account.email)
    await tab_to(page, "Password")
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await expect_heading(page, "Files")

    await tab_to(page, "Docs")
    await page.keyboard.press("Enter")
    await expect_heading(page, "Docs")
    await tab_to(page, "Actions for notes.txt")
    await page.keyboard.press("Enter")
    await tab_to(page, "New name")
    await page.keyboard.press("Control+A")
    await page.keyboard.type("minutes.txt")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("link", name="minutes.txt")).to_be_visible()

    await tab_to(page, "Name, sort Z to A")
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"direction=desc"))
    await tab_to(page, "Upload files here")
    await page.keyboard.press("Enter")
    await expect_heading(page, "Upload to Docs")
    (tmp_path / "typed.txt").write_bytes(b"typed")
    await tab_to(page, "Files", field=True)
    # The picker reached by Tab; the choosing is the system's dialog, not the page's (and
    # headless Chromium opens none for a key, so the file is given to the focused field).
    await page.locator("*:focus").set_input_files(tmp_path / "typed.txt")
    await expect(page.get_by_role("status").filter(has_text="typed.txt: uploaded")).to_be_visible()
