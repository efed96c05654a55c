import asyncio
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import Account, assert_problem, owned_revisions


async def init(
    client: httpx.AsyncClient, account: Account, key: str, **body: Any
) -> httpx.Response:
    return await client.post(
        "/upload/",
        json={"filename": "report.pdf", "size": 5, **body},
        headers={**account.headers, "Idempotency-Key": key},
    )


async def test_a_retry_with_the_same_key_returns_the_same_upload(
    client: httpx.AsyncClient, engine: AsyncEngine, alice: Account
) -> None:
    first = await init(client, alice, "retry-1")
    retry = await init(client, alice, "retry-1")

    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await owned_revisions(engine, alice.user_id) == 1


async def test_the_same_key_with_another_body_is_refused(
    client: httpx.AsyncClient, engine: AsyncEngine, alice: Account
) -> None:
    first = await init(client, alice, "body-1")
    other = await init(client, alice, "body-1", size=6)

    assert first.status_code == 201
    assert_problem(other, 422, "idempotency_key_reused")
    assert await owned_revisions(engine, alice.user_id) == 1


async def test_concurrent_first_requests_start_one_upload(
    client: httpx.AsyncClient, engine: AsyncEngine, alice: Account
) -> None:
    answers = await asyncio.gather(*(init(client, alice, "race-1") for _ in range(4)))

    created = [a for a in answers if a.status_code == 201]
    assert created
    # Replays carry the first answer; JSON, not bytes, is what is kept.
    assert all(a.json() == created[0].json() for a in created)
    for answer in answers:
        if answer.status_code != 201:
            assert_problem(answer, 409, "idempotency_key_in_flight")
    assert await owned_revisions(engine, alice.user_id) == 1


async def test_keys_are_per_user(
    client: httpx.AsyncClient, engine: AsyncEngine, alice: Account, bob: Account
) -> None:
    for_alice = await init(client, alice, "shared-key")
    for_bob = await init(client, bob, "shared-key")

    assert for_alice.status_code == for_bob.status_code == 201
    assert for_alice.json()["upload_id"] != for_bob.json()["upload_id"]
    assert (
        await owned_revisions(engine, alice.user_id)
        == await owned_revisions(engine, bob.user_id)
        == 1
    )


async def test_an_invalid_key_is_refused_and_stores_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine, alice: Account
) -> None:
    for key in ("", "k" * 256, "tab\tin-key"):
        assert_problem(await init(client, alice, key), 400, "invalid_idempotency_key")
    assert await owned_revisions(engine, alice.user_id) == 0


async def test_a_refused_request_frees_its_key_for_a_corrected_retry(
    client: httpx.AsyncClient, engine: AsyncEngine, alice: Account
) -> None:
    invalid = await init(client, alice, "fix-1", size=-1)
    # Valid, but over MAX_PENDING_BYTES (1 TiB by default): refused after the key is claimed.
    too_large = await init(client, alice, "fix-1", size=2 * 1024**4)
    corrected = await init(client, alice, "fix-1")

    assert_problem(invalid, 422, "validation_error")
    assert_problem(too_large, 429, "too_many_pending_uploads")
    assert corrected.status_code == 201
    assert await owned_revisions(engine, alice.user_id) == 1


async def test_a_first_request_in_flight_answers_409(
    client: httpx.AsyncClient, engine: AsyncEngine, alice: Account
) -> None:
    first = await init(client, alice, "flight-1")
    # What a request still running looks like: its claim, with no answer yet.
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE idempotency_key SET response_status = NULL, response_body = NULL, "
                "created_at = now() WHERE key = 'flight-1'"
            )
        )

    again = await init(client, alice, "flight-1")

    assert first.status_code == 201
    body = assert_problem(again, 409, "idempotency_key_in_flight")
    assert body["detail"]
    assert again.headers["retry-after"] == "1"


async def test_an_abandoned_claim_is_taken_over(
    client: httpx.AsyncClient, engine: AsyncEngine, alice: Account
) -> None:
    # A claim whose process died before answering, two minutes ago.
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO idempotency_key (user_id, key, request_hash, created_at, expires_at) "
                "VALUES (:user, 'crashed-1', :hash, now() - interval '2 minutes', "
                "now() + interval '1 day')"
            ),
            {"user": UUID(alice.user_id), "hash": b"\0" * 32},
        )

    taken = await init(client, alice, "crashed-1")
    replayed = await init(client, alice, "crashed-1")

    assert taken.status_code == replayed.status_code == 201
    assert replayed.json() == taken.json()
    assert await owned_revisions(engine, alice.user_id) == 1


async def test_an_expired_key_may_be_used_again(
    client: httpx.AsyncClient, engine: AsyncEngine, alice: Account
) -> None:
    first = await init(client, alice, "old-1")
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE idempotency_key SET expires_at = now() - interval '1 second'")
        )

    second = await init(client, alice, "old-1", size=6)

    assert first.status_code == second.status_code == 201
    assert second.json()["upload_id"] != first.json()["upload_id"]
    assert await owned_revisions(engine, alice.user_id) == 2


async def test_without_a_key_every_request_starts_an_upload(
    client: httpx.AsyncClient, engine: AsyncEngine, alice: Account
) -> None:
    for _ in range(2):
        answer = await client.post(
            "/upload/", json={"filename": "a.txt", "size": 1}, headers=alice.headers
        )
        assert answer.status_code == 201
    assert await owned_revisions(engine, alice.user_id) == 2
