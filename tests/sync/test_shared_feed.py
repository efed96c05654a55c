"""Shares with people in the recipients' change feed: the grant's node when a grant comes or
goes, every change under it as the recipient sees it, and the shared part of a snapshot."""

import asyncio
import time
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from dropp.sharing.models import Permission, ShareGrant
from dropp.sync import shared
from tests.files.test_tree import make_folder
from tests.helpers import Account, register_account, set_user, upload_file, verified_account
from tests.sync.feed import ReplayClient, changes_page, drain


async def add_grant(
    engine: AsyncEngine,
    owner: Account,
    node_id: str,
    *,
    email: str | None = None,
    role: str | None = None,
    permission: Permission = Permission.VIEWER,
) -> str:
    """A grant written as the sharing feature writes one, hook included."""
    async with async_sessionmaker(engine, expire_on_commit=False).begin() as session:
        grant = ShareGrant(
            owner_id=UUID(owner.user_id),
            node_id=UUID(node_id),
            grantee_email=email,
            grantee_role=role,
            permission=permission,
        )
        session.add(grant)
        await shared.grant_added(session, grant)
    return str(grant.id)


async def remove_grant(engine: AsyncEngine, grant_id: str) -> None:
    async with async_sessionmaker(engine).begin() as session:
        grant = await session.get_one(ShareGrant, UUID(grant_id))
        await shared.grant_removed(session, grant)
        await session.delete(grant)


