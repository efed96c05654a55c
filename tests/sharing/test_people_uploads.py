"""Editors upload through a share: into the owner's tree and quota, under their own role's
policy, and they finish (or cancel) their uploads with the usual routes."""

import hashlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.roles.policy import UploadPolicy
from tests.conftest import api_client
from tests.files.test_tree import make_folder
from tests.helpers import (
    Account,
    assert_problem,
    complete,
    owned_nodes,
    post_form,
    put_part,
    upload_file,
    verified_account,
)
from tests.sharing.people_helpers import granted

AppWith = Callable[..., AbstractAsyncContextManager[FastAPI]]


async def start(
    client: httpx.AsyncClient, account: Account, share_id: str, filename: str, **fields: Any
) -> httpx.Response:
    return await client.post(
        "/upload/",
        json={"filename": filename, "share_id": share_id, **fields},
        headers=account.headers,
    )


async def upload_through(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    account: Account,
    share_id: str,
    filename: str,
    data: bytes,
    **fields: Any,
) -> httpx.Response:
    """Init through the share, POST the bytes to storage, complete: the completion's answer."""
    started = await start(client, account, share_id, filename, size=len(data), **fields)
    assert started.status_code == 201, started.text
    posted = await post_form(web, started.json(), data)
    assert posted.status_code in (200, 201, 204), posted.text
    return await complete(client, account, started.json()["file_id"])


async def usage(client: httpx.AsyncClient, account: Account) -> int:
    used: int = (await client.get("/me/usage", headers=account.headers)).json()["bytes"]
    return used


async def test_an_editor_adds_a_file_to_a_shared_folder_in_the_owners_tree(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    engine: AsyncEngine,
    alice: Account,
    bob: Account,
) -> None:
    folder = await make_folder(client, alice, "/projects/reports")
    grant = await granted(
        client, alice, folder_id=folder["folder_id"], email="bob@example.com", permission="editor"
    )

    done = await upload_through(client, web, bob, grant["id"], "b.txt", b"bob's", folder="/q2")

    assert done.status_code == 200, done.text
    assert done.json()["path"] == "/reports/q2/b.txt"
    owners = await client.get("/list/", headers=alice.headers)
    assert [(f["file_id"], f["path"]) for f in owners.json()["files"]] == [
        (done.json()["file_id"], "/projects/reports/q2/b.txt")
    ]
    assert await owned_nodes(engine, bob.user_id) == 0
    assert (await usage(client, alice), await usage(client, bob)) == (5, 0)
    revisions = await client.get(
        f"/files/{done.json()['file_id']}/revisions", headers=alice.headers
    )
    (revision,) = revisions.json()["revisions"]
    assert (revision["uploaded_by"], revision["uploaded_by_email"]) == (
        bob.user_id,
        "bob@example.com",
    )
    read = await client.get(f"/download/{done.json()['file_id']}", headers=alice.headers)
    assert (await web.get(read.json()["url"])).content == b"bob's"


