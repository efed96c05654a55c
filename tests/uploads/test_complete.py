import asyncio
from typing import Any

import httpx

from dropp.storage.s3 import Storage
from tests.helpers import Account, complete, download_bytes, post_form, start_upload, upload_file


async def listed(client: httpx.AsyncClient, account: Account, status: str) -> list[dict[str, Any]]:
    answer = await client.get("/list/", params={"status": status}, headers=account.headers)
    assert answer.status_code == 200, answer.text
    files: list[dict[str, Any]] = answer.json()["files"]
    return files


async def test_complete_before_the_bytes_arrive_leaves_the_file_pending(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    started = await start_upload(client, alice, "notes.txt", size=5)

    early = await complete(client, alice, started["file_id"])

    assert early.status_code == 409
    assert early.json()["code"] == "upload_incomplete"
    assert [f["status"] for f in await listed(client, alice, "pending")] == ["pending"]
    await post_form(web, started, b"hello")
    late = await complete(client, alice, started["file_id"])
    assert late.status_code == 200
    assert late.json()["status"] == "complete"


async def test_a_size_other_than_declared_fails_the_upload_and_deletes_the_object(
    client: httpx.AsyncClient, alice: Account, storage: Storage
) -> None:
    started = await start_upload(client, alice, "short.bin", size=10)
    key = started["upload"]["fields"]["key"]
    # Storage enforces the declared size on the form; writing with storage's own credentials
    # stands in for a storage that let a wrong size through.
    await storage.client.put_object(Bucket=storage.bucket, Key=key, Body=b"12345")

    refused = await complete(client, alice, started["file_id"])
    again = await complete(client, alice, started["file_id"])

    assert refused.status_code == 409
    assert refused.json()["code"] == "upload_size_mismatch"
    assert (refused.json()["declared_size"], refused.json()["actual_size"]) == (10, 5)
    assert again.status_code == 409
    assert again.json() == refused.json()
    assert await storage.head(key) is None
    assert [f["status"] for f in await listed(client, alice, "all")] == ["failed"]
    assert await listed(client, alice, "complete") == []


async def test_completing_twice_returns_the_same_result(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    done = await upload_file(client, web, alice, "twice.txt", b"same")

    again = await complete(client, alice, done["file_id"])

    assert again.status_code == 200
    assert again.json() == done


async def test_concurrent_completes_make_one_transition(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    started = await start_upload(client, alice, "race.txt", size=4)
    await post_form(web, started, b"race")

    answers = await asyncio.gather(*(complete(client, alice, started["file_id"]) for _ in range(6)))

    assert {a.status_code for a in answers} == {200}
    assert len({a.text for a in answers}) == 1


async def test_uploading_to_an_existing_path_adds_a_revision(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    first = await upload_file(client, web, alice, "plan.txt", b"version one")
    second = await upload_file(client, web, alice, "plan.txt", b"version two!")

    assert second["file_id"] == first["file_id"]
    assert second["revision_id"] != first["revision_id"]
    assert second["size"] == len(b"version two!")
    assert len(await listed(client, alice, "all")) == 1
    downloaded = await download_bytes(client, web, alice, first["file_id"])
    assert downloaded.content == b"version two!"


async def test_a_new_pending_upload_does_not_hide_the_current_revision(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    done = await upload_file(client, web, alice, "live.txt", b"served")

    await start_upload(client, alice, "live.txt", size=3)

    metadata = await client.get(f"/files/{done['file_id']}", headers=alice.headers)
    assert metadata.json()["status"] == "complete"
    assert metadata.json()["revision_id"] == done["revision_id"]
    assert (await download_bytes(client, web, alice, done["file_id"])).content == b"served"


async def test_several_pending_uploads_need_an_upload_id(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    from_laptop = await start_upload(client, alice, "shared.txt", size=6)
    from_desktop = await start_upload(client, alice, "shared.txt", size=7)
    await post_form(web, from_laptop, b"laptop")
    await post_form(web, from_desktop, b"desktop")

    ambiguous = await complete(client, alice, from_laptop["file_id"])
    named = await complete(
        client, alice, from_laptop["file_id"], upload_id=from_laptop["upload_id"]
    )

    assert ambiguous.status_code == 409
    assert ambiguous.json()["code"] == "upload_ambiguous"
    assert named.status_code == 200
    assert named.json()["revision_id"] == from_laptop["upload_id"]
    last = await complete(client, alice, from_desktop["file_id"])
    assert last.json()["revision_id"] == from_desktop["upload_id"]


async def test_an_upload_id_of_another_file_is_not_found(
    client: httpx.AsyncClient, alice: Account
) -> None:
    one = await start_upload(client, alice, "one.txt", size=1)
    other = await start_upload(client, alice, "other.txt", size=1)

    crossed = await complete(client, alice, one["file_id"], upload_id=other["upload_id"])

    assert crossed.status_code == 404
    assert crossed.json()["code"] == "upload_not_found"


async def test_an_empty_file_uploads(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    done = await upload_file(client, web, alice, "empty.txt", b"")

    assert done["size"] == 0
    assert (await download_bytes(client, web, alice, done["file_id"])).content == b""


async def test_a_size_less_upload_records_the_size_storage_holds(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    started = await start_upload(client, alice, "stream.log")
    await post_form(web, started, b"x" * 1234)

    done = await complete(client, alice, started["file_id"])

    assert done.json()["size"] == 1234


async def test_the_content_type_is_guessed_from_the_name_and_pinned(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    started = await start_upload(client, alice, "deck.pdf", size=4)

    assert started["content_type"] == "application/pdf"
    assert started["upload"]["fields"]["Content-Type"] == "application/pdf"
    await post_form(web, started, b"%PDF")
    done = await complete(client, alice, started["file_id"])
    assert done.json()["content_type"] == "application/pdf"
