import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from dropp import server_commands
from dropp.core.config import Settings
from dropp.storage.s3 import Storage
from dropp.sweeper.service import sweep
from dropp.sweeper.summary import SweepSummary
from tests.conftest import api_client
from tests.helpers import (
    Account,
    assert_problem,
    complete,
    download_bytes,
    post_form,
    start_upload,
    upload_file,
)
from tests.sweeper.conftest import end_window


async def run_sweep(
    sessionmaker: async_sessionmaker[AsyncSession], storage: Storage, settings: Settings
) -> SweepSummary:
    return await sweep(sessionmaker, storage, settings)


async def expire_file(engine: AsyncEngine, file_id: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE node SET expires_at = now() - interval '1 second' WHERE id = :id"),
            {"id": UUID(file_id)},
        )


async def state_of(engine: AsyncEngine, upload_id: str) -> str:
    async with engine.connect() as connection:
        state = await connection.scalar(
            text("SELECT state FROM file_revision WHERE id = :id"), {"id": UUID(upload_id)}
        )
    return str(state)


def key_of(upload: dict[str, Any]) -> str:
    key: str = upload["upload"]["fields"]["key"]
    return key


async def test_a_crash_between_the_storage_upload_and_complete_is_completed(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    storage: Storage,
    now_settings: Settings,
    alice: Account,
) -> None:
    started = await start_upload(client, alice, "crash.txt", size=5)
    assert (await post_form(web, started, b"crash")).status_code in (200, 201, 204)
    await end_window(engine, started["upload_id"])

    summary = await run_sweep(sessionmaker, storage, now_settings)

    assert summary.uploads_completed == 1
    assert await state_of(engine, started["upload_id"]) == "complete"
    shown = await client.get(f"/files/{started['file_id']}", headers=alice.headers)
    assert (shown.json()["status"], shown.json()["size"]) == ("complete", 5)
    assert (await download_bytes(client, web, alice, started["file_id"])).content == b"crash"
    # The client's late complete gets the same answer it would have had.
    late = await complete(client, alice, started["file_id"])
    assert late.status_code == 200
    assert late.json() == shown.json()


async def test_an_abandoned_upload_is_expired_and_nothing_of_it_stays(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    storage: Storage,
    now_settings: Settings,
    alice: Account,
) -> None:
    started = await start_upload(client, alice, "abandoned.txt", size=5)
    await end_window(engine, started["upload_id"])

    summary = await run_sweep(sessionmaker, storage, now_settings)

    assert summary.uploads_expired == 1
    assert await state_of(engine, started["upload_id"]) == "expired"
    assert await storage.key_versions(key_of(started)) == []
    assert_problem(await complete(client, alice, started["file_id"]), 409, "upload_expired")


async def test_a_wrong_size_object_is_discarded_and_deleted(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    storage: Storage,
    now_settings: Settings,
    alice: Account,
) -> None:
    started = await start_upload(client, alice, "short.bin", size=10)
    # Storage refuses another size on the form; its own credentials stand in for one that
    # let it through.
    await storage.client.put_object(Bucket=storage.bucket, Key=key_of(started), Body=b"12345")
    await end_window(engine, started["upload_id"])

    summary = await run_sweep(sessionmaker, storage, now_settings)

    assert (summary.uploads_completed, summary.uploads_expired) == (0, 1)
    # The outcome a late complete would have had: failed, for the wrong size.
    assert await state_of(engine, started["upload_id"]) == "failed"
    assert await storage.key_versions(key_of(started)) == []
    late = assert_problem(
        await complete(client, alice, started["file_id"]), 409, "upload_size_mismatch"
    )
    assert late["actual_size"] == 5


async def test_an_upload_within_its_grace_period_is_left_alone(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    storage: Storage,
    settings: Settings,
    alice: Account,
) -> None:
    started = await start_upload(client, alice, "slow.txt", size=4)
    await post_form(web, started, b"slow")
    await end_window(engine, started["upload_id"])

    summary = await run_sweep(
        sessionmaker, storage, settings.model_copy(update={"sweep_grace_seconds": 3600})
    )

    assert (summary.uploads_completed, summary.uploads_expired) == (0, 0)
    assert await state_of(engine, started["upload_id"]) == "pending"
    assert await storage.head(key_of(started)) is not None


