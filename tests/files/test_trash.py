import asyncio
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from dropp.core.config import Settings
from dropp.files import tree
from dropp.files.models import NodeKind
from dropp.storage.s3 import Storage
from dropp.sweeper.service import sweep
from tests.files.test_tree import change_rows, children, make_folder
from tests.helpers import (
    Account,
    assert_problem,
    complete,
    download_bytes,
    post_form,
    start_upload,
    upload_file,
)


async def trash(
    client: httpx.AsyncClient, account: Account, kind: str, node_id: str
) -> httpx.Response:
    return await client.delete(f"/{kind}/{node_id}", headers=account.headers)


async def restore(
    client: httpx.AsyncClient, account: Account, kind: str, node_id: str, **body: Any
) -> httpx.Response:
    return await client.post(
        f"/{kind}/{node_id}/restore", json=body or None, headers=account.headers
    )


async def trash_items(client: httpx.AsyncClient, account: Account) -> list[dict[str, Any]]:
    listed = await client.get("/trash", headers=account.headers)
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


async def storage_keys(engine: AsyncEngine, file_id: str) -> list[str]:
    async with engine.connect() as connection:
        rows = await connection.scalars(
            text("SELECT storage_key FROM file_revision WHERE node_id = :id"), {"id": UUID(file_id)}
        )
        return list(rows)


async def stored_versions(storage: Storage, keys: list[str]) -> int:
    return sum([len(await storage.key_versions(key)) for key in keys])


