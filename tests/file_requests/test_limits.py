"""What a link accepts: its use count under concurrency, its size limit (and storage's), the
owner's quota without the owner's figures, and the per-address rate limit."""

import asyncio
import xml.etree.ElementTree as ET
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.core.config import Settings
from tests.file_requests.flow import (
    STORED,
    complete_drop,
    drop,
    folder_items,
    open_request,
    post_bytes,
    request_row,
    run_sql,
    start_drop,
)
from tests.helpers import Account, assert_problem

API = "http://dropp.test"


async def test_parallel_uploads_take_exactly_the_uses_left(
    client: httpx.AsyncClient, alice: Account, engine: AsyncEngine
) -> None:
    request = await open_request(client, alice, max_uploads=3)

    answers = await asyncio.gather(
        *(start_drop(client, request["token"], f"f{n}.txt", 1) for n in range(10))
    )

    assert sorted(answer.status_code for answer in answers) == [201] * 3 + [410] * 7
    for answer in answers:
        if answer.status_code == 410:
            assert_problem(answer, 410, "file_request_full")
    assert (await request_row(engine, request["id"])).uploads_used == 3
    assert len(await folder_items(client, alice, "/inbox")) == 3
    shown = await client.get(f"/r/{request['token']}")
    assert shown.json()["uploads_left"] == 0


async def test_a_file_over_the_links_size_limit_is_413_naming_the_limit(
    client: httpx.AsyncClient, alice: Account, engine: AsyncEngine
) -> None:
    request = await open_request(client, alice, max_file_bytes=10, max_uploads=1)

    refused = await start_drop(client, request["token"], "big.bin", 11)
    fits = await start_drop(client, request["token"], "ok.bin", 10)

    body = assert_problem(refused, 413, "file_too_large")
    assert body["max_bytes"] == 10
    assert "10 bytes" in body["detail"]
    assert fits.status_code == 201, fits.text
    assert (await request_row(engine, request["id"])).uploads_used == 1


async def test_the_servers_limit_applies_below_the_links(
    client: httpx.AsyncClient, app_with: Any, alice: Account
) -> None:
    request = await open_request(client, alice)
    async with (
        app_with(max_upload_bytes=100) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=API) as api,
    ):
        shown = await api.get(f"/r/{request['token']}")
        refused = await start_drop(api, request["token"], "big.bin", 101)

    assert shown.json()["max_file_bytes"] == 100
    assert assert_problem(refused, 413, "file_too_large")["max_bytes"] == 100


async def test_storage_refuses_bytes_beyond_the_declared_size(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    request = await open_request(client, alice, max_file_bytes=1000)
    started = (await start_drop(client, request["token"], "a.txt", 5)).json()

    posted = await post_bytes(web, started, b"x" * 6)

    assert posted.status_code == 400, posted.text
    assert ET.fromstring(posted.content).findtext("Code") == "EntityTooLarge"
    completed = await complete_drop(client, request["token"], started["upload_id"])
    assert_problem(completed, 409, "upload_incomplete")
    assert (await folder_items(client, alice, "/inbox"))["a.txt"]["status"] == "pending"


async def test_storage_refuses_other_bytes_than_the_declared_sha256(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    request = await open_request(client, alice)
    started = await start_drop(client, request["token"], "a.txt", 5, sha256="ab" * 32)

    posted = await post_bytes(web, started.json(), b"hello")

    assert posted.status_code == 400, posted.text
    assert ET.fromstring(posted.content).findtext("Code") == "BadDigest"


async def test_the_owners_quota_is_enforced_without_showing_its_figures(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, engine: AsyncEngine
) -> None:
    await run_sql(
        engine, "UPDATE user_account SET quota_bytes = 10 WHERE id = :id", id=UUID(alice.user_id)
    )
    request = await open_request(client, alice)

    refused = await start_drop(client, request["token"], "big.bin", 11)
    await drop(client, web, request["token"], "fits.bin", b"x" * 6)
    no_longer = await start_drop(client, request["token"], "more.bin", 5)

    for answer in (refused, no_longer):
        body = assert_problem(answer, 413, "file_request_no_space")
        assert set(body) == {"type", "title", "status", "detail", "code"}
        assert not any(str(figure) in body["detail"] for figure in (10, 6, 4))
    row = await request_row(engine, request["id"])
    assert row.uploads_used == 1
    assert list(await folder_items(client, alice, "/inbox")) == ["fits.bin"]


async def test_starting_uploads_is_rate_limited_per_address(
    client: httpx.AsyncClient, app_with: Any, alice: Account, settings: Settings
) -> None:
    request = await open_request(client, alice)

    async with app_with(rate_limit_per_ip="2/minute") as app:
        answers = []
        for ip in ("10.1.0.1", "10.1.0.1", "10.1.0.1", "10.1.0.2"):
            transport = httpx.ASGITransport(app=app, client=(ip, 1234))
            async with httpx.AsyncClient(transport=transport, base_url=API) as api:
                answers.append(await start_drop(api, request["token"], "a.txt", 1))

    assert [answer.status_code for answer in answers] == [201, 201, 429, 201]
    limited = assert_problem(answers[2], 429, "rate_limited")
    assert 1 <= int(answers[2].headers["Retry-After"]) <= 60
    assert limited["retry_after"] == int(answers[2].headers["Retry-After"])


async def test_an_empty_file_can_be_dropped(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    request = await open_request(client, alice)

    started = (await start_drop(client, request["token"], "empty.txt", 0)).json()
    assert (await post_bytes(web, started, b"")).status_code in STORED
    completed = await complete_drop(client, request["token"], started["upload_id"])

    assert completed.status_code == 200, completed.text
    assert completed.json()["size"] == 0


async def test_bad_upload_bodies_are_refused_and_use_nothing(
    client: httpx.AsyncClient, alice: Account, engine: AsyncEngine
) -> None:
    request = await open_request(client, alice)
    token = request["token"]

    for body in (
        {"filename": "a.txt"},
        {"filename": "a.txt", "size": -1},
        {"filename": "a.txt", "size": "5"},
        {"filename": "../a.txt", "size": 1},
        {"filename": "", "size": 1},
        {"filename": "a.txt", "size": 1, "content_type": "not a type"},
        {"filename": "a.txt", "size": 1, "sha256": "xyz"},
    ):
        refused = await client.post(f"/r/{token}/uploads", json=body)
        assert_problem(refused, 422, "validation_error")

    assert (await request_row(engine, request["id"])).uploads_used == 0