async def longpoll(
    client: httpx.AsyncClient, account: Account, cursor: str, wait: int
) -> dict[str, Any]:
    response = await client.get(
        "/sync/longpoll",
        params={"cursor": cursor, "timeout": wait},
        headers=account.headers,
        timeout=wait + 10,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def waiting_for_advisory_lock(engine: AsyncEngine) -> bool:
    async with engine.connect() as connection:
        waiting = await connection.scalar(
            text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        )
    return bool(waiting)


def seen(entries: list[dict[str, Any]]) -> list[tuple[str, str, str | None]]:
    return [(e["change"], e["path"], e["grant_id"]) for e in entries]


async def news(
    client: httpx.AsyncClient, account: Account, cursor: str
) -> tuple[list[dict[str, Any]], str]:
    entries, cursor = await drain(client, account, cursor)
    return entries, cursor


async def patch(
    client: httpx.AsyncClient, account: Account, kind: str, node_id: str, **body: Any
) -> dict[str, Any]:
    moved = await client.patch(f"/{kind}s/{node_id}", json=body, headers=account.headers)
    assert moved.status_code == 200, moved.text
    answer: dict[str, Any] = moved.json()
    return answer


async def call(
    client: httpx.AsyncClient, account: Account, method: str, url: str, status: int
) -> None:
    response = await client.request(method, url, headers=account.headers)
    assert response.status_code == status, response.text


async def feed_rows(engine: AsyncEngine, account: Account) -> int:
    async with engine.connect() as connection:
        count = await connection.scalar(
            text("SELECT count(*) FROM change WHERE user_id = :user"),
            {"user": UUID(account.user_id)},
        )
    return int(count or 0)


async def test_a_grant_by_address_shows_its_folder_then_every_change_inside(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    alice: Account,
    bob: Account,
    engine: AsyncEngine,
) -> None:
    folder = await make_folder(client, alice, "/projects/reports")
    first = await upload_file(client, web, alice, "a.pdf", b"v1", folder="/projects/reports/q1")
    _, alice_cursor = await drain(client, alice)
    _, cursor = await drain(client, bob)

    grant_id = await add_grant(engine, alice, folder["folder_id"], email="bob@example.com")
    entries, cursor = await news(client, bob, cursor)
    (root,) = entries
    assert seen(entries) == [("created", "/reports", grant_id)]
    assert (root["node_id"], root["kind"], root["revision_id"]) == (
        folder["folder_id"],
        "folder",
        None,
    )

    second = await upload_file(client, web, alice, "a.pdf", b"v2!", folder="/projects/reports/q1")
    await upload_file(client, web, alice, "b.txt", b"b", folder="/projects/reports/new")
    await upload_file(client, web, alice, "elsewhere.txt", b"e", folder="/projects")
    entries, cursor = await news(client, bob, cursor)
    assert seen(entries) == [
        ("updated", "/reports/q1/a.pdf", grant_id),
        ("created", "/reports/new", grant_id),
        ("created", "/reports/new/b.txt", grant_id),
    ]
    updated = entries[0]
    assert updated["node_id"] == first["file_id"]
    assert (updated["revision_id"], updated["size"]) == (second["revision_id"], 3)
    assert updated["content_hash"] == second["content_hash"]

    # The owner's feed is what it always was: own paths, no grant.
    owners, _ = await news(client, alice, alice_cursor)
    assert seen(owners) == [
        ("updated", "/projects/reports/q1/a.pdf", None),
        ("created", "/projects/reports/new", None),
        ("created", "/projects/reports/new/b.txt", None),
        ("created", "/projects/elsewhere.txt", None),
    ]


async def test_a_role_grant_reaches_verified_active_accounts_of_the_role_only(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    alice: Account,
    engine: AsyncEngine,
) -> None:
    await set_user(engine, alice.user_id, role="staff")
    carol = await verified_account(client, engine, "carol@example.com", role="staff")
    dave = await register_account(client, "dave@example.com")
    await set_user(engine, dave.user_id, role="staff")
    erin = await verified_account(client, engine, "erin@example.com", role="staff")
    frank = await verified_account(client, engine, "frank@example.com", role="auditor")
    _, carol_cursor = await drain(client, carol)
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE user_account SET is_active = false WHERE id = :id"),
            {"id": UUID(erin.user_id)},
        )
    alice_rows = await feed_rows(engine, alice)

    folder = await make_folder(client, alice, "/team")
    grant_id = await add_grant(engine, alice, folder["folder_id"], role="staff")
    await upload_file(client, web, alice, "plan.txt", b"p", folder="/team")

    entries, _ = await news(client, carol, carol_cursor)
    assert seen(entries) == [
        ("created", "/team", grant_id),
        ("created", "/team/plan.txt", grant_id),
    ]
    # Unverified, inactive, another role, and the owner (who has the role too): no rows.
    for account in (dave, erin, frank):
        assert await feed_rows(engine, account) == 0
    async with engine.connect() as connection:
        owners = await connection.execute(
            text("SELECT grant_id FROM change WHERE user_id = :id"), {"id": UUID(alice.user_id)}
        )
        assert [row.grant_id for row in owners] == [None] * (alice_rows + 2)
    assert (await changes_page(client, dave))["changes"] == []

    # Once dave verifies his address the share applies to him: his next snapshot has it.
    await set_user(engine, dave.user_id, verified=True)
    snapshot, _ = await drain(client, dave)
    assert seen(snapshot) == [
        ("created", "/team", grant_id),
        ("created", "/team/plan.txt", grant_id),
    ]


