"""Share links made in the web app, copied, opened by someone without an account in another
browser, counted, and revoked."""

from pathlib import Path

import httpx
from playwright.async_api import Browser, expect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.browser.conftest import Browsing, assert_accessible
from tests.browser.flows import expect_heading, sign_in_with_password
from tests.helpers import register_account, upload_file

PASSWORD = "open sesame 42"


async def test_a_link_made_copied_opened_elsewhere_counted_and_revoked(
    browsing: Browsing, api: httpx.AsyncClient, engine: AsyncEngine, chromium: Browser
) -> None:
    owner = await register_account(api, "owner@example.com", engine=engine)
    async with httpx.AsyncClient(timeout=30) as web:
        await upload_file(api, web, owner, "figures.csv", b"q1,q2\n3,4\n")
    page = browsing.page
    await browsing.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await page.goto(browsing.url("/login/?next=/"))
    await sign_in_with_password(page, owner.email)

    await page.get_by_role("row").filter(has_text="figures.csv").get_by_text("Actions").click()
    await page.get_by_label("Password (optional)").fill(PASSWORD)
    await page.get_by_label("Download limit (optional)").fill("2")
    await page.get_by_label("Link works for").select_option("week")
    await page.get_by_role("button", name="Make a share link").click()

    await expect_heading(page, "A link to figures.csv")
    await expect(page.get_by_text("after entering the password")).to_be_visible()
    url = await page.get_by_label("Link").input_value()
    assert url.startswith(f"{browsing.live.url}/s/")
    await assert_accessible(page)
    await page.get_by_role("button", name="Copy the link").click()
    await expect(page.get_by_role("status")).to_have_text("Copied.")
    assert await page.evaluate("navigator.clipboard.readText()") == url

    # Someone else, in a browser with no Dropp session at all.
    stranger = await chromium.new_context()
    try:
        other = await stranger.new_page()
        await other.goto(url)
        await expect(other.get_by_role("heading", level=1)).to_have_text(
            "This link needs a password"
        )
        await other.get_by_label("Password").fill(PASSWORD)
        await other.get_by_role("button", name="Open").click()
        async with other.expect_download() as started:
            await other.get_by_role("link", name="Download").click()
        saved = await (await started.value).path()
        assert saved.read_bytes() == b"q1,q2\n3,4\n"

        await page.get_by_role("navigation", name="Main").get_by_role("link", name="Shares").click()
        await expect_heading(page, "Share links")
        listed = page.get_by_role("row").filter(has_text="/figures.csv")
        await expect(listed).to_contain_text("1 of 2")
        await expect(listed.get_by_text("password", exact=True)).to_be_visible()
        await assert_accessible(page)
        await listed.get_by_role("button", name="Revoke the link to figures.csv").click()
        await expect(page.get_by_text("No share links.")).to_be_visible()

        gone = await other.goto(url)
        assert gone is not None
        assert gone.status == 404
    finally:
        await stranger.close()


