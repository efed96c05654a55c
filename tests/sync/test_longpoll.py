import asyncio
import contextlib
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
from fastapi import FastAPI

from dropp.core.config import Settings
from dropp.embedded.seaweedfs import free_port
from dropp.main import create_app
from tests.conftest import api_client
from tests.helpers import Account, assert_problem, serve_in_thread, upload_file
from tests.sync.feed import changes_page, drain, files_only


async def longpoll(
    client: httpx.AsyncClient, account: Account, cursor: str, wait: int
) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    response = await client.get(
        "/sync/longpoll",
        params={"cursor": cursor, "timeout": wait},
        headers=account.headers,
        timeout=wait + 10,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body, time.monotonic() - started


async def test_longpoll_is_woken_by_a_change_made_through_another_app(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    alice: Account,
    bob: Account,
    app_with: Callable[..., AbstractAsyncContextManager[FastAPI]],
) -> None:
    _, cursor = await drain(client, alice)
    # A second API process of its own: its own pool, its own LISTEN connection.
    async with app_with() as other_app, api_client(other_app) as other:
        waiting = asyncio.create_task(longpoll(other, alice, cursor, wait=20))
        await asyncio.sleep(0.5)
        # Another user's change wakes nobody here.
        await upload_file(client, web, bob, "bob.txt", b"b")
        await asyncio.sleep(0.5)
        assert not waiting.done()
        await upload_file(client, web, alice, "new.txt", b"n")
        body, elapsed = await asyncio.wait_for(waiting, 15)
    assert body == {"changes": True}
    assert elapsed < 5
    page = await changes_page(client, alice, cursor)
    assert files_only(page["changes"]) == [("created", "/new.txt")]


async def test_longpoll_answers_at_once_when_changes_are_already_there(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    _, cursor = await drain(client, alice)
    await upload_file(client, web, alice, "a.txt", b"a")
    body, elapsed = await longpoll(client, alice, cursor, wait=20)
    assert body == {"changes": True}
    assert elapsed < 2


async def test_longpoll_times_out_without_changes(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    await upload_file(client, web, alice, "a.txt", b"a")
    _, cursor = await drain(client, alice)
    body, elapsed = await longpoll(client, alice, cursor, wait=1)
    assert body == {"changes": False}
    assert 0.9 <= elapsed < 4


async def test_longpoll_refuses_bad_cursors_and_timeouts(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    _, cursor = await drain(client, alice)
    for params, status, code in (
        ({"cursor": "nope", "timeout": 1}, 400, "invalid_cursor"),
        ({"timeout": 1}, 422, "validation_error"),
        ({"cursor": cursor, "timeout": 0}, 422, "validation_error"),
        ({"cursor": cursor, "timeout": 121}, 400, "timeout_too_long"),
    ):
        response = await client.get("/sync/longpoll", params=params, headers=alice.headers)
        assert_problem(response, status, code)
    response = await client.get(
        "/sync/longpoll", params={"cursor": cursor, "timeout": 1}, headers=bob.headers
    )
    assert_problem(response, 400, "invalid_cursor")


async def test_waiting_longpolls_hold_no_database_connection(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    alice: Account,
    app_with: Callable[..., AbstractAsyncContextManager[FastAPI]],
) -> None:
    _, cursor = await drain(client, alice)
    async with (
        app_with(database_pool_size=1, database_max_overflow=0) as small,
        api_client(small) as other,
    ):
        waiting = [asyncio.create_task(longpoll(other, alice, cursor, wait=20)) for _ in range(3)]
        await asyncio.sleep(0.5)
        # With one pooled connection, this would wait for a long-poll to end if they held it.
        started = time.monotonic()
        listed = await other.get("/sync/changes", params={"cursor": cursor}, headers=alice.headers)
        assert listed.status_code == 200, listed.text
        assert time.monotonic() - started < 3
        await upload_file(other, web, alice, "wake.txt", b"w")
        answers = await asyncio.wait_for(asyncio.gather(*waiting), 15)
    assert [body for body, _ in answers] == [{"changes": True}] * 3


async def test_a_longpoll_whose_client_hung_up_stops_waiting(
    settings: Settings, client: httpx.AsyncClient, alice: Account
) -> None:
    """A browser tab closed mid-wait leaves nothing waiting on the server: a process being
    stopped (a deploy) is not kept up by requests nobody will read."""
    _, cursor = await drain(client, alice)
    with serve_in_thread(create_app(settings), free_port(), name="dropp-longpoll") as url:
        async with httpx.AsyncClient(base_url=url) as tab:
            waiting = asyncio.create_task(
                tab.get(
                    "/sync/longpoll",
                    params={"cursor": cursor, "timeout": 25},
                    headers=alice.headers,
                    timeout=40,
                )
            )
            await asyncio.sleep(1)
            waiting.cancel()  # the connection closes with it
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
        stopping = time.monotonic()
    # Leaving serve_in_thread waits for uvicorn, which waits for every request still running.
    assert time.monotonic() - stopping < 10