async def test_moves_into_out_of_and_within_a_shared_folder(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    alice: Account,
    bob: Account,
    engine: AsyncEngine,
) -> None:
    folder = await make_folder(client, alice, "/shared")
    await make_folder(client, alice, "/archive")
    file = await upload_file(client, web, alice, "x.txt", b"xx", folder="/inbox")
    sub = await make_folder(client, alice, "/inbox/sub")
    await upload_file(client, web, alice, "y.txt", b"y", folder="/inbox/sub")
    grant_id = await add_grant(engine, alice, folder["folder_id"], email="bob@example.com")
    _, cursor = await drain(client, bob)

    # In: a file arrives with its current revision; a folder as its root only.
    await patch(client, alice, "file", file["file_id"], parent_path="/shared")
    await patch(client, alice, "folder", sub["folder_id"], parent_path="/shared")
    entries, cursor = await news(client, bob, cursor)
    assert seen(entries) == [
        ("created", "/shared/x.txt", grant_id),
        ("created", "/shared/sub", grant_id),
    ]
    assert (entries[0]["node_id"], entries[0]["revision_id"], entries[0]["size"]) == (
        file["file_id"],
        file["revision_id"],
        2,
    )
    assert entries[0]["content_hash"] == file["content_hash"]
    assert (entries[1]["kind"], entries[1]["revision_id"]) == ("folder", None)

    # Within, and renamed within.
    await patch(client, alice, "file", file["file_id"], parent_path="/shared/sub")
    await patch(client, alice, "folder", sub["folder_id"], name="sub2")
    entries, cursor = await news(client, bob, cursor)
    assert seen(entries) == [
        ("moved", "/shared/sub/x.txt", grant_id),
        ("moved", "/shared/sub2", grant_id),
    ]

    # Out: gone, at the path the recipient knew.
    await patch(client, alice, "folder", sub["folder_id"], parent_path="/")
    entries, cursor = await news(client, bob, cursor)
    assert seen(entries) == [("deleted", "/shared/sub2", grant_id)]
    assert entries[0]["node_id"] == sub["folder_id"]

    # The shared folder itself: renamed is moved; moved elsewhere under its name, nothing.
    await patch(client, alice, "folder", folder["folder_id"], name="team")
    await patch(client, alice, "folder", folder["folder_id"], parent_path="/archive")
    entries, cursor = await news(client, bob, cursor)
    assert seen(entries) == [("moved", "/team", grant_id)]

    # Moves elsewhere in the owner's tree tell the recipient nothing.
    await patch(client, alice, "folder", sub["folder_id"], name="other")
    assert (await news(client, bob, cursor))[0] == []


async def test_trash_restore_and_purge_under_a_share(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    alice: Account,
    bob: Account,
    engine: AsyncEngine,
) -> None:
    folder = await make_folder(client, alice, "/p/shared")
    file = await upload_file(client, web, alice, "a.txt", b"a", folder="/p/shared")
    grant_id = await add_grant(engine, alice, folder["folder_id"], email="bob@example.com")
    _, cursor = await drain(client, bob)

    await call(client, alice, "DELETE", f"/files/{file['file_id']}", 204)
    await call(client, alice, "POST", f"/files/{file['file_id']}/restore", 200)
    entries, cursor = await news(client, bob, cursor)
    assert seen(entries) == [
        ("deleted", "/shared/a.txt", grant_id),
        ("restored", "/shared/a.txt", grant_id),
    ]
    assert entries[1]["revision_id"] == file["revision_id"]

    # The shared folder itself, then the folder above it: either way it is gone for the
    # recipient, and back when restored.
    await call(client, alice, "DELETE", f"/folders/{folder['folder_id']}", 204)
    await call(client, alice, "POST", f"/folders/{folder['folder_id']}/restore", 200)
    parent = (await make_folder(client, alice, "/p"))["folder_id"]
    await call(client, alice, "DELETE", f"/folders/{parent}", 204)
    entries, cursor = await news(client, bob, cursor)
    assert seen(entries) == [
        ("deleted", "/shared", grant_id),
        ("restored", "/shared", grant_id),
        ("deleted", "/shared", grant_id),
    ]
    assert {e["node_id"] for e in entries} == {folder["folder_id"]}

    # While in the trash the grant gives nothing: a snapshot has none of it.
    snapshot, _ = await drain(client, bob)
    assert snapshot == []

    await call(client, alice, "POST", f"/folders/{parent}/restore", 200)
    entries, cursor = await news(client, bob, cursor)
    assert seen(entries) == [("restored", "/shared", grant_id)]

    # Purging what the recipient already saw go tells it nothing more.
    await call(client, alice, "DELETE", f"/files/{file['file_id']}", 204)
    await call(client, alice, "DELETE", f"/trash/{file['file_id']}", 204)
    entries, cursor = await news(client, bob, cursor)
    assert seen(entries) == [("deleted", "/shared/a.txt", grant_id)]


