import base64
import json
from datetime import UTC, datetime, timedelta
from uuid import UUID

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from dropp.core.config import Settings
from dropp.storage.s3 import Storage
from dropp.sweeper.changes import prune_changes
from dropp.sweeper.service import sweep
from tests.helpers import Account, assert_problem, sha256_hex, upload_file
from tests.sync.feed import changes_page, drain, files_only


async def test_snapshot_of_an_empty_account_then_uploads_are_created_and_updated(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    snapshot = await changes_page(client, alice)
    assert snapshot["snapshot"] is True
    assert snapshot["changes"] == []
    assert snapshot["has_more"] is False

    first = await upload_file(client, web, alice, "a.txt", b"one", sha256=sha256_hex(b"one"))
    await upload_file(client, web, alice, "a.txt", b"two!", sha256=sha256_hex(b"two!"))

    page = await changes_page(client, alice, snapshot["cursor"])
    assert page["snapshot"] is False
    assert page["has_more"] is False
    created, updated = page["changes"]
    assert (created["change"], created["path"], created["kind"]) == ("created", "/a.txt", "file")
    assert created["node_id"] == first["file_id"] == updated["node_id"]
    assert (created["size"], created["content_hash"]) == (3, f"sha256:{sha256_hex(b'one')}")
    assert (updated["change"], updated["size"]) == ("updated", 4)
    assert updated["content_hash"] == f"sha256:{sha256_hex(b'two!')}"
    assert updated["revision_id"] != created["revision_id"]

    # Nothing new: the same position comes back, and stays usable.
    again = await changes_page(client, alice, page["cursor"])
    assert again["changes"] == []
    assert again["has_more"] is False
    assert (await changes_page(client, alice, again["cursor"]))["changes"] == []


async def test_feed_pages_in_order_with_has_more(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    _, cursor = await drain(client, alice)
    for n in range(5):
        await upload_file(client, web, alice, f"f{n}.txt", b"x")

    page = await changes_page(client, alice, cursor, limit=2)
    assert files_only(page["changes"]) == [("created", "/f0.txt"), ("created", "/f1.txt")]
    assert page["has_more"] is True
    rest, cursor = await drain(client, alice, page["cursor"], limit=2)
    assert files_only(rest) == [("created", f"/f{n}.txt") for n in (2, 3, 4)]
    assert (await changes_page(client, alice, cursor))["changes"] == []


async def test_snapshot_pages_list_the_live_tree_then_hand_over_to_the_feed(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    await upload_file(client, web, alice, "a.txt", b"a", folder="/docs/2026")
    await upload_file(client, web, alice, "b.txt", b"bb")
    await upload_file(client, web, alice, "gone.txt", b"g")
    gone = next(e for e in (await drain(client, alice))[0] if e["path"] == "/gone.txt")
    deleted = await client.delete(f"/files/{gone['node_id']}", headers=alice.headers)
    assert deleted.status_code == 204

    first = await changes_page(client, alice, limit=2)
    assert first["snapshot"] is True
    assert first["has_more"] is True
    assert len(first["changes"]) == 2
    entries, cursor = await drain(client, alice, first["cursor"], limit=2)
    snapshot = {e["path"]: e for e in first["changes"] + entries}
    assert set(snapshot) == {"/docs", "/docs/2026", "/docs/2026/a.txt", "/b.txt"}
    assert {e["change"] for e in snapshot.values()} == {"created"}
    assert (snapshot["/docs"]["kind"], snapshot["/docs"]["revision_id"]) == ("folder", None)
    assert (snapshot["/b.txt"]["kind"], snapshot["/b.txt"]["size"]) == ("file", 2)

    # The snapshot's last cursor continues with what happened after it.
    await upload_file(client, web, alice, "c.txt", b"c")
    page = await changes_page(client, alice, cursor)
    assert files_only(page["changes"]) == [("created", "/c.txt")]


async def test_changes_made_during_a_snapshot_are_replayed_after_it(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    for name in ("a.txt", "b.txt", "c.txt"):
        await upload_file(client, web, alice, name, b"x")
    first = await changes_page(client, alice, limit=1)
    await upload_file(client, web, alice, "d.txt", b"d")
    await upload_file(client, web, alice, "a.txt", b"a2")
    entries, _ = await drain(client, alice, first["cursor"], limit=1)
    # The feed position was taken before the snapshot began, so both changes come after it.
    assert files_only(entries)[-2:] == [("created", "/d.txt"), ("updated", "/a.txt")]


async def test_a_pruned_cursor_answers_410_and_a_snapshot_recovers(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, engine: AsyncEngine
) -> None:
    _, cursor = await drain(client, alice)
    await upload_file(client, web, alice, "old.txt", b"o")
    await upload_file(client, web, alice, "old2.txt", b"o")
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE change SET created_at = now() - interval '40 days' WHERE user_id = :u"),
            {"u": UUID(alice.user_id)},
        )
    await upload_file(client, web, alice, "new.txt", b"n")

    pruned = await prune_changes(async_sessionmaker(engine), datetime.now(UTC) - timedelta(days=30))
    assert pruned == 2

    body = assert_problem(
        await client.get("/sync/changes", params={"cursor": cursor}, headers=alice.headers),
        410,
        "cursor_expired",
    )
    assert "re-snapshot" in body["detail"]
    longpoll = await client.get(
        "/sync/longpoll", params={"cursor": cursor, "timeout": 1}, headers=alice.headers
    )
    assert_problem(longpoll, 410, "cursor_expired")

    entries, fresh = await drain(client, alice)
    assert {path for _, path in files_only(entries)} == {"/old.txt", "/old2.txt", "/new.txt"}
    assert (await changes_page(client, alice, fresh))["changes"] == []


async def test_malformed_or_forged_cursors_answer_400(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    _, cursor = await drain(client, alice)
    payload, signature = cursor.split(".")
    forged_payload = base64.urlsafe_b64encode(json.dumps(["c", 0]).encode()).decode().rstrip("=")
    for bad in (
        "nonsense",
        "",
        "a.b.c",
        f"{payload}.{signature[:-2]}AA",
        f"{forged_payload}.{signature}",
    ):
        response = await client.get("/sync/changes", params={"cursor": bad}, headers=alice.headers)
        assert_problem(response, 400, "invalid_cursor")


async def test_another_users_cursor_is_refused(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    await upload_file(client, web, alice, "secret.txt", b"s")
    snapshot = await changes_page(client, alice, limit=1)
    _, feed_cursor = await drain(client, alice)
    for cursor in (snapshot["cursor"], feed_cursor):
        response = await client.get("/sync/changes", params={"cursor": cursor}, headers=bob.headers)
        body = assert_problem(response, 400, "invalid_cursor")
        assert "secret" not in json.dumps(body)
    assert (await drain(client, bob))[0] == []


async def test_limit_out_of_range_is_refused(client: httpx.AsyncClient, alice: Account) -> None:
    for limit in (0, 1001):
        response = await client.get("/sync/changes", params={"limit": limit}, headers=alice.headers)
        assert_problem(response, 422, "validation_error")


async def test_sync_init_alias_gives_changes_since_a_moment(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    await upload_file(client, web, alice, "before.txt", b"b")
    moment = datetime.now(UTC)
    await upload_file(client, web, alice, "after.txt", b"a")
    response = await client.post(
        "/sync/init", json={"last_sync_ts": moment.isoformat()}, headers=alice.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["snapshot"] is False
    assert files_only(body["changes"]) == [("created", "/after.txt")]

    snapshot = await client.post("/sync/init", json={}, headers=alice.headers)
    assert snapshot.json()["snapshot"] is True
    assert {e["path"] for e in snapshot.json()["changes"]} == {"/before.txt", "/after.txt"}


async def test_sync_init_before_pruned_changes_answers_410(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, engine: AsyncEngine
) -> None:
    await upload_file(client, web, alice, "old.txt", b"o")
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE change SET created_at = now() - interval '40 days' WHERE user_id = :u"),
            {"u": UUID(alice.user_id)},
        )
    await upload_file(client, web, alice, "new.txt", b"n")
    await prune_changes(async_sessionmaker(engine), datetime.now(UTC) - timedelta(days=30))
    since = datetime.now(UTC) - timedelta(days=35)
    response = await client.post(
        "/sync/init", json={"last_sync_ts": since.isoformat()}, headers=alice.headers
    )
    assert_problem(response, 410, "cursor_expired")


async def test_folders_an_upload_creates_are_in_the_feed(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    _, cursor = await drain(client, alice)
    await upload_file(client, web, alice, "a.txt", b"a", folder="/new/deep")
    page = await changes_page(client, alice, cursor)
    assert [(e["change"], e["kind"], e["path"]) for e in page["changes"]] == [
        ("created", "folder", "/new"),
        ("created", "folder", "/new/deep"),
        ("created", "file", "/new/deep/a.txt"),
    ]


async def test_the_sweep_prunes_old_changes_and_counts_them(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    alice: Account,
    bob: Account,
    engine: AsyncEngine,
    storage: Storage,
    settings: Settings,
) -> None:
    await upload_file(client, web, alice, "old.txt", b"o")
    await upload_file(client, web, bob, "recent.txt", b"r")
    async with engine.begin() as connection:
        old_id = await connection.scalar(
            text(
                "UPDATE change SET created_at = now() - interval '31 days' "
                "WHERE user_id = :u RETURNING id"
            ),
            {"u": UUID(alice.user_id)},
        )
    summary = await sweep(async_sessionmaker(engine), storage, settings)
    assert summary.stale_rows_deleted >= 1
    assert summary.errors == 0
    async with engine.connect() as connection:
        rows = await connection.execute(text("SELECT id, changes_pruned_through FROM user_account"))
        pruned = {row.id: row.changes_pruned_through for row in rows}
        left = await connection.scalar(text("SELECT count(*) FROM change"))
    assert pruned == {UUID(alice.user_id): old_id, UUID(bob.user_id): 0}
    assert left == 1
