"""Folder links: the folder's tree and its files, and nothing outside it."""

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.files.test_tree import make_folder
from tests.helpers import Account, assert_problem, start_upload, upload_file
from tests.sharing.link_helpers import BROWSER_ACCEPT, link_row, make_link, visitor


async def shared_tree(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, bob: Account
) -> dict[str, Any]:
    """Alice shares /projects/dropp, which holds notes.txt, docs/spec.md and a file still
    uploading; beside it are /projects/secret and her top-level files; Bob has his own."""
    shared = await make_folder(client, alice, "/projects/dropp")
    files = {
        "notes": await upload_file(
            client, web, alice, "notes.txt", b"notes", folder="/projects/dropp"
        ),
        "spec": await upload_file(
            client, web, alice, "spec.md", b"# spec", folder="/projects/dropp/docs"
        ),
        "sibling": await upload_file(
            client, web, alice, "plan.txt", b"sibling secret", folder="/projects/secret"
        ),
        "top": await upload_file(client, web, alice, "notes.txt", b"top-level secret"),
        "bobs": await upload_file(client, web, bob, "notes.txt", b"bob's"),
    }
    await start_upload(client, alice, "uploading.bin", size=10, folder="/projects/dropp")
    link = await make_link(client, alice, folder_id=shared["folder_id"])
    return {"link": link, "token": link["token"], "folder": shared, **files}


async def test_a_folder_link_lists_its_folder_folders_first(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    app: FastAPI,
    alice: Account,
    bob: Account,
) -> None:
    tree = await shared_tree(client, web, alice, bob)

    async with visitor(app) as anyone:
        top = await anyone.get(f"/s/{tree['token']}")
        docs = await anyone.get(f"/s/{tree['token']}", params={"path": "/docs"})
        same = await anyone.get(f"/s/{tree['token']}", params={"path": "docs/"})

    assert top.status_code == 200, top.text
    assert top.headers["referrer-policy"] == "no-referrer"
    body = top.json()
    assert (body["kind"], body["name"], body["path"], body["next_cursor"]) == (
        "folder",
        "dropp",
        "/",
        None,
    )
    assert body["items"] == [
        {"name": "docs", "kind": "folder", "path": "/docs", "size": None, "content_type": None},
        {
            "name": "notes.txt",
            "kind": "file",
            "path": "/notes.txt",
            "size": 5,
            "content_type": "text/plain",
        },
    ]
    assert docs.json()["path"] == "/docs"
    assert [item["path"] for item in docs.json()["items"]] == ["/docs/spec.md"]
    assert same.json() == docs.json()
    assert tree["folder"]["folder_id"] not in top.text


