"""What storage itself refuses: real bytes POSTed to the real SeaweedFS presigned POST form.

The API signs a form that pins the key, the exact size and the Content-Type; a client that
tampers with any of it is refused by storage, and completing afterwards never yields a file.
"""

import asyncio
import base64
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from dropp.storage.s3 import Storage
from tests.helpers import (
    Account,
    complete,
    download_bytes,
    post_form,
    start_upload,
    upload_file,
)

AppWith = Callable[..., AbstractAsyncContextManager[FastAPI]]
STORED = (200, 201, 204)


def assert_refused(
    response: httpx.Response, status: int, code: str, message: str | None = None
) -> None:
    """Storage answered `status` with the S3 error document `<Error><Code>code</Code>...`."""
    assert response.status_code == status, (response.status_code, response.text)
    error = ET.fromstring(response.content)
    assert error.findtext("Code") == code, response.text
    if message is not None:
        assert message in (error.findtext("Message") or "").lower(), response.text


def api_client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dropp.test")


def form_fields(upload: dict[str, Any]) -> dict[str, str]:
    """A copy of the signed form's fields, safe to tamper with."""
    return dict(upload["upload"]["fields"])


def flip(char: str) -> str:
    return "1" if char != "1" else "2"


async def assert_nothing_completed(
    client: httpx.AsyncClient,
    storage: Storage,
    account: Account,
    upload: dict[str, Any],
    code: str = "upload_incomplete",
) -> None:
    """Storage holds nothing for the upload, so completing fails and nothing downloads."""
    assert await storage.head(upload["upload"]["fields"]["key"]) is None
    completed = await complete(client, account, upload["file_id"])
    assert completed.status_code == 409, completed.text
    assert completed.headers["content-type"].startswith("application/problem+json")
    assert completed.json()["code"] == code
    download = await client.get(f"/download/{upload['file_id']}", headers=account.headers)
    assert download.status_code == 409, download.text
    assert download.json()["code"] == "file_not_ready"
    listed = await client.get("/list/", headers=account.headers)
    assert listed.json()["files"] == []


@pytest.mark.parametrize(
    ("data", "storage_code"),
    [
        pytest.param(b"x" * 11, "EntityTooLarge", id="more-bytes"),
        pytest.param(b"x" * 9, "EntityTooSmall", id="fewer-bytes"),
        pytest.param(b"", "EntityTooSmall", id="empty-body"),
    ],
)
async def test_storage_refuses_a_size_other_than_declared(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    storage: Storage,
    alice: Account,
    data: bytes,
    storage_code: str,
) -> None:
    started = await start_upload(client, alice, "notes.txt", size=10)

    posted = await post_form(web, started, data)

    assert_refused(posted, 400, storage_code)
    await assert_nothing_completed(client, storage, alice, started)


@pytest.mark.parametrize(
    "key_template",
    ["u/{other}/x", "u/{me}/x", "u/{me}/{key_suffix}"],
    ids=["other-users-prefix", "same-users-prefix", "signed-key-with-suffix"],
)
async def test_storage_refuses_a_changed_key(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    storage: Storage,
    alice: Account,
    bob: Account,
    key_template: str,
) -> None:
    started = await start_upload(client, alice, "notes.txt", size=5)
    fields = form_fields(started)
    signed_key = fields["key"]
    fields["key"] = key_template.format(
        other=bob.user_id, me=alice.user_id, key_suffix=signed_key.rsplit("/", 1)[1] + "x"
    )

    posted = await post_form(web, started, b"hello", fields=fields)

    assert_refused(posted, 403, "AccessDenied")
    assert await storage.head(fields["key"]) is None
    await assert_nothing_completed(client, storage, alice, started)


async def test_storage_refuses_a_changed_content_type(
    client: httpx.AsyncClient, web: httpx.AsyncClient, storage: Storage, alice: Account
) -> None:
    started = await start_upload(client, alice, "notes.txt", size=5, content_type="text/plain")
    fields = form_fields(started)
    assert fields["Content-Type"] == "text/plain"
    fields["Content-Type"] = "text/html"

    posted = await post_form(web, started, b"<b>hi", fields=fields)

    assert_refused(posted, 403, "AccessDenied")
    await assert_nothing_completed(client, storage, alice, started)


async def test_storage_refuses_a_missing_content_type(
    client: httpx.AsyncClient, web: httpx.AsyncClient, storage: Storage, alice: Account
) -> None:
    started = await start_upload(client, alice, "notes.txt", size=5, content_type="text/plain")
    fields = form_fields(started)
    del fields["Content-Type"]

    posted = await post_form(web, started, b"hello", fields=fields)

    assert_refused(posted, 403, "AccessDenied")
    await assert_nothing_completed(client, storage, alice, started)


async def test_storage_refuses_a_tampered_signature(
    client: httpx.AsyncClient, web: httpx.AsyncClient, storage: Storage, alice: Account
) -> None:
    started = await start_upload(client, alice, "notes.txt", size=5)
    fields = form_fields(started)
    signature = fields["x-amz-signature"]
    fields["x-amz-signature"] = signature[:-1] + flip(signature[-1])

    posted = await post_form(web, started, b"hello", fields=fields)

    assert_refused(posted, 403, "SignatureDoesNotMatch")
    await assert_nothing_completed(client, storage, alice, started)


