"""Uploading from the web app in Chromium: picked files and a whole folder, a large file in
parts, a dropped file, and a refusal said on the page with nothing left on the server."""

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, Request, Route, expect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.browser.conftest import Browsing, assert_accessible
from tests.browser.flows import expect_heading, sign_in_with_password
from tests.helpers import MIB, PART_SIZE, Account, download_bytes, owned_revisions, register_account


async def uploading(browsing: Browsing, api: httpx.AsyncClient, engine: AsyncEngine) -> Account:
    account = await register_account(api, "ada@example.com", engine=engine)
    page = browsing.page
    await page.goto(browsing.url("/login/?next=/"))
    await sign_in_with_password(page, account.email)
    await page.get_by_role("link", name="Upload files here").click()
    await expect_heading(page, "Upload to Files")
    # Shown by the page's script once it is ready for files, not before.
    await expect(page.get_by_text("Drop files here")).to_be_visible()
    return account


async def files_of(api: httpx.AsyncClient, account: Account) -> dict[str, dict[str, object]]:
    listed = await api.get("/list/", headers=account.headers)
    return {f["path"]: f for f in listed.json()["files"]}


async def stored_bytes(api: httpx.AsyncClient, account: Account, path: str) -> bytes:
    """What a download of the account's file at `path` gets from storage."""
    found = await files_of(api, account)
    async with httpx.AsyncClient(timeout=60) as web:
        got = await download_bytes(api, web, account, str(found[path]["file_id"]))
    return got.content


async def test_picked_files_and_a_folder_go_straight_to_storage(
    browsing: Browsing, api: httpx.AsyncClient, engine: AsyncEngine, tmp_path: Path
) -> None:
    account = await uploading(browsing, api, engine)
    page = browsing.page
    await assert_accessible(page)
    small, large = os.urandom(100_000), os.urandom(30 * MIB)
    (tmp_path / "notes.txt").write_bytes(small)
    (tmp_path / "film.mov").write_bytes(large)
    album = tmp_path / "Album"
    (album / "day 1").mkdir(parents=True)
    (album / "cover.jpg").write_bytes(b"cover")
    (album / "day 1" / "beach.jpg").write_bytes(b"beach")

    await page.get_by_label("Files", exact=True).set_input_files(
        [tmp_path / "notes.txt", tmp_path / "film.mov"]
    )
    await expect(page.get_by_role("status").filter(has_text="film.mov: uploaded")).to_be_visible(
        timeout=60_000
    )
    await expect(page.get_by_role("status").filter(has_text="notes.txt: uploaded")).to_be_visible()
    await page.get_by_label("A whole folder").set_input_files(album)
    for name in ("Album/cover.jpg", "Album/day 1/beach.jpg"):
        await expect(
            page.get_by_role("status").filter(has_text=f"{name}: uploaded")
        ).to_be_visible()
    await expect(page.get_by_text("Everything is uploaded.")).to_be_visible()

    found = await files_of(api, account)
    assert set(found) == {"/notes.txt", "/film.mov", "/Album/cover.jpg", "/Album/day 1/beach.jpg"}
    parts = b"".join(
        hashlib.sha256(large[i : i + PART_SIZE]).digest() for i in range(0, len(large), PART_SIZE)
    )
    # The large file went in parts, each checked by storage; its hash is made of theirs.
    assert found["/film.mov"]["content_hash"] == (
        f"sha256-parts-{PART_SIZE}:{hashlib.sha256(parts).hexdigest()}"
    )
    assert found["/notes.txt"]["content_hash"] == f"sha256:{hashlib.sha256(small).hexdigest()}"
    assert await stored_bytes(api, account, "/film.mov") == large


async def test_a_dropped_file_uploads_and_a_refused_one_leaves_nothing(
    browsing: Browsing, api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    account = await uploading(browsing, api, engine)
    page = browsing.page
    drop = """([name, size]) => {
      const data = new DataTransfer();
      data.items.add(new File([new Uint8Array(size)], name, {type: "application/octet-stream"}));
      document.getElementById("drop-zone").dispatchEvent(
        new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
    }"""

    await page.evaluate(drop, ["dropped.bin", 5000])
    await expect(
        page.get_by_role("status").filter(has_text="dropped.bin: uploaded")
    ).to_be_visible()
    assert "/dropped.bin" in await files_of(api, account)

    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE user_account SET quota_bytes = 10000 WHERE email = :email"),
            {"email": account.email},
        )
    browsing.watch.expected.append("status of 413")
    await page.evaluate(drop, ["too big.bin", 20000])
    await expect(page.get_by_role("alert").filter(has_text="too big.bin")).to_contain_text("quota")
    assert set(await files_of(api, account)) == {"/dropped.bin"}
    assert await owned_revisions(engine, account.user_id) == 1