async def test_an_editor_uploads_new_revisions_of_a_shared_file_and_only_of_it(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    original = await upload_file(client, web, alice, "plan.txt", b"v1", folder="/projects")
    grant = await granted(
        client, alice, file_id=original["file_id"], role="member", permission="editor"
    )

    done = await upload_through(client, web, bob, grant["id"], "plan.txt", b"v2 by bob")
    other_name = await start(client, bob, grant["id"], "other.txt", size=1)
    with_folder = await start(client, bob, grant["id"], "plan.txt", size=1, folder="/x")

    assert done.status_code == 200, done.text
    assert (done.json()["file_id"], done.json()["path"]) == (original["file_id"], "/plan.txt")
    assert_problem(other_name, 422, "share_target_mismatch")
    assert_problem(with_folder, 422, "share_target_mismatch")
    revisions = await client.get(f"/files/{original['file_id']}/revisions", headers=bob.headers)
    assert [r["uploaded_by"] for r in revisions.json()["revisions"]] == [bob.user_id, None]
    owners = await client.get(f"/files/{original['file_id']}", headers=alice.headers)
    assert (owners.json()["path"], owners.json()["size"]) == ("/projects/plan.txt", 9)


async def test_a_viewer_may_not_upload_and_a_stranger_finds_no_share(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    alice: Account,
    bob: Account,
) -> None:
    folder = await make_folder(client, alice, "/projects")
    grant = await granted(client, alice, folder_id=folder["folder_id"], email="bob@example.com")
    carol = await verified_account(client, engine, "carol@example.com")

    as_viewer = await start(client, bob, grant["id"], "a.txt", size=1)
    as_stranger = await start(client, carol, grant["id"], "a.txt", size=1)
    as_owner = await start(client, alice, grant["id"], "a.txt", size=1)

    assert_problem(as_viewer, 403, "share_read_only")
    assert_problem(as_stranger, 404, "grant_not_found")
    # The owner uploads to her own tree directly; her grant is not a way in for her.
    assert_problem(as_owner, 404, "grant_not_found")
    listing = await client.get("/list/?status=all", headers=alice.headers)
    assert listing.json()["files"] == []


async def test_the_editors_own_role_policy_still_applies(
    client: httpx.AsyncClient, engine: AsyncEngine, app_with: AppWith, alice: Account
) -> None:
    folder = await make_folder(client, alice, "/projects")
    grant = await granted(
        client, alice, folder_id=folder["folder_id"], role="member", permission="editor"
    )
    roles = {"member": UploadPolicy(extensions=("docx",), max_file_bytes=10)}

    async with app_with(roles=roles) as app, api_client(app) as api:
        editor = await verified_account(api, engine, "bob@example.com")
        wrong_type = await start(api, editor, grant["id"], "a.pdf", size=1)
        too_large = await start(api, editor, grant["id"], "a.docx", size=11)
        accepted = await start(api, editor, grant["id"], "a.docx", size=10)

    assert_problem(wrong_type, 415, "file_type_not_allowed")
    assert_problem(too_large, 413, "file_too_large")
    assert accepted.status_code == 201, accepted.text


async def test_an_upload_through_a_share_counts_against_the_owners_quota(
    client: httpx.AsyncClient, engine: AsyncEngine, app_with: AppWith, alice: Account
) -> None:
    folder = await make_folder(client, alice, "/projects")
    grant = await granted(
        client, alice, folder_id=folder["folder_id"], role="member", permission="editor"
    )

    async with app_with(default_quota_bytes=100) as app, api_client(app) as api:
        editor = await verified_account(api, engine, "bob@example.com")
        over = await start(api, editor, grant["id"], "big.bin", size=101)
        within = await start(api, editor, grant["id"], "ok.bin", size=100)
        owners_own = await api.post(
            "/upload/", json={"filename": "mine.bin", "size": 1}, headers=alice.headers
        )

    assert_problem(over, 413, "quota_exceeded")
    assert within.status_code == 201, within.text
    # The editor's upload holds the owner's whole quota while it is pending.
    assert_problem(owners_own, 413, "quota_exceeded")


async def test_an_editor_finishes_lists_and_cancels_only_their_own_uploads(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    alice: Account,
    bob: Account,
) -> None:
    folder = await make_folder(client, alice, "/projects")
    grant = await granted(
        client, alice, folder_id=folder["folder_id"], email="bob@example.com", permission="editor"
    )
    owners = await client.post(
        "/upload/",
        json={"filename": "mine.txt", "folder": "/projects", "size": 2},
        headers=alice.headers,
    )
    data = b"x" * 1024
    multipart = await start(client, bob, grant["id"], "big.bin", size=len(data), multipart=True)
    file_id = multipart.json()["file_id"]

    parts = await client.post(
        f"/upload/{file_id}/parts",
        json={"part_numbers": [1], "sha256": {"1": hashlib.sha256(data).hexdigest()}},
        headers=bob.headers,
    )
    put = await put_part(web, parts.json()["parts"][0], data)
    held = await client.get(f"/upload/{file_id}/parts", headers=bob.headers)
    finished = await complete(client, bob, file_id)
    not_bobs = await complete(client, bob, owners.json()["file_id"])
    cancel_not_bobs = await client.delete(
        f"/upload/{owners.json()['file_id']}", headers=bob.headers
    )
    dropped = await start(client, bob, grant["id"], "dropped.txt", size=3)
    cancelled = await client.delete(f"/upload/{dropped.json()['file_id']}", headers=bob.headers)

    assert parts.status_code == 200, parts.text
    assert put.status_code == 200, put.text
    assert [p["part_number"] for p in held.json()["parts"]] == [1]
    assert finished.status_code == 200, finished.text
    assert finished.json()["path"] == "/projects/big.bin"
    assert_problem(not_bobs, 404, "upload_not_found")
    assert_problem(cancel_not_bobs, 404, "upload_not_found")
    assert cancelled.status_code == 204, cancelled.text
    listing = await client.get("/list/?status=all", headers=alice.headers)
    assert {f["name"] for f in listing.json()["files"]} == {"mine.txt", "big.bin"}


async def test_access_is_checked_again_when_the_editor_completes(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    folder = await make_folder(client, alice, "/projects")
    grant = await granted(
        client, alice, folder_id=folder["folder_id"], email="bob@example.com", permission="editor"
    )
    first = await start(client, bob, grant["id"], "a.txt", size=1)
    second = await start(client, bob, grant["id"], "b.txt", size=1)
    for started in (first, second):
        await post_form(web, started.json(), b"a")

    await client.patch(
        f"/shares/people/{grant['id']}", json={"permission": "viewer"}, headers=alice.headers
    )
    as_viewer = await complete(client, bob, first.json()["file_id"])
    await client.delete(f"/shares/people/{grant['id']}", headers=alice.headers)
    revoked = await complete(client, bob, second.json()["file_id"])
    by_owner = await complete(client, alice, first.json()["file_id"])

    assert_problem(as_viewer, 404, "upload_not_found")
    assert_problem(revoked, 404, "upload_not_found")
    assert by_owner.status_code == 200, by_owner.text
    assert by_owner.json()["path"] == "/projects/a.txt"


async def test_several_pending_uploads_of_one_editor_must_be_named(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    original = await upload_file(client, web, alice, "plan.txt", b"v1")
    grant = await granted(
        client, alice, file_id=original["file_id"], email="bob@example.com", permission="editor"
    )
    first = (await start(client, bob, grant["id"], "plan.txt", size=2)).json()
    second = (await start(client, bob, grant["id"], "plan.txt", size=2)).json()
    await post_form(web, second, b"v2")

    ambiguous = await complete(client, bob, original["file_id"])
    named = await complete(client, bob, original["file_id"], upload_id=second["upload_id"])

    assert_problem(ambiguous, 409, "upload_ambiguous")
    assert named.status_code == 200, named.text
    assert named.json()["revision_id"] == second["upload_id"]
    assert first["upload_id"] != second["upload_id"]