async def test_storage_refuses_a_policy_widened_without_a_new_signature(
    client: httpx.AsyncClient, web: httpx.AsyncClient, storage: Storage, alice: Account
) -> None:
    started = await start_upload(client, alice, "notes.txt", size=5)
    fields = form_fields(started)
    policy = json.loads(base64.b64decode(fields["policy"]))
    ranges = [
        c for c in policy["conditions"] if isinstance(c, list) and c[0] == "content-length-range"
    ]
    assert ranges == [["content-length-range", 5, 5]]
    policy["conditions"] = [
        ["content-length-range", 0, 1_000_000] if c in ranges else c for c in policy["conditions"]
    ]
    fields["policy"] = base64.b64encode(json.dumps(policy).encode()).decode()

    posted = await post_form(web, started, b"x" * 500, fields=fields)

    assert_refused(posted, 403, "SignatureDoesNotMatch")
    await assert_nothing_completed(client, storage, alice, started)


async def test_storage_refuses_a_form_after_its_policy_expired(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    storage: Storage,
    alice: Account,
    app_with: AppWith,
) -> None:
    async with (
        app_with(upload_post_ttl_seconds=1) as short_app,
        api_client(short_app) as short_client,
    ):
        started = await start_upload(short_client, alice, "notes.txt", size=5)
        # SigV4 POST expiration is second-granular: wait well past it.
        await asyncio.sleep(2.5)

        posted = await post_form(web, started, b"hello")

        assert_refused(posted, 403, "AccessDenied", message="expired")
        await assert_nothing_completed(short_client, storage, alice, started, code="upload_expired")
        listed = await short_client.get("/list/?status=all", headers=alice.headers)
        assert [f["status"] for f in listed.json()["files"]] == ["expired"]


async def test_reposting_the_form_after_complete_does_not_change_the_file(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    original = b"A" * 64
    started = await start_upload(client, alice, "pinned.bin", size=len(original))
    assert (await post_form(web, started, original)).status_code in STORED
    completed = await complete(client, alice, started["file_id"])
    assert completed.status_code == 200, completed.text
    before = completed.json()

    # The form is still valid: storage accepts a second object version under the same key.
    reposted = await post_form(web, started, b"B" * len(original))
    assert reposted.status_code in STORED, reposted.text

    downloaded = await download_bytes(client, web, alice, started["file_id"])
    assert downloaded.content == original
    metadata = await client.get(f"/files/{started['file_id']}", headers=alice.headers)
    assert metadata.status_code == 200, metadata.text
    assert metadata.json()["size"] == before["size"] == len(original)
    assert metadata.json()["revision_id"] == before["revision_id"]
    again = await complete(client, alice, started["file_id"])
    assert again.status_code == 200, again.text
    assert again.json()["revision_id"] == before["revision_id"]
    assert (await download_bytes(client, web, alice, started["file_id"])).content == original


async def test_sizeless_form_accepts_up_to_max_upload_bytes_and_no_more(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, app_with: AppWith
) -> None:
    async with app_with(max_upload_bytes=1024) as small_app, api_client(small_app) as small:
        started = await start_upload(small, alice, "blob.bin")

        too_big = await post_form(web, started, b"z" * 1025)
        assert_refused(too_big, 400, "EntityTooLarge")

        fits = await post_form(web, started, b"z" * 1024)
        assert fits.status_code in STORED, fits.text
        completed = await complete(small, alice, started["file_id"])
        assert completed.status_code == 200, completed.text
        assert completed.json()["size"] == 1024
        assert completed.json()["status"] == "complete"

    downloaded = await download_bytes(client, web, alice, started["file_id"])
    assert downloaded.content == b"z" * 1024


async def test_a_completed_file_is_unaffected_by_a_refused_post(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    data = b"the real bytes"
    done = await upload_file(client, web, alice, "kept.txt", data)
    started = await start_upload(client, alice, "kept.txt", size=len(data))

    posted = await post_form(web, started, data + b"!")

    assert_refused(posted, 400, "EntityTooLarge")
    completed = await complete(client, alice, started["file_id"])
    assert completed.status_code == 409, completed.text
    assert completed.json()["code"] == "upload_incomplete"
    assert (await download_bytes(client, web, alice, done["file_id"])).content == data


async def test_a_sizeless_form_never_allows_more_than_one_post_carries(
    client: httpx.AsyncClient, alice: Account
) -> None:
    # MAX_UPLOAD_BYTES allows 5 TiB through multipart; a single POST stops at S3's 5 GiB.
    started = await start_upload(client, alice, "unknown-size.bin")

    policy = json.loads(base64.b64decode(started["upload"]["fields"]["policy"]))
    ranges = [
        c for c in policy["conditions"] if isinstance(c, list) and c[0] == "content-length-range"
    ]
    assert ranges == [["content-length-range", 0, 5 * 1024**3]]
