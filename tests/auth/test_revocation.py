"""Revoked access tokens are refused before they expire, by every API process on the database:
two apps run side by side here, one revoking, the other refusing."""

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from uuid import UUID

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.auth.revocations import Revocations
from dropp.auth.tokens import AccessClaims
from tests.conftest import api_client
from tests.helpers import PASSWORD, Account, assert_problem, verified_account

AppWith = Callable[..., AbstractAsyncContextManager[FastAPI]]

# NOTIFY reaches the other process a moment after the revoking commit: its next request after
# that is refused. Polled, so a slow machine does not fail the test; a server that never
# refuses fails it once this has passed.
PATIENCE_SECONDS = 5.0


async def refused(api: httpx.AsyncClient, account: Account) -> httpx.Response:
    """The first answer to the account's token that is not a 200, polling the API."""
    deadline = asyncio.get_running_loop().time() + PATIENCE_SECONDS
    while True:
        answer = await api.get("/list/", headers=account.headers)
        if answer.status_code != 200 or asyncio.get_running_loop().time() > deadline:
            return answer
        await asyncio.sleep(0.02)


async def test_disabling_an_account_refuses_its_token_in_another_process(
    client: httpx.AsyncClient, engine: AsyncEngine, app_with: AppWith
) -> None:
    root = await verified_account(client, engine, "root@example.com", role="admin")
    bob = await verified_account(client, engine, "bob@example.com")
    async with app_with() as other_app, api_client(other_app) as other:
        assert (await other.get("/list/", headers=bob.headers)).status_code == 200

        disabled = await client.patch(
            f"/admin/users/{bob.user_id}", json={"is_active": False}, headers=root.headers
        )
        assert disabled.status_code == 200, disabled.text

        on_other = await refused(other, bob)
        on_this = await refused(client, bob)
        root_still = await other.get("/list/", headers=root.headers)

    assert_problem(on_other, 401, "invalid_token")
    assert_problem(on_this, 401, "invalid_token")
    assert root_still.status_code == 200


async def test_signing_out_refuses_that_sessions_token_only(
    client: httpx.AsyncClient, engine: AsyncEngine, app_with: AppWith
) -> None:
    bob = await verified_account(client, engine, "bob@example.com")
    laptop = await client.post("/auth/login", json={"email": bob.email, "password": PASSWORD})
    laptop_tokens = laptop.json()
    laptop_account = Account(
        bob.email, bob.user_id, laptop_tokens["access_token"], laptop_tokens["refresh_token"]
    )
    async with app_with() as other_app, api_client(other_app) as other:
        assert (await other.get("/list/", headers=laptop_account.headers)).status_code == 200

        signed_out = await client.post(
            "/auth/logout", json={"refresh_token": laptop_account.refresh_token}
        )
        assert signed_out.status_code == 204

        laptop_after = await refused(other, laptop_account)
        phone_after = await other.get("/list/", headers=bob.headers)

    assert_problem(laptop_after, 401, "invalid_token")
    assert phone_after.status_code == 200, phone_after.text


async def test_a_replayed_refresh_token_refuses_its_familys_access_token(
    client: httpx.AsyncClient, engine: AsyncEngine, app_with: AppWith
) -> None:
    bob = await verified_account(client, engine, "bob@example.com")
    async with app_with() as other_app, api_client(other_app) as other:
        rotated = await client.post("/auth/refresh", json={"refresh_token": bob.refresh_token})
        assert rotated.status_code == 200
        current = Account(
            bob.email, bob.user_id, rotated.json()["access_token"], rotated.json()["refresh_token"]
        )
        assert (await other.get("/list/", headers=current.headers)).status_code == 200

        # Someone who copied the first refresh token uses it again: the family is revoked.
        replayed = await other.post("/auth/refresh", json={"refresh_token": bob.refresh_token})
        assert_problem(replayed, 401, "invalid_refresh_token")

        after = await refused(client, current)

    assert_problem(after, 401, "invalid_token")


async def test_a_process_started_after_the_revocation_reads_it_from_the_database(
    client: httpx.AsyncClient, engine: AsyncEngine, app_with: AppWith
) -> None:
    root = await verified_account(client, engine, "root@example.com", role="admin")
    bob = await verified_account(client, engine, "bob@example.com")
    carol = await verified_account(client, engine, "carol@example.com")
    disabled = await client.patch(
        f"/admin/users/{bob.user_id}", json={"is_active": False}, headers=root.headers
    )
    assert disabled.status_code == 200
    signed_out = await client.post("/auth/logout", json={"refresh_token": carol.refresh_token})
    assert signed_out.status_code == 204

    # It missed both notifications: its listener's first connection loads the deny set.
    async with app_with() as later_app, api_client(later_app) as later:
        bob_after = await refused(later, bob)
        carol_after = await refused(later, carol)
        root_after = await later.get("/list/", headers=root.headers)

    assert_problem(bob_after, 401, "invalid_token")
    assert_problem(carol_after, 401, "invalid_token")
    assert root_after.status_code == 200


async def test_a_re_enabled_account_signs_in_again(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    root = await verified_account(client, engine, "root@example.com", role="admin")
    bob = await verified_account(client, engine, "bob@example.com")
    url = f"/admin/users/{bob.user_id}"
    assert (await client.patch(url, json={"is_active": False}, headers=root.headers)).is_success
    assert_problem(await refused(client, bob), 401, "invalid_token")

    assert (await client.patch(url, json={"is_active": True}, headers=root.headers)).is_success
    again = await client.post("/auth/login", json={"email": bob.email, "password": PASSWORD})
    fresh = {"Authorization": f"Bearer {again.json()['access_token']}"}

    assert (await client.get("/list/", headers=fresh)).status_code == 200
    assert_problem(await client.get("/list/", headers=bob.headers), 401, "invalid_token")


async def test_the_deny_set_forgets_what_no_live_token_needs(engine: AsyncEngine) -> None:
    revocations = Revocations(timedelta(seconds=900))
    now = datetime.now(UTC)
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        # An old revocation (past one token lifetime) and a fresh one, as the database has them.
        await connection.execute(
            text(
                "INSERT INTO user_account (id, email, is_active) VALUES "
                "('00000000-0000-4000-8000-000000000001', 'gone@example.com', false)"
            )
        )
        await connection.execute(
            text(
                "INSERT INTO refresh_token (id, user_id, family_id, token_hash, expires_at, "
                "revoked_at) VALUES "
                "(gen_random_uuid(), '00000000-0000-4000-8000-000000000001', "
                "'00000000-0000-4000-8000-00000000000a', '\\x01', now() + interval '1 day', "
                "now() - interval '20 minutes'), "
                "(gen_random_uuid(), '00000000-0000-4000-8000-000000000001', "
                "'00000000-0000-4000-8000-00000000000b', '\\x02', now() + interval '1 day', "
                "now() - interval '1 minute')"
            )
        )
        await revocations.reload(raw.driver_connection)
        await connection.rollback()

    def holder(family: str) -> AccessClaims:
        return AccessClaims(
            user_id=UUID("00000000-0000-4000-8000-000000000002"),
            role="member",
            email_verified=True,
            family_id=UUID(family),
            issued_at=(now - timedelta(minutes=30)).timestamp(),
        )

    assert not revocations.refuses(holder("00000000-0000-4000-8000-00000000000a"))
    assert revocations.refuses(holder("00000000-0000-4000-8000-00000000000b"))
    # One family and one disabled account.
    assert len(revocations) == 2