async def test_a_folder_listing_is_paged(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    shared = await make_folder(client, alice, "/many")
    for name in ("c", "a", "b"):
        await make_folder(client, alice, f"/many/{name}")
    link = await make_link(client, alice, folder_id=shared["folder_id"])

    async with visitor(app) as anyone:
        first = await anyone.get(f"/s/{link['token']}", params={"limit": 2})
        second = await anyone.get(
            f"/s/{link['token']}", params={"limit": 2, "cursor": first.json()["next_cursor"]}
        )
        bogus = await anyone.get(f"/s/{link['token']}", params={"cursor": "bogus"})

    assert [item["name"] for item in first.json()["items"]] == ["a", "b"]
    assert [item["name"] for item in second.json()["items"]] == ["c"]
    assert second.json()["next_cursor"] is None
    assert_problem(bogus, 400, "invalid_cursor")


async def test_a_folder_link_downloads_nested_files(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    app: FastAPI,
    alice: Account,
    bob: Account,
    engine: AsyncEngine,
) -> None:
    tree = await shared_tree(client, web, alice, bob)

    async with visitor(app) as anyone:
        spec = await anyone.get(f"/s/{tree['token']}/download", params={"path": "/docs/spec.md"})
        notes = await anyone.get(f"/s/{tree['token']}/download", params={"path": "notes.txt"})

    assert spec.status_code == 302, spec.text
    fetched = await web.get(spec.headers["location"])
    assert fetched.content == b"# spec"
    assert fetched.headers["content-disposition"].startswith("attachment")
    assert (await web.get(notes.headers["location"])).content == b"notes"
    assert (await link_row(engine, tree["link"]["id"]))["downloads_used"] == 2


async def test_nothing_outside_the_folder_is_reachable(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    app: FastAPI,
    alice: Account,
    bob: Account,
    engine: AsyncEngine,
) -> None:
    tree = await shared_tree(client, web, alice, bob)
    trashed = await upload_file(
        client, web, alice, "old.txt", b"trashed", folder="/projects/dropp/docs"
    )
    await client.delete(f"/files/{trashed['file_id']}", headers=alice.headers)
    outside = [
        "../secret/plan.txt",
        "/../secret/plan.txt",
        "/docs/../../secret/plan.txt",
        "/projects/secret/plan.txt",
        "/secret/plan.txt",
        "..%2Fsecret%2Fplan.txt",
        "/docs/old.txt",
        "/uploading.bin",
        "/docs",
        "/",
        "",
        "//notes.txt/",
        "/notes.txt/x",
        tree["sibling"]["file_id"],
        tree["top"]["file_id"],
        tree["bobs"]["file_id"],
        "a//b",
        "/" + "x" * 300,
    ]

    async with visitor(app) as anyone:
        downloads = [
            await anyone.get(f"/s/{tree['token']}/download", params={"path": path})
            for path in outside
        ]
        by_id = await anyone.get(
            f"/s/{tree['token']}/download", params={"file_id": tree["sibling"]["file_id"]}
        )
        listings = [
            await anyone.get(f"/s/{tree['token']}", params={"path": path})
            for path in ("../secret", "/projects/secret", "/../..", "/notes.txt", "/docs/nope")
        ]

    # "//notes.txt/" names notes.txt inside the folder, like "/notes.txt": the only success.
    refused = [
        answer for path, answer in zip(outside, downloads, strict=True) if path != "//notes.txt/"
    ]
    for answer in refused:
        assert_problem(answer, 404, "file_not_found")
        assert answer.content == refused[0].content
    assert downloads[outside.index("//notes.txt/")].status_code == 302
    assert_problem(by_id, 400, "invalid_share_path")
    for answer in listings:
        assert_problem(answer, 404, "folder_not_found")
        assert answer.content == listings[0].content
    assert (await link_row(engine, tree["link"]["id"]))["downloads_used"] == 1


async def test_a_trashed_subfolder_vanishes_from_the_link(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    app: FastAPI,
    alice: Account,
    bob: Account,
) -> None:
    tree = await shared_tree(client, web, alice, bob)
    docs = await make_folder(client, alice, "/projects/dropp/docs")
    await client.delete(f"/folders/{docs['folder_id']}", headers=alice.headers)

    async with visitor(app) as anyone:
        top = await anyone.get(f"/s/{tree['token']}")
        listed = await anyone.get(f"/s/{tree['token']}", params={"path": "/docs"})
        downloaded = await anyone.get(
            f"/s/{tree['token']}/download", params={"path": "/docs/spec.md"}
        )

    assert [item["name"] for item in top.json()["items"]] == ["notes.txt"]
    assert_problem(listed, 404, "folder_not_found")
    assert_problem(downloaded, 404, "file_not_found")


async def test_a_trashed_shared_folder_closes_its_link(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    app: FastAPI,
    alice: Account,
    bob: Account,
) -> None:
    tree = await shared_tree(client, web, alice, bob)
    projects = await make_folder(client, alice, "/projects")
    await client.delete(f"/folders/{projects['folder_id']}", headers=alice.headers)

    async with visitor(app) as anyone:
        shown = await anyone.get(f"/s/{tree['token']}")
        downloaded = await anyone.get(f"/s/{tree['token']}/download", params={"path": "/notes.txt"})

    assert_problem(shown, 404, "share_not_found")
    assert_problem(downloaded, 404, "share_not_found")


async def test_a_folder_link_downloads_one_named_file(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    app: FastAPI,
    alice: Account,
    bob: Account,
) -> None:
    tree = await shared_tree(client, web, alice, bob)

    async with visitor(app) as anyone:
        answer = await anyone.get(f"/s/{tree['token']}/download")

    assert_problem(answer, 400, "invalid_share_path")


async def test_a_browser_browses_the_folder_and_downloads_from_it(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    app: FastAPI,
    alice: Account,
    bob: Account,
) -> None:
    tree = await shared_tree(client, web, alice, bob)
    token = tree["token"]
    browser = {"Accept": BROWSER_ACCEPT}

    async with visitor(app) as anyone:
        top = await anyone.get(f"/s/{token}", headers=browser)
        docs = await anyone.get(f"/s/{token}", params={"path": "/docs"}, headers=browser)
        missing = await anyone.get(f"/s/{token}", params={"path": "/nope"}, headers=browser)

    assert top.status_code == 200, top.text
    assert top.headers["x-robots-tag"] == "noindex, nofollow"
    assert f'href="/s/{token}?path=%2Fdocs"' in top.text
    assert f'href="/s/{token}/download?path=%2Fnotes.txt"' in top.text
    assert "uploading.bin" not in top.text
    assert "src=" not in top.text
    assert f'href="/s/{token}/download?path=%2Fdocs%2Fspec.md"' in docs.text
    assert f'href="/s/{token}"' in docs.text  # back up to the shared folder
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
