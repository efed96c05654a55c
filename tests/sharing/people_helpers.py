"""Factories for shares with people: grants, the recipient's views, and the accounts they
apply to (or do not)."""

from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import PASSWORD, Account, register_account, set_user


async def sign_in(client: httpx.AsyncClient, email: str) -> Account:
    """New tokens, carrying the account's role and verification as they are now."""
    tokens = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    me = await client.get("/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200, me.text
    return Account(email, me.json()["id"], body["access_token"], body["refresh_token"])


async def unverified_account(
    client: httpx.AsyncClient, engine: AsyncEngine, email: str, role: str | None = None
) -> Account:
    """A signed-in account whose address is not verified, with this role if given."""
    account = await register_account(client, email)
    if role is None:
        return account
    await set_user(engine, account.user_id, role=role)
    return await sign_in(client, email)


async def share(
    client: httpx.AsyncClient,
    owner: Account,
    *,
    permission: str = "viewer",
    **body: Any,
) -> httpx.Response:
    """POST /shares/people: give `file_id` or `folder_id`, and `email` or `role`."""
    return await client.post(
        "/shares/people", json={"permission": permission, **body}, headers=owner.headers
    )


async def granted(
    client: httpx.AsyncClient, owner: Account, *, permission: str = "viewer", **body: Any
) -> dict[str, Any]:
    made = await share(client, owner, permission=permission, **body)
    assert made.status_code == 201, made.text
    grant: dict[str, Any] = made.json()
    return grant


async def shared_items(client: httpx.AsyncClient, account: Account) -> list[dict[str, Any]]:
    """GET /shared, every page."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"cursor": cursor} if cursor else {}
        listed = await client.get("/shared", params=params, headers=account.headers)
        assert listed.status_code == 200, listed.text
        body = listed.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


async def browse(
    client: httpx.AsyncClient, account: Account, grant_id: str, path: str = "/", **params: Any
) -> httpx.Response:
    return await client.get(
        f"/shared/{grant_id}/items", params={"path": path, **params}, headers=account.headers
    )


async def share_downloads(engine: AsyncEngine, node_id: str) -> list[tuple[str, UUID, UUID | None]]:
    """(channel, user_id, grant_id) of every download URL issued for the node, oldest first."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT channel, user_id, grant_id FROM download WHERE node_id = :node ORDER BY id"
            ),
            {"node": UUID(node_id)},
        )
        return [(row.channel, row.user_id, row.grant_id) for row in rows]