async def test_a_grant_added_and_removed_tells_its_recipients_once_each(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    alice: Account,
    bob: Account,
    engine: AsyncEngine,
) -> None:
    file = await upload_file(client, web, alice, "report.pdf", b"12345", folder="/deep/er")
    _, cursor = await drain(client, bob)

    grant_id = await add_grant(engine, alice, file["file_id"], email="bob@example.com")
    entries, cursor = await news(client, bob, cursor)
    (created,) = entries
    assert seen(entries) == [("created", "/report.pdf", grant_id)]
    assert (created["kind"], created["node_id"], created["revision_id"], created["size"]) == (
        "file",
        file["file_id"],
        file["revision_id"],
        5,
    )
    assert created["content_hash"] == file["content_hash"]

    # A permission change shows or hides nothing: no row.
    async with async_sessionmaker(engine).begin() as session:
        grant = await session.get_one(ShareGrant, UUID(grant_id))
        grant.permission = Permission.EDITOR
    assert (await news(client, bob, cursor))[0] == []

    await remove_grant(engine, grant_id)
    entries, cursor = await news(client, bob, cursor)
    assert seen(entries) == [("deleted", "/report.pdf", grant_id)]
    assert entries[0]["revision_id"] is None

    # A grant on a node in the trash gives nothing, so it says nothing either way.
    await call(client, alice, "DELETE", f"/files/{file['file_id']}", 204)
    trashed = await add_grant(engine, alice, file["file_id"], email="bob@example.com")
    await remove_grant(engine, trashed)
    assert (await news(client, bob, cursor))[0] == []


async def test_nested_grants_are_separate_roots_for_one_recipient(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    alice: Account,
    bob: Account,
    engine: AsyncEngine,
) -> None:
    outer = await make_folder(client, alice, "/a")
    inner = await make_folder(client, alice, "/a/b")
    outer_grant = await add_grant(engine, alice, outer["folder_id"], email="bob@example.com")
    inner_grant = await add_grant(engine, alice, inner["folder_id"], role="member")
    _, cursor = await drain(client, bob)

    await upload_file(client, web, alice, "f.txt", b"f", folder="/a/b")
    entries, _ = await news(client, bob, cursor)
    assert sorted(seen(entries)) == sorted(
        [("created", "/a/b/f.txt", outer_grant), ("created", "/b/f.txt", inner_grant)]
    )
    assert len({e["node_id"] for e in entries}) == 1

    snapshot, _ = await drain(client, bob)
    assert sorted(seen(snapshot)) == sorted(
        [
            ("created", "/a", outer_grant),
            ("created", "/a/b", outer_grant),
            ("created", "/a/b/f.txt", outer_grant),
            ("created", "/b", inner_grant),
            ("created", "/b/f.txt", inner_grant),
        ]
    )


