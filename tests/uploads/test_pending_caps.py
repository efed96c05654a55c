"""One account cannot hold pending uploads without end: MAX_PENDING_UPLOADS and
MAX_PENDING_BYTES, on every way an upload starts."""

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import api_client
from tests.file_requests.flow import open_request, start_drop
from tests.helpers import MIB, assert_problem, owned_revisions, register_account

AppWith = Callable[..., AbstractAsyncContextManager[FastAPI]]


async def test_pending_uploads_are_capped_per_account(
    client: httpx.AsyncClient, app_with: AppWith, engine: AsyncEngine
) -> None:
    async with app_with(max_pending_uploads=3) as app, api_client(app) as api:
        alice = await register_account(api, "alice@example.com", engine=engine)
        bob = await register_account(api, "bob@example.com", engine=engine)
        answers = [
            await api.post(
                "/upload/", json={"filename": f"{n}.bin", "size": 1}, headers=alice.headers
            )
            for n in range(5)
        ]
        multipart = await api.post(
            "/upload/",
            json={"filename": "m.bin", "size": 6 * MIB, "multipart": True},
            headers=alice.headers,
        )
        others = await api.post(
            "/upload/", json={"filename": "b.bin", "size": 1}, headers=bob.headers
        )
        cancelled = await api.delete(
            f"/upload/{answers[0].json()['file_id']}", headers=alice.headers
        )
        after_cancel = await api.post(
            "/upload/", json={"filename": "again.bin", "size": 1}, headers=alice.headers
        )

    assert [a.status_code for a in answers[:3]] == [201, 201, 201]
    for refused in (*answers[3:], multipart):
        body = assert_problem(refused, 429, "too_many_pending_uploads")
        assert body["max_pending_uploads"] == 3
    assert others.status_code == 201, others.text
    assert cancelled.status_code == 204
    assert after_cancel.status_code == 201, after_cancel.text
    # Refused inits left no pending row behind.
    assert await owned_revisions(engine, alice.user_id, "pending") == 3


async def test_pending_bytes_are_capped_sizeless_forms_included(
    client: httpx.AsyncClient, app_with: AppWith, engine: AsyncEngine
) -> None:
    async with (
        app_with(max_pending_bytes=10 * MIB, max_upload_bytes=8 * MIB) as app,
        api_client(app) as api,
    ):
        alice = await register_account(api, "alice@example.com", engine=engine)
        first = await api.post(
            "/upload/", json={"filename": "a.bin", "size": 6 * MIB}, headers=alice.headers
        )
        second = await api.post(
            "/upload/", json={"filename": "b.bin", "size": 6 * MIB}, headers=alice.headers
        )
        # Without a size the form may take up to 8 MiB, which is what it holds.
        sizeless = await api.post("/upload/", json={"filename": "c.bin"}, headers=alice.headers)
        small = await api.post(
            "/upload/", json={"filename": "d.bin", "size": MIB}, headers=alice.headers
        )

    assert first.status_code == 201, first.text
    body = assert_problem(second, 429, "too_many_pending_uploads")
    assert body["max_pending_bytes"] == 10 * MIB
    assert_problem(sizeless, 429, "too_many_pending_uploads")
    assert small.status_code == 201, small.text


async def test_file_request_uploads_count_against_the_owner(
    client: httpx.AsyncClient, app_with: AppWith, engine: AsyncEngine
) -> None:
    async with app_with(max_pending_uploads=2) as app, api_client(app) as api:
        owner = await register_account(api, "owner@example.com", engine=engine)
        token = (await open_request(api, owner))["token"]
        own = await api.post(
            "/upload/", json={"filename": "own.bin", "size": 1}, headers=owner.headers
        )
        dropped = await start_drop(api, token, "one.bin", 1)
        flooded = [await start_drop(api, token, f"{n}.bin", 1) for n in range(3)]
        direct = await api.post(
            "/upload/", json={"filename": "own2.bin", "size": 1}, headers=owner.headers
        )

    assert (own.status_code, dropped.status_code) == (201, 201)
    for refused in (*flooded, direct):
        assert_problem(refused, 429, "too_many_pending_uploads")
    assert await owned_revisions(engine, owner.user_id, "pending") == 2
