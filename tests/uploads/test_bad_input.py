"""Every bad input to the upload API gets a clear 4xx problem+json, and nothing is stored."""

import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.auth.tokens import AUDIENCE, ISSUER, AccessTokenSigner
from dropp.core.config import Settings
from tests.helpers import (
    Account,
    complete,
    download_bytes,
    post_form,
    start_upload,
    upload_file,
)

AppWith = Callable[..., AbstractAsyncContextManager[FastAPI]]
GIB = 1024**3


def api_client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dropp.test")


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """An RFC 9457 problem with this status and stable code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["title"]
    assert body["detail"]
    return body


async def node_count(engine: AsyncEngine, account: Account) -> int:
    """Files and folders the account owns, straight from the database."""
    async with engine.connect() as connection:
        count = await connection.scalar(
            text("SELECT count(*) FROM node WHERE owner_id = :owner"),
            {"owner": UUID(account.user_id)},
        )
    return int(count or 0)


async def assert_nothing_stored(
    client: httpx.AsyncClient, engine: AsyncEngine, account: Account
) -> None:
    listed = await client.get("/list/", params={"status": "all"}, headers=account.headers)
    assert listed.status_code == 200, listed.text
    assert listed.json()["files"] == []
    assert await node_count(engine, account) == 0


async def post_upload(
    client: httpx.AsyncClient, account: Account | None, body: Any
) -> httpx.Response:
    headers = account.headers if account is not None else {}
    return await client.post("/upload/", json=body, headers=headers)


# --- file names ---------------------------------------------------------------------------

BAD_NAMES = [
    pytest.param("", id="empty"),
    pytest.param("   ", id="whitespace"),
    pytest.param("\u3000\t", id="unicode-whitespace"),
    pytest.param(".", id="dot"),
    pytest.param("..", id="dot-dot"),
    pytest.param("a/b.txt", id="slash"),
    pytest.param("../../etc/passwd", id="traversal"),
    pytest.param("a\\b.txt", id="backslash"),
    pytest.param("..\\evil.txt", id="backslash-traversal"),
    pytest.param("bell\x07.txt", id="control-char"),
    pytest.param("line\nbreak.txt", id="newline"),
    pytest.param("c1\x85.txt", id="c1-control-char"),
    pytest.param("invoice\u202efdp.exe", id="bidi-override"),
    pytest.param("invoice\u2067fdp.exe", id="bidi-isolate"),
    pytest.param("é" * 128, id="256-utf8-bytes"),
    pytest.param("a" * 256, id="256-ascii-bytes"),
    pytest.param("a" * 2000, id="very-long"),
]


@pytest.mark.parametrize("filename", BAD_NAMES)
async def test_bad_filename_is_refused_and_nothing_stored(
    client: httpx.AsyncClient, engine: AsyncEngine, alice: Account, filename: str
) -> None:
    response = await post_upload(client, alice, {"filename": filename, "size": 10})

    body = assert_problem(response, 422, "validation_error")
    assert any(error["loc"][-1] == "filename" for error in body["errors"]), body
    await assert_nothing_stored(client, engine, alice)


@pytest.mark.parametrize(
    "filename",
    [
        pytest.param("a" * 255, id="255-ascii-bytes"),
        pytest.param("é" * 127 + "a", id="255-utf8-bytes"),
    ],
)
async def test_filename_of_exactly_255_utf8_bytes_is_accepted(
    client: httpx.AsyncClient, alice: Account, filename: str
) -> None:
    response = await post_upload(client, alice, {"filename": filename, "size": 10})

    assert response.status_code == 201, response.text
    listed = await client.get("/list/", params={"status": "all"}, headers=alice.headers)
    assert [f["name"] for f in listed.json()["files"]] == [filename]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"size": 10}, id="missing"),
        pytest.param({"filename": None, "size": 10}, id="null"),
        pytest.param({"filename": 42, "size": 10}, id="number"),
        pytest.param({"filename": ["a.txt"], "size": 10}, id="list"),
    ],
)
async def test_missing_or_non_string_filename_is_refused(
    client: httpx.AsyncClient, engine: AsyncEngine, alice: Account, body: dict[str, Any]
) -> None:
    response = await post_upload(client, alice, body)

    assert_problem(response, 422, "validation_error")
    await assert_nothing_stored(client, engine, alice)


# --- folders ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "folder",
    [
        pytest.param("/a/../b", id="dot-dot-segment"),
        pytest.param("/a/./b", id="dot-segment"),
        pytest.param("a//b", id="empty-segment"),
        pytest.param("/a/ /b", id="blank-segment"),
        pytest.param("/a\\b", id="backslash"),
        pytest.param("/docs\u202e", id="bidi-override"),
        pytest.param("/" + "é" * 128, id="segment-over-255-bytes"),
    ],
)
async def test_bad_folder_is_refused_and_no_folder_created(
    client: httpx.AsyncClient, engine: AsyncEngine, alice: Account, folder: str
) -> None:
    response = await post_upload(client, alice, {"filename": "a.txt", "size": 1, "folder": folder})

    body = assert_problem(response, 422, "validation_error")
    assert any(error["loc"][-1] == "folder" for error in body["errors"]), body
    await assert_nothing_stored(client, engine, alice)


@pytest.mark.parametrize(
    ("field", "value"),
    [("filename", "nul\x00.txt"), ("folder", "/a\x00b"), ("filename", "\ud800.txt")],
)
async def test_text_postgresql_cannot_store_is_refused_at_the_edge(
    client: httpx.AsyncClient, engine: AsyncEngine, alice: Account, field: str, value: str
) -> None:
    body: dict[str, Any] = {"filename": "a.txt", "size": 1, field: value}
    # json.dumps writes the lone surrogate as an escape, as a client's JSON encoder would.
    response = await client.post(
        "/upload/",
        content=json.dumps(body),
        headers={**alice.headers, "Content-Type": "application/json"},
    )

    assert_problem(response, 422, "unstorable_text")
    await assert_nothing_stored(client, engine, alice)


# --- sizes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size",
    [
        pytest.param(-1, id="negative"),
        pytest.param("ten", id="word"),
        pytest.param(10.5, id="fraction"),
        pytest.param([10], id="list"),
    ],
)
async def test_bad_size_is_refused(
    client: httpx.AsyncClient, engine: AsyncEngine, alice: Account, size: Any
) -> None:
    response = await post_upload(client, alice, {"filename": "a.txt", "size": size})

    body = assert_problem(response, 422, "validation_error")
    assert any(error["loc"][-1] == "size" for error in body["errors"]), body
    await assert_nothing_stored(client, engine, alice)


async def test_size_over_the_configured_limit_is_413_and_the_limit_itself_is_accepted(
    client: httpx.AsyncClient, engine: AsyncEngine, alice: Account, app_with: AppWith
) -> None:
    async with app_with(max_upload_bytes=1000) as small_app, api_client(small_app) as small:
        response = await post_upload(
            small, alice, {"filename": "big.bin", "size": 1001, "folder": "/big"}
        )

        body = assert_problem(response, 413, "file_too_large")
        assert body["max_bytes"] == 1000
        await assert_nothing_stored(small, engine, alice)

        accepted = await post_upload(small, alice, {"filename": "big.bin", "size": 1000})
        assert accepted.status_code == 201, accepted.text


@pytest.mark.parametrize(
    "size", [pytest.param(6 * 1024 * GIB, id="6-tib"), pytest.param(10**30, id="1e30")]
)
async def test_size_over_the_5_tib_object_limit_is_refused_by_the_schema(
    client: httpx.AsyncClient, engine: AsyncEngine, alice: Account, size: int
) -> None:
    response = await post_upload(client, alice, {"filename": "huge.iso", "size": size})

    # No object store takes more than 5 TiB in one object, so the schema says so and the
    # value never reaches the policy (MAX_UPLOAD_BYTES is capped there too).
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"][0]["loc"] == ["body", "size"]
    await assert_nothing_stored(client, engine, alice)


# --- content types ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param("not a type", id="words"),
        pytest.param("text/html\r\nX-Evil: 1", id="header-injection-crlf"),
        pytest.param("text/html\nX-Evil: 1", id="header-injection-lf"),
        pytest.param("text/", id="no-subtype"),
        pytest.param("", id="empty"),
        pytest.param("text/plain; boundary=x", id="non-charset-parameter"),
    ],
)
async def test_bad_content_type_is_refused(
    client: httpx.AsyncClient, engine: AsyncEngine, alice: Account, content_type: str
) -> None:
    response = await post_upload(
        client, alice, {"filename": "a.txt", "size": 1, "content_type": content_type}
    )

    body = assert_problem(response, 422, "validation_error")
    assert any(error["loc"][-1] == "content_type" for error in body["errors"]), body
    await assert_nothing_stored(client, engine, alice)


# --- request bodies -----------------------------------------------------------------------


async def test_malformed_json_is_400_malformed_json(
    client: httpx.AsyncClient, engine: AsyncEngine, alice: Account
) -> None:
    response = await client.post(
        "/upload/",
        content=b'{"filename": ',
        headers={**alice.headers, "Content-Type": "application/json"},
    )

    assert_problem(response, 400, "malformed_json")
    await assert_nothing_stored(client, engine, alice)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param([{"filename": "a.txt", "size": 1}], id="array"),
        pytest.param("a.txt", id="string"),
        pytest.param(None, id="null"),
    ],
)
async def test_json_that_is_not_an_object_is_422(
    client: httpx.AsyncClient, engine: AsyncEngine, alice: Account, body: Any
) -> None:
    response = await client.post(
        "/upload/",
        content=json.dumps(body).encode(),
        headers={**alice.headers, "Content-Type": "application/json"},
    )

    assert_problem(response, 422, "validation_error")
    await assert_nothing_stored(client, engine, alice)


async def test_client_supplied_storage_key_is_refused_and_nothing_stored(
    client: httpx.AsyncClient, engine: AsyncEngine, alice: Account, bob: Account
) -> None:
    target = f"u/{bob.user_id}/stolen"
    response = await post_upload(
        client, alice, {"filename": "k.txt", "size": 1, "key": target, "storage_key": target}
    )

    body = assert_problem(response, 422, "validation_error")
    assert {tuple(error["loc"]) for error in body["errors"]} == {
        ("body", "key"),
        ("body", "storage_key"),
    }
    await assert_nothing_stored(client, engine, alice)


# --- completing ---------------------------------------------------------------------------


async def test_completing_an_unknown_file_id_is_404(
    client: httpx.AsyncClient, engine: AsyncEngine, alice: Account
) -> None:
    response = await complete(client, alice, str(uuid4()))

    assert_problem(response, 404, "upload_not_found")
    await assert_nothing_stored(client, engine, alice)


async def test_completing_a_non_uuid_file_id_is_422(
    client: httpx.AsyncClient, engine: AsyncEngine, alice: Account
) -> None:
    response = await complete(client, alice, "not-a-uuid")

    assert_problem(response, 422, "validation_error")
    await assert_nothing_stored(client, engine, alice)


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        pytest.param(b'{"upload_id": ', 400, "malformed_json", id="malformed-json"),
        pytest.param(b'{"upload_id": "nope"}', 422, "validation_error", id="non-uuid-upload-id"),
        pytest.param(b"[1]", 422, "validation_error", id="array"),
    ],
)
async def test_bad_complete_body_is_refused_and_the_upload_stays_pending(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    alice: Account,
    content: bytes,
    status: int,
    code: str,
) -> None:
    started = await start_upload(client, alice, "a.txt", size=1)
    assert (await post_form(web, started, b"x")).status_code in (200, 201, 204)

    response = await client.post(
        f"/upload/{started['file_id']}/complete",
        content=content,
        headers={**alice.headers, "Content-Type": "application/json"},
    )

    assert_problem(response, status, code)
    listed = await client.get("/list/", params={"status": "all"}, headers=alice.headers)
    assert [f["status"] for f in listed.json()["files"]] == ["pending"]


async def test_completing_with_an_unknown_upload_id_is_404(
    client: httpx.AsyncClient, alice: Account
) -> None:
    started = await start_upload(client, alice, "a.txt", size=1)

    response = await complete(client, alice, started["file_id"], upload_id=str(uuid4()))

    assert_problem(response, 404, "upload_not_found")


async def test_another_users_pending_upload_cannot_be_completed_and_is_left_alone(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    engine: AsyncEngine,
    alice: Account,
    bob: Account,
) -> None:
    data = b"alice's bytes"
    started = await start_upload(client, alice, "private.txt", size=len(data))
    posted = await post_form(web, started, data)
    assert posted.status_code in (200, 201, 204), posted.text

    by_file = await complete(client, bob, started["file_id"])
    by_upload = await complete(client, bob, started["file_id"], upload_id=started["upload_id"])

    assert_problem(by_file, 404, "upload_not_found")
    assert_problem(by_upload, 404, "upload_not_found")
    await assert_nothing_stored(client, engine, bob)
    listed = await client.get("/list/", params={"status": "all"}, headers=alice.headers)
    [pending] = listed.json()["files"]
    assert pending["file_id"] == started["file_id"]
    assert pending["status"] == "pending"
    completed = await complete(client, alice, started["file_id"])
    assert completed.status_code == 200, completed.text
    assert completed.json()["size"] == len(data)
    assert (await download_bytes(client, web, alice, started["file_id"])).content == data


# --- authentication -----------------------------------------------------------------------


def no_header(settings: Settings, account: Account) -> dict[str, str]:
    return {}


def impersonation_header(settings: Settings, account: Account) -> dict[str, str]:
    return {"X-User-Id": account.user_id}


def garbage_token(settings: Settings, account: Account) -> dict[str, str]:
    return {"Authorization": "Bearer not.a.token"}


def token_signed_with_another_key(settings: Settings, account: Account) -> dict[str, str]:
    token = AccessTokenSigner.from_secret("x" * 48, 900).issue(UUID(account.user_id))
    return {"Authorization": f"Bearer {token}"}


def unsigned_alg_none_token(settings: Settings, account: Account) -> dict[str, str]:
    now = datetime.now(UTC)
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": account.user_id,
        "iat": now,
        "exp": now + timedelta(minutes=15),
        "role": "admin",
        "email_verified": True,
    }
    token = jwt.encode(claims, key="", algorithm="none")
    return {"Authorization": f"Bearer {token}"}


def token_for_another_audience(settings: Settings, account: Account) -> dict[str, str]:
    assert settings.secret_key is not None
    signer = AccessTokenSigner.from_secret(settings.secret_key.get_secret_value(), 900)
    claims = jwt.decode(
        signer.issue(UUID(account.user_id)), signer.key, algorithms=["HS256"], audience=AUDIENCE
    )
    token = jwt.encode({**claims, "aud": "another-api"}, signer.key, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


def expired_token(settings: Settings, account: Account) -> dict[str, str]:
    assert settings.secret_key is not None
    signer = AccessTokenSigner.from_secret(settings.secret_key.get_secret_value(), 900)
    token = signer.issue(UUID(account.user_id), now=datetime.now(UTC) - timedelta(hours=1))
    return {"Authorization": f"Bearer {token}"}


def empty_bearer(settings: Settings, account: Account) -> dict[str, str]:
    return {"Authorization": "Bearer "}


def basic_auth(settings: Settings, account: Account) -> dict[str, str]:
    return {"Authorization": "Basic YWxpY2U6cGFzc3dvcmQ="}


@pytest.mark.parametrize(
    ("make_headers", "code"),
    [
        pytest.param(no_header, "not_authenticated", id="no-authorization"),
        pytest.param(impersonation_header, "not_authenticated", id="x-user-id-only"),
        pytest.param(basic_auth, "not_authenticated", id="basic-scheme"),
        pytest.param(empty_bearer, "not_authenticated", id="empty-bearer"),
        pytest.param(garbage_token, "invalid_token", id="garbage-token"),
        pytest.param(token_signed_with_another_key, "invalid_token", id="another-key"),
        pytest.param(unsigned_alg_none_token, "invalid_token", id="alg-none"),
        pytest.param(token_for_another_audience, "invalid_token", id="wrong-audience"),
        pytest.param(expired_token, "invalid_token", id="expired"),
    ],
)
async def test_unauthenticated_upload_is_401_and_nothing_stored(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    settings: Settings,
    alice: Account,
    make_headers: Callable[[Settings, Account], dict[str, str]],
    code: str,
) -> None:
    response = await client.post(
        "/upload/",
        json={"filename": "a.txt", "size": 1, "folder": "/stolen"},
        headers=make_headers(settings, alice),
    )

    assert_problem(response, 401, code)
    assert response.headers["www-authenticate"] == "Bearer"
    await assert_nothing_stored(client, engine, alice)


async def test_unauthenticated_complete_is_401_and_the_upload_stays_pending(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    started = await start_upload(client, alice, "a.txt", size=1)
    assert (await post_form(web, started, b"x")).status_code in (200, 201, 204)

    response = await client.post(
        f"/upload/{started['file_id']}/complete", headers={"X-User-Id": alice.user_id}
    )

    assert_problem(response, 401, "not_authenticated")
    listed = await client.get("/list/", params={"status": "all"}, headers=alice.headers)
    assert [f["status"] for f in listed.json()["files"]] == ["pending"]


# --- names that clash ---------------------------------------------------------------------


async def test_decomposed_name_is_the_same_file_as_its_nfc_form(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    composed, decomposed = "caf\u00e9.txt", "cafe\u0301.txt"
    first = await upload_file(client, web, alice, composed, b"v1")

    second = await start_upload(client, alice, decomposed, size=2)

    assert second["file_id"] == first["file_id"]
    assert second["upload_id"] != first["revision_id"]
    listed = await client.get("/list/", params={"status": "all"}, headers=alice.headers)
    [only] = listed.json()["files"]
    assert only["file_id"] == first["file_id"]
    assert only["name"] == composed
    assert (await post_form(web, second, b"v2")).status_code in (200, 201, 204)
    completed = await complete(client, alice, second["file_id"])
    assert completed.status_code == 200, completed.text
    assert completed.json()["name"] == composed
    assert (await download_bytes(client, web, alice, first["file_id"])).content == b"v2"


async def test_decomposed_folder_name_is_the_same_folder(
    client: httpx.AsyncClient, engine: AsyncEngine, alice: Account
) -> None:
    await start_upload(client, alice, "a.txt", size=1, folder="/caf\u00e9")
    await start_upload(client, alice, "b.txt", size=1, folder="/cafe\u0301")

    listed = await client.get(
        "/list/", params={"status": "all", "folder": "/caf\u00e9"}, headers=alice.headers
    )
    assert sorted(f["path"] for f in listed.json()["files"]) == [
        "/caf\u00e9/a.txt",
        "/caf\u00e9/b.txt",
    ]
    assert await node_count(engine, alice) == 3


async def test_file_name_of_an_existing_folder_is_409_name_taken(
    client: httpx.AsyncClient, engine: AsyncEngine, alice: Account
) -> None:
    await start_upload(client, alice, "a.txt", size=1, folder="/docs")
    before = await node_count(engine, alice)

    response = await post_upload(client, alice, {"filename": "docs", "size": 1})

    assert_problem(response, 409, "name_taken")
    assert await node_count(engine, alice) == before == 2


async def test_folder_path_through_a_file_is_409_not_a_folder(
    client: httpx.AsyncClient, web: httpx.AsyncClient, engine: AsyncEngine, alice: Account
) -> None:
    await upload_file(client, web, alice, "report.txt", b"numbers")
    before = await node_count(engine, alice)

    response = await post_upload(
        client, alice, {"filename": "y.txt", "size": 1, "folder": "/report.txt/x"}
    )

    assert_problem(response, 409, "not_a_folder")
    assert await node_count(engine, alice) == before == 1
    listed = await client.get("/list/", params={"status": "all"}, headers=alice.headers)
    assert [f["path"] for f in listed.json()["files"]] == ["/report.txt"]


async def test_not_a_folder_below_an_existing_folder_is_409_and_creates_nothing(
    client: httpx.AsyncClient, web: httpx.AsyncClient, engine: AsyncEngine, alice: Account
) -> None:
    await upload_file(client, web, alice, "report.txt", b"numbers", folder="/docs")
    before = await node_count(engine, alice)

    response = await post_upload(
        client, alice, {"filename": "y.txt", "size": 1, "folder": "/docs/report.txt/new/deeper"}
    )

    assert_problem(response, 409, "not_a_folder")
    assert await node_count(engine, alice) == before == 2
