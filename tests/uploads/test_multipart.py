"""Multipart uploads, with real parts PUT to real presigned URLs on SeaweedFS."""

import asyncio
import base64
import hashlib
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.storage.s3 import Storage
from tests.conftest import api_client
from tests.helpers import (
    MIB,
    PART_SIZE,
    Account,
    assert_problem,
    complete,
    download_bytes,
    owned_nodes,
    part_urls,
    parts_hash_hex,
    put_part,
    sha256_hex,
    split_parts,
    start_upload,
)

AppWith = Callable[..., AbstractAsyncContextManager[FastAPI]]

# Three parts: 8 MiB, 8 MiB and 1 MiB.
THREE_PARTS = 2 * PART_SIZE + MIB


@pytest.fixture
async def api(app_with: AppWith, client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """The API with a 5 MiB multipart threshold; `client` still truncates the tables after."""
    async with app_with(multipart_threshold_bytes=5 * MIB) as app, api_client(app) as small:
        yield small


async def start_multipart(
    api: httpx.AsyncClient, account: Account, name: str, data: bytes, **fields: Any
) -> dict[str, Any]:
    started = await start_upload(api, account, name, size=len(data), **fields)
    assert started["upload"]["kind"] == "multipart", started
    return started


async def send_parts(
    api: httpx.AsyncClient,
    web: httpx.AsyncClient,
    account: Account,
    started: dict[str, Any],
    data: bytes,
    numbers: list[int],
) -> None:
    """Sign URLs for these parts and PUT them all at once."""
    pieces = split_parts(data, started["upload"]["part_size"])
    hashes = {str(n): sha256_hex(pieces[n - 1]) for n in numbers}
    signed = await part_urls(api, account, started["file_id"], numbers, sha256=hashes)
    assert signed.status_code == 200, signed.text
    by_number = {p["part_number"]: p for p in signed.json()["parts"]}
    answers = await asyncio.gather(*(put_part(web, by_number[n], pieces[n - 1]) for n in numbers))
    assert [a.status_code for a in answers] == [200] * len(numbers), [a.text for a in answers]


async def revision_keys(engine: AsyncEngine, started: dict[str, Any]) -> str:
    async with engine.connect() as connection:
        key = await connection.scalar(
            text("SELECT storage_key FROM file_revision WHERE id = CAST(:id AS uuid)"),
            {"id": started["upload_id"]},
        )
    assert key is not None
    return str(key)


async def test_a_file_over_the_threshold_uploads_in_parallel_parts_out_of_order(
    api: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    data = os.urandom(THREE_PARTS)
    started = await start_multipart(api, alice, "video.bin", data, sha256=parts_hash_hex(data))

    assert started["upload"] == {"kind": "multipart", "part_size": PART_SIZE, "part_count": 3}
    await send_parts(api, web, alice, started, data, [3, 1, 2])
    done = await complete(api, alice, started["file_id"])

    assert done.status_code == 200, done.text
    expected_hash = f"sha256-parts-{PART_SIZE}:{parts_hash_hex(data)}"
    assert (done.json()["size"], done.json()["content_hash"]) == (len(data), expected_hash)
    assert (await download_bytes(api, web, alice, started["file_id"])).content == data
    listed = await api.get("/list/", headers=alice.headers)
    assert [f["content_hash"] for f in listed.json()["files"]] == [expected_hash]
    metadata = await api.get(f"/files/{started['file_id']}", headers=alice.headers)
    assert metadata.json()["content_hash"] == expected_hash


async def test_multipart_on_request_below_the_threshold(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    data = os.urandom(MIB)
    started = await start_multipart(client, alice, "small.bin", data, multipart=True)

    await send_parts(client, web, alice, started, data, [1])
    done = await complete(client, alice, started["file_id"])

    assert done.status_code == 200, done.text
    # Declared at init or not, the parts' checked hashes give the file its content hash.
    assert done.json()["content_hash"] == f"sha256-parts-{PART_SIZE}:{parts_hash_hex(data)}"
    assert (await download_bytes(client, web, alice, started["file_id"])).content == data


async def test_parts_hashed_as_they_go_make_the_content_hash_and_a_repeat_no_revision(
    api: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    """A client that hashes each part just before sending it declares no content hash at
    init; the file gets one all the same, so the same bytes again make no new revision."""
    data = os.urandom(THREE_PARTS)
    first = await start_multipart(api, alice, "stream.bin", data)
    await send_parts(api, web, alice, first, data, [1, 2, 3])
    done = await complete(api, alice, first["file_id"])
    assert done.status_code == 200, done.text
    assert done.json()["content_hash"] == f"sha256-parts-{PART_SIZE}:{parts_hash_hex(data)}"

    again = await start_multipart(api, alice, "stream.bin", data)
    await send_parts(api, web, alice, again, data, [1, 2, 3])
    repeated = await complete(api, alice, again["file_id"], upload_id=again["upload_id"])

    assert repeated.status_code == 200, repeated.text
    assert repeated.json()["revision_id"] == done.json()["revision_id"]
    revisions = await api.get(f"/files/{first['file_id']}/revisions", headers=alice.headers)
    assert [r["revision_id"] for r in revisions.json()["revisions"]] == [done.json()["revision_id"]]


async def test_an_interrupted_upload_resumes_from_the_parts_storage_holds(
    api: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    data = os.urandom(THREE_PARTS)
    started = await start_multipart(api, alice, "resume.bin", data, sha256=parts_hash_hex(data))
    await send_parts(api, web, alice, started, data, [1, 3])

    early = await complete(api, alice, started["file_id"])
    held = await api.get(f"/upload/{started['file_id']}/parts", headers=alice.headers)

    assert assert_problem(early, 409, "upload_incomplete")["missing_parts"] == [2]
    assert held.status_code == 200, held.text
    assert [(p["part_number"], p["size"]) for p in held.json()["parts"]] == [
        (1, PART_SIZE),
        (3, MIB),
    ]
    await send_parts(api, web, alice, started, data, [2])
    parts = (await api.get(f"/upload/{started['file_id']}/parts", headers=alice.headers)).json()
    done = await complete(
        api,
        alice,
        started["file_id"],
        parts=[{"part_number": p["part_number"], "etag": p["etag"]} for p in parts["parts"]],
    )
    assert done.status_code == 200, done.text
    assert (await download_bytes(api, web, alice, started["file_id"])).content == data


async def test_a_parts_list_other_than_storage_holds_is_refused_and_changes_nothing(
    api: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    data = os.urandom(PART_SIZE + MIB)
    started = await start_multipart(api, alice, "listed.bin", data)
    await send_parts(api, web, alice, started, data, [1, 2])

    wrong = await complete(
        api, alice, started["file_id"], parts=[{"part_number": 1, "etag": "0" * 32}]
    )

    assert_problem(wrong, 409, "upload_parts_mismatch")
    assert (await complete(api, alice, started["file_id"])).status_code == 200


async def test_cancelling_a_multipart_upload_frees_storage_and_the_new_file(
    api: httpx.AsyncClient,
    web: httpx.AsyncClient,
    alice: Account,
    engine: AsyncEngine,
    storage: Storage,
) -> None:
    data = os.urandom(PART_SIZE + MIB)
    started = await start_multipart(api, alice, "dropped.bin", data)
    await send_parts(api, web, alice, started, data, [1])
    key = await revision_keys(engine, started)
    assert len(await storage.list_multipart_uploads(key)) == 1

    cancelled = await api.delete(f"/upload/{started['file_id']}", headers=alice.headers)

    assert cancelled.status_code == 204, cancelled.text
    assert await storage.list_multipart_uploads(key) == []
    assert await owned_nodes(engine, alice.user_id) == 0
    again = await api.delete(f"/upload/{started['file_id']}", headers=alice.headers)
    assert_problem(again, 404, "upload_not_found")


async def test_cancelling_a_new_revision_keeps_the_file_and_its_bytes(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, storage: Storage
) -> None:
    first = await start_upload(client, alice, "kept.txt", size=4)
    await web.post(
        first["upload"]["url"], data=first["upload"]["fields"], files={"file": ("f", b"kept")}
    )
    assert (await complete(client, alice, first["file_id"])).status_code == 200
    second = await start_upload(client, alice, "kept.txt", size=5)
    await web.post(
        second["upload"]["url"], data=second["upload"]["fields"], files={"file": ("f", b"again")}
    )

    cancelled = await client.delete(
        f"/upload/{second['file_id']}",
        params={"upload_id": second["upload_id"]},
        headers=alice.headers,
    )

    assert cancelled.status_code == 204, cancelled.text
    assert await storage.head(second["upload"]["fields"]["key"]) is None
    assert (await download_bytes(client, web, alice, first["file_id"])).content == b"kept"
    finished = await client.delete(f"/upload/{first['file_id']}", headers=alice.headers)
    assert_problem(finished, 409, "upload_complete")


async def test_a_part_with_other_bytes_than_its_hash_is_refused_by_storage(
    api: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    data = os.urandom(PART_SIZE + MIB)
    started = await start_multipart(api, alice, "guarded.bin", data)
    signed = await part_urls(
        api, alice, started["file_id"], [2], sha256={"2": sha256_hex(data[PART_SIZE:])}
    )
    part = signed.json()["parts"][0]

    tampered = await put_part(web, part, b"x" * MIB)
    unsigned = await web.put(part["url"], content=data[PART_SIZE:])
    longer = await put_part(web, part, data[PART_SIZE:] + b"x")

    assert part["size"] == MIB
    assert (tampered.status_code, "BadDigest" in tampered.text) == (400, True)
    assert unsigned.status_code == 403
    assert (longer.status_code, "SignatureDoesNotMatch" in longer.text) == (403, True)
    assert (await put_part(web, part, data[PART_SIZE:])).status_code == 200


async def test_a_part_hash_cannot_change_once_given(api: httpx.AsyncClient, alice: Account) -> None:
    data = os.urandom(PART_SIZE + MIB)
    started = await start_multipart(api, alice, "fixed.bin", data)
    first = await part_urls(api, alice, started["file_id"], [1], sha256={"1": "a" * 64})

    changed = await part_urls(api, alice, started["file_id"], [1], sha256={"1": "b" * 64})
    resigned = await part_urls(api, alice, started["file_id"], [1])

    assert first.status_code == 200, first.text
    assert assert_problem(changed, 409, "part_checksum_conflict")["part_numbers"] == [1]
    # Asked again without a hash, the URL still carries the recorded one.
    assert resigned.json()["parts"][0]["headers"] == first.json()["parts"][0]["headers"]


async def test_part_hashes_may_be_declared_ahead_of_their_urls(
    api: httpx.AsyncClient, alice: Account
) -> None:
    data = os.urandom(PART_SIZE + MIB)
    started = await start_multipart(api, alice, "ahead.bin", data)
    every_hash = {"1": hashlib.sha256(data[:PART_SIZE]).hexdigest(), "2": "b" * 64}

    first = await part_urls(api, alice, started["file_id"], [1], sha256=every_hash)
    later = await part_urls(api, alice, started["file_id"], [2])
    changed = await part_urls(api, alice, started["file_id"], [1], sha256={"2": "c" * 64})
    beyond = await part_urls(api, alice, started["file_id"], [1], sha256={"3": "d" * 64})

    assert [p["part_number"] for p in first.json()["parts"]] == [1]
    # Part 2's URL carries the hash declared with part 1's.
    assert later.status_code == 200, later.text
    assert assert_problem(changed, 409, "part_checksum_conflict")["part_numbers"] == [2]
    assert assert_problem(beyond, 422, "part_number_out_of_range")["part_numbers"] == [3]


async def test_a_wrong_content_hash_is_refused_at_complete_and_cleaned_up(
    api: httpx.AsyncClient,
    web: httpx.AsyncClient,
    alice: Account,
    engine: AsyncEngine,
    storage: Storage,
) -> None:
    data = os.urandom(PART_SIZE + MIB)
    claimed = parts_hash_hex(os.urandom(len(data)))
    started = await start_multipart(api, alice, "lying.bin", data, sha256=claimed)
    await send_parts(api, web, alice, started, data, [1, 2])
    key = await revision_keys(engine, started)

    refused = await complete(api, alice, started["file_id"])
    again = await complete(api, alice, started["file_id"])

    assert_problem(refused, 409, "upload_checksum_mismatch")
    assert_problem(again, 409, "upload_failed")
    assert await storage.list_multipart_uploads(key) == []
    assert await storage.head(key) is None
    listed = await api.get("/list/", params={"status": "all"}, headers=alice.headers)
    assert [f["status"] for f in listed.json()["files"]] == ["failed"]


async def test_a_declared_content_hash_needs_every_parts_hash(
    api: httpx.AsyncClient, alice: Account
) -> None:
    data = os.urandom(PART_SIZE + MIB)
    started = await start_multipart(api, alice, "strict.bin", data, sha256=parts_hash_hex(data))

    unhashed = await part_urls(api, alice, started["file_id"], [1, 2], sha256={"1": "a" * 64})

    assert assert_problem(unhashed, 422, "part_checksum_required")["part_numbers"] == [2]


async def test_a_part_url_takes_only_its_parts_exact_size(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    alice: Account,
    engine: AsyncEngine,
    storage: Storage,
) -> None:
    """A 1-byte multipart upload whose part URL is asked for with the hash of 20 MiB: storage
    must refuse the 20 MiB, or they sit there for the upload's window, outside every quota."""
    payload = os.urandom(20 * MIB)
    started = await start_multipart(client, alice, "tiny.bin", b"x", multipart=True)
    signed = await part_urls(
        client, alice, started["file_id"], [1], sha256={"1": sha256_hex(payload)}
    )
    part = signed.json()["parts"][0]
    key = await revision_keys(engine, started)
    storage_upload_id = (await storage.list_multipart_uploads(key))[0].upload_id

    stuffed = await put_part(web, part, payload)

    assert part["size"] == 1
    assert stuffed.status_code == 403, stuffed.text
    assert await storage.list_parts(key, storage_upload_id) == []


async def test_every_part_url_needs_its_hash(client: httpx.AsyncClient, alice: Account) -> None:
    started = await start_multipart(client, alice, "plain.bin", b"xy", multipart=True)

    unhashed = await part_urls(client, alice, started["file_id"], [1])

    assert assert_problem(unhashed, 422, "part_checksum_required")["part_numbers"] == [1]


@pytest.mark.parametrize(
    ("first_part", "second_part", "code"),
    [
        pytest.param(PART_SIZE, 2 * MIB, "upload_size_mismatch", id="wrong-total"),
        pytest.param(5 * MIB, 4 * MIB, "upload_part_size_mismatch", id="wrong-part-size"),
    ],
)
async def test_parts_that_do_not_fit_the_plan_are_refused_and_cleaned_up(
    api: httpx.AsyncClient,
    alice: Account,
    engine: AsyncEngine,
    storage: Storage,
    first_part: int,
    second_part: int,
    code: str,
) -> None:
    """Part URLs take only the planned sizes; parts that reach storage another way (a storage
    that ignores signed lengths) are still checked against the plan at complete."""
    started = await start_upload(api, alice, "odd.bin", size=PART_SIZE + MIB)
    key = await revision_keys(engine, started)
    storage_upload_id = (await storage.list_multipart_uploads(key))[0].upload_id
    for number, size in enumerate((first_part, second_part), start=1):
        piece = os.urandom(size)
        signed = await part_urls(
            api, alice, started["file_id"], [number], sha256={str(number): sha256_hex(piece)}
        )
        assert signed.status_code == 200, signed.text
        await storage.client.upload_part(
            Bucket=storage.bucket,
            Key=key,
            UploadId=storage_upload_id,
            PartNumber=number,
            Body=piece,
            ChecksumSHA256=base64.b64encode(hashlib.sha256(piece).digest()).decode(),
        )

    refused = await complete(api, alice, started["file_id"])

    assert_problem(refused, 409, code)
    assert await storage.list_multipart_uploads(key) == []
    assert await storage.head(key) is None
    listed = await api.get("/list/", params={"status": "all"}, headers=alice.headers)
    assert [f["status"] for f in listed.json()["files"]] == ["failed"]


async def test_bad_multipart_requests_are_refused(api: httpx.AsyncClient, alice: Account) -> None:
    no_size = await api.post(
        "/upload/", json={"filename": "x.bin", "multipart": True}, headers=alice.headers
    )
    started = await start_upload(api, alice, "two.bin", size=PART_SIZE + 1)
    beyond = await part_urls(api, alice, started["file_id"], [2, 3])
    zero = await part_urls(api, alice, started["file_id"], [0])
    too_many = await part_urls(api, alice, started["file_id"], list(range(1, 102)))
    single = await start_upload(api, alice, "small.txt", size=3)
    not_multipart = await part_urls(api, alice, single["file_id"], [1])

    assert_problem(no_size, 422, "validation_error")
    assert assert_problem(beyond, 422, "part_number_out_of_range")["part_numbers"] == [3]
    assert_problem(zero, 422, "validation_error")
    assert_problem(too_many, 422, "validation_error")
    assert_problem(not_multipart, 409, "upload_not_multipart")


async def test_another_users_upload_is_not_found(
    api: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    started = await start_upload(api, alice, "mine.bin", size=PART_SIZE + 1)
    file_id = started["file_id"]

    answers = [
        await part_urls(api, bob, file_id, [1]),
        await api.get(f"/upload/{file_id}/parts", headers=bob.headers),
        await api.delete(f"/upload/{file_id}", headers=bob.headers),
        await complete(api, bob, file_id),
    ]

    for answer in answers:
        assert_problem(answer, 404, "upload_not_found")
    held = await api.get(f"/upload/{file_id}/parts", headers=alice.headers)
    assert held.status_code == 200


async def test_a_multipart_upload_has_days_while_each_part_url_lives_an_hour(
    api: httpx.AsyncClient, alice: Account
) -> None:
    data = os.urandom(THREE_PARTS)
    before = datetime.now(UTC)

    started = await start_multipart(api, alice, "slow-link.bin", data)
    signed = await part_urls(api, alice, started["file_id"], [1], sha256={"1": "a" * 64})

    window = datetime.fromisoformat(started["expires_at"]) - before
    url_life = datetime.fromisoformat(signed.json()["expires_at"]) - before
    assert timedelta(days=7) - timedelta(minutes=1) < window <= timedelta(days=7, minutes=1)
    assert timedelta(minutes=59) < url_life <= timedelta(hours=1, minutes=1)


async def test_a_part_sent_twice_counts_once(
    api: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    """A client that crashed re-sends parts whose first PUT was still landing; storage may
    then list one part number twice, and only the newest is the part."""
    data = os.urandom(THREE_PARTS)
    started = await start_multipart(api, alice, "twice.bin", data, sha256=parts_hash_hex(data))
    await send_parts(api, web, alice, started, data, [1, 2])
    await send_parts(api, web, alice, started, data, [2, 3])

    held = await api.get(f"/upload/{started['file_id']}/parts", headers=alice.headers)
    done = await complete(api, alice, started["file_id"])

    assert [p["part_number"] for p in held.json()["parts"]] == [1, 2, 3]
    assert done.status_code == 200, done.text
    assert (await download_bytes(api, web, alice, started["file_id"])).content == data