async def test_a_link_the_api_would_refuse_is_refused_on_the_page(
    browsing: Browsing, api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    owner = await register_account(api, "owner@example.com", engine=engine)
    async with httpx.AsyncClient(timeout=30) as web:
        await upload_file(api, web, owner, "figures.csv", b"x")
    page = browsing.page
    await page.goto(browsing.url("/login/?next=/"))
    await sign_in_with_password(page, owner.email)
    browsing.watch.expected.append("status of 422")

    await page.get_by_role("row").filter(has_text="figures.csv").get_by_text("Actions").click()
    # Under the minimum, which the browser would stop: sent as a script would.
    await page.get_by_label("Password (optional)").evaluate("field => field.minLength = 0")
    await page.get_by_label("Password (optional)").fill("short")
    await page.get_by_role("button", name="Make a share link").click()

    await expect(page.get_by_role("alert")).to_contain_text("8 characters")
    listed = await api.get("/shares", headers=owner.headers)
    assert listed.json()["items"] == []


async def test_a_folder_shared_with_a_person_is_theirs_to_open_until_it_stops(
    browsing: Browsing, api: httpx.AsyncClient, engine: AsyncEngine, chromium: Browser
) -> None:
    owner = await register_account(api, "owner@example.com", engine=engine)
    await register_account(api, "friend@example.com", engine=engine)
    async with httpx.AsyncClient(timeout=30) as web:
        await upload_file(api, web, owner, "beach.jpg", b"sand and sea", folder="/Trip/Day 1")
    page = browsing.page
    await page.goto(browsing.url("/login/?next=/"))
    await sign_in_with_password(page, owner.email)

    trip = page.get_by_role("row").filter(has_text="Trip")
    await trip.get_by_text("Actions").click()
    # Only an admin shares with a whole role (ROLE_SHARES_BY=admin): it is not offered.
    await expect(trip.get_by_label("Or with everyone of a role")).to_have_count(0)
    await trip.get_by_label("Share with (an email address)").fill("friend@example.com")
    await trip.get_by_role("button", name="Share with them").click()
    await expect_heading(page, "Shared with people")
    await expect(page.get_by_role("row").filter(has_text="/Trip")).to_contain_text(
        "friend@example.com"
    )
    await assert_accessible(page)

    friend = await chromium.new_context(viewport={"width": 375, "height": 812})
    try:
        theirs = await friend.new_page()
        await theirs.goto(browsing.url("/login/?next=/app/shared"))
        await sign_in_with_password(theirs, "friend@example.com")
        await expect(theirs.get_by_role("heading", level=1)).to_have_text("Shared with me")
        await expect(theirs.get_by_role("row").filter(has_text="Trip")).to_contain_text(
            "owner@example.com"
        )
        await assert_accessible(theirs)
        await theirs.get_by_role("link", name="Trip", exact=True).click()
        await theirs.get_by_role("link", name="Day 1", exact=True).click()
        await assert_accessible(theirs)
        async with theirs.expect_download() as started:
            await theirs.get_by_role("link", name="beach.jpg", exact=True).click()
        saved = await (await started.value).path()
        assert saved.read_bytes() == b"sand and sea"

        await page.get_by_role("button", name="Stop sharing Trip with friend@example.com").click()
        await expect(page.get_by_text("You have not shared anything")).to_be_visible()
        await theirs.goto(browsing.url("/app/shared"))
        await expect(theirs.get_by_text("Nothing is shared with you yet.")).to_be_visible()
    finally:
        await friend.close()


async def test_a_folder_shared_with_a_role_as_editor_takes_their_uploads(
    browsing: Browsing,
    api: httpx.AsyncClient,
    engine: AsyncEngine,
    chromium: Browser,
    tmp_path: Path,
) -> None:
    owner = await register_account(api, "owner@example.com", engine=engine)
    await register_account(api, "member@example.com", engine=engine)
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE user_account SET role = 'admin' WHERE email = :email"),
            {"email": owner.email},
        )
    async with httpx.AsyncClient(timeout=30) as web:
        await upload_file(api, web, owner, "plan.txt", b"the plan", folder="/Team/Drafts")
        await upload_file(api, web, owner, "look.txt", b"only look", folder="/Gallery")
    page = browsing.page
    await page.goto(browsing.url("/login/?next=/"))
    await sign_in_with_password(page, owner.email)

    for folder, permission in (("Team", "editor"), ("Gallery", "viewer")):
        row = page.get_by_role("row").filter(has_text=folder)
        await row.get_by_text("Actions").click()
        await row.get_by_label("Or with everyone of a role").select_option("member")
        await row.get_by_label("They may").select_option(permission)
        await row.get_by_role("button", name="Share with them").click()
        await expect_heading(page, "Shared with people")
        await expect(page.get_by_role("row").filter(has_text=f"/{folder}")).to_contain_text(
            "everyone with the role member"
        )
        await page.goto(browsing.url("/"))

    member = await chromium.new_context(viewport={"width": 375, "height": 812})
    try:
        theirs = await member.new_page()
        await theirs.goto(browsing.url("/login/?next=/app/shared"))
        await sign_in_with_password(theirs, "member@example.com")
        await theirs.get_by_role("link", name="Team", exact=True).click()
        await theirs.get_by_role("link", name="Drafts", exact=True).click()
        await theirs.get_by_role("link", name="Upload files here").click()
        await expect(theirs.get_by_role("heading", level=1)).to_have_text("Upload to Drafts")
        await expect(theirs.get_by_text("Drop files here")).to_be_visible()
        await assert_accessible(theirs)
        (tmp_path / "ideas.txt").write_bytes(b"more ideas")
        await theirs.get_by_label("Files", exact=True).set_input_files(tmp_path / "ideas.txt")
        await expect(
            theirs.get_by_role("status").filter(has_text="ideas.txt: uploaded")
        ).to_be_visible()
        await theirs.get_by_role("link", name="Back to Drafts").click()
        await expect(theirs.get_by_role("link", name="ideas.txt", exact=True)).to_be_visible()

        # A folder shared to view takes nothing, whatever the address asks.
        await theirs.goto(browsing.url("/app/shared"))
        await theirs.get_by_role("link", name="Gallery", exact=True).click()
        await expect(theirs.get_by_role("link", name="look.txt", exact=True)).to_be_visible()
        await expect(theirs.get_by_role("link", name="Upload files here")).to_have_count(0)
        grant = theirs.url.rpartition("/")[2].partition("?")[0]
        browsing.watch.expected.append("status of 403")
        answer = await theirs.goto(browsing.url(f"/app/upload?share={grant}&path=/"))
        assert answer is not None
        assert answer.status == 403
        await expect(theirs.get_by_text("shared with you to view, not to add to")).to_be_visible()
    finally:
        await member.close()

    # The upload is the owner's file, in the owner's tree.
    listed = await api.get("/folders", params={"path": "/Team/Drafts"}, headers=owner.headers)
    assert [item["name"] for item in listed.json()["items"]] == ["ideas.txt", "plan.txt"]