async def test_a_recipients_snapshot_pages_its_own_tree_then_what_is_shared(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    alice: Account,
    bob: Account,
    engine: AsyncEngine,
) -> None:
    await upload_file(client, web, bob, "mine.txt", b"m", folder="/own")
    folder = await make_folder(client, alice, "/projects")
    for name in ("1.txt", "2.txt", "3.txt"):
        await upload_file(client, web, alice, name, b"w", folder="/projects/docs")
    gone = await upload_file(client, web, alice, "gone.txt", b"g", folder="/projects")
    await call(client, alice, "DELETE", f"/files/{gone['file_id']}", 204)
    # Pending: not in the snapshot, as for one's own files.
    pending = await client.post(
        "/upload/",
        json={"filename": "pending.txt", "folder": "/projects", "size": 1},
        headers=alice.headers,
    )
    assert pending.status_code == 201, pending.text
    single = await upload_file(client, web, alice, "single.txt", b"s")
    folder_grant = await add_grant(engine, alice, folder["folder_id"], email="bob@example.com")
    file_grant = await add_grant(engine, alice, single["file_id"], email="bob@example.com")
    await upload_file(client, web, alice, "unshared.txt", b"u", folder="/private")

    expected = [
        ("created", "/own", None),
        ("created", "/own/mine.txt", None),
        *sorted(
            [
                ("created", "/projects", folder_grant),
                ("created", "/projects/docs", folder_grant),
                *[("created", f"/projects/docs/{n}.txt", folder_grant) for n in (1, 2, 3)],
                ("created", "/single.txt", file_grant),
            ],
            key=lambda entry: (entry[2] or "", entry[1]),
        ),
    ]

    def ordered(entries: list[dict[str, Any]]) -> list[tuple[str, str, str | None]]:
        # Own nodes first, then share by share (nodes made in one transaction share their
        # creation time, so within a group the order is compared by path).
        own = sorted(e for e in seen(entries) if e[2] is None)
        return own + sorted(
            (e for e in seen(entries) if e[2] is not None), key=lambda e: (e[2] or "", e[1])
        )

    last_cursor = ""
    for limit in (1, 2, 3, 7, 8, 1000):
        pages: list[dict[str, Any]] = []
        page = await changes_page(client, bob, limit=limit)
        pages.append(page)
        while page["has_more"]:
            page = await changes_page(client, bob, page["cursor"], limit=limit)
            pages.append(page)
        entries = [entry for page in pages for entry in page["changes"]]
        assert all(page["snapshot"] for page in pages)
        assert all(len(page["changes"]) <= limit for page in pages)
        assert ordered(entries) == expected, limit
        assert [e[2] for e in seen(entries)][:2] == [None, None]
        # Share by share, in grant id order.
        grants = [e["grant_id"] for e in entries if e["grant_id"] is not None]
        assert grants == sorted(grants)
        last_cursor = page["cursor"]

    # The last cursor continues with the feed, shared rows included.
    await upload_file(client, web, alice, "after.txt", b"n", folder="/projects")
    after = await changes_page(client, bob, last_cursor)
    assert after["snapshot"] is False
    assert seen(after["changes"]) == [("created", "/projects/after.txt", folder_grant)]


async def test_a_recipients_longpoll_wakes_on_the_owners_change(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    alice: Account,
    bob: Account,
    engine: AsyncEngine,
) -> None:
    folder = await make_folder(client, alice, "/live")
    grant_id = await add_grant(engine, alice, folder["folder_id"], email="bob@example.com")
    _, cursor = await drain(client, bob)
    waiting = asyncio.create_task(longpoll(client, bob, cursor, wait=20))
    await asyncio.sleep(0.5)
    await upload_file(client, web, alice, "outside.txt", b"o")
    await asyncio.sleep(0.5)
    assert not waiting.done()
    started = time.monotonic()
    await upload_file(client, web, alice, "new.txt", b"n", folder="/live")
    assert await asyncio.wait_for(waiting, 15) == {"changes": True}
    assert time.monotonic() - started < 5
    entries, _ = await news(client, bob, cursor)
    assert seen(entries) == [("created", "/live/new.txt", grant_id)]