async def test_an_orphan_object_is_deleted_and_a_referenced_one_kept(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    storage: Storage,
    settings: Settings,
    now_settings: Settings,
    alice: Account,
) -> None:
    kept = await upload_file(client, web, alice, "kept.txt", b"keep me")
    pending = await start_upload(client, alice, "pending.txt", size=3)
    orphan = f"u/{uuid.uuid4()}/{uuid.uuid4().hex}"
    outside = f"other/{uuid.uuid4().hex}"
    for key in (orphan, outside):
        await storage.client.put_object(Bucket=storage.bucket, Key=key, Body=b"left behind")
        await storage.client.put_object(Bucket=storage.bucket, Key=key, Body=b"twice")

    young = await run_sweep(
        sessionmaker, storage, settings.model_copy(update={"sweep_grace_seconds": 3600})
    )
    assert len(await storage.key_versions(orphan)) == 2
    summary = await run_sweep(sessionmaker, storage, now_settings)

    assert young.orphan_objects_deleted == 0
    assert summary.orphan_objects_deleted >= 1
    assert await storage.key_versions(orphan) == []
    # Outside Dropp's prefix: not Dropp's to clean.
    assert len(await storage.key_versions(outside)) == 2
    await storage.delete(outside)
    assert (await download_bytes(client, web, alice, kept["file_id"])).content == b"keep me"
    # A pending upload's key holds no object yet; its form still works after the sweep.
    assert (await post_form(web, pending, b"new")).status_code in (200, 201, 204)
    assert (await complete(client, alice, pending["file_id"])).status_code == 200


async def test_a_stale_multipart_upload_is_aborted_and_a_referenced_one_kept(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    storage: Storage,
    now_settings: Settings,
    alice: Account,
) -> None:
    stale_key = f"u/{alice.user_id}/{uuid.uuid4().hex}"
    stale = await storage.client.create_multipart_upload(Bucket=storage.bucket, Key=stale_key)
    pending = await start_upload(client, alice, "big.bin", size=10)
    used = await storage.client.create_multipart_upload(Bucket=storage.bucket, Key=key_of(pending))
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE file_revision SET multipart_upload_id = :mpu WHERE id = :id"),
            {"mpu": used["UploadId"], "id": UUID(pending["upload_id"])},
        )
    # Both are older than a one-second window by the time the sweep runs.
    await asyncio.sleep(2.1)

    summary = await run_sweep(
        sessionmaker, storage, now_settings.model_copy(update={"multipart_upload_ttl_seconds": 1})
    )

    open_ids = {u.upload_id for u in await storage.list_multipart_uploads("u/")}
    assert summary.multipart_uploads_aborted >= 1
    assert stale["UploadId"] not in open_ids
    assert used["UploadId"] in open_ids
    await storage.abort_multipart_upload(key_of(pending), used["UploadId"])


async def test_an_expired_multipart_upload_is_aborted_with_its_revision(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    storage: Storage,
    now_settings: Settings,
    alice: Account,
) -> None:
    pending = await start_upload(client, alice, "parts.bin", size=10)
    used = await storage.client.create_multipart_upload(Bucket=storage.bucket, Key=key_of(pending))
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE file_revision SET multipart_upload_id = :mpu WHERE id = :id"),
            {"mpu": used["UploadId"], "id": UUID(pending["upload_id"])},
        )
    await end_window(engine, pending["upload_id"])

    summary = await run_sweep(sessionmaker, storage, now_settings)

    assert summary.uploads_expired == 1
    assert await state_of(engine, pending["upload_id"]) == "expired"
    open_ids = {u.upload_id for u in await storage.list_multipart_uploads("u/")}
    assert used["UploadId"] not in open_ids


