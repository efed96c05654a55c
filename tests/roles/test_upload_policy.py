"""Upload-init applies the caller's email verification and role policy; refusals store nothing."""

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.core.config import Settings
from dropp.roles import service
from dropp.roles.errors import FileTypeNotAllowed, UploadNotAllowed
from dropp.roles.policy import UploadPolicy
from tests.conftest import api_client
from tests.helpers import (
    Account,
    assert_problem,
    complete,
    download_bytes,
    owned_nodes,
    post_form,
    register_account,
    set_user,
    start_upload,
    upload_file,
    verified_account,
)

AppWith = Callable[..., AbstractAsyncContextManager[FastAPI]]

# The scenario from the issue, exactly as an operator would write it in the environment.
SEED_ROLES = '{"ops": {"extensions": ["pptx","docx","xlsx"]}, "client": {"can_upload": false}}'


def roles_from_env(monkeypatch: pytest.MonkeyPatch, value: str) -> dict[str, UploadPolicy]:
    monkeypatch.setenv("ROLES", value)
    return Settings(_env_file=None).roles


async def post_upload(
    api: httpx.AsyncClient, account: Account, filename: str, **fields: Any
) -> httpx.Response:
    return await api.post(
        "/upload/", json={"filename": filename, **fields}, headers=account.headers
    )


# --- the policy itself ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "allowed"),
    [
        pytest.param("deck.pptx", True, id="exact"),
        pytest.param("Deck.PPTX", True, id="upper-case"),
        pytest.param("backup.TAR.GZ", True, id="multi-part"),
        pytest.param("backup.gz", False, id="only-the-last-part"),
        pytest.param("cv.re\u0301sume\u0301", True, id="decomposed-unicode"),
        pytest.param(".pptx", False, id="nothing-but-the-extension"),
        pytest.param("pptx", False, id="no-dot"),
        pytest.param("deck.pptx.exe", False, id="another-extension-last"),
        pytest.param("deck.pptx ", False, id="trailing-space"),
        pytest.param("deckpptx", False, id="no-separator"),
    ],
)
def test_extensions_match_case_insensitively_on_the_nfc_name(filename: str, allowed: bool) -> None:
    extensions = UploadPolicy(extensions=("pptx", "tar.gz", "r\u00e9sum\u00e9")).extensions

    assert service.extension_allowed(filename, extensions) is allowed


@pytest.mark.parametrize(
    ("content_type", "allowed"),
    [
        pytest.param("application/pdf", True, id="exact"),
        pytest.param("Application/PDF", True, id="case"),
        pytest.param("image/png", True, id="family"),
        pytest.param("text/plain; charset=utf-8", True, id="parameters-ignored"),
        pytest.param("text/html", False, id="other-type"),
        pytest.param("application/pdfx", False, id="longer-type"),
        pytest.param("imagex/png", False, id="other-family"),
    ],
)
def test_content_types_match_exactly_or_by_family(content_type: str, allowed: bool) -> None:
    policy = UploadPolicy(content_types=("application/pdf", "image/*", "text/plain"))

    assert service.content_type_allowed(content_type, policy.content_types) is allowed


def test_with_both_lists_both_must_admit_the_file() -> None:
    policy = UploadPolicy(extensions=("png",), content_types=("image/*",))

    service.check_upload(policy, filename="a.png", content_type="image/png")
    with pytest.raises(FileTypeNotAllowed):
        service.check_upload(policy, filename="a.png", content_type="application/x-msdownload")
    with pytest.raises(FileTypeNotAllowed):
        service.check_upload(policy, filename="a.exe", content_type="image/png")


def test_a_role_that_may_not_upload_is_refused_whatever_the_file() -> None:
    with pytest.raises(UploadNotAllowed):
        service.check_upload(
            UploadPolicy(can_upload=False), filename="a.txt", content_type="text/plain"
        )


def test_the_role_size_limit_stays_within_the_server_limit() -> None:
    assert service.size_limit(UploadPolicy(max_file_bytes=10), 1000) == 10
    assert service.size_limit(UploadPolicy(max_file_bytes=5000), 1000) == 1000
    assert service.size_limit(UploadPolicy(), 1000) == 1000


# --- the seed scenario: ops uploads office documents, clients upload nothing ---------------


