"""`GET /admin/stats`: server-wide figures for admins only, days in UTC, zero-filled."""

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import (
    Account,
    assert_problem,
    download_bytes,
    register_account,
    upload_file,
    verified_account,
)


@pytest.fixture
async def root(client: httpx.AsyncClient, engine: AsyncEngine) -> Account:
    return await verified_account(client, engine, "root@example.com", role="admin")


async def add_download(engine: AsyncEngine, owner: Account, when: datetime) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO download (owner_id, node_id, revision_id, channel, user_id, "
                "created_at) VALUES (:owner, :node, :revision, 'owner', :owner, :at)"
            ),
            {"owner": UUID(owner.user_id), "node": uuid4(), "revision": uuid4(), "at": when},
        )


async def test_a_member_is_refused_and_anonymous_is_not_authenticated(
    client: httpx.AsyncClient, alice: Account
) -> None:
    assert_problem(await client.get("/admin/stats", headers=alice.headers), 403, "admin_required")
    assert_problem(await client.get("/admin/stats"), 401, "not_authenticated")


async def test_stats_count_accounts_files_bytes_and_each_days_activity(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    engine: AsyncEngine,
    root: Account,
    alice: Account,
) -> None:
    await register_account(client, "unverified@example.com")
    kept = await upload_file(client, web, alice, "kept.txt", b"abc")
    trashed = await upload_file(client, web, alice, "gone.txt", b"hello")
    assert (await client.delete(f"/files/{trashed['file_id']}", headers=alice.headers)).status_code
    for _ in range(2):
        assert (await download_bytes(client, web, alice, kept["file_id"])).content == b"abc"
    today = datetime.now(UTC).date()
    await add_download(engine, alice, datetime.now(UTC) - timedelta(days=3))
    await add_download(engine, alice, datetime.now(UTC) - timedelta(days=40))

    answer = await client.get("/admin/stats", headers=root.headers)

    assert answer.status_code == 200, answer.text
    stats = answer.json()
    assert stats["accounts"]["total"] == 3
    assert stats["accounts"]["verified"] == 2
    assert stats["accounts"]["by_role"] == {"admin": 1, "member": 2}
    assert stats["files"] == {"live": 1, "in_trash": 1}
    assert stats["bytes_stored"] == 8, "trashed files keep their bytes until purged"
    days = stats["days"]
    assert len(days) == 30
    assert [day["date"] for day in days] == [
        (today - timedelta(days=29 - n)).isoformat() for n in range(30)
    ]
    assert days[-1] == {
        "date": today.isoformat(),
        "uploads": 2,
        "upload_bytes": 8,
        "downloads": 2,
        "new_accounts": 3,
    }
    assert days[-4]["downloads"] == 1
    assert sum(day["downloads"] for day in days) == 3, "40 days ago is outside the window"
    assert sum(day["uploads"] for day in days[:-1]) == 0


async def test_the_window_is_chosen_and_checked(client: httpx.AsyncClient, root: Account) -> None:
    week = await client.get("/admin/stats", params={"days": 7}, headers=root.headers)
    assert week.status_code == 200, week.text
    assert len(week.json()["days"]) == 7
    for bad in (0, 367, "x"):
        refused = await client.get("/admin/stats", params={"days": bad}, headers=root.headers)
        assert_problem(refused, 422, "validation_error")