async def storage_keys(engine: AsyncEngine, file_id: str) -> list[str]:
    async with engine.connect() as connection:
        keys = await connection.scalars(
            text("SELECT storage_key FROM file_revision WHERE node_id = :id"),
            {"id": UUID(file_id)},
        )
    return list(keys)


async def test_an_expired_file_is_removed_with_its_bytes(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    storage: Storage,
    settings: Settings,
    alice: Account,
) -> None:
    short = await upload_file(client, web, alice, "short-lived.txt", b"bye", expires_in=60)
    lasting = await upload_file(client, web, alice, "lasting.txt", b"stay")
    shown = (await client.get(f"/files/{short['file_id']}", headers=alice.headers)).json()
    expires_at = datetime.fromisoformat(shown["expires_at"])
    assert timedelta(seconds=50) < expires_at - datetime.now(UTC) <= timedelta(seconds=60)
    assert lasting["expires_at"] is None
    [key] = await storage_keys(engine, short["file_id"])
    await expire_file(engine, short["file_id"])

    summary = await run_sweep(sessionmaker, storage, settings)

    assert summary.files_expired == 1
    gone = await client.get(f"/files/{short['file_id']}", headers=alice.headers)
    assert_problem(gone, 404, "file_not_found")
    assert await storage.key_versions(key) == []
    assert (await download_bytes(client, web, alice, lasting["file_id"])).content == b"stay"


async def test_file_expiry_days_sets_every_upload_expiry_and_caps_expires_in(
    client: httpx.AsyncClient,
    app_with: Any,
    engine: AsyncEngine,
    alice: Account,
) -> None:
    async with app_with(file_expiry_days=2) as app, api_client(app) as api:
        default = await start_upload(api, alice, "default.txt", size=1)
        sooner = await start_upload(api, alice, "sooner.txt", size=1, expires_in=3600)
        too_long = await api.post(
            "/upload/",
            json={"filename": "long.txt", "size": 1, "expires_in": 3 * 86400},
            headers=alice.headers,
        )
        too_short = await api.post(
            "/upload/",
            json={"filename": "short.txt", "size": 1, "expires_in": 59},
            headers=alice.headers,
        )
        shown = {
            name: (await api.get(f"/files/{u['file_id']}", headers=alice.headers)).json()
            for name, u in (("default", default), ("sooner", sooner))
        }

    left = {
        name: datetime.fromisoformat(body["expires_at"]) - datetime.now(UTC)
        for name, body in shown.items()
    }
    assert timedelta(days=2) - timedelta(minutes=1) < left["default"] <= timedelta(days=2)
    assert timedelta(minutes=59) < left["sooner"] <= timedelta(hours=1)
    assert assert_problem(too_long, 422, "expires_in_too_long")["max_expires_in"] == 2 * 86400
    assert_problem(too_short, 422, "validation_error")
    async with engine.connect() as connection:
        names = set(await connection.scalars(text("SELECT name FROM node")))
    assert names == {"default.txt", "sooner.txt"}


async def test_two_sweepers_at_once_handle_each_row_once(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    storage: Storage,
    now_settings: Settings,
    alice: Account,
) -> None:
    with_bytes, without, files = [], [], []
    for n in range(4):
        started = await start_upload(client, alice, f"sent-{n}.txt", size=4)
        await post_form(web, started, b"sent")
        with_bytes.append(started)
        without.append(await start_upload(client, alice, f"lost-{n}.txt", size=4))
        files.append(await upload_file(client, web, alice, f"old-{n}.txt", b"old"))
    for started in with_bytes + without:
        await end_window(engine, started["upload_id"])
    for done in files:
        await expire_file(engine, done["file_id"])

    first, second = await asyncio.gather(
        run_sweep(sessionmaker, storage, now_settings),
        run_sweep(sessionmaker, storage, now_settings),
    )

    assert first.uploads_completed + second.uploads_completed == 4
    assert first.uploads_expired + second.uploads_expired == 4
    assert first.files_expired + second.files_expired == 4
    assert first.errors == second.errors == 0
    assert {await state_of(engine, s["upload_id"]) for s in with_bytes} == {"complete"}
    assert {await state_of(engine, s["upload_id"]) for s in without} == {"expired"}


