"""The owner's side of shares with people: making, listing, changing and removing grants."""

from uuid import uuid4

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.core.config import Settings
from dropp.main import create_app
from tests.files.test_tree import make_folder
from tests.helpers import Account, assert_problem, upload_file, verified_account
from tests.sharing.people_helpers import granted, share


async def test_sharing_a_folder_by_email_answers_the_grant(
    client: httpx.AsyncClient, alice: Account
) -> None:
    folder = await make_folder(client, alice, "/projects/reports")

    made = await share(
        client,
        alice,
        folder_id=folder["folder_id"],
        email="  Bob@Example.COM ",
        permission="editor",
        note="  Q1 figures  ",
    )

    assert made.status_code == 201, made.text
    grant = made.json()
    assert grant["node_id"] == folder["folder_id"]
    assert (grant["kind"], grant["name"], grant["path"]) == (
        "folder",
        "reports",
        "/projects/reports",
    )
    assert (grant["grantee_email"], grant["grantee_role"]) == ("bob@example.com", None)
    assert (grant["permission"], grant["note"], grant["in_trash"]) == (
        "editor",
        "Q1 figures",
        False,
    )
    assert grant["created_at"] == grant["updated_at"]


async def test_sharing_a_file_with_a_role(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    done = await upload_file(client, web, alice, "plan.txt", b"plan", folder="/a")

    grant = await granted(client, alice, file_id=done["file_id"], role="member")

    assert (grant["kind"], grant["path"], grant["grantee_role"]) == (
        "file",
        "/a/plan.txt",
        "member",
    )
    assert grant["grantee_email"] is None
    assert grant["note"] is None


async def test_the_same_grantee_again_updates_that_grant_with_200(
    client: httpx.AsyncClient, alice: Account
) -> None:
    folder = await make_folder(client, alice, "/projects")
    first = await granted(
        client, alice, folder_id=folder["folder_id"], email="bob@example.com", note="hello"
    )

    again = await share(
        client, alice, folder_id=folder["folder_id"], email="BOB@example.com", permission="editor"
    )
    listed = await client.get("/shares/people", headers=alice.headers)

    assert again.status_code == 200, again.text
    assert again.json()["id"] == first["id"]
    assert again.json()["permission"] == "editor"
    # No note in the repeat: the one given before stays.
    assert again.json()["note"] == "hello"
    assert [g["id"] for g in listed.json()["grants"]] == [first["id"]]


async def test_an_address_and_a_role_on_one_node_are_two_grants(
    client: httpx.AsyncClient, alice: Account
) -> None:
    folder = await make_folder(client, alice, "/projects")

    by_email = await granted(client, alice, folder_id=folder["folder_id"], email="bob@example.com")
    by_role = await granted(client, alice, folder_id=folder["folder_id"], role="member")

    assert by_email["id"] != by_role["id"]


async def test_an_unknown_role_is_refused_with_the_roles_there_are(
    client: httpx.AsyncClient, alice: Account
) -> None:
    folder = await make_folder(client, alice, "/projects")

    unknown = await share(client, alice, folder_id=folder["folder_id"], role="clients")
    malformed = await share(client, alice, folder_id=folder["folder_id"], role="Not A Role")

    body = assert_problem(unknown, 422, "unknown_role")
    assert body["roles"] == ["admin", "member"]
    assert_problem(malformed, 422, "validation_error")


async def test_sharing_with_yourself_is_refused(client: httpx.AsyncClient, alice: Account) -> None:
    folder = await make_folder(client, alice, "/projects")

    refused = await share(client, alice, folder_id=folder["folder_id"], email="ALICE@example.com")

    assert_problem(refused, 422, "share_with_self")
    listed = await client.get("/shares/people", headers=alice.headers)
    assert listed.json()["grants"] == []


async def test_the_body_names_exactly_one_node_and_one_grantee(
    client: httpx.AsyncClient, alice: Account
) -> None:
    folder = await make_folder(client, alice, "/projects")
    node = folder["folder_id"]

    bodies = [
        {"email": "bob@example.com"},
        {"file_id": node, "folder_id": node, "email": "bob@example.com"},
        {"folder_id": node},
        {"folder_id": node, "email": "bob@example.com", "role": "member"},
        {"folder_id": node, "email": "not an address"},
        {"folder_id": node, "email": "bob@example.com", "permission": "owner"},
        {"folder_id": node, "email": "bob@example.com", "note": "x" * 1001},
    ]
    for body in bodies:
        refused = await client.post(
            "/shares/people", json={"permission": "viewer", **body}, headers=alice.headers
        )
        assert_problem(refused, 422, "validation_error")


async def test_only_the_owner_of_a_live_node_may_share_it(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    folder = (await make_folder(client, alice, "/projects"))["folder_id"]
    file = (await upload_file(client, web, alice, "a.txt", b"a"))["file_id"]
    old = (await make_folder(client, alice, "/old"))["folder_id"]
    assert (await client.delete(f"/folders/{old}", headers=alice.headers)).status_code == 204
    carol = "carol@example.com"

    refusals = [
        (await share(client, bob, folder_id=folder, email=carol), "folder_not_found"),
        (await share(client, bob, file_id=file, email=carol), "file_not_found"),
        (await share(client, alice, folder_id=old, email=carol), "folder_not_found"),
        (await share(client, alice, folder_id=str(uuid4()), email=carol), "folder_not_found"),
        (await share(client, alice, file_id=folder, email=carol), "file_not_found"),
        (await share(client, alice, folder_id=file, email=carol), "folder_not_found"),
    ]

    for refused, code in refusals:
        assert_problem(refused, 404, code)
    for account in (alice, bob):
        listed = await client.get("/shares/people", headers=account.headers)
        assert listed.json()["grants"] == []


async def test_grants_are_listed_newest_first_by_page_and_by_node(
    client: httpx.AsyncClient, engine: AsyncEngine, alice: Account, bob: Account
) -> None:
    work = await make_folder(client, alice, "/projects")
    home = await make_folder(client, alice, "/home")
    made = [
        await granted(client, alice, folder_id=work["folder_id"], email="bob@example.com"),
        await granted(client, alice, folder_id=home["folder_id"], email="bob@example.com"),
        await granted(client, alice, folder_id=work["folder_id"], role="member"),
    ]

    first = await client.get("/shares/people", params={"limit": 2}, headers=alice.headers)
    rest = await client.get(
        "/shares/people",
        params={"limit": 2, "cursor": first.json()["next_cursor"]},
        headers=alice.headers,
    )
    on_work = await client.get(
        "/shares/people", params={"node_id": work["folder_id"]}, headers=alice.headers
    )
    bobs = await client.get("/shares/people", headers=bob.headers)
    forged = await client.get("/shares/people", params={"cursor": "nope"}, headers=alice.headers)

    paged = [g["id"] for g in first.json()["grants"] + rest.json()["grants"]]
    assert paged == [g["id"] for g in reversed(made)]
    assert rest.json()["next_cursor"] is None
    assert {g["id"] for g in on_work.json()["grants"]} == {made[0]["id"], made[2]["id"]}
    # A recipient has no grants of its own to manage.
    assert bobs.json() == {"grants": [], "next_cursor": None}
    assert_problem(forged, 400, "invalid_cursor")


async def test_a_grant_on_a_trashed_node_stays_listed_as_in_the_trash(
    client: httpx.AsyncClient, alice: Account
) -> None:
    folder = await make_folder(client, alice, "/projects")
    grant = await granted(client, alice, folder_id=folder["folder_id"], email="bob@example.com")

    await client.delete(f"/folders/{folder['folder_id']}", headers=alice.headers)
    in_trash = (await client.get("/shares/people", headers=alice.headers)).json()["grants"]
    await client.post(f"/folders/{folder['folder_id']}/restore", headers=alice.headers)
    restored = (await client.get("/shares/people", headers=alice.headers)).json()["grants"]

    assert [(g["id"], g["in_trash"]) for g in in_trash] == [(grant["id"], True)]
    assert [(g["id"], g["in_trash"]) for g in restored] == [(grant["id"], False)]


async def test_the_owner_changes_permission_and_note(
    client: httpx.AsyncClient, alice: Account
) -> None:
    folder = await make_folder(client, alice, "/projects")
    grant = await granted(
        client, alice, folder_id=folder["folder_id"], email="bob@example.com", note="read this"
    )

    upgraded = await client.patch(
        f"/shares/people/{grant['id']}", json={"permission": "editor"}, headers=alice.headers
    )
    cleared = await client.patch(
        f"/shares/people/{grant['id']}", json={"note": None}, headers=alice.headers
    )
    empty = await client.patch(f"/shares/people/{grant['id']}", json={}, headers=alice.headers)
    null_permission = await client.patch(
        f"/shares/people/{grant['id']}", json={"permission": None}, headers=alice.headers
    )

    assert upgraded.status_code == 200, upgraded.text
    assert (upgraded.json()["permission"], upgraded.json()["note"]) == ("editor", "read this")
    assert upgraded.json()["updated_at"] > grant["updated_at"]
    assert (cleared.json()["permission"], cleared.json()["note"]) == ("editor", None)
    assert_problem(empty, 422, "validation_error")
    assert_problem(null_permission, 422, "validation_error")


async def test_only_the_owner_changes_or_removes_a_grant(
    client: httpx.AsyncClient, engine: AsyncEngine, alice: Account, bob: Account
) -> None:
    folder = await make_folder(client, alice, "/projects")
    grant = await granted(client, alice, folder_id=folder["folder_id"], email="bob@example.com")
    carol = await verified_account(client, engine, "carol@example.com")

    for account in (bob, carol):
        changed = await client.patch(
            f"/shares/people/{grant['id']}", json={"permission": "editor"}, headers=account.headers
        )
        removed = await client.delete(f"/shares/people/{grant['id']}", headers=account.headers)
        assert_problem(changed, 404, "grant_not_found")
        assert_problem(removed, 404, "grant_not_found")
    removed = await client.delete(f"/shares/people/{grant['id']}", headers=alice.headers)
    again = await client.delete(f"/shares/people/{grant['id']}", headers=alice.headers)
    unknown = await client.patch(
        f"/shares/people/{uuid4()}", json={"permission": "viewer"}, headers=alice.headers
    )

    assert removed.status_code == 204
    assert_problem(again, 404, "grant_not_found")
    assert_problem(unknown, 404, "grant_not_found")
    listed = await client.get("/shares/people", headers=alice.headers)
    assert listed.json()["grants"] == []


async def test_shares_people_paths_resolve_to_these_routes_not_the_share_links(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    done = await upload_file(client, web, alice, "a.txt", b"a")
    unknown = f"/shares/people/{uuid4()}"

    listed = await client.get("/shares/people", headers=alice.headers)
    # A share link's body: here, `permission` and a grantee are missing.
    made = await client.post(
        "/shares/people", json={"file_id": done["file_id"]}, headers=alice.headers
    )
    changed = await client.patch(unknown, json={"permission": "viewer"}, headers=alice.headers)
    removed = await client.delete(unknown, headers=alice.headers)
    links = await client.get("/shares", headers=alice.headers)

    assert listed.status_code == 200, listed.text
    assert set(listed.json()) == {"grants", "next_cursor"}
    body = assert_problem(made, 422, "validation_error")
    assert "permission" in body["detail"]
    assert_problem(changed, 404, "grant_not_found")
    assert_problem(removed, 404, "grant_not_found")
    assert links.status_code == 200, links.text
    assert "grants" not in links.json()


def test_the_openapi_document_lists_these_routes_once(settings: Settings) -> None:
    paths = create_app(settings).openapi()["paths"]

    assert set(paths["/shares/people"]) == {"get", "post"}
    assert set(paths["/shares/people/{grant_id}"]) == {"patch", "delete"}
    assert set(paths["/shared"]) == {"get"}
    assert set(paths["/shared/{grant_id}/items"]) == {"get"}
    assert all(op["tags"] == ["sharing"] for op in paths["/shares/people"].values())
