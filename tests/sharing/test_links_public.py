"""What anyone holding a link gets: metadata as JSON or a page, and counted downloads."""

import asyncio
import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any
from uuid import UUID

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.core.config import Settings
from dropp.downloads.service import ip_hash
from tests.helpers import Account, assert_problem, start_upload, upload_file
from tests.sharing.link_helpers import (
    BROWSER_ACCEPT,
    download_rows,
    link_row,
    make_link,
    set_link,
    visitor,
)

AppWith = Callable[..., AbstractAsyncContextManager[FastAPI]]

PUBLIC_HEADERS = {
    "referrer-policy": "no-referrer",
    "x-robots-tag": "noindex, nofollow",
    "cache-control": "no-store",
}


def assert_public_headers(response: httpx.Response) -> None:
    for name, value in PUBLIC_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.headers)


async def shared_file(
    client: httpx.AsyncClient, web: httpx.AsyncClient, account: Account, **link: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    file = await upload_file(
        client,
        web,
        account,
        "Q1 report.pdf",
        b"%PDF quarterly numbers",
        content_type="application/pdf",
    )
    return file, await make_link(client, account, file_id=file["file_id"], **link)


# --- what a link shows ------------------------------------------------------------------------


async def test_a_file_link_shows_its_file_as_json(
    client: httpx.AsyncClient, web: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    _, link = await shared_file(client, web, alice, max_downloads=3, expires_in=3600)

    async with visitor(app) as anyone:
        answer = await anyone.get(f"/s/{link['token']}")

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert_public_headers(answer)
    assert answer.json() == {
        "kind": "file",
        "name": "Q1 report.pdf",
        "size": len(b"%PDF quarterly numbers"),
        "content_type": "application/pdf",
        "content_hash": None,
        "expires_at": link["expires_at"],
        "downloads_left": 3,
    }


async def test_a_browser_gets_a_small_page_with_a_download_button(
    client: httpx.AsyncClient, web: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    _, link = await shared_file(client, web, alice)
    token = link["token"]

    async with visitor(app) as anyone:
        page = await anyone.get(f"/s/{token}", headers={"Accept": BROWSER_ACCEPT})
        as_json = await anyone.get(f"/s/{token}", headers={"Accept": "application/json"})
        anything = await anyone.get(f"/s/{token}", headers={"Accept": "*/*"})
        html_second = await anyone.get(
            f"/s/{token}", headers={"Accept": "application/json;q=0.5, text/html"}
        )

    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert_public_headers(page)
    assert "default-src 'none'" in page.headers["content-security-policy"]
    html = page.text
    assert "Q1 report.pdf" in html
    assert "22 bytes" in html
    assert f'href="/s/{token}/download"' in html
    # No third-party assets: no scripts or images, this server's one stylesheet, and every
    # link stays here.
    assert "<script" not in html
    assert "src=" not in html
    hrefs = re.findall(r'href="([^"]*)"', html)
    assert hrefs[0] == "/static/pages.css"
    assert all(href.startswith("/s/") for href in hrefs[1:])
    assert as_json.headers["content-type"] == "application/json"
    assert anything.headers["content-type"] == "application/json"
    assert html_second.headers["content-type"].startswith("text/html")


async def test_unknown_revoked_expired_and_trashed_links_look_exactly_alike(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    app: FastAPI,
    alice: Account,
    engine: AsyncEngine,
) -> None:
    revoked_file, revoked = await shared_file(client, web, alice)
    await client.delete(f"/shares/{revoked['id']}", headers=alice.headers)
    _, expired = await shared_file(client, web, alice, expires_in=60)
    await set_link(engine, expired["id"], "expires_at = now() - interval '1 second'")
    trashed_file = await upload_file(client, web, alice, "gone.txt", b"gone")
    trashed = await make_link(client, alice, file_id=trashed_file["file_id"])
    await client.delete(f"/files/{trashed_file['file_id']}", headers=alice.headers)
    unknown = "A" * 43
    tokens = [unknown, revoked["token"], expired["token"], trashed["token"], "x" * 500]

    async with visitor(app) as anyone:
        answers = {
            suffix: [await anyone.get(f"/s/{token}{suffix}") for token in tokens]
            for suffix in ("", "/download")
        }
        pages = [
            await anyone.get(f"/s/{token}", headers={"Accept": BROWSER_ACCEPT}) for token in tokens
        ]

    for found in answers.values():
        for answer in found:
            assert_problem(answer, 404, "share_not_found")
            assert_public_headers(answer)
            assert answer.content == found[0].content
    assert answers[""][0].content == answers["/download"][0].content
    for page in pages:
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")
        assert_public_headers(page)
        assert page.content == pages[0].content
    assert revoked_file["file_id"] not in pages[1].text


async def test_a_restored_file_opens_its_link_again(
    client: httpx.AsyncClient, web: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    file, link = await shared_file(client, web, alice)
    await client.delete(f"/files/{file['file_id']}", headers=alice.headers)
    async with visitor(app) as anyone:
        assert (await anyone.get(f"/s/{link['token']}")).status_code == 404
        restored = await client.post(f"/files/{file['file_id']}/restore", headers=alice.headers)
        assert restored.status_code == 200, restored.text

        assert (await anyone.get(f"/s/{link['token']}")).status_code == 200


async def test_a_disabled_accounts_links_stop_working(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    app: FastAPI,
    alice: Account,
    engine: AsyncEngine,
) -> None:
    _, link = await shared_file(client, web, alice)
    async with visitor(app) as anyone:
        unknown = await anyone.get(f"/s/{'B' * 43}")
        async with engine.begin() as connection:
            await connection.execute(
                text("UPDATE user_account SET is_active = false WHERE id = :id"),
                {"id": UUID(alice.user_id)},
            )

        answer = await anyone.get(f"/s/{link['token']}")

    assert_problem(answer, 404, "share_not_found")
    assert answer.content == unknown.content


async def test_a_file_link_has_no_paths_inside(
    client: httpx.AsyncClient, web: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    _, link = await shared_file(client, web, alice)

    async with visitor(app) as anyone:
        listed = await anyone.get(f"/s/{link['token']}", params={"path": "/x"})
        downloaded = await anyone.get(f"/s/{link['token']}/download", params={"path": "/x"})

    assert_problem(listed, 400, "invalid_share_path")
    assert_problem(downloaded, 400, "invalid_share_path")
    assert (await client.get("/shares", headers=alice.headers)).json()["items"][0][
        "downloads_used"
    ] == 0


# --- downloads --------------------------------------------------------------------------------


async def test_download_redirects_to_the_bytes_as_an_attachment(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    app: FastAPI,
    alice: Account,
    settings: Settings,
) -> None:
    _, link = await shared_file(client, web, alice)

    async with visitor(app) as anyone:
        answer = await anyone.get(f"/s/{link['token']}/download")

    assert answer.status_code == 302, answer.text
    assert_public_headers(answer)
    location = answer.headers["location"]
    assert f"X-Amz-Expires={settings.share_link_url_ttl_seconds}" in location
    fetched = await web.get(location)
    assert fetched.status_code == 200
    assert fetched.content == b"%PDF quarterly numbers"
    disposition = fetched.headers["content-disposition"]
    assert disposition.startswith("attachment")
    assert "Q1 report.pdf" in disposition or "Q1%20report.pdf" in disposition


async def test_download_without_redirect_answers_the_url_and_still_counts(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    app: FastAPI,
    alice: Account,
    engine: AsyncEngine,
) -> None:
    _, link = await shared_file(client, web, alice)

    async with visitor(app) as anyone:
        answer = await anyone.get(f"/s/{link['token']}/download", params={"redirect": "false"})

    assert answer.status_code == 200, answer.text
    assert set(answer.json()) == {"url", "expires_at"}
    assert (await web.get(answer.json()["url"])).content == b"%PDF quarterly numbers"
    assert (await link_row(engine, link["id"]))["downloads_used"] == 1


async def test_each_download_is_recorded_with_the_link_and_a_hash_of_the_address(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    app: FastAPI,
    alice: Account,
    engine: AsyncEngine,
    settings: Settings,
) -> None:
    file, link = await shared_file(client, web, alice)

    async with visitor(app, "198.51.100.23") as first, visitor(app, "192.0.2.99") as second:
        assert (await first.get(f"/s/{link['token']}/download")).status_code == 302
        assert (await second.get(f"/s/{link['token']}/download")).status_code == 302

    rows = await download_rows(engine, link["id"])
    assert [row["ip_hash"] for row in rows] == [
        ip_hash(settings, "198.51.100.23"),
        ip_hash(settings, "192.0.2.99"),
    ]
    for row in rows:
        assert row["channel"] == "link"
        assert row["user_id"] is None
        assert str(row["node_id"]) == file["file_id"]
        assert str(row["owner_id"]) == alice.user_id
        assert str(row["revision_id"]) == file["revision_id"]
        assert b"198.51.100.23" not in row["ip_hash"]


async def test_the_download_limit_stops_further_downloads(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    app: FastAPI,
    alice: Account,
    engine: AsyncEngine,
) -> None:
    _, link = await shared_file(client, web, alice, max_downloads=2)

    async with visitor(app) as anyone:
        allowed = [await anyone.get(f"/s/{link['token']}/download") for _ in range(2)]
        refused = await anyone.get(f"/s/{link['token']}/download")
        refused_page = await anyone.get(
            f"/s/{link['token']}/download", headers={"Accept": BROWSER_ACCEPT}
        )
        shown = await anyone.get(f"/s/{link['token']}")
        page = await anyone.get(f"/s/{link['token']}", headers={"Accept": BROWSER_ACCEPT})

    assert [answer.status_code for answer in allowed] == [302, 302]
    assert_problem(refused, 410, "download_limit_reached")
    assert_public_headers(refused)
    assert refused_page.status_code == 410
    assert "download limit" in refused_page.text
    assert shown.json()["downloads_left"] == 0
    assert "/download" not in page.text
    assert "download limit" in page.text
    assert (await link_row(engine, link["id"]))["downloads_used"] == 2
    assert len(await download_rows(engine, link["id"])) == 2


async def test_parallel_downloads_get_exactly_the_downloads_left(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    app: FastAPI,
    alice: Account,
    engine: AsyncEngine,
) -> None:
    left = 4
    _, link = await shared_file(client, web, alice, max_downloads=left + 1)
    async with visitor(app) as anyone:
        assert (await anyone.get(f"/s/{link['token']}/download")).status_code == 302

        answers = await asyncio.gather(
            *(anyone.get(f"/s/{link['token']}/download") for _ in range(3 * left))
        )

    codes = sorted(answer.status_code for answer in answers)
    assert codes == [302] * left + [410] * (2 * left)
    row = await link_row(engine, link["id"])
    assert row["downloads_used"] == left + 1 == row["max_downloads"]
    assert len(await download_rows(engine, link["id"])) == left + 1


async def test_a_file_without_a_completed_upload_is_not_ready(
    client: httpx.AsyncClient, app: FastAPI, alice: Account, engine: AsyncEngine
) -> None:
    pending = await start_upload(client, alice, "soon.txt", size=4)
    link = await make_link(client, alice, file_id=pending["file_id"], max_downloads=1)

    async with visitor(app) as anyone:
        shown = await anyone.get(f"/s/{link['token']}")
        page = await anyone.get(f"/s/{link['token']}", headers={"Accept": BROWSER_ACCEPT})
        answer = await anyone.get(f"/s/{link['token']}/download")

    assert shown.json()["size"] is None
    assert "still being uploaded" in page.text
    assert_problem(answer, 409, "file_not_ready")
    assert (await link_row(engine, link["id"]))["downloads_used"] == 0


async def test_a_link_serves_the_files_newest_bytes(
    client: httpx.AsyncClient, web: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    file, link = await shared_file(client, web, alice)
    await upload_file(
        client, web, alice, "Q1 report.pdf", b"%PDF corrected", content_type="application/pdf"
    )

    async with visitor(app) as anyone:
        answer = await anyone.get(f"/s/{link['token']}/download")

    assert (await web.get(answer.headers["location"])).content == b"%PDF corrected"
    assert file["file_id"] == link["node_id"]


async def test_an_expired_link_stops_downloads_too(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    app: FastAPI,
    alice: Account,
    engine: AsyncEngine,
) -> None:
    _, link = await shared_file(client, web, alice, expires_in=60, max_downloads=5)
    async with visitor(app) as anyone:
        assert (await anyone.get(f"/s/{link['token']}/download")).status_code == 302
        await set_link(engine, link["id"], "expires_at = now() - interval '1 second'")

        answer = await anyone.get(f"/s/{link['token']}/download")

    assert_problem(answer, 404, "share_not_found")
    assert (await link_row(engine, link["id"]))["downloads_used"] == 1