async def test_a_trashed_folders_files_vanish_everywhere(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    inside = await upload_file(client, web, alice, "f.txt", b"f", folder="/a/b")
    outside = await upload_file(client, web, alice, "keep.txt", b"k")
    folder = await make_folder(client, alice, "/a")

    trashed = await trash(client, alice, "folders", folder["folder_id"])

    assert trashed.status_code == 204, trashed.text
    listed = await client.get("/list/?status=all", headers=alice.headers)
    assert [f["file_id"] for f in listed.json()["files"]] == [outside["file_id"]]
    assert_problem(
        await client.get(f"/files/{inside['file_id']}", headers=alice.headers),
        404,
        "file_not_found",
    )
    assert_problem(
        await client.get(f"/download/{inside['file_id']}", headers=alice.headers),
        404,
        "file_not_found",
    )
    assert_problem(
        await client.get("/list/?folder=/a", headers=alice.headers), 404, "folder_not_found"
    )
    assert_problem(
        await client.get("/folders?path=/a/b", headers=alice.headers), 404, "folder_not_found"
    )
    assert await children(client, alice, "/") == ["keep.txt"]
    [item] = await trash_items(client, alice)
    assert (item["id"], item["kind"], item["original_path"]) == (
        folder["folder_id"],
        "folder",
        "/a",
    )
    trashed_at = datetime.fromisoformat(item["trashed_at"])
    assert datetime.fromisoformat(item["purge_at"]) - trashed_at == timedelta(days=30)
    # A trashed node cannot be trashed or moved again.
    assert (await trash(client, alice, "folders", folder["folder_id"])).status_code == 404
    moved = await client.patch(
        f"/files/{inside['file_id']}", json={"name": "g.txt"}, headers=alice.headers
    )
    assert_problem(moved, 404, "file_not_found")


async def test_deleting_a_file_trashes_it_and_restore_brings_it_back(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    alice: Account,
    storage: Storage,
    engine: AsyncEngine,
) -> None:
    done = await upload_file(client, web, alice, "doc.txt", b"precious", folder="/d")
    keys = await storage_keys(engine, done["file_id"])

    deleted = await trash(client, alice, "files", done["file_id"])
    while_trashed = await client.get(f"/files/{done['file_id']}", headers=alice.headers)
    restored = await restore(client, alice, "files", done["file_id"])

    assert deleted.status_code == 204
    assert while_trashed.status_code == 404
    # Bytes stay while the file is in the trash.
    assert await stored_versions(storage, keys) == 1
    assert restored.status_code == 200, restored.text
    assert restored.json()["path"] == "/d/doc.txt"
    assert (await download_bytes(client, web, alice, done["file_id"])).content == b"precious"
    assert await trash_items(client, alice) == []
    assert (await change_rows(engine, alice))[-2:] == [
        ("deleted", "file", "/d/doc.txt"),
        ("restored", "file", "/d/doc.txt"),
    ]
    # Only trash roots can be restored; a live file is not in the trash.
    assert_problem(await restore(client, alice, "files", done["file_id"]), 404, "not_in_trash")


async def test_uploading_to_a_trashed_path_makes_a_new_file(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    old = await upload_file(client, web, alice, "f.txt", b"old", folder="/a")
    folder = await make_folder(client, alice, "/a")
    await trash(client, alice, "folders", folder["folder_id"])

    new = await upload_file(client, web, alice, "f.txt", b"new", folder="/a")
    new_folder = await make_folder(client, alice, "/a")

    assert new["file_id"] != old["file_id"]
    assert new_folder["folder_id"] != folder["folder_id"]
    assert new["path"] == "/a/f.txt"
    assert (await download_bytes(client, web, alice, new["file_id"])).content == b"new"
    # Restoring the old folder now collides with the new one.
    refused = await restore(client, alice, "folders", folder["folder_id"])
    assert assert_problem(refused, 409, "name_taken")["conflicting_id"] == new_folder["folder_id"]


async def test_restore_brings_back_exactly_what_was_trashed_with_it(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, engine: AsyncEngine
) -> None:
    kept = await upload_file(client, web, alice, "kept.txt", b"k", folder="/a/sub")
    earlier = await upload_file(client, web, alice, "earlier.txt", b"e", folder="/a")
    folder = await make_folder(client, alice, "/a")
    await trash(client, alice, "files", earlier["file_id"])
    await trash(client, alice, "folders", folder["folder_id"])
    assert [i["original_path"] for i in await trash_items(client, alice)] == [
        "/a",
        "/a/earlier.txt",
    ]

    restored = await restore(client, alice, "folders", folder["folder_id"])

    assert restored.status_code == 200, restored.text
    assert restored.json()["path"] == "/a"
    shown = await client.get(f"/files/{kept['file_id']}", headers=alice.headers)
    assert shown.json()["path"] == "/a/sub/kept.txt"
    assert await children(client, alice, "/a") == ["sub"]
    # The file trashed on its own earlier stays in the trash, restorable into the folder.
    assert [i["original_path"] for i in await trash_items(client, alice)] == ["/a/earlier.txt"]
    back = await restore(client, alice, "files", earlier["file_id"])
    assert back.json()["path"] == "/a/earlier.txt"
    # One `deleted` per trash root; nothing for what they held.
    rows = await change_rows(engine, alice)
    assert [r for r in rows if r[0] in ("deleted", "restored")] == [
        ("deleted", "file", "/a/earlier.txt"),
        ("deleted", "folder", "/a"),
        ("restored", "folder", "/a"),
        ("restored", "file", "/a/earlier.txt"),
    ]


async def test_restore_into_a_trashed_folder_goes_to_the_top_level(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    done = await upload_file(client, web, alice, "x.txt", b"x", folder="/a")
    folder = await make_folder(client, alice, "/a")
    await trash(client, alice, "files", done["file_id"])
    await trash(client, alice, "folders", folder["folder_id"])

    restored = await restore(client, alice, "files", done["file_id"])

    assert restored.json()["path"] == "/x.txt"
    assert [i["original_path"] for i in await trash_items(client, alice)] == ["/a"]


async def test_restore_when_the_name_is_taken_is_409_unless_autorename(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    old = await upload_file(client, web, alice, "report.pdf", b"old")
    await trash(client, alice, "files", old["file_id"])
    new = await upload_file(client, web, alice, "report.pdf", b"new")

    refused = await restore(client, alice, "files", old["file_id"])
    renamed = await restore(client, alice, "files", old["file_id"], autorename=True)

    assert assert_problem(refused, 409, "name_taken")["conflicting_id"] == new["file_id"]
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["path"] == "/report (2).pdf"
    assert await children(client, alice, "/") == ["report (2).pdf", "report.pdf"]


async def test_trash_is_paged_newest_first(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    ids = []
    for name in ("1.txt", "2.txt", "3.txt"):
        done = await upload_file(client, web, alice, name, b"x")
        await trash(client, alice, "files", done["file_id"])
        ids.append(done["file_id"])

    first = await client.get("/trash?limit=2", headers=alice.headers)
    rest = await client.get(
        "/trash", params={"limit": 2, "cursor": first.json()["next_cursor"]}, headers=alice.headers
    )
    bad = await client.get("/trash?cursor=nope", headers=alice.headers)

    assert [i["id"] for i in first.json()["items"]] == [ids[2], ids[1]]
    assert [i["id"] for i in rest.json()["items"]] == [ids[0]]
    assert rest.json()["next_cursor"] is None
    assert_problem(bad, 400, "invalid_cursor")


async def test_empty_trash_deletes_records_and_stored_objects(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    alice: Account,
    storage: Storage,
    engine: AsyncEngine,
) -> None:
    inside = await upload_file(client, web, alice, "in.txt", b"inside", folder="/a")
    await upload_file(client, web, alice, "in.txt", b"second revision", folder="/a")
    alone = await upload_file(client, web, alice, "alone.txt", b"alone")
    live = await upload_file(client, web, alice, "live.txt", b"live")
    folder = await make_folder(client, alice, "/a")
    keys = await storage_keys(engine, inside["file_id"]) + await storage_keys(
        engine, alone["file_id"]
    )
    await trash(client, alice, "folders", folder["folder_id"])
    await trash(client, alice, "files", alone["file_id"])
    assert await stored_versions(storage, keys) == 3

    emptied = await client.delete("/trash", headers=alice.headers)

    assert emptied.status_code == 204
    assert await stored_versions(storage, keys) == 0
    assert await trash_items(client, alice) == []
    async with engine.connect() as connection:
        names = list(
            await connection.scalars(
                text("SELECT name FROM node WHERE owner_id = :o"), {"o": UUID(alice.user_id)}
            )
        )
    assert names == ["live.txt"]
    usage = (await client.get("/me/usage", headers=alice.headers)).json()
    assert (usage["files"], usage["bytes"]) == (1, len(b"live"))
    assert (await download_bytes(client, web, alice, live["file_id"])).content == b"live"
    assert_problem(
        await restore(client, alice, "folders", folder["folder_id"]), 404, "not_in_trash"
    )


async def test_purging_one_trash_item(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    alice: Account,
    storage: Storage,
    engine: AsyncEngine,
) -> None:
    gone = await upload_file(client, web, alice, "gone.txt", b"g")
    stays = await upload_file(client, web, alice, "stays.txt", b"s")
    keys = await storage_keys(engine, gone["file_id"])
    await trash(client, alice, "files", gone["file_id"])
    await trash(client, alice, "files", stays["file_id"])

    purged = await client.delete(f"/trash/{gone['file_id']}", headers=alice.headers)
    malformed = await client.delete(f"/trash/{stays['file_id']}x", headers=alice.headers)
    live = await upload_file(client, web, alice, "live.txt", b"l")
    not_trashed = await client.delete(f"/trash/{live['file_id']}", headers=alice.headers)

    assert purged.status_code == 204
    assert await stored_versions(storage, keys) == 0
    assert [i["id"] for i in await trash_items(client, alice)] == [stays["file_id"]]
    assert_problem(malformed, 422, "validation_error")
    assert_problem(not_trashed, 404, "not_in_trash")
    again = await client.delete(f"/trash/{gone['file_id']}", headers=alice.headers)
    assert_problem(again, 404, "not_in_trash")


async def test_the_sweeper_purges_trash_past_retention(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    alice: Account,
    storage: Storage,
    engine: AsyncEngine,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    old = await upload_file(client, web, alice, "old.txt", b"old", folder="/f")
    recent = await upload_file(client, web, alice, "recent.txt", b"recent")
    folder = await make_folder(client, alice, "/f")
    keys = await storage_keys(engine, old["file_id"])
    await trash(client, alice, "folders", folder["folder_id"])
    await trash(client, alice, "files", recent["file_id"])
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE node SET trashed_at = trashed_at - interval '31 days' "
                "WHERE owner_id = :o AND trashed_at IS NOT NULL AND id <> :recent"
            ),
            {"o": UUID(alice.user_id), "recent": UUID(recent["file_id"])},
        )

    summary = await sweep(sessionmaker, storage, settings)

    assert summary.trash_purged == 1
    assert summary.errors == 0
    assert await stored_versions(storage, keys) == 0
    assert [i["id"] for i in await trash_items(client, alice)] == [recent["file_id"]]
    usage = (await client.get("/me/usage", headers=alice.headers)).json()
    assert (usage["files"], usage["bytes"]) == (1, len(b"recent"))


async def test_another_users_trash_is_out_of_reach(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    done = await upload_file(client, web, alice, "private.txt", b"p")
    folder = await make_folder(client, alice, "/secret")

    assert (await trash(client, bob, "files", done["file_id"])).status_code == 404
    assert (await trash(client, bob, "folders", folder["folder_id"])).status_code == 404
    await trash(client, alice, "files", done["file_id"])
    await trash(client, alice, "folders", folder["folder_id"])

    answers = [
        await restore(client, bob, "files", done["file_id"]),
        await restore(client, bob, "folders", folder["folder_id"]),
        await client.delete(f"/trash/{done['file_id']}", headers=bob.headers),
    ]
    emptied = await client.delete("/trash", headers=bob.headers)

    assert [a.status_code for a in answers] == [404] * 3
    assert emptied.status_code == 204
    assert await trash_items(client, bob) == []
    assert len(await trash_items(client, alice)) == 2
    assert (await restore(client, alice, "files", done["file_id"])).status_code == 200


# --- uploads and the trash ------------------------------------------------------------------


async def test_an_upload_started_while_its_folder_is_trashed_lands_in_a_live_folder(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, engine: AsyncEngine
) -> None:
    folder = await make_folder(client, alice, "/inbox")
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    async with sessionmaker() as session, session.begin():
        # The trash is under way (its transaction holds the tree lock) when the upload starts.
        await tree.trash_node(
            session, UUID(alice.user_id), UUID(folder["folder_id"]), NodeKind.FOLDER
        )
        started = asyncio.create_task(
            client.post(
                "/upload/", json={"filename": "late.txt", "folder": "/inbox"}, headers=alice.headers
            )
        )
        await asyncio.sleep(0.5)
        assert not started.done(), "upload-init should wait for the trash to commit"
    answer = await started
    assert answer.status_code == 201, answer.text
    upload = answer.json()
    posted = await post_form(web, upload, b"late")
    assert posted.status_code in (200, 201, 204), posted.text
    assert (await complete(client, alice, upload["file_id"])).status_code == 200

    assert await children(client, alice, "/inbox") == ["late.txt"]
    [trashed] = await trash_items(client, alice)
    assert trashed["id"] == folder["folder_id"]
    async with engine.connect() as connection:
        parent_trashed = await connection.scalar(
            text(
                "SELECT parent.trashed_at FROM node JOIN node AS parent "
                "ON parent.id = node.parent_id WHERE node.id = :id"
            ),
            {"id": UUID(upload["file_id"])},
        )
    assert parent_trashed is None


async def test_an_upload_completed_after_its_file_was_trashed_is_kept_in_the_trash(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, engine: AsyncEngine
) -> None:
    first = await upload_file(client, web, alice, "notes.txt", b"one")
    started = await start_upload(client, alice, "notes.txt", size=3)
    assert (await trash(client, alice, "files", first["file_id"])).status_code == 204
    posted = await post_form(web, started, b"two")
    assert posted.status_code in (200, 201, 204), posted.text
    before = await change_rows(engine, alice)

    completed = await complete(client, alice, first["file_id"])

    assert completed.status_code == 200, completed.text
    body = completed.json()
    assert body["in_trash"] is True
    assert body["revision_id"] == started["upload_id"]
    assert await change_rows(engine, alice) == before, "a trashed file is not in the feed"
    restored = await restore(client, alice, "files", first["file_id"])
    assert restored.status_code == 200, restored.text
    assert (await download_bytes(client, web, alice, first["file_id"])).content == b"two"
    async with engine.connect() as connection:
        last = (
            await connection.execute(
                text(
                    "SELECT change, revision_id FROM change WHERE user_id = :user "
                    "ORDER BY id DESC LIMIT 1"
                ),
                {"user": UUID(alice.user_id)},
            )
        ).one()
    assert (last.change, str(last.revision_id)) == ("restored", started["upload_id"])


async def test_cancelling_the_upload_of_a_trashed_file_removes_it(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, engine: AsyncEngine
) -> None:
    started = await start_upload(client, alice, "draft.txt", size=5)
    folder_listing = await client.get("/folders", params={"path": "/"}, headers=alice.headers)
    assert [item["name"] for item in folder_listing.json()["items"]] == ["draft.txt"]
    assert (await trash(client, alice, "files", started["file_id"])).status_code == 204

    cancelled = await client.delete(f"/upload/{started['file_id']}", headers=alice.headers)

    assert cancelled.status_code == 204, cancelled.text
    assert await trash_items(client, alice) == []
    assert await storage_keys(engine, started["file_id"]) == []
