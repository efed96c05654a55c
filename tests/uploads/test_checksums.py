"""SHA-256 for single uploads, content hashes in metadata, and identical re-uploads."""

import base64
import hashlib
import os

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.storage.s3 import Storage
from tests.helpers import (
    PART_SIZE,
    Account,
    assert_problem,
    complete,
    download_bytes,
    part_urls,
    parts_hash_hex,
    post_form,
    put_part,
    sha256_hex,
    split_parts,
    start_upload,
    upload_file,
)


async def revision_count(engine: AsyncEngine, file_id: str) -> int:
    async with engine.connect() as connection:
        count = await connection.scalar(
            text("SELECT count(*) FROM file_revision WHERE node_id = CAST(:id AS uuid)"),
            {"id": file_id},
        )
    return int(count or 0)


async def test_a_single_post_with_other_bytes_than_its_sha256_is_refused_by_storage(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, storage: Storage
) -> None:
    data = b"the real contents"
    started = await start_upload(client, alice, "real.txt", size=len(data), sha256=sha256_hex(data))

    tampered = await post_form(web, started, b"the fake contents")
    early = await complete(client, alice, started["file_id"])

    assert (tampered.status_code, "BadDigest" in tampered.text) == (400, True)
    assert await storage.head(started["upload"]["fields"]["key"]) is None
    assert_problem(early, 409, "upload_incomplete")
    assert (await post_form(web, started, data)).status_code == 204
    done = await complete(client, alice, started["file_id"])
    assert done.status_code == 200, done.text
    assert done.json()["content_hash"] == f"sha256:{sha256_hex(data)}"


async def test_the_form_carries_the_checksum_in_base64_and_keeps_the_old_fields(
    client: httpx.AsyncClient, alice: Account
) -> None:
    digest = hashlib.sha256(b"abc").digest()

    started = await start_upload(
        client, alice, "abc.txt", size=3, sha256=base64.b64encode(digest).decode()
    )

    upload = started["upload"]
    assert (upload["kind"], upload["method"]) == ("post", "POST")
    assert upload["fields"]["x-amz-checksum-sha256"] == base64.b64encode(digest).decode()
    assert {"key", "Content-Type", "policy"} <= set(upload["fields"])


@pytest.mark.parametrize(
    "sha256",
    [
        pytest.param("z" * 64, id="not-hex"),
        pytest.param("ab" * 31, id="too-short"),
        pytest.param(base64.b64encode(b"x" * 31).decode() + "AAAA", id="base64-not-32-bytes"),
    ],
)
async def test_a_malformed_sha256_is_422_and_stores_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine, alice: Account, sha256: str
) -> None:
    answer = await client.post(
        "/upload/", json={"filename": "x.txt", "size": 1, "sha256": sha256}, headers=alice.headers
    )

    assert_problem(answer, 422, "validation_error")
    async with engine.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM file_revision")) == 0


async def test_complete_refuses_an_object_whose_stored_checksum_differs(
    client: httpx.AsyncClient, alice: Account, storage: Storage
) -> None:
    started = await start_upload(client, alice, "swap.bin", size=4, sha256=sha256_hex(b"good"))
    key = started["upload"]["fields"]["key"]
    # Storage refuses such bytes through the form; writing with storage's own credentials
    # stands in for a storage that let them through.
    await storage.client.put_object(
        Bucket=storage.bucket, Key=key, Body=b"evil", ChecksumAlgorithm="SHA256"
    )

    refused = await complete(client, alice, started["file_id"])

    assert_problem(refused, 409, "upload_checksum_mismatch")
    assert await storage.head(key) is None


async def test_an_upload_without_sha256_has_no_content_hash(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    done = await upload_file(client, web, alice, "plain.txt", b"plain")

    assert done["content_hash"] is None


async def test_identical_bytes_again_start_no_upload(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, engine: AsyncEngine
) -> None:
    data = b"same bytes"
    done = await upload_file(client, web, alice, "same.txt", data, sha256=sha256_hex(data))

    again = await client.post(
        "/upload/",
        json={"filename": "same.txt", "size": len(data), "sha256": sha256_hex(data)},
        headers=alice.headers,
    )
    other = await start_upload(
        client, alice, "same.txt", size=len(data), sha256=sha256_hex(b"diff bytes")
    )

    assert again.status_code == 200, again.text
    body = again.json()
    assert (body["status"], body["upload"], body["expires_at"]) == ("complete", None, None)
    assert (body["file_id"], body["upload_id"]) == (done["file_id"], done["revision_id"])
    # Only the upload of other bytes added a revision.
    assert other["status"] == "pending"
    assert await revision_count(engine, done["file_id"]) == 2


async def test_identical_bytes_completed_again_leave_the_file_unchanged(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    alice: Account,
    engine: AsyncEngine,
    storage: Storage,
) -> None:
    data = b"twin uploads"
    # Two devices start the same upload before either completes.
    laptop = await start_upload(client, alice, "twin.txt", size=len(data), sha256=sha256_hex(data))
    desktop = await start_upload(client, alice, "twin.txt", size=len(data), sha256=sha256_hex(data))
    for started in (laptop, desktop):
        assert (await post_form(web, started, data)).status_code == 204
    first = await complete(client, alice, laptop["file_id"], upload_id=laptop["upload_id"])

    second = await complete(client, alice, desktop["file_id"], upload_id=desktop["upload_id"])

    assert second.status_code == 200, second.text
    assert second.json() == first.json()
    assert await revision_count(engine, laptop["file_id"]) == 1
    assert await storage.head(desktop["upload"]["fields"]["key"]) is None
    assert (await download_bytes(client, web, alice, laptop["file_id"])).content == data


async def test_an_identical_multipart_upload_starts_nothing(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, engine: AsyncEngine
) -> None:
    data = os.urandom(PART_SIZE + 1024)
    content_hash = parts_hash_hex(data)
    started = await start_upload(
        client, alice, "big.bin", size=len(data), multipart=True, sha256=content_hash
    )
    pieces = split_parts(data)
    signed = await part_urls(
        client,
        alice,
        started["file_id"],
        [1, 2],
        sha256={str(n): sha256_hex(pieces[n - 1]) for n in (1, 2)},
    )
    for part in signed.json()["parts"]:
        assert (await put_part(web, part, pieces[part["part_number"] - 1])).status_code == 200
    assert (await complete(client, alice, started["file_id"])).status_code == 200

    again = await client.post(
        "/upload/",
        json={"filename": "big.bin", "size": len(data), "multipart": True, "sha256": content_hash},
        headers=alice.headers,
    )

    assert again.status_code == 200, again.text
    assert again.json()["status"] == "complete"
    assert await revision_count(engine, started["file_id"]) == 1