async def test_a_recipient_replaying_its_feed_matches_its_snapshot(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    alice: Account,
    bob: Account,
    engine: AsyncEngine,
) -> None:
    folder = await make_folder(client, alice, "/shared")
    device = ReplayClient()
    await device.sync(client, bob)
    await add_grant(engine, alice, folder["folder_id"], email="bob@example.com")

    async def in_step() -> None:
        await device.sync(client, bob)
        snapshot, _ = await drain(client, bob)
        assert device.paths() == {e["path"]: (e["kind"], e["revision_id"]) for e in snapshot}

    await in_step()
    doc = await upload_file(client, web, alice, "doc.txt", b"1", folder="/shared/sub")
    await upload_file(client, web, alice, "doc.txt", b"22", folder="/shared/sub")
    await in_step()
    sub = await make_folder(client, alice, "/shared/sub")
    await patch(client, alice, "folder", sub["folder_id"], name="renamed")
    await patch(client, alice, "file", doc["file_id"], parent_path="/shared")
    await in_step()
    await call(client, alice, "DELETE", f"/folders/{sub['folder_id']}", 204)
    await in_step()
    await call(client, alice, "POST", f"/folders/{sub['folder_id']}/restore", 200)
    await patch(client, alice, "file", doc["file_id"], parent_path="/", name="out.txt")
    await in_step()
    assert set(device.paths()) == {"/shared", "/shared/renamed"}


async def test_two_owners_sharing_with_each_other_upload_at_once(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    alice: Account,
    bob: Account,
    engine: AsyncEngine,
) -> None:
    # Each holds its own account row (quota) while its change writes to the other's feed.
    alices = await make_folder(client, alice, "/from-alice")
    bobs = await make_folder(client, bob, "/from-bob")
    to_bob = await add_grant(engine, alice, alices["folder_id"], email="bob@example.com")
    to_alice = await add_grant(engine, bob, bobs["folder_id"], email="alice@example.com")
    _, alice_cursor = await drain(client, alice)
    _, bob_cursor = await drain(client, bob)

    uploads = [
        upload_file(client, web, owner, f"{n}.txt", b"x" * (n + 1), folder=folder)
        for n in range(6)
        for owner, folder in ((alice, "/from-alice"), (bob, "/from-bob"))
    ]
    await asyncio.wait_for(asyncio.gather(*uploads), 60)

    alice_entries, _ = await news(client, alice, alice_cursor)
    bob_entries, _ = await news(client, bob, bob_cursor)
    names = {f"{n}.txt" for n in range(6)}
    assert {e["path"] for e in alice_entries if e["grant_id"] is None} == {
        f"/from-alice/{name}" for name in names
    }
    assert {e["path"] for e in alice_entries if e["grant_id"] == to_alice} == {
        f"/from-bob/{name}" for name in names
    }
    assert {e["path"] for e in bob_entries if e["grant_id"] == to_bob} == {
        f"/from-alice/{name}" for name in names
    }
    async with engine.connect() as connection:
        shared_files = await connection.scalar(
            text("SELECT count(*) FROM change WHERE grant_id IS NOT NULL AND node_kind = 'file'")
        )
    assert shared_files == 12


async def test_a_change_recorded_while_a_grant_is_added_reaches_the_recipient(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    alice: Account,
    bob: Account,
    engine: AsyncEngine,
) -> None:
    folder = await make_folder(client, alice, "/shared")
    _, cursor = await drain(client, bob)
    async with async_sessionmaker(engine, expire_on_commit=False).begin() as session:
        grant = ShareGrant(
            owner_id=UUID(alice.user_id),
            node_id=UUID(folder["folder_id"]),
            grantee_email="bob@example.com",
            permission=Permission.VIEWER,
        )
        session.add(grant)
        await shared.grant_added(session, grant)
        # The upload completes meanwhile: it waits for the grant, then sees it.
        uploading = asyncio.create_task(
            upload_file(client, web, alice, "racing.txt", b"r", folder="/shared")
        )
        # Until it either finishes (it must not) or waits for the grants lock.
        while not await waiting_for_advisory_lock(engine):
            finished, _ = await asyncio.wait({uploading}, timeout=0.05)
            assert not finished
        assert not uploading.done()
    await asyncio.wait_for(uploading, 15)
    entries, _ = await news(client, bob, cursor)
    assert seen(entries) == [
        ("created", "/shared", str(grant.id)),
        ("created", "/shared/racing.txt", str(grant.id)),
    ]
