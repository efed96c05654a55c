"""A file's revisions: listing, downloading and restoring old ones, and retention."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from dropp.core.config import Settings
from dropp.storage.s3 import Storage
from dropp.sweeper.service import sweep
from tests.helpers import (
    Account,
    assert_problem,
    download_bytes,
    sha256_hex,
    upload_file,
)

VERSIONS = [b"first draft", b"second draft, longer", b"third and final draft!"]


async def three_revisions(
    client: httpx.AsyncClient, web: httpx.AsyncClient, account: Account
) -> str:
    file_id = ""
    for number, data in enumerate(VERSIONS, start=1):
        done = await upload_file(
            client, web, account, "notes.txt", data, sha256=sha256_hex(data), device=f"pc-{number}"
        )
        file_id = done["file_id"]
    return file_id


async def revisions(
    client: httpx.AsyncClient, account: Account, file_id: str, **params: Any
) -> dict[str, Any]:
    listed = await client.get(f"/files/{file_id}/revisions", params=params, headers=account.headers)
    assert listed.status_code == 200, listed.text
    body: dict[str, Any] = listed.json()
    return body


async def used_bytes(client: httpx.AsyncClient, account: Account) -> int:
    usage = await client.get("/me/usage", headers=account.headers)
    assert usage.status_code == 200, usage.text
    used: int = usage.json()["bytes"]
    return used


async def test_three_uploads_to_one_path_are_three_revisions_newest_first(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    file_id = await three_revisions(client, web, alice)

    listed = (await revisions(client, alice, file_id))["revisions"]

    assert [r["size"] for r in listed] == [len(d) for d in reversed(VERSIONS)]
    assert [r["device"] for r in listed] == ["pc-3", "pc-2", "pc-1"]
    assert [r["content_hash"] for r in listed] == [
        f"sha256:{sha256_hex(d)}" for d in reversed(VERSIONS)
    ]
    assert [r["current"] for r in listed] == [True, False, False]
    assert all(r["content_type"] == "text/plain" for r in listed)
    current = (await client.get(f"/files/{file_id}", headers=alice.headers)).json()
    assert current["revision_id"] == listed[0]["revision_id"]


async def test_revisions_are_paginated_with_a_cursor(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    file_id = await three_revisions(client, web, alice)
    everything = (await revisions(client, alice, file_id))["revisions"]

    first = await revisions(client, alice, file_id, limit=2)
    second = await revisions(client, alice, file_id, limit=2, cursor=first["next_cursor"])

    assert first["next_cursor"] is not None
    assert second["next_cursor"] is None
    assert first["revisions"] + second["revisions"] == everything
    bad = await client.get(
        f"/files/{file_id}/revisions", params={"cursor": "nonsense"}, headers=alice.headers
    )
    assert_problem(bad, 400, "invalid_cursor")


async def test_an_old_revision_downloads_its_own_bytes(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    file_id = await three_revisions(client, web, alice)
    oldest = (await revisions(client, alice, file_id))["revisions"][-1]["revision_id"]

    signed = await client.get(
        f"/files/{file_id}/revisions/{oldest}/download", headers=alice.headers
    )
    assert signed.status_code == 200, signed.text
    fetched = await web.get(signed.json()["url"])
    assert fetched.content == VERSIONS[0]
    assert "attachment" in fetched.headers["content-disposition"]
    assert "notes.txt" in fetched.headers["content-disposition"]

    redirected = await client.get(
        f"/files/{file_id}/revisions/{oldest}/download",
        params={"redirect": "true"},
        headers=alice.headers,
    )
    assert redirected.status_code == 302
    assert (await web.get(redirected.headers["location"])).content == VERSIONS[0]
    # The file itself still serves its newest bytes.
    assert (await download_bytes(client, web, alice, file_id)).content == VERSIONS[-1]


async def test_restoring_an_old_revision_makes_its_bytes_the_newest(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, engine: AsyncEngine
) -> None:
    file_id = await three_revisions(client, web, alice)
    oldest = (await revisions(client, alice, file_id))["revisions"][-1]
    used_before = await used_bytes(client, alice)

    restored = await client.post(
        f"/files/{file_id}/revisions/{oldest['revision_id']}/restore",
        json={"device": "laptop"},
        headers=alice.headers,
    )

    assert restored.status_code == 200, restored.text
    body = restored.json()
    assert body["file_id"] == file_id
    assert body["revision_id"] != oldest["revision_id"]
    assert body["size"] == len(VERSIONS[0])
    assert body["content_hash"] == oldest["content_hash"]
    listed = (await revisions(client, alice, file_id))["revisions"]
    assert len(listed) == 4
    assert listed[0]["revision_id"] == body["revision_id"]
    assert (listed[0]["current"], listed[0]["device"]) == (True, "laptop")
    assert (await download_bytes(client, web, alice, file_id)).content == VERSIONS[0]
    assert await used_bytes(client, alice) == used_before + len(VERSIONS[0])
    async with engine.connect() as connection:
        kinds = (
            await connection.execute(
                text("SELECT change, revision_id FROM change WHERE node_id = :id ORDER BY id DESC"),
                {"id": UUID(file_id)},
            )
        ).all()
    assert kinds[0] == ("updated", UUID(body["revision_id"]))


async def test_restoring_the_current_bytes_changes_nothing(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    file_id = await three_revisions(client, web, alice)
    newest = (await revisions(client, alice, file_id))["revisions"][0]["revision_id"]
    used_before = await used_bytes(client, alice)

    restored = await client.post(
        f"/files/{file_id}/revisions/{newest}/restore", headers=alice.headers
    )

    assert restored.status_code == 200, restored.text
    assert restored.json()["revision_id"] == newest
    assert len((await revisions(client, alice, file_id))["revisions"]) == 3
    assert await used_bytes(client, alice) == used_before


async def test_a_restore_that_does_not_fit_the_quota_is_refused_and_stores_nothing(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    alice: Account,
    engine: AsyncEngine,
) -> None:
    file_id = await three_revisions(client, web, alice)
    oldest = (await revisions(client, alice, file_id))["revisions"][-1]["revision_id"]
    used = await used_bytes(client, alice)
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE user_account SET quota_bytes = :q WHERE id = :id"),
            {"q": used + 1, "id": UUID(alice.user_id)},
        )

    refused = await client.post(
        f"/files/{file_id}/revisions/{oldest}/restore", headers=alice.headers
    )

    assert_problem(refused, 413, "quota_exceeded")
    assert len((await revisions(client, alice, file_id))["revisions"]) == 3
    assert await used_bytes(client, alice) == used


async def test_another_users_files_and_revisions_are_not_found(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    file_id = await three_revisions(client, web, alice)
    revision_id = (await revisions(client, alice, file_id))["revisions"][-1]["revision_id"]
    bobs = await upload_file(client, web, bob, "bob.txt", b"bob's")

    for method, path in [
        ("GET", f"/files/{file_id}/revisions"),
        ("GET", f"/files/{file_id}/revisions/{revision_id}/download"),
        ("POST", f"/files/{file_id}/revisions/{revision_id}/restore"),
    ]:
        answer = await client.request(method, path, headers=bob.headers)
        assert_problem(answer, 404, "file_not_found")
    # Alice's revision under Bob's own file is no revision of his.
    for method, path in [
        ("GET", f"/files/{bobs['file_id']}/revisions/{revision_id}/download"),
        ("POST", f"/files/{bobs['file_id']}/revisions/{revision_id}/restore"),
        ("GET", f"/files/{bobs['file_id']}/revisions/{uuid4()}/download"),
    ]:
        answer = await client.request(method, path, headers=bob.headers)
        assert_problem(answer, 404, "revision_not_found")
    assert len((await revisions(client, alice, file_id))["revisions"]) == 3


async def stored(storage: Storage, engine: AsyncEngine, file_id: str) -> dict[str, bool]:
    """Each revision of the file (by id) and whether storage still holds its version."""
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                text("SELECT id, storage_key, version_id FROM file_revision"),
            )
        ).all()
    return {
        str(row.id): await storage.head(row.storage_key, row.version_id) is not None for row in rows
    }


async def test_retention_by_count_drops_the_oldest_revisions(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    alice: Account,
    engine: AsyncEngine,
    storage: Storage,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    file_id = await three_revisions(client, web, alice)
    listed = (await revisions(client, alice, file_id))["revisions"]
    ids = [r["revision_id"] for r in listed]
    assert all((await stored(storage, engine, file_id)).values())
    used_before = await used_bytes(client, alice)

    summary = await sweep(
        sessionmaker, storage, settings.model_copy(update={"revision_keep_count": 1})
    )

    assert summary.revisions_pruned == 1
    assert [r["revision_id"] for r in (await revisions(client, alice, file_id))["revisions"]] == (
        ids[:2]
    )
    versions = await stored(storage, engine, file_id)
    assert set(versions) == set(ids[:2])
    assert all(versions.values())
    assert await used_bytes(client, alice) == used_before - len(VERSIONS[0])

    summary = await sweep(
        sessionmaker, storage, settings.model_copy(update={"revision_keep_count": 0})
    )
    assert summary.revisions_pruned == 1
    assert [r["revision_id"] for r in (await revisions(client, alice, file_id))["revisions"]] == [
        ids[0]
    ]
    assert await used_bytes(client, alice) == len(VERSIONS[-1])
    assert (await download_bytes(client, web, alice, file_id)).content == VERSIONS[-1]


async def test_retention_by_age_drops_old_revisions_and_their_stored_versions(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    alice: Account,
    engine: AsyncEngine,
    storage: Storage,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    file_id = await three_revisions(client, web, alice)
    ids = [r["revision_id"] for r in (await revisions(client, alice, file_id))["revisions"]]
    async with engine.begin() as connection:
        # The two older revisions were completed ten days ago, and so was the current one:
        # the current revision is kept whatever its age.
        await connection.execute(
            text("UPDATE file_revision SET completed_at = :at WHERE id = ANY(:ids)"),
            {"at": datetime.now(UTC) - timedelta(days=10), "ids": [UUID(i) for i in ids]},
        )
        keys = dict(
            (
                await connection.execute(
                    text("SELECT id, storage_key FROM file_revision WHERE id = ANY(:ids)"),
                    {"ids": [UUID(i) for i in ids[1:]]},
                )
            ).all()
        )
    aged = settings.model_copy(update={"revision_keep_count": None, "revision_keep_days": 11})
    assert (await sweep(sessionmaker, storage, aged)).revisions_pruned == 0

    summary = await sweep(
        sessionmaker,
        storage,
        settings.model_copy(update={"revision_keep_count": None, "revision_keep_days": 7}),
    )

    assert summary.revisions_pruned == 2
    listed = (await revisions(client, alice, file_id))["revisions"]
    assert [r["revision_id"] for r in listed] == [ids[0]]
    for key in keys.values():
        assert await storage.key_versions(key) == []
    assert await used_bytes(client, alice) == len(VERSIONS[-1])


async def test_storage_copies_a_version_in_ranges_above_the_single_copy_limit(
    storage: Storage,
) -> None:
    # The 5 GiB limit of one CopyObject, scaled down to 5 MiB parts (storage's minimum).
    data = bytes(range(256)) * (11 * 1024 * 1024 // 256 + 3)
    key, copy_key = f"test/{uuid4().hex}", f"test/{uuid4().hex}"
    await storage.client.put_object(Bucket=storage.bucket, Key=key, Body=data)
    original = await storage.head(key)
    assert original is not None
    assert original.version_id is not None
    await storage.client.put_object(Bucket=storage.bucket, Key=key, Body=b"a later version")
    try:
        copied = await storage.copy_version(
            key,
            original.version_id,
            copy_key,
            size=len(data),
            content_type="application/octet-stream",
            part_size=5 * 1024 * 1024,
        )
        assert copied.size == len(data)
        fetched = await storage.client.get_object(
            Bucket=storage.bucket, Key=copy_key, VersionId=copied.version_id or "null"
        )
        assert await fetched["Body"].read() == data
    finally:
        await storage.delete(key)
        await storage.delete(copy_key)


async def test_a_restore_with_a_bad_device_name_is_refused(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    file_id = await three_revisions(client, web, alice)
    oldest = (await revisions(client, alice, file_id))["revisions"][-1]["revision_id"]

    refused = await client.post(
        f"/files/{file_id}/revisions/{oldest}/restore",
        json={"device": "a/b"},
        headers=alice.headers,
    )

    assert_problem(refused, 422, "validation_error")
    assert len((await revisions(client, alice, file_id))["revisions"]) == 3
