"""The admin API: only active admins, read from the database on every call; one admin remains."""

import asyncio
import hashlib
import secrets
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from dropp.admin import service
from dropp.admin.errors import LastAdmin
from dropp.admin.schemas import UserUpdate
from dropp.roles.policy import BUILT_IN_ROLES, UploadPolicy
from tests.conftest import api_client
from tests.helpers import PASSWORD, Account, assert_problem, verified_account

AppWith = Callable[..., AbstractAsyncContextManager[FastAPI]]
ROLES = BUILT_IN_ROLES


@pytest.fixture
async def root(client: httpx.AsyncClient, engine: AsyncEngine) -> Account:
    return await verified_account(client, engine, "root@example.com", role="admin")


async def patch_user(
    api: httpx.AsyncClient, admin: Account, user_id: str, **changes: Any
) -> httpx.Response:
    return await api.patch(f"/admin/users/{user_id}", json=changes, headers=admin.headers)


async def user_row(engine: AsyncEngine, user_id: str) -> dict[str, Any]:
    async with engine.connect() as connection:
        row = await connection.execute(
            text("SELECT role, is_active FROM user_account WHERE id = :id"), {"id": UUID(user_id)}
        )
    return dict(row.mappings().one())


async def add_web_session(engine: AsyncEngine, user_id: str) -> UUID:
    session_id = uuid4()
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO web_session (id, user_id, token_hash, expires_at) "
                "VALUES (:id, :user_id, :hash, :expires_at)"
            ),
            {
                "id": session_id,
                "user_id": UUID(user_id),
                "hash": hashlib.sha256(secrets.token_bytes(16)).digest(),
                "expires_at": datetime.now(UTC) + timedelta(hours=1),
            },
        )
    return session_id


async def unrevoked(engine: AsyncEngine, table: str, user_id: str) -> int:
    async with engine.connect() as connection:
        count = await connection.scalar(
            text(f"SELECT count(*) FROM {table} WHERE user_id = :id AND revoked_at IS NULL"),
            {"id": UUID(user_id)},
        )
    return int(count or 0)


# --- who may call it ---------------------------------------------------------------------------


