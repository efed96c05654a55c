"""Batches: many uploads started in one call and completed in another, each item judged as
the single routes judge it, with real bytes on the real storage."""

import asyncio
import os
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from dropp.core.config import Settings
from dropp.uploads.lookup import pending_post_keys
from dropp.uploads.schemas import MAX_BATCH_ITEMS
from tests.conftest import api_client
from tests.helpers import (
    Account,
    assert_problem,
    complete,
    download_bytes,
    owned_nodes,
    owned_revisions,
    part_urls,
    post_form,
    put_part,
    register_account,
    sha256_hex,
    start_upload,
    upload_file,
)

AppWith = Callable[..., AbstractAsyncContextManager[FastAPI]]


async def start_batch(
    api: httpx.AsyncClient,
    account: Account,
    items: Sequence[dict[str, Any]],
    headers: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    answer = await api.post(
        "/upload/batch", json={"items": list(items)}, headers={**account.headers, **(headers or {})}
    )
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["items"]
    assert len(found) == len(items)
    return found


async def complete_batch(
    api: httpx.AsyncClient, account: Account, items: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    answer = await api.post(
        "/upload/batch/complete", json={"items": list(items)}, headers=account.headers
    )
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["items"]
    assert len(found) == len(items)
    return found


async def post_all(
    web: httpx.AsyncClient, started: Sequence[dict[str, Any]], contents: Sequence[bytes]
) -> None:
    """POST each file to its form, eight at a time, as a desktop client would."""
    gate = asyncio.Semaphore(8)

    async def one(upload: dict[str, Any], data: bytes) -> int:
        async with gate:
            return (await post_form(web, upload, data)).status_code

    codes = await asyncio.gather(*(one(u, d) for u, d in zip(started, contents, strict=True)))
    assert set(codes) <= {200, 201, 204}, codes


def refused(item: dict[str, Any], status: int, code: str) -> dict[str, Any]:
    assert item["status"] == status, item
    error: dict[str, Any] = item["error"]
    assert (error["status"], error["code"]) == (status, code), error
    return error


async def test_a_hundred_small_files_go_up_in_two_api_calls(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    contents = [os.urandom(4096) for _ in range(MAX_BATCH_ITEMS)]
    items = [
        {"filename": f"photo-{n:03}.jpg", "size": len(data), "sha256": sha256_hex(data)}
        | ({"folder": "/holiday/day 2"} if n % 2 else {})
        for n, data in enumerate(contents)
    ]

    started = await start_batch(client, alice, items)
    assert [item["status"] for item in started] == [201] * len(items)
    uploads = [item["upload"] for item in started]
    await post_all(web, uploads, contents)
    done = await complete_batch(client, alice, [{"file_id": u["file_id"]} for u in uploads])

    assert [item["status"] for item in done] == [200] * len(items)
    for n, (item, upload) in enumerate(zip(done, uploads, strict=True)):
        folder = "/holiday/day 2" if n % 2 else ""
        assert item["file"]["file_id"] == upload["file_id"]
        assert item["file"]["path"] == f"{folder}/photo-{n:03}.jpg"
        assert item["file"]["status"] == "complete"
        assert item["file"]["content_hash"] == f"sha256:{sha256_hex(contents[n])}"
        assert "conflict" not in item["file"]
    # Each file holds its own bytes: the forms were not mixed up.
    for n in (0, 1, 37, 98, 99):
        got = await download_bytes(client, web, alice, uploads[n]["file_id"])
        assert got.content == contents[n]
    # What the single route answers for the same file, field for field.
    single = await complete(client, alice, uploads[5]["file_id"])
    assert single.json() == done[5]["file"]


async def test_refused_items_store_nothing_and_the_others_go_ahead(
    app_with: AppWith,
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    engine: AsyncEngine,
    alice: Account,
    bob: Account,
) -> None:
    bobs = await upload_file(client, web, bob, "bob.txt", b"bob's")
    good = [{"filename": "a.txt", "size": 10}, {"filename": "b.txt", "size": 20}]
    bad_name = {"filename": "no/slashes.txt", "size": 1}
    unknown_field = {"filename": "c.txt", "size": 1, "colour": "red"}
    # Last, so that the single route below sees the same reservations it saw.
    over_quota = {"filename": "big.bin", "size": 71, "folder": "/new"}
    async with app_with(default_quota_bytes=100) as app, api_client(app) as api:
        started = await start_batch(
            api, alice, [good[0], bad_name, good[1], unknown_field, over_quota]
        )

        assert [item["status"] for item in started] == [201, 422, 201, 422, 413]
        assert refused(started[1], 422, "validation_error")["errors"][0]["loc"] == [
            "body",
            "filename",
        ]
        assert refused(started[3], 422, "validation_error")["errors"][0]["type"] == (
            "extra_forbidden"
        )
        assert refused(started[4], 413, "quota_exceeded")["reserved"] == 30
        # Each refusal is exactly what POST /upload/ answers for that body.
        for index, body in ((1, bad_name), (3, unknown_field), (4, over_quota)):
            single = await api.post("/upload/", json=body, headers=alice.headers)
            assert (single.status_code, single.json()) == (
                started[index]["status"],
                started[index]["error"],
            )
        assert await owned_nodes(engine, alice.user_id) == 2
        assert await owned_revisions(engine, alice.user_id) == 2

        a, b = started[0]["upload"], started[2]["upload"]
        await post_all(web, [a], [b"a" * 10])
        done = await complete_batch(
            api,
            alice,
            [
                {"file_id": a["file_id"]},
                {"file_id": bobs["file_id"]},
                {"file_id": b["file_id"], "upload_id": b["upload_id"]},
                {"file_id": str(uuid.uuid4())},
            ],
        )

        assert [item["status"] for item in done] == [200, 404, 409, 404]
        assert done[0]["file"]["name"] == "a.txt"
        not_yours = refused(done[1], 404, "upload_not_found")
        assert not_yours == (await complete(api, alice, bobs["file_id"])).json()
        refused(done[2], 409, "upload_incomplete")
        refused(done[3], 404, "upload_not_found")
    # Bob's file is untouched; the upload without bytes is still pending and can finish.
    bob_file = await client.get(f"/files/{bobs['file_id']}", headers=bob.headers)
    assert bob_file.json()["revision_id"] == bobs["revision_id"]
    await post_all(web, [b], [b"b" * 20])
    again = await complete_batch(client, alice, [{"file_id": b["file_id"]}])
    assert again[0]["status"] == 200
    assert (await download_bytes(client, web, alice, b["file_id"])).content == b"b" * 20


async def test_an_item_with_the_bytes_the_file_holds_answers_200_complete(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    data = b"unchanged since last sync"
    kept = await upload_file(client, web, alice, "same.txt", data, sha256=sha256_hex(data))

    started = await start_batch(
        client,
        alice,
        [
            {"filename": "same.txt", "size": len(data), "sha256": sha256_hex(data)},
            {"filename": "other.txt", "size": len(data), "sha256": sha256_hex(data)},
        ],
    )

    assert [item["status"] for item in started] == [200, 201]
    same = started[0]["upload"]
    assert (same["status"], same["upload"], same["expires_at"]) == ("complete", None, None)
    assert (same["file_id"], same["upload_id"]) == (kept["file_id"], kept["revision_id"])
    assert started[1]["upload"]["status"] == "pending"


async def test_a_stale_base_revision_keeps_both_per_item(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    base = await upload_file(client, web, alice, "plan.txt", b"v1")
    newer = await upload_file(
        client, web, alice, "plan.txt", b"v2 from desktop", base_revision=base["revision_id"]
    )
    contents = [b"v2 from laptop", b"fresh"]

    started = await start_batch(
        client,
        alice,
        [
            {
                "filename": "plan.txt",
                "size": len(contents[0]),
                "device": "laptop",
                "base_revision": base["revision_id"],
            },
            {"filename": "fresh.txt", "size": len(contents[1])},
        ],
    )
    uploads = [item["upload"] for item in started]
    await post_all(web, uploads, contents)
    done = await complete_batch(client, alice, [{"file_id": u["file_id"]} for u in uploads])

    copy, fresh = done[0]["file"], done[1]["file"]
    assert copy["conflict"] == {
        "kind": "keep_both",
        "original_file_id": base["file_id"],
        "current_revision": newer["revision_id"],
    }
    assert copy["name"].startswith("plan (conflicted copy laptop ")
    assert (await download_bytes(client, web, alice, copy["file_id"])).content == contents[0]
    assert (await download_bytes(client, web, alice, base["file_id"])).content == (
        b"v2 from desktop"
    )
    assert "conflict" not in fresh


async def test_a_multipart_upload_completes_in_a_batch_from_the_parts_storage_holds(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    data = b"a small file sent in parts"
    started = await start_batch(
        client, alice, [{"filename": "p.bin", "size": len(data), "multipart": True}]
    )
    upload = started[0]["upload"]
    assert upload["upload"]["kind"] == "multipart"
    signed = await part_urls(client, alice, upload["file_id"], [1], sha256={"1": sha256_hex(data)})
    assert signed.status_code == 200, signed.text
    assert (await put_part(web, signed.json()["parts"][0], data)).status_code == 200

    done = await complete_batch(client, alice, [{"file_id": upload["file_id"]}])

    assert done[0]["status"] == 200, done
    assert (await download_bytes(client, web, alice, upload["file_id"])).content == data


async def test_an_unverified_account_gets_each_item_refused(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    assert settings.require_email_verification
    carol = await register_account(client, "carol@example.com")
    item = {"filename": "x.txt", "size": 1}

    started = await start_batch(client, carol, [item, item])

    single = await client.post("/upload/", json=item, headers=carol.headers)
    assert [i["status"] for i in started] == [403, 403]
    assert started[0]["error"] == started[1]["error"] == single.json()
    assert single.json()["code"] == "email_not_verified"
    assert await owned_nodes(engine, carol.user_id) == 0


async def test_a_malformed_batch_is_refused_whole(
    client: httpx.AsyncClient, engine: AsyncEngine, alice: Account
) -> None:
    one = {"filename": "x.txt", "size": 1}
    cases: list[tuple[str, Any]] = [
        ("/upload/batch", {"items": [one] * (MAX_BATCH_ITEMS + 1)}),
        ("/upload/batch", {"items": []}),
        ("/upload/batch", {"items": [one, "x.txt"]}),
        ("/upload/batch", {"items": one}),
        ("/upload/batch", {"items": [one], "parallel": 4}),
        ("/upload/batch/complete", {"items": [{"file_id": str(uuid.uuid4())}] * 101}),
        ("/upload/batch/complete", {"items": [{"file_id": "batch"}]}),
        (
            "/upload/batch/complete",
            {"items": [{"file_id": str(uuid.uuid4()), "parts": []}]},
        ),
    ]
    for path, body in cases:
        answer = await client.post(path, json=body, headers=alice.headers)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
    assert await owned_nodes(engine, alice.user_id) == 0
    assert_problem(
        await client.post("/upload/batch", json={"items": [one]}), 401, "not_authenticated"
    )


async def test_a_retry_with_the_same_idempotency_key_replays_the_batch(
    client: httpx.AsyncClient, engine: AsyncEngine, alice: Account
) -> None:
    items = [{"filename": f"{n}.txt", "size": n + 1} for n in range(5)]
    items.append({"filename": "bad/name", "size": 1})
    key = {"Idempotency-Key": str(uuid.uuid4())}

    first = await client.post(
        "/upload/batch", json={"items": items}, headers={**alice.headers, **key}
    )
    retry = await client.post(
        "/upload/batch", json={"items": items}, headers={**alice.headers, **key}
    )
    other = await client.post(
        "/upload/batch", json={"items": items[:2]}, headers={**alice.headers, **key}
    )

    assert first.status_code == retry.status_code == 200
    assert retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true"
    assert [item["status"] for item in first.json()["items"]] == [201] * 5 + [422]
    assert await owned_revisions(engine, alice.user_id) == 5
    assert_problem(other, 422, "idempotency_key_reused")


async def test_storage_is_asked_ahead_only_about_pending_posts_the_caller_may_complete(
    client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    alice: Account,
    bob: Account,
) -> None:
    """Batch complete asks storage about its items before it takes any lock: only about
    uploads that complete would judge, so another account's keys are never looked at."""
    mine = await start_upload(client, alice, "mine.txt", size=3, sha256=sha256_hex(b"abc"))
    undeclared = await start_upload(client, alice, "plain.txt", size=3)
    first = await start_upload(client, alice, "twice.txt", size=3)
    second = await start_upload(client, alice, "twice.txt", size=4)
    in_parts = await start_upload(client, alice, "parts.bin", size=3, multipart=True)
    bobs = await start_upload(client, bob, "bob.txt", size=3)
    assert first["file_id"] == second["file_id"]

    named = [
        mine,
        undeclared,
        first | {"upload_id": None},  # two pending: ambiguous without its upload id
        second,
        in_parts,  # completed from its parts, not by a HEAD
        bobs,
    ]
    async with sessionmaker() as session:
        keys = await pending_post_keys(
            session,
            uuid.UUID(alice.user_id),
            [
                (uuid.UUID(u["file_id"]), u["upload_id"] and uuid.UUID(u["upload_id"]))
                for u in named
            ],
        )

    assert {str(revision_id): declared for revision_id, (_, declared) in keys.items()} == {
        mine["upload_id"]: True,
        undeclared["upload_id"]: False,
        second["upload_id"]: False,
    }
    assert all(key.startswith(f"u/{alice.user_id}/") for key, _ in keys.values())