async def test_a_complete_racing_the_sweeper_has_one_outcome(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    storage: Storage,
    now_settings: Settings,
    alice: Account,
) -> None:
    sent = await start_upload(client, alice, "sent.txt", size=4)
    await post_form(web, sent, b"sent")
    lost = await start_upload(client, alice, "lost.txt", size=4)
    for started in (sent, lost):
        await end_window(engine, started["upload_id"])

    summary, sent_answer, lost_answer = await asyncio.gather(
        run_sweep(sessionmaker, storage, now_settings),
        complete(client, alice, sent["file_id"]),
        complete(client, alice, lost["file_id"]),
    )

    assert sent_answer.status_code == 200
    assert sent_answer.json()["status"] == "complete"
    assert_problem(lost_answer, 409, "upload_expired")
    assert await state_of(engine, sent["upload_id"]) == "complete"
    assert await state_of(engine, lost["upload_id"]) == "expired"
    assert summary.uploads_completed <= 1
    assert summary.uploads_expired <= 1
    assert summary.errors == 0
    again = await complete(client, alice, sent["file_id"])
    assert again.json() == sent_answer.json()


async def test_housekeeping_deletes_expired_keys_and_old_sign_in_rows(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    storage: Storage,
    settings: Settings,
    alice: Account,
) -> None:
    user = UUID(alice.user_id)
    async with engine.begin() as connection:
        for key, expires in (
            ("old", "now() - interval '1 second'"),
            ("new", "now() + interval '1 day'"),
        ):
            await connection.execute(
                text(
                    "INSERT INTO idempotency_key (user_id, key, request_hash, expires_at) "
                    f"VALUES (:user, :key, :hash, {expires})"
                ),
                {"user": user, "key": key, "hash": b"\0" * 32},
            )
        for n, (expires, used) in enumerate(
            (
                ("now() - interval '2 days'", "NULL"),
                ("now() + interval '1 hour'", "now() - interval '2 days'"),
                ("now() - interval '1 hour'", "NULL"),
                ("now() + interval '1 hour'", "NULL"),
            )
        ):
            await connection.execute(
                text(
                    "INSERT INTO email_token (id, token_hash, user_id, purpose, email, "
                    "expires_at, used_at) VALUES (:id, :hash, :user, 'verify_email', "
                    f"'a@example.com', {expires}, {used})"
                ),
                {"id": uuid.uuid4(), "hash": bytes([n]) * 32, "user": user},
            )

    summary = await run_sweep(sessionmaker, storage, settings)

    assert summary.idempotency_keys_deleted == 1
    assert summary.stale_rows_deleted >= 2
    async with engine.connect() as connection:
        keys = set(await connection.scalars(text("SELECT key FROM idempotency_key")))
        tokens = await connection.scalar(
            text("SELECT count(*) FROM email_token WHERE email = 'a@example.com'")
        )
    assert keys == {"new"}
    # Expired an hour ago, or still valid: kept for now.
    assert tokens == 2


async def test_the_api_sweeps_in_the_background(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    app_with: Any,
    engine: AsyncEngine,
    alice: Account,
) -> None:
    started = await start_upload(client, alice, "background.txt", size=4)
    await post_form(web, started, b"back")
    await end_window(engine, started["upload_id"])

    async with app_with(sweep_interval_seconds=1, sweep_grace_seconds=0):
        for _ in range(50):
            if await state_of(engine, started["upload_id"]) == "complete":
                break
            await asyncio.sleep(0.2)

    assert await state_of(engine, started["upload_id"]) == "complete"


def test_dropp_sweep_prints_what_it_did(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    server_commands.sweep(settings)

    printed = capsys.readouterr().out
    assert printed.startswith("Sweep done: uploads completed: ")
    assert "orphan objects deleted: " in printed
    assert "errors: 0" in printed
