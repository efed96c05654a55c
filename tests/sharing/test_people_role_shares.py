"""Sharing with a whole role puts an item (and its note) in every account of the role: an admin
right unless ROLE_SHARES_BY=everyone. The API here runs with the default settings (the other
sharing tests' app lets everyone share with roles)."""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import api_client
from tests.helpers import Account, assert_problem, set_user, upload_file, verified_account
from tests.sharing.people_helpers import granted, share, shared_items

AppWith = Callable[..., AbstractAsyncContextManager[FastAPI]]


@pytest.fixture
async def api(app_with: AppWith, client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """The API as shipped (`client`'s teardown removes the rows)."""
    async with app_with() as app, api_client(app) as opened:
        yield opened


async def test_a_member_cannot_push_a_file_to_every_account(
    api: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    done = await upload_file(api, web, alice, "free prize.html", b"<h1>click</h1>")

    refused = await share(
        api, alice, file_id=done["file_id"], role="member", note="You won! Open this."
    )
    bobs_feed = await api.get("/sync/changes", headers=bob.headers)

    body = assert_problem(refused, 403, "role_share_admin_only")
    assert "admin" in body["detail"]
    assert await shared_items(api, bob) == []
    assert "free prize" not in bobs_feed.text


async def test_an_admin_shares_with_a_role(
    api: httpx.AsyncClient,
    web: httpx.AsyncClient,
    engine: AsyncEngine,
    alice: Account,
    bob: Account,
) -> None:
    root = await verified_account(api, engine, "root@example.com", role="admin")
    done = await upload_file(api, web, root, "handbook.pdf", b"%PDF")

    grant = await granted(api, root, file_id=done["file_id"], role="member", note="Read me")

    assert grant["grantee_role"] == "member"
    assert [item["name"] for item in await shared_items(api, bob)] == ["handbook.pdf"]


async def test_an_account_demoted_from_admin_cannot_change_its_role_share(
    api: httpx.AsyncClient,
    web: httpx.AsyncClient,
    engine: AsyncEngine,
    alice: Account,
    bob: Account,
) -> None:
    await set_user(engine, alice.user_id, role="admin")
    done = await upload_file(api, web, alice, "old.txt", b"old")
    grant = await granted(api, alice, file_id=done["file_id"], role="member")
    await set_user(engine, alice.user_id, role="member")

    changed = await api.patch(
        f"/shares/people/{grant['id']}", json={"note": "New: open this"}, headers=alice.headers
    )
    again = await share(api, alice, file_id=done["file_id"], role="member", note="again")
    removed = await api.delete(f"/shares/people/{grant['id']}", headers=alice.headers)

    assert_problem(changed, 403, "role_share_admin_only")
    assert_problem(again, 403, "role_share_admin_only")
    assert removed.status_code == 204
    assert await shared_items(api, bob) == []


async def test_role_shares_by_everyone_lets_members_share_with_roles(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    alice: Account,
    bob: Account,
    app_with: AppWith,
) -> None:
    done = await upload_file(client, web, alice, "team.txt", b"team")
    async with app_with(role_shares_by="everyone") as app, api_client(app) as api:
        made = await share(api, alice, file_id=done["file_id"], role="member")

    assert made.status_code == 201, made.text
    assert [item["name"] for item in await shared_items(client, bob)] == ["team.txt"]
