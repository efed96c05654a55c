"""A folder's page hears of changes made elsewhere on the event stream (`GET /events`), and
on the change feed's long-poll when the stream cannot be had."""

from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Route, expect
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.browser.conftest import Browsing
from tests.browser.flows import expect_heading
from tests.browser.test_file_browser import signed_in
from tests.helpers import upload_file

STREAM = "/events"
LONGPOLL = "/sync/longpoll"


def is_stream(url: str) -> bool:
    return urlsplit(url).path == STREAM


async def test_a_folder_follows_changes_on_the_event_stream(
    browsing: Browsing, api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    page = browsing.page
    asked: list[str] = []
    page.on("request", lambda request: asked.append(urlsplit(request.url).path))
    account = await signed_in(browsing, api, engine)
    async with httpx.AsyncClient(timeout=30) as web:
        await upload_file(api, web, account, "first.txt", b"1", folder="/Docs")
        async with page.expect_response(lambda response: is_stream(response.url)) as opened:
            await page.goto(browsing.url("/app/path?p=/Docs"))
        stream = await opened.value
        assert stream.status == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        await expect_heading(page, "Docs")

        for name in ("from the phone.txt", "from the laptop.txt"):
            await upload_file(api, web, account, name, b"2", folder="/Docs")
            await expect(page.get_by_role("link", name=name)).to_be_visible()
        await expect(page.get_by_role("status")).to_have_text("The folder was updated.")
    # Both heard on one stream, kept open; the long-poll never asked.
    assert asked.count(STREAM) == 1
    assert LONGPOLL not in asked


@pytest.mark.parametrize("blocked", ["404", "html"])
async def test_a_folder_falls_back_to_the_long_poll_when_the_stream_is_blocked(
    browsing: Browsing, api: httpx.AsyncClient, engine: AsyncEngine, blocked: str
) -> None:
    page = browsing.page
    asked: list[str] = []
    page.on("request", lambda request: asked.append(urlsplit(request.url).path))

    async def block(route: Route) -> None:
        # An older server; or a proxy's (or a captive portal's) page in place of the stream.
        if blocked == "404":
            await route.fulfill(status=404, content_type="application/problem+json", body="{}")
        else:
            # With the CSP the test's watch asks of every page from this origin.
            await route.fulfill(
                status=200,
                content_type="text/html",
                headers={"Content-Security-Policy": "default-src 'none'"},
                body="<p>Sign in</p>",
            )

    await page.route(is_stream, block)
    browsing.watch.expected.append("status of 404")
    account = await signed_in(browsing, api, engine)
    async with httpx.AsyncClient(timeout=30) as web:
        await upload_file(api, web, account, "first.txt", b"1", folder="/Docs")
        async with page.expect_request(lambda request: urlsplit(request.url).path == LONGPOLL):
            await page.goto(browsing.url("/app/path?p=/Docs"))
        await expect_heading(page, "Docs")

        await upload_file(api, web, account, "from the phone.txt", b"2", folder="/Docs")
        await expect(page.get_by_role("link", name="from the phone.txt")).to_be_visible()
    # Tried once; the long-poll stands in for minutes before the stream is tried again.
    assert asked.count(STREAM) == 1