async def test_a_member_is_refused_with_admin_required(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    listed = await client.get("/admin/users", headers=alice.headers)
    patched = await patch_user(client, alice, alice.user_id, role="admin")

    assert_problem(listed, 403, "admin_required")
    assert_problem(patched, 403, "admin_required")


async def test_no_token_is_not_authenticated(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/admin/users"), 401, "not_authenticated")


async def test_a_demoted_admin_loses_the_api_at_once_despite_the_token_claim(
    client: httpx.AsyncClient, engine: AsyncEngine, root: Account
) -> None:
    deputy = await verified_account(client, engine, "deputy@example.com", role="admin")
    assert (await client.get("/admin/users", headers=deputy.headers)).status_code == 200

    demoted = await patch_user(client, root, deputy.user_id, role="member")
    after = await client.get("/admin/users", headers=deputy.headers)

    assert demoted.status_code == 200, demoted.text
    assert demoted.json()["role"] == "member"
    assert_problem(after, 403, "admin_required")


async def test_a_disabled_admin_loses_the_api_at_once(
    client: httpx.AsyncClient, engine: AsyncEngine, root: Account
) -> None:
    deputy = await verified_account(client, engine, "deputy@example.com", role="admin")

    disabled = await patch_user(client, root, deputy.user_id, is_active=False)
    after = await client.get("/admin/users", headers=deputy.headers)

    assert disabled.status_code == 200, disabled.text
    assert_problem(after, 401, "invalid_token")


# --- listing -------------------------------------------------------------------------------------


async def test_users_are_listed_newest_first_in_pages(
    client: httpx.AsyncClient, engine: AsyncEngine, root: Account, alice: Account, bob: Account
) -> None:
    carol = await verified_account(client, engine, "carol@example.com")
    seen: list[dict[str, Any]] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = await client.get("/admin/users", params=params, headers=root.headers)
        assert page.status_code == 200, page.text
        seen += page.json()["users"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break

    assert [user["email"] for user in seen] == [
        "carol@example.com",
        "bob@example.com",
        "alice@example.com",
        "root@example.com",
    ]
    assert seen[0]["id"] == carol.user_id
    assert seen[0]["role"] == "member"
    assert seen[0]["email_verified"] is True
    assert seen[0]["is_active"] is True
    assert seen[-1]["role"] == "admin"


async def test_users_are_filtered_by_role_and_email_prefix(
    client: httpx.AsyncClient, engine: AsyncEngine, root: Account, alice: Account, bob: Account
) -> None:
    await verified_account(client, engine, "a_b@example.com")

    async def emails(**params: str) -> list[str]:
        listed = await client.get("/admin/users", params=params, headers=root.headers)
        assert listed.status_code == 200, listed.text
        return [user["email"] for user in listed.json()["users"]]

    assert await emails(role="admin") == ["root@example.com"]
    assert await emails(role="member", email="AL") == ["alice@example.com"]
    # `_` and `%` are literal, not LIKE wildcards.
    assert await emails(email="a_") == ["a_b@example.com"]
    assert await emails(email="%") == []
    assert await emails(role="ops") == []


async def test_a_bad_cursor_or_role_filter_is_refused(
    client: httpx.AsyncClient, root: Account
) -> None:
    bad_cursor = await client.get(
        "/admin/users", params={"cursor": "not-a-cursor"}, headers=root.headers
    )
    bad_role = await client.get("/admin/users", params={"role": "Ops!"}, headers=root.headers)

    assert_problem(bad_cursor, 400, "invalid_cursor")
    assert_problem(bad_role, 422, "validation_error")


# --- changing roles ------------------------------------------------------------------------------


async def test_a_role_change_reaches_uploads_at_the_next_refresh(
    client: httpx.AsyncClient, engine: AsyncEngine, app_with: AppWith, root: Account, alice: Account
) -> None:
    roles = {"ops": UploadPolicy(extensions=("docx",))}

    async with app_with(roles=roles) as app, api_client(app) as api:
        changed = await patch_user(api, root, alice.user_id, role="ops")
        # Upload-init reads the token, not the database: the old claim holds until a refresh.
        before = await api.post("/upload/", json={"filename": "a.pdf"}, headers=alice.headers)
        refreshed = await api.post("/auth/refresh", json={"refresh_token": alice.refresh_token})
        token = refreshed.json()["access_token"]
        after = await api.post(
            "/upload/", json={"filename": "b.pdf"}, headers={"Authorization": f"Bearer {token}"}
        )

    assert changed.status_code == 200, changed.text
    assert changed.json()["role"] == "ops"
    assert before.status_code == 201, before.text
    assert_problem(after, 415, "file_type_not_allowed")
    assert (await user_row(engine, alice.user_id))["role"] == "ops"


async def test_an_unknown_role_is_refused_and_nothing_changes(
    client: httpx.AsyncClient, engine: AsyncEngine, root: Account, alice: Account
) -> None:
    refused = await patch_user(client, root, alice.user_id, role="ops", is_active=False)

    body = assert_problem(refused, 422, "unknown_role")
    assert body["allowed_roles"] == ["admin", "member"]
    assert await user_row(engine, alice.user_id) == {"role": "member", "is_active": True}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"role": ""}, id="empty-role"),
        pytest.param({"is_active": "maybe"}, id="not-a-boolean"),
        pytest.param({"email": "x@example.com"}, id="unknown-field"),
    ],
)
async def test_a_malformed_change_is_refused(
    client: httpx.AsyncClient, engine: AsyncEngine, root: Account, alice: Account, body: Any
) -> None:
    refused = await client.patch(f"/admin/users/{alice.user_id}", json=body, headers=root.headers)

    assert_problem(refused, 422, "validation_error")
    assert await user_row(engine, alice.user_id) == {"role": "member", "is_active": True}


async def test_an_unknown_user_is_not_found(client: httpx.AsyncClient, root: Account) -> None:
    missing = await patch_user(client, root, str(uuid4()), role="member")
    malformed = await patch_user(client, root, "not-a-uuid", role="member")

    assert_problem(missing, 404, "user_not_found")
    assert_problem(malformed, 422, "validation_error")


async def test_an_empty_change_changes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine, root: Account, alice: Account
) -> None:
    unchanged = await patch_user(client, root, alice.user_id)

    assert unchanged.status_code == 200, unchanged.text
    assert unchanged.json()["id"] == alice.user_id
    assert await user_row(engine, alice.user_id) == {"role": "member", "is_active": True}


# --- disabling -----------------------------------------------------------------------------------