async def test_ops_uploads_a_docx_through_storage(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    engine: AsyncEngine,
    app_with: AppWith,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ops = await verified_account(client, engine, "olga@example.com", role="ops")
    data = b"PK\x03\x04 quarterly plan"

    async with (
        app_with(roles=roles_from_env(monkeypatch, SEED_ROLES)) as app,
        api_client(app) as api,
    ):
        done = await upload_file(api, web, ops, "Plan.docx", data)
        downloaded = await download_bytes(api, web, ops, done["file_id"])

    assert done["status"] == "complete"
    assert done["content_type"] == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    assert downloaded.content == data


async def test_ops_is_refused_a_pdf_with_the_allowed_extensions_named(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    app_with: AppWith,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ops = await verified_account(client, engine, "olga@example.com", role="ops")

    async with (
        app_with(roles=roles_from_env(monkeypatch, SEED_ROLES)) as app,
        api_client(app) as api,
    ):
        refused = await post_upload(api, ops, "report.pdf", size=10, folder="/reports")

    body = assert_problem(refused, 415, "file_type_not_allowed")
    assert body["allowed_extensions"] == ["pptx", "docx", "xlsx"]
    assert body["allowed_content_types"] == []
    for extension in ("pptx", "docx", "xlsx"):
        assert extension in body["detail"]
    assert await owned_nodes(engine, ops.user_id) == 0


async def test_a_client_may_not_upload_at_all(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    app_with: AppWith,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    customer = await verified_account(client, engine, "carl@example.com", role="client")

    async with (
        app_with(roles=roles_from_env(monkeypatch, SEED_ROLES)) as app,
        api_client(app) as api,
    ):
        refused = await post_upload(api, customer, "plan.docx", size=10, folder="/in")

    assert_problem(refused, 403, "upload_not_allowed")
    assert await owned_nodes(engine, customer.user_id) == 0


async def test_members_and_admins_still_upload_anything_under_the_seed_roles(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    app_with: AppWith,
    monkeypatch: pytest.MonkeyPatch,
    alice: Account,
) -> None:
    admin = await verified_account(client, engine, "root@example.com", role="admin")

    async with (
        app_with(roles=roles_from_env(monkeypatch, SEED_ROLES)) as app,
        api_client(app) as api,
    ):
        for account in (alice, admin):
            started = await post_upload(api, account, "report.pdf", size=3)
            assert started.status_code == 201, started.text


async def test_a_role_no_longer_configured_may_not_upload(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    # The token still says "ops", but this server's ROLES no longer define it: fail closed.
    ops = await verified_account(client, engine, "olga@example.com", role="ops")

    refused = await post_upload(client, ops, "plan.docx", size=3)

    assert_problem(refused, 403, "upload_not_allowed")
    assert await owned_nodes(engine, ops.user_id) == 0


# --- the name cannot carry a file past the type checks -------------------------------------


async def test_the_checked_type_is_the_one_the_form_is_signed_with(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    engine: AsyncEngine,
    app_with: AppWith,
) -> None:
    designer = await verified_account(client, engine, "dora@example.com", role="design")
    roles = {"design": UploadPolicy(extensions=("png",), content_types=("image/*",))}

    async with app_with(roles=roles) as app, api_client(app) as api:
        lying_type = await post_upload(
            api, designer, "cat.png", size=3, content_type="application/x-msdownload"
        )
        lying_name = await post_upload(api, designer, "setup.exe", size=3, content_type="image/png")
        started = await start_upload(api, designer, "cat.png", size=3)
        # The form pins the type it was signed with: storage refuses another.
        tampered = await post_form(
            web, started, b"MZ\x90", fields={**started["upload"]["fields"], "Content-Type": "x/y"}
        )
        posted = await post_form(web, started, b"\x89PN")
        completed = await complete(api, designer, started["file_id"])

    assert_problem(lying_type, 415, "file_type_not_allowed")
    assert_problem(lying_name, 415, "file_type_not_allowed")
    assert started["content_type"] == "image/png"
    assert started["upload"]["fields"]["Content-Type"] == "image/png"
    assert tampered.status_code == 403, tampered.text
    assert posted.status_code in (200, 201, 204), posted.text
    assert completed.json()["content_type"] == "image/png"


async def test_a_guessed_type_is_checked_against_the_content_types(
    client: httpx.AsyncClient, engine: AsyncEngine, app_with: AppWith
) -> None:
    clerk = await verified_account(client, engine, "cleo@example.com", role="clerk")
    roles = {"clerk": UploadPolicy(content_types=("application/pdf",))}

    async with app_with(roles=roles) as app, api_client(app) as api:
        refused = await post_upload(api, clerk, "notes.txt", size=3)
        unknown = await post_upload(api, clerk, "blob.unknownext", size=3)
        accepted = await post_upload(api, clerk, "scan.PDF", size=3)

    body = assert_problem(refused, 415, "file_type_not_allowed")
    assert body["allowed_content_types"] == ["application/pdf"]
    assert "text/plain" in body["detail"]
    assert_problem(unknown, 415, "file_type_not_allowed")
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["content_type"] == "application/pdf"


# --- size ------------------------------------------------------------------------------------


async def test_a_declared_size_over_the_role_limit_is_refused(
    client: httpx.AsyncClient, engine: AsyncEngine, app_with: AppWith
) -> None:
    intern = await verified_account(client, engine, "ivan@example.com", role="intern")

    async with (
        app_with(roles={"intern": UploadPolicy(max_file_bytes=10)}) as app,
        api_client(app) as api,
    ):
        refused = await post_upload(api, intern, "big.txt", size=11)
        at_limit = await post_upload(api, intern, "ok.txt", size=10)

    body = assert_problem(refused, 413, "file_too_large")
    assert body["max_bytes"] == 10
    assert at_limit.status_code == 201, at_limit.text
    assert await owned_nodes(engine, intern.user_id) == 1


async def test_storage_enforces_the_role_limit_when_no_size_is_declared(
    client: httpx.AsyncClient, web: httpx.AsyncClient, engine: AsyncEngine, app_with: AppWith
) -> None:
    intern = await verified_account(client, engine, "ivan@example.com", role="intern")

    async with (
        app_with(roles={"intern": UploadPolicy(max_file_bytes=10)}) as app,
        api_client(app) as api,
    ):
        started = await start_upload(api, intern, "grows.txt")
        too_big = await post_form(web, started, b"x" * 11)
        fits = await post_form(web, started, b"x" * 10)

    assert too_big.status_code == 400, too_big.text
    assert fits.status_code in (200, 201, 204), fits.text


# --- email verification ------------------------------------------------------------------------


async def test_an_unverified_account_may_not_upload_until_a_refresh_carries_the_claim(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    newcomer = await register_account(client, "nina@example.com")

    refused = await post_upload(client, newcomer, "a.txt", size=1, folder="/docs")
    await set_user(engine, newcomer.user_id, verified=True)
    still_refused = await post_upload(client, newcomer, "a.txt", size=1)
    refreshed = await client.post("/auth/refresh", json={"refresh_token": newcomer.refresh_token})
    fresh = Account(newcomer.email, newcomer.user_id, refreshed.json()["access_token"], "")
    accepted = await post_upload(client, fresh, "a.txt", size=1)

    body = assert_problem(refused, 403, "email_not_verified")
    assert "verif" in body["detail"]
    assert "/auth/refresh" in body["detail"]
    assert_problem(still_refused, 403, "email_not_verified")
    assert accepted.status_code == 201, accepted.text
    assert await owned_nodes(engine, newcomer.user_id) == 1


async def test_unverified_accounts_upload_when_verification_is_not_required(
    client: httpx.AsyncClient, app_with: AppWith
) -> None:
    newcomer = await register_account(client, "nina@example.com")

    async with app_with(require_email_verification=False) as app, api_client(app) as api:
        accepted = await post_upload(api, newcomer, "a.txt", size=1)

    assert accepted.status_code == 201, accepted.text


async def test_verification_is_checked_before_the_role_policy(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, app_with: AppWith
) -> None:
    newcomer = await register_account(client, "nina@example.com")

    async with (
        app_with(roles=roles_from_env(monkeypatch, '{"member": {"can_upload": false}}')) as app,
        api_client(app) as api,
    ):
        refused = await post_upload(api, newcomer, "a.txt", size=1)

    assert_problem(refused, 403, "email_not_verified")
