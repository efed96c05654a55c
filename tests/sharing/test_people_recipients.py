"""The recipient's side: "shared with me", browsing a shared folder, and reading shared files
through the usual routes, where nothing else of the owner's is within reach."""

from uuid import UUID

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.files.test_tree import make_folder
from tests.helpers import Account, assert_problem, upload_file
from tests.sharing.people_helpers import browse, granted, share, share_downloads, shared_items


async def test_shared_with_me_lists_each_share_as_its_item(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    done = await upload_file(client, web, alice, "plan.txt", b"the plan", folder="/private/deep")
    folder = await make_folder(client, alice, "/projects/reports")
    on_file = await granted(
        client, alice, file_id=done["file_id"], email="bob@example.com", note="read me"
    )
    on_folder = await granted(
        client, alice, folder_id=folder["folder_id"], role="member", permission="editor"
    )

    listed = await shared_items(client, bob)

    assert [item["grant_id"] for item in listed] == [on_folder["id"], on_file["id"]]
    folder_item, file_item = listed
    assert folder_item == {
        "grant_id": on_folder["id"],
        "node_id": folder["folder_id"],
        "kind": "folder",
        "name": "reports",
        "path": "/reports",
        "permission": "editor",
        "owner_email": "alice@example.com",
        "note": None,
        "size": None,
        "content_type": None,
        "status": None,
        "revision_id": None,
        "shared_at": on_folder["created_at"],
    }
    # Where the file is in the owner's tree is not the recipient's business.
    assert (file_item["path"], file_item["kind"], file_item["note"]) == (
        "/plan.txt",
        "file",
        "read me",
    )
    assert (file_item["size"], file_item["content_type"], file_item["status"]) == (
        8,
        "text/plain",
        "complete",
    )
    assert file_item["revision_id"] == done["revision_id"]


async def test_shared_with_me_pages_with_a_cursor(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    made = []
    for name in ("a", "b", "c"):
        folder = await make_folder(client, alice, f"/{name}")
        made.append(
            await granted(client, alice, folder_id=folder["folder_id"], email="bob@example.com")
        )

    first = await client.get("/shared", params={"limit": 2}, headers=bob.headers)
    rest = await client.get(
        "/shared", params={"limit": 2, "cursor": first.json()["next_cursor"]}, headers=bob.headers
    )
    forged = await client.get("/shared", params={"cursor": "x"}, headers=bob.headers)

    paged = [item["grant_id"] for item in first.json()["items"] + rest.json()["items"]]
    assert paged == [grant["id"] for grant in reversed(made)]
    assert rest.json()["next_cursor"] is None
    assert_problem(forged, 400, "invalid_cursor")


async def test_a_shared_folder_is_browsed_with_paths_from_its_own_name(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    deep = await upload_file(client, web, alice, "a.pdf", b"%PDF-1", folder="/projects/reports/q1")
    summary = await upload_file(
        client, web, alice, "summary.txt", b"sum", folder="/projects/reports"
    )
    folder = await make_folder(client, alice, "/projects/reports")
    grant = await granted(client, alice, folder_id=folder["folder_id"], email="bob@example.com")

    top = await browse(client, bob, grant["id"])
    inside = await browse(client, bob, grant["id"], "/q1/")
    owners = await client.get(
        "/folders", params={"path": "/projects/reports"}, headers=alice.headers
    )

    assert top.status_code == 200, top.text
    body = top.json()
    assert (body["grant_id"], body["path"], body["permission"]) == (
        grant["id"],
        "/reports",
        "viewer",
    )
    assert [(i["kind"], i["name"], i["path"]) for i in body["items"]] == [
        ("folder", "q1", "/reports/q1"),
        ("file", "summary.txt", "/reports/summary.txt"),
    ]
    # The items are GET /folders' items, path aside.
    for mine, theirs in zip(owners.json()["items"], body["items"], strict=True):
        assert {**mine, "path": None} == {**theirs, "path": None}
    assert body["items"][1]["id"] == summary["file_id"]
    assert inside.json()["path"] == "/reports/q1"
    assert [(i["id"], i["path"]) for i in inside.json()["items"]] == [
        (deep["file_id"], "/reports/q1/a.pdf")
    ]


async def test_browsing_pages_with_a_cursor(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    for name in ("a", "b", "c"):
        await make_folder(client, alice, f"/projects/{name}")
    folder = await make_folder(client, alice, "/projects")
    grant = await granted(client, alice, folder_id=folder["folder_id"], email="bob@example.com")

    first = await browse(client, bob, grant["id"], limit=2)
    rest = await browse(client, bob, grant["id"], limit=2, cursor=first.json()["next_cursor"])

    names = [i["name"] for i in first.json()["items"] + rest.json()["items"]]
    assert names == ["a", "b", "c"]
    assert rest.json()["next_cursor"] is None


async def test_browsing_outside_what_is_shared_is_404_without_the_owners_paths(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    done = await upload_file(client, web, alice, "plan.txt", b"plan", folder="/projects/reports")
    await make_folder(client, alice, "/projects/secret")
    folder = await make_folder(client, alice, "/projects/reports")
    grant = await granted(client, alice, folder_id=folder["folder_id"], email="bob@example.com")
    on_file = await granted(client, alice, file_id=done["file_id"], role="member")

    missing = await browse(client, bob, grant["id"], "/nope")
    a_file = await browse(client, bob, grant["id"], "/plan.txt")
    upwards = await browse(client, bob, grant["id"], "/../secret")
    into_a_file_share = await browse(client, bob, on_file["id"])
    owners_own = await browse(client, alice, grant["id"])

    for refused in (missing, a_file, upwards):
        body = assert_problem(refused, 404, "folder_not_found")
        assert "/projects" not in body["detail"]
    assert_problem(into_a_file_share, 409, "not_a_folder")
    assert_problem(owners_own, 404, "grant_not_found")


async def test_a_recipient_reads_a_shared_file_and_its_revisions_through_the_usual_routes(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    engine: AsyncEngine,
    alice: Account,
    bob: Account,
) -> None:
    first = await upload_file(client, web, alice, "notes.txt", b"first", folder="/projects")
    second = await upload_file(client, web, alice, "notes.txt", b"second!", folder="/projects")
    file_id = second["file_id"]
    grant = await granted(client, alice, file_id=file_id, email="bob@example.com")

    read = await client.get(f"/files/{file_id}", headers=bob.headers)
    signed = await client.get(f"/download/{file_id}", headers=bob.headers)
    redirected = await client.get(f"/download/{file_id}?redirect=true", headers=bob.headers)
    revisions = await client.get(f"/files/{file_id}/revisions", headers=bob.headers)
    old = await client.get(
        f"/files/{file_id}/revisions/{first['revision_id']}/download", headers=bob.headers
    )
    owners = await client.get(f"/download/{file_id}", headers=alice.headers)

    assert read.status_code == 200, read.text
    owner_view = (await client.get(f"/files/{file_id}", headers=alice.headers)).json()
    assert read.json() == {
        **owner_view,
        "path": "/notes.txt",
        "grant_id": grant["id"],
        "permission": "viewer",
    }
    assert "grant_id" not in owner_view
    assert (await web.get(signed.json()["url"])).content == b"second!"
    assert redirected.status_code == 302
    assert (await web.get(redirected.headers["location"])).content == b"second!"
    assert [r["revision_id"] for r in revisions.json()["revisions"]] == [
        second["revision_id"],
        first["revision_id"],
    ]
    assert (await web.get(old.json()["url"])).content == b"first"
    assert owners.status_code == 200
    bob_id, grant_id = UUID(bob.user_id), UUID(grant["id"])
    assert await share_downloads(engine, file_id) == [
        ("share", bob_id, grant_id),
        ("share", bob_id, grant_id),
        ("share", bob_id, grant_id),
        ("owner", UUID(alice.user_id), None),
    ]


async def test_a_recipient_can_change_nothing_of_the_owners(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    first = await upload_file(client, web, alice, "a.txt", b"one", folder="/projects")
    done = await upload_file(client, web, alice, "a.txt", b"two", folder="/projects")
    file_id = done["file_id"]
    folder = await make_folder(client, alice, "/projects")
    folder_id = folder["folder_id"]
    await granted(client, alice, folder_id=folder_id, email="bob@example.com", permission="editor")
    restored_revision = f"/files/{file_id}/revisions/{first['revision_id']}/restore"

    attempts = [
        (await client.patch(f"/files/{file_id}", json={"name": "b.txt"}, headers=bob.headers)),
        (await client.delete(f"/files/{file_id}", headers=bob.headers)),
        (await client.post(f"/files/{file_id}/restore", headers=bob.headers)),
        (await client.post(restored_revision, headers=bob.headers)),
        (await client.patch(f"/folders/{folder_id}", json={"name": "x"}, headers=bob.headers)),
        (await client.delete(f"/folders/{folder_id}", headers=bob.headers)),
        (await share(client, bob, file_id=file_id, email="carol@example.com")),
        (await share(client, bob, folder_id=folder_id, role="member")),
    ]

    for attempt in attempts:
        assert attempt.status_code == 404, attempt.text
    mine = await client.get("/folders", params={"path": "/projects"}, headers=alice.headers)
    assert [i["name"] for i in mine.json()["items"]] == ["a.txt"]
    revisions = await client.get(f"/files/{file_id}/revisions", headers=alice.headers)
    assert len(revisions.json()["revisions"]) == 2
    grants = await client.get("/shares/people", headers=alice.headers)
    assert len(grants.json()["grants"]) == 1