async def test_disabling_signs_the_account_out_everywhere_and_refuses_its_sign_in(
    client: httpx.AsyncClient, engine: AsyncEngine, root: Account, alice: Account
) -> None:
    second_login = await client.post(
        "/auth/login", json={"email": alice.email, "password": PASSWORD}
    )
    assert second_login.status_code == 200
    await add_web_session(engine, alice.user_id)

    disabled = await patch_user(client, root, alice.user_id, is_active=False)
    refresh = await client.post("/auth/refresh", json={"refresh_token": alice.refresh_token})
    other_refresh = await client.post(
        "/auth/refresh", json={"refresh_token": second_login.json()["refresh_token"]}
    )
    login = await client.post("/auth/login", json={"email": alice.email, "password": PASSWORD})

    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["is_active"] is False
    assert await unrevoked(engine, "refresh_token", alice.user_id) == 0
    assert await unrevoked(engine, "web_session", alice.user_id) == 0
    assert_problem(refresh, 401, "invalid_refresh_token")
    assert_problem(other_refresh, 401, "invalid_refresh_token")
    assert_problem(login, 401, "invalid_credentials")
    assert_problem(await client.get("/me", headers=alice.headers), 401, "invalid_token")


async def test_a_re_enabled_account_signs_in_again(
    client: httpx.AsyncClient, root: Account, alice: Account
) -> None:
    await patch_user(client, root, alice.user_id, is_active=False)

    enabled = await patch_user(client, root, alice.user_id, is_active=True)
    login = await client.post("/auth/login", json={"email": alice.email, "password": PASSWORD})
    old_refresh = await client.post("/auth/refresh", json={"refresh_token": alice.refresh_token})

    assert enabled.json()["is_active"] is True
    assert login.status_code == 200, login.text
    # What was revoked stays revoked.
    assert_problem(old_refresh, 401, "invalid_refresh_token")


async def test_disabling_leaves_other_accounts_signed_in(
    client: httpx.AsyncClient, root: Account, alice: Account, bob: Account
) -> None:
    await patch_user(client, root, alice.user_id, is_active=False)

    refreshed = await client.post("/auth/refresh", json={"refresh_token": bob.refresh_token})

    assert refreshed.status_code == 200, refreshed.text


# --- the last admin ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"role": "member"}, id="demote"),
        pytest.param({"is_active": False}, id="disable"),
    ],
)
async def test_the_last_admin_cannot_be_demoted_or_disabled(
    client: httpx.AsyncClient, engine: AsyncEngine, root: Account, change: dict[str, Any]
) -> None:
    refused = await patch_user(client, root, root.user_id, **change)

    assert_problem(refused, 409, "last_admin")
    assert await user_row(engine, root.user_id) == {"role": "admin", "is_active": True}
    assert await unrevoked(engine, "refresh_token", root.user_id) == 1


async def test_a_disabled_admin_does_not_count_as_the_remaining_admin(
    client: httpx.AsyncClient, engine: AsyncEngine, root: Account
) -> None:
    deputy = await verified_account(client, engine, "deputy@example.com", role="admin")
    assert (await patch_user(client, root, deputy.user_id, is_active=False)).status_code == 200

    refused = await patch_user(client, root, root.user_id, role="member")

    assert_problem(refused, 409, "last_admin")


async def test_an_admin_may_step_down_while_another_remains(
    client: httpx.AsyncClient, engine: AsyncEngine, root: Account
) -> None:
    await verified_account(client, engine, "deputy@example.com", role="admin")

    stepped_down = await patch_user(client, root, root.user_id, role="member")
    after = await client.get("/admin/users", headers=root.headers)

    assert stepped_down.status_code == 200, stepped_down.text
    assert_problem(after, 403, "admin_required")


async def test_two_admins_demoting_each_other_at_once_leave_one_admin(
    client: httpx.AsyncClient, engine: AsyncEngine, root: Account
) -> None:
    deputy = await verified_account(client, engine, "deputy@example.com", role="admin")
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    demote = UserUpdate(role="member")

    async with sessions() as first, sessions() as second:
        await service.update_user(first, UUID(deputy.user_id), demote, ROLES)
        # Each sees the other as an admin until the first commits: the second must wait.
        racing = asyncio.create_task(service.update_user(second, UUID(root.user_id), demote, ROLES))
        await asyncio.sleep(0.5)
        waited = not racing.done()
        await first.commit()
        with pytest.raises(LastAdmin):
            await racing
        await second.rollback()

    assert waited
    assert (await user_row(engine, root.user_id))["role"] == "admin"
    assert (await user_row(engine, deputy.user_id))["role"] == "member"
