import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from uuid import uuid4

import httpx
from fastapi import FastAPI

from dropp.storage.s3 import Storage
from tests.conftest import api_client
from tests.helpers import Account, download_bytes, start_upload, upload_file


async def test_list_shows_complete_files_by_default(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    done = await upload_file(client, web, alice, "done.txt", b"done")
    pending = await start_upload(client, alice, "pending.txt", size=3)

    default = await client.get("/list/", headers=alice.headers)
    only_pending = await client.get("/list/?status=pending", headers=alice.headers)
    everything = await client.get("/list/?status=all", headers=alice.headers)

    assert [f["file_id"] for f in default.json()["files"]] == [done["file_id"]]
    assert [f["file_id"] for f in only_pending.json()["files"]] == [pending["file_id"]]
    assert {f["file_id"] for f in everything.json()["files"]} == {
        done["file_id"],
        pending["file_id"],
    }
    item = default.json()["files"][0]
    assert set(item) >= {
        "file_id",
        "name",
        "path",
        "size",
        "content_type",
        "status",
        "created_at",
        "updated_at",
    }


async def test_list_of_a_folder_shows_only_its_own_files(
    client: httpx.AsyncClient, alice: Account
) -> None:
    top = await start_upload(client, alice, "top.txt", size=1)
    inside = await start_upload(client, alice, "in.txt", size=1, folder="/a")
    deeper = await start_upload(client, alice, "deep.txt", size=1, folder="/a/b")

    in_a = await client.get("/list/?status=all&folder=/a", headers=alice.headers)
    at_top = await client.get("/list/?status=all&folder=/", headers=alice.headers)
    anywhere = await client.get("/list/?status=all", headers=alice.headers)

    assert [f["file_id"] for f in in_a.json()["files"]] == [inside["file_id"]]
    assert [f["file_id"] for f in at_top.json()["files"]] == [top["file_id"]]
    assert {f["path"] for f in anywhere.json()["files"]} == {
        "/top.txt",
        "/a/in.txt",
        "/a/b/deep.txt",
    }
    assert deeper["file_id"] in {f["file_id"] for f in anywhere.json()["files"]}


async def test_list_of_a_missing_folder_is_404(client: httpx.AsyncClient, alice: Account) -> None:
    missing = await client.get("/list/?folder=/nowhere", headers=alice.headers)

    assert missing.status_code == 404
    assert missing.json()["code"] == "folder_not_found"


async def test_list_pages_with_a_cursor_newest_first(
    client: httpx.AsyncClient, alice: Account
) -> None:
    started = [await start_upload(client, alice, f"f{n}.txt", size=1) for n in range(5)]

    seen: list[str] = []
    cursor = None
    while True:
        params = {"status": "all", "limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/list/", params=params, headers=alice.headers)).json()
        seen += [f["file_id"] for f in page["files"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == [s["file_id"] for s in reversed(started)]


async def test_a_forged_cursor_is_400(client: httpx.AsyncClient, alice: Account) -> None:
    forged = await client.get("/list/?cursor=bm90LWEtY3Vyc29y", headers=alice.headers)

    assert forged.status_code == 400
    assert forged.json()["code"] == "invalid_cursor"


async def test_metadata_of_a_file(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    done = await upload_file(client, web, alice, "meta.csv", b"a,b\n", folder="/data")

    metadata = await client.get(f"/files/{done['file_id']}", headers=alice.headers)

    assert metadata.status_code == 200
    assert metadata.json() == done
    assert metadata.json()["path"] == "/data/meta.csv"


async def test_download_is_an_attachment_with_the_exact_unicode_name(
    app_with: Callable[..., AbstractAsyncContextManager[FastAPI]],
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    alice: Account,
) -> None:
    # A quote is a name only servers without Windows desktops accept (docs/names.md), and
    # the one a Content-Disposition header must escape.
    async with (
        app_with(allow_windows_incompatible_names=True) as app,
        api_client(app) as lenient,
    ):
        done = await upload_file(lenient, web, alice, 'Résumé "final" 2026.txt', b"cv")

    downloaded = await download_bytes(client, web, alice, done["file_id"])

    disposition = downloaded.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''R%C3%A9sum%C3%A9%20%22final%22%202026.txt" in disposition
    assert downloaded.content == b"cv"


async def test_uploaded_html_is_never_served_as_html(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    page = b"<script>alert(document.cookie)</script>"
    done = await upload_file(client, web, alice, "page.html", page, content_type="text/html")

    downloaded = await download_bytes(client, web, alice, done["file_id"])

    assert downloaded.headers["content-type"] == "application/octet-stream"
    assert downloaded.headers["content-disposition"].startswith("attachment;")


async def test_download_redirect_answers_302_to_the_bytes(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    done = await upload_file(client, web, alice, "go.txt", b"there")

    redirected = await client.get(
        f"/download/{done['file_id']}?redirect=true", headers=alice.headers
    )

    assert redirected.status_code == 302
    assert (await web.get(redirected.headers["location"])).content == b"there"


async def test_download_of_a_pending_file_is_409(client: httpx.AsyncClient, alice: Account) -> None:
    started = await start_upload(client, alice, "later.txt", size=1)

    refused = await client.get(f"/download/{started['file_id']}", headers=alice.headers)

    assert refused.status_code == 409
    assert refused.json()["code"] == "file_not_ready"


async def test_download_url_expires(
    app_with: Callable[..., AbstractAsyncContextManager[FastAPI]],
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    alice: Account,
) -> None:
    done = await upload_file(client, web, alice, "brief.txt", b"brief")
    async with app_with(presign_ttl_seconds=1) as short_lived, api_client(short_lived) as api:
        signed = await api.get(f"/download/{done['file_id']}", headers=alice.headers)

    await asyncio.sleep(2.5)

    assert (await web.get(signed.json()["url"])).status_code == 403


async def test_delete_trashes_and_purging_removes_every_stored_version(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, storage: Storage
) -> None:
    first = await upload_file(client, web, alice, "gone.txt", b"one")
    await upload_file(client, web, alice, "gone.txt", b"two")
    keys = [key async for key in _keys_under(storage, f"u/{alice.user_id}/")]

    deleted = await client.delete(f"/files/{first['file_id']}", headers=alice.headers)
    in_trash = [key async for key in _keys_under(storage, f"u/{alice.user_id}/")]
    purged = await client.delete(f"/trash/{first['file_id']}", headers=alice.headers)

    assert deleted.status_code == 204
    assert purged.status_code == 204
    assert len(keys) == 2
    assert in_trash == keys
    assert (
        await client.get(f"/files/{first['file_id']}", headers=alice.headers)
    ).status_code == 404
    assert [key async for key in _keys_under(storage, f"u/{alice.user_id}/")] == []


async def _keys_under(storage: Storage, prefix: str) -> AsyncIterator[str]:
    paginator = storage.client.get_paginator("list_object_versions")
    async for page in paginator.paginate(Bucket=storage.bucket, Prefix=prefix):
        for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
            yield entry["Key"]


async def test_another_users_file_is_404_everywhere_without_side_effects(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    done = await upload_file(client, web, alice, "private.txt", b"mine")
    file_id = done["file_id"]

    answers = [
        await client.get(f"/files/{file_id}", headers=bob.headers),
        await client.get(f"/download/{file_id}", headers=bob.headers),
        await client.get(f"/download/{file_id}?redirect=true", headers=bob.headers),
        await client.post(f"/upload/{file_id}/complete", headers=bob.headers),
        await client.delete(f"/files/{file_id}", headers=bob.headers),
    ]

    assert [a.status_code for a in answers] == [404] * 5
    assert all("mine" not in a.text and "private" not in a.text for a in answers)
    assert (await client.get("/list/?status=all", headers=bob.headers)).json()["files"] == []
    assert (await download_bytes(client, web, alice, file_id)).content == b"mine"


async def test_an_unknown_file_id_is_404(client: httpx.AsyncClient, alice: Account) -> None:
    for path in (f"/files/{uuid4()}", f"/download/{uuid4()}"):
        missing = await client.get(path, headers=alice.headers)
        assert missing.status_code == 404
        assert missing.json()["code"] == "file_not_found"