async def test_a_cancelled_upload_is_cancelled_on_the_server_too(
    browsing: Browsing, api: httpx.AsyncClient, engine: AsyncEngine, tmp_path: Path
) -> None:
    account = await uploading(browsing, api, engine)
    page = browsing.page
    big = tmp_path / "long film.mov"
    with big.open("wb") as handle:
        handle.truncate(300 * MIB)

    await page.get_by_label("Files", exact=True).set_input_files(big)
    # Once storage has taken some of its parts, and long before it has all of them (polled
    # from here: the page's CSP rightly refuses the in-page polling of wait_for_function).
    for _ in range(600):
        sent = await page.evaluate("() => document.querySelector('#upload-list progress')?.value")
        if sent and sent > 0.02:
            break
        await asyncio.sleep(0.05)
    assert 0.02 < (sent or 0) < 0.9, sent
    await page.get_by_role("button", name="Cancel long film.mov").click()

    await expect(
        page.get_by_role("status").filter(has_text="long film.mov: cancelled")
    ).to_be_visible()
    assert await files_of(api, account) == {}
    assert await owned_revisions(engine, account.user_id) == 0


def part_number(url: str) -> int | None:
    number = parse_qs(urlsplit(url).query).get("partNumber")
    return int(number[0]) if number else None


@contextlib.asynccontextmanager
async def two_parts_stored(page: Page, big: Path) -> AsyncIterator[list[Route]]:
    """A large file's upload under way, once storage holds its first two parts: its other
    parts are held back, unanswered, while the block runs (and yielded, to end as it likes)."""
    stored: set[int] = set()
    held: list[Route] = []

    async def hold_back(route: Route) -> None:
        number = part_number(route.request.url)
        if route.request.method == "PUT" and number is not None and number > 2:
            held.append(route)
            return
        await route.fallback()

    def finished(request: Request) -> None:
        number = part_number(request.url)
        if request.method == "PUT" and number is not None:
            stored.add(number)

    await page.route("**/*", hold_back)
    page.on("requestfinished", finished)
    await page.get_by_label("Files", exact=True).set_input_files(big)
    for _ in range(600):
        if stored >= {1, 2} and len(held) >= 2:
            break
        await asyncio.sleep(0.05)
    assert stored == {1, 2}, stored
    assert len(held) == 2, held
    try:
        yield held
    finally:
        await page.unroute("**/*", hold_back)
        page.remove_listener("requestfinished", finished)


async def interrupted_upload(browsing: Browsing, big: Path) -> None:
    """A large file's upload stopped by a reload once storage holds its first two parts."""
    async with two_parts_stored(browsing.page, big):
        browsing.watch.expected.append("ERR_ABORTED")
        await browsing.page.reload()


async def test_a_reload_mid_upload_resumes_with_the_parts_storage_lacks(
    browsing: Browsing, api: httpx.AsyncClient, engine: AsyncEngine, tmp_path: Path
) -> None:
    account = await uploading(browsing, api, engine)
    page = browsing.page
    data = os.urandom(3 * PART_SIZE + 123_457)
    big = tmp_path / "long.bin"
    big.write_bytes(data)
    await interrupted_upload(browsing, big)

    unfinished = page.get_by_role("region", name="Unfinished uploads")
    await expect(unfinished).to_contain_text("long.bin (25.3 MB) into /")
    await assert_accessible(page)
    # Another file of that name is not taken for it.
    other = tmp_path / "elsewhere" / "long.bin"
    other.parent.mkdir()
    other.write_bytes(b"not the same bytes")
    await unfinished.get_by_label("Pick long.bin again").set_input_files(other)
    await expect(unfinished.get_by_role("status")).to_have_text(
        "That is not the same file (its name, size or date differ)."
    )
    sent: list[int] = []
    page.on(
        "request",
        lambda request: (
            sent.append(part_number(request.url) or 0) if request.method == "PUT" else None
        ),
    )
    await unfinished.get_by_label("Pick long.bin again").set_input_files(big)

    await expect(page.get_by_role("status").filter(has_text="long.bin: uploaded")).to_be_visible(
        timeout=60_000
    )
    assert sorted(sent) == [3, 4]  # what storage held already was not sent again
    assert await stored_bytes(api, account, "/long.bin") == data
    await page.reload()
    await expect(page.get_by_role("heading", name="Upload to Files")).to_be_visible()
    await expect(unfinished).to_be_hidden()


