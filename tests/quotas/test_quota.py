"""Quotas: pending uploads reserve, completion moves the reservation to used, expiry, failure
and deletion give bytes back, and the running totals always equal what the revisions hold."""

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.storage.s3 import Storage
from tests.conftest import api_client
from tests.helpers import (
    Account,
    assert_problem,
    complete,
    owned_nodes,
    post_form,
    start_upload,
    upload_file,
    verified_account,
)

AppWith = Callable[..., AbstractAsyncContextManager[FastAPI]]
STORED = (200, 201, 204)


@pytest.fixture
def quota_api(app_with: AppWith) -> Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]:
    """A client of an app with DEFAULT_QUOTA_BYTES (and any other setting) changed."""

    @asynccontextmanager
    async def start(quota: int | None, **changes: Any) -> AsyncIterator[httpx.AsyncClient]:
        async with app_with(default_quota_bytes=quota, **changes) as app, api_client(app) as api:
            yield api

    return start


async def totals(engine: AsyncEngine, account: Account) -> dict[str, int]:
    """The account's used bytes (checked against what its revisions hold) and what its pending
    uploads hold."""
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    """
                    SELECT used_bytes,
                      (SELECT coalesce(sum(r.size), 0) FROM file_revision r
                         JOIN node n ON n.id = r.node_id
                         WHERE n.owner_id = u.id AND r.state = 'complete') AS kept,
                      (SELECT coalesce(sum(r.reserved_bytes), 0) FROM file_revision r
                         JOIN node n ON n.id = r.node_id
                         WHERE n.owner_id = u.id AND r.state = 'pending') AS pending,
                      (SELECT coalesce(sum(r.reserved_bytes), 0) FROM file_revision r
                         JOIN node n ON n.id = r.node_id
                         WHERE n.owner_id = u.id AND r.state <> 'pending') AS settled
                    FROM user_account u WHERE id = :id
                    """
                ),
                {"id": UUID(account.user_id)},
            )
        ).one()
    assert row.used_bytes == row.kept, row
    assert row.settled == 0, row
    return {"used": row.used_bytes, "reserved": row.pending}


