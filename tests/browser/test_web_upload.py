"""Uploading from the web app in Chromium: picked files and a whole folder, a large file in
parts, a dropped file, and a refusal said on the page with nothing left on the server."""

import asyncio
import hashlib
import os
from pathlib import Path

import httpx
from playwright.async_api import expect
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
    return account


async def files_of(api: httpx.AsyncClient, account: Account) -> dict[str, dict[str, object]]:
    listed = await api.get("/list/", headers=account.headers)
    return {f["path"]: f for f in listed.json()["files"]}


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
    async with httpx.AsyncClient(timeout=60) as web:
        got = await download_bytes(api, web, account, str(found["/film.mov"]["file_id"]))
    assert got.content == large


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