async def test_an_unfinished_upload_discarded_after_a_reload_leaves_nothing(
    browsing: Browsing, api: httpx.AsyncClient, engine: AsyncEngine, tmp_path: Path
) -> None:
    account = await uploading(browsing, api, engine)
    page = browsing.page
    big = tmp_path / "draft.bin"
    big.write_bytes(os.urandom(3 * PART_SIZE + 1))
    await interrupted_upload(browsing, big)
    assert await owned_revisions(engine, account.user_id) == 1

    await page.get_by_role("button", name="Discard draft.bin").click()

    await expect(page.get_by_role("region", name="Unfinished uploads")).to_be_hidden()
    assert await files_of(api, account) == {}
    assert await owned_revisions(engine, account.user_id) == 0
    await page.reload()
    await expect(page.get_by_role("region", name="Unfinished uploads")).to_be_hidden()


async def test_a_part_storage_refuses_fails_the_upload_and_leaves_nothing(
    browsing: Browsing, api: httpx.AsyncClient, engine: AsyncEngine, tmp_path: Path
) -> None:
    account = await uploading(browsing, api, engine)
    page = browsing.page
    big = tmp_path / "refused.bin"
    big.write_bytes(os.urandom(3 * PART_SIZE + 1))

    async def refuse_part_two(route: Route) -> None:
        if route.request.method == "PUT" and part_number(route.request.url) == 2:
            await route.fulfill(status=403, body="<Error><Code>AccessDenied</Code></Error>")
            return
        await route.fallback()

    await page.route("**/*", refuse_part_two)
    browsing.watch.expected.append("status of 403")
    await page.get_by_label("Files", exact=True).set_input_files(big)

    await expect(page.get_by_role("alert").filter(has_text="refused.bin")).to_contain_text(
        "storage refused the bytes (403)"
    )
    assert await files_of(api, account) == {}
    assert await owned_revisions(engine, account.user_id) == 0
    await page.reload()
    await expect(page.get_by_role("heading", name="Upload to Files")).to_be_visible()
    await expect(page.get_by_role("region", name="Unfinished uploads")).to_be_hidden()


async def test_a_connection_lost_mid_upload_keeps_what_storage_holds_to_go_on_later(
    browsing: Browsing, api: httpx.AsyncClient, engine: AsyncEngine, tmp_path: Path
) -> None:
    account = await uploading(browsing, api, engine)
    page = browsing.page
    data = os.urandom(3 * PART_SIZE + 5)
    big = tmp_path / "trip.mov"
    big.write_bytes(data)

    async with two_parts_stored(page, big) as held:
        # The network goes: the parts on their way fail, and so does every retry.
        browsing.watch.expected += ["ERR_INTERNET_DISCONNECTED", "ERR_FAILED"]
        await browsing.context.set_offline(True)
        for route in held:
            with contextlib.suppress(PlaywrightError):  # failed by going offline already
                await route.abort("internetdisconnected")
    failed = page.get_by_role("alert").filter(has_text="trip.mov")
    await expect(failed).to_contain_text("kept under Unfinished uploads", timeout=30_000)
    assert await owned_revisions(engine, account.user_id) == 1  # kept, to go on with

    await browsing.context.set_offline(False)
    unfinished = page.get_by_role("region", name="Unfinished uploads")
    await unfinished.get_by_label("Pick trip.mov again").set_input_files(big)
    await expect(page.get_by_role("status").filter(has_text="trip.mov: uploaded")).to_be_visible(
        timeout=60_000
    )
    assert await stored_bytes(api, account, "/trip.mov") == data


async def test_an_ended_session_is_said_and_nothing_is_started(
    browsing: Browsing, api: httpx.AsyncClient, engine: AsyncEngine, tmp_path: Path
) -> None:
    account = await uploading(browsing, api, engine)
    page = browsing.page
    (tmp_path / "late.txt").write_bytes(b"too late")
    await browsing.context.clear_cookies()  # signed out elsewhere, or the session expired
    browsing.watch.expected.append("status of 401")

    await page.get_by_label("Files", exact=True).set_input_files(tmp_path / "late.txt")

    await expect(page.get_by_role("alert").filter(has_text="late.txt")).to_contain_text(
        "your session has ended: sign in again"
    )
    assert await files_of(api, account) == {}
    assert await owned_revisions(engine, account.user_id) == 0