async def usage(api: httpx.AsyncClient, account: Account) -> dict[str, Any]:
    answer = await api.get("/me/usage", headers=account.headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def init(
    api: httpx.AsyncClient, account: Account, name: str, **fields: Any
) -> httpx.Response:
    return await api.post("/upload/", json={"filename": name, **fields}, headers=account.headers)


async def test_an_init_over_quota_is_refused_with_the_numbers_and_stores_nothing(
    quota_api: Any, web: httpx.AsyncClient, engine: AsyncEngine, alice: Account
) -> None:
    async with quota_api(100) as api:
        await upload_file(api, web, alice, "kept.bin", b"k" * 60)
        await start_upload(api, alice, "pending.bin", size=30)
        nodes = await owned_nodes(engine, alice.user_id)

        refused = await init(api, alice, "too-big.bin", size=11, folder="/new")

        body = assert_problem(refused, 413, "quota_exceeded")
        assert (body["used"], body["reserved"], body["quota"], body["requested"]) == (
            60,
            30,
            100,
            11,
        )
        assert await owned_nodes(engine, alice.user_id) == nodes
        assert await totals(engine, alice) == {"used": 60, "reserved": 30}
        fits = await init(api, alice, "fits.bin", size=10, folder="/new")
        assert fits.status_code == 201, fits.text
        assert await totals(engine, alice) == {"used": 60, "reserved": 40}


async def test_pending_uploads_reserve_their_declared_size(
    quota_api: Any, engine: AsyncEngine, alice: Account, bob: Account
) -> None:
    async with quota_api(100) as api:
        await start_upload(api, alice, "first.bin", size=60)

        second = await init(api, alice, "second.bin", size=50)
        third = await init(api, alice, "third.bin", size=40)
        bobs = await init(api, bob, "second.bin", size=50)

        assert_problem(second, 413, "quota_exceeded")
        assert third.status_code == 201, third.text
        assert bobs.status_code == 201, bobs.text
        assert await totals(engine, alice) == {"used": 0, "reserved": 100}
        assert await totals(engine, bob) == {"used": 0, "reserved": 50}


async def test_concurrent_inits_race_for_the_last_bytes(
    quota_api: Any, engine: AsyncEngine, alice: Account
) -> None:
    async with quota_api(100) as api:
        answers = await asyncio.gather(
            *(init(api, alice, f"racer-{n}.bin", size=30) for n in range(8)),
            *(init(api, alice, "same-name.bin", size=30) for _ in range(3)),
        )

        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [201] * 3 + [413] * 8, [a.text for a in answers]
        for answer in answers:
            if answer.status_code == 413:
                assert answer.json()["code"] == "quota_exceeded"
        assert await totals(engine, alice) == {"used": 0, "reserved": 90}
        # Winners may include several uploads of same-name.bin: one file, two pending uploads.
        winners = {a.json()["file_id"] for a in answers if a.status_code == 201}
        listed = await api.get("/list/?status=pending", headers=alice.headers)
        assert {f["file_id"] for f in listed.json()["files"]} == winners


async def test_complete_moves_the_reservation_to_used_with_the_real_size(
    quota_api: Any, web: httpx.AsyncClient, engine: AsyncEngine, alice: Account
) -> None:
    async with quota_api(1000) as api:
        sized = await start_upload(api, alice, "sized.txt", size=5)
        unsized = await start_upload(api, alice, "unsized.txt")
        assert await totals(engine, alice) == {"used": 0, "reserved": 1000}

        assert (await post_form(web, sized, b"hello")).status_code in STORED
        assert (await complete(api, alice, sized["file_id"])).status_code == 200
        assert await totals(engine, alice) == {"used": 5, "reserved": 995}
        assert (await post_form(web, unsized, b"x" * 42)).status_code in STORED
        done = await complete(api, alice, unsized["file_id"])
        again = await complete(api, alice, unsized["file_id"])

        assert done.status_code == again.status_code == 200
        assert done.json()["size"] == 42
        assert await totals(engine, alice) == {"used": 47, "reserved": 0}


async def test_an_expired_upload_releases_its_reservation(
    quota_api: Any, engine: AsyncEngine, alice: Account
) -> None:
    async with quota_api(100, upload_post_ttl_seconds=1) as api:
        started = await start_upload(api, alice, "late.bin", size=80)
        assert_problem(await init(api, alice, "blocked.bin", size=80), 413, "quota_exceeded")
        # SigV4 POST expiration is second-granular: wait well past it.
        await asyncio.sleep(2.5)

        expired = await complete(api, alice, started["file_id"])

        assert_problem(expired, 409, "upload_expired")
        assert await totals(engine, alice) == {"used": 0, "reserved": 0}
        assert (await init(api, alice, "now-fits.bin", size=80)).status_code == 201


async def test_a_failed_upload_releases_its_reservation(
    quota_api: Any, engine: AsyncEngine, storage: Storage, alice: Account
) -> None:
    async with quota_api(100) as api:
        started = await start_upload(api, alice, "short.bin", size=10)
        # A storage that let a wrong size through: written with storage's own credentials.
        key = started["upload"]["fields"]["key"]
        await storage.client.put_object(Bucket=storage.bucket, Key=key, Body=b"12345")

        failed = await complete(api, alice, started["file_id"])
        again = await complete(api, alice, started["file_id"])

        assert_problem(failed, 409, "upload_size_mismatch")
        assert_problem(again, 409, "upload_size_mismatch")
        assert await totals(engine, alice) == {"used": 0, "reserved": 0}


async def test_deleting_a_file_frees_every_revision_and_pending_reservation(
    quota_api: Any, web: httpx.AsyncClient, engine: AsyncEngine, alice: Account
) -> None:
    async with quota_api(100) as api:
        first = await upload_file(api, web, alice, "doc.txt", b"a" * 10)
        await upload_file(api, web, alice, "doc.txt", b"b" * 20)
        await start_upload(api, alice, "doc.txt", size=30)
        await upload_file(api, web, alice, "other.txt", b"c" * 7)
        assert await totals(engine, alice) == {"used": 37, "reserved": 30}

        deleted = await api.delete(f"/files/{first['file_id']}", headers=alice.headers)
        # The trash keeps the bytes, and counts them, until it is emptied.
        in_trash = await totals(engine, alice)
        purged = await api.delete(f"/trash/{first['file_id']}", headers=alice.headers)

        assert deleted.status_code == 204, deleted.text
        assert purged.status_code == 204, purged.text
        assert in_trash == {"used": 37, "reserved": 30}
        assert await totals(engine, alice) == {"used": 7, "reserved": 0}
        assert (await init(api, alice, "big.bin", size=93)).status_code == 201


async def test_an_upload_without_a_size_reserves_the_forms_maximum_capped_at_the_quota_left(
    quota_api: Any, web: httpx.AsyncClient, engine: AsyncEngine, alice: Account
) -> None:
    async with quota_api(100) as api:
        await upload_file(api, web, alice, "kept.bin", b"k" * 40)

        started = await start_upload(api, alice, "unsized.bin")

        assert await totals(engine, alice) == {"used": 40, "reserved": 60}
        too_much = await post_form(web, started, b"x" * 61)
        assert too_much.status_code == 400, too_much.text
        assert b"EntityTooLarge" in too_much.content
        body = assert_problem(await init(api, alice, "nothing-left.bin"), 413, "quota_exceeded")
        assert (body["used"], body["reserved"], body["quota"]) == (40, 60, 100)
        assert (await post_form(web, started, b"x" * 60)).status_code in STORED
        assert (await complete(api, alice, started["file_id"])).status_code == 200
        assert await totals(engine, alice) == {"used": 100, "reserved": 0}


async def test_an_upload_without_a_size_and_no_quota_reserves_the_size_limit(
    quota_api: Any, engine: AsyncEngine, alice: Account
) -> None:
    async with quota_api(None, max_upload_bytes=5000) as api:
        await start_upload(api, alice, "unsized.bin")
        await start_upload(api, alice, "sized.bin", size=300)

        assert await totals(engine, alice) == {"used": 0, "reserved": 5300}
        assert (await usage(api, alice))["quota"] is None


async def test_an_admin_sets_a_quota_and_resets_it_to_the_default(
    quota_api: Any, client: httpx.AsyncClient, engine: AsyncEngine, alice: Account
) -> None:
    root = await verified_account(client, engine, "root@example.com", role="admin")
    async with quota_api(200) as api:
        url = f"/admin/users/{alice.user_id}"

        set_quota = await api.patch(url, json={"quota_bytes": 50}, headers=root.headers)
        assert set_quota.status_code == 200, set_quota.text
        assert set_quota.json()["quota_bytes"] == 50
        assert (await usage(api, alice))["quota"] == 50
        body = assert_problem(await init(api, alice, "big.bin", size=60), 413, "quota_exceeded")
        assert body["quota"] == 50
        untouched = await api.patch(url, json={"role": "member"}, headers=root.headers)
        assert untouched.json()["quota_bytes"] == 50

        reset = await api.patch(url, json={"quota_bytes": None}, headers=root.headers)

        assert reset.status_code == 200, reset.text
        assert reset.json()["quota_bytes"] is None
        assert (await usage(api, alice))["quota"] == 200
        assert (await init(api, alice, "big.bin", size=60)).status_code == 201


@pytest.mark.parametrize(
    "quota", [-1, "50", 1.5, True, 2**63], ids=["negative", "string", "float", "bool", "huge"]
)
async def test_an_admin_quota_must_be_a_byte_count(
    quota: Any, client: httpx.AsyncClient, engine: AsyncEngine, alice: Account
) -> None:
    root = await verified_account(client, engine, "root@example.com", role="admin")

    refused = await client.patch(
        f"/admin/users/{alice.user_id}", json={"quota_bytes": quota}, headers=root.headers
    )

    assert_problem(refused, 422, "validation_error")
    async with engine.connect() as connection:
        stored = await connection.scalar(
            text("SELECT quota_bytes FROM user_account WHERE id = :id"),
            {"id": UUID(alice.user_id)},
        )
    assert stored is None


async def test_a_member_cannot_set_a_quota(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    refused = await client.patch(
        f"/admin/users/{alice.user_id}", json={"quota_bytes": 10**12}, headers=bob.headers
    )

    assert_problem(refused, 403, "admin_required")


async def test_usage_reports_files_bytes_reservations_and_content_types(
    quota_api: Any, web: httpx.AsyncClient, engine: AsyncEngine, alice: Account, bob: Account
) -> None:
    async with quota_api(10_000) as api:
        await upload_file(api, web, alice, "a.txt", b"a" * 10, content_type="text/plain")
        await upload_file(api, web, alice, "a.txt", b"a" * 15, content_type="text/plain")
        await upload_file(api, web, alice, "b.txt", b"b" * 5, content_type="text/plain")
        await upload_file(api, web, alice, "c.png", b"c" * 100, content_type="image/png")
        await start_upload(api, alice, "d.pdf", size=1000, content_type="application/pdf")
        await upload_file(api, web, bob, "e.png", b"e" * 999, content_type="image/png")

        mine = await usage(api, alice)

        assert mine == {
            "files": 4,
            "bytes": 130,
            "reserved": 1000,
            "quota": 10_000,
            "by_content_type": [
                {"content_type": "image/png", "files": 1, "bytes": 100},
                {"content_type": "text/plain", "files": 2, "bytes": 30},
            ],
        }
        assert await totals(engine, alice) == {"used": 130, "reserved": 1000}
        assert (await usage(api, bob))["bytes"] == 999


async def test_usage_needs_a_token(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/me/usage"), 401, "not_authenticated")


async def test_new_uploads_racing_the_completion_and_deletion_of_a_file_keep_totals_exact(
    quota_api: Any, web: httpx.AsyncClient, engine: AsyncEngine, alice: Account
) -> None:
    async with quota_api(10_000) as api:
        started = await start_upload(api, alice, "busy.bin", size=50)
        assert (await post_form(web, started, b"z" * 50)).status_code in STORED

        # Named by upload_id: the racing inits make the file's pending uploads ambiguous.
        answers = await asyncio.gather(
            complete(api, alice, started["file_id"], upload_id=started["upload_id"]),
            *(init(api, alice, "busy.bin", size=10) for _ in range(4)),
        )
        assert [a.status_code for a in answers] == [200, 201, 201, 201, 201]
        assert await totals(engine, alice) == {"used": 50, "reserved": 40}
        await api.delete(f"/files/{started['file_id']}", headers=alice.headers)
        racing = await asyncio.gather(
            api.delete(f"/trash/{started['file_id']}", headers=alice.headers),
            *(init(api, alice, "busy.bin", size=10) for _ in range(3)),
        )

        assert racing[0].status_code == 204, racing[0].text
        # An init that lost the race to the deletion either went first (its revision deleted
        # with the file) or made the file again; the totals match what is left either way.
        left = await totals(engine, alice)
        assert left["used"] == 0
        assert left["reserved"] in (0, 10, 20, 30)


async def test_a_duplicate_dropped_at_complete_releases_its_reservation_and_adds_nothing(
    quota_api: Any, web: httpx.AsyncClient, engine: AsyncEngine, alice: Account
) -> None:
    data = b"the same bytes twice"
    digest = hashlib.sha256(data).hexdigest()
    async with quota_api(100) as api:
        first = await start_upload(api, alice, "twice.txt", size=len(data), sha256=digest)
        second = await start_upload(api, alice, "twice.txt", size=len(data), sha256=digest)
        for started in (first, second):
            assert (await post_form(web, started, data)).status_code in STORED
        assert await totals(engine, alice) == {"used": 0, "reserved": 40}

        kept = await complete(api, alice, first["file_id"], upload_id=first["upload_id"])
        dropped = await complete(api, alice, second["file_id"], upload_id=second["upload_id"])

        assert kept.status_code == dropped.status_code == 200, dropped.text
        assert dropped.json()["revision_id"] == first["upload_id"]
        assert await totals(engine, alice) == {"used": 20, "reserved": 0}
