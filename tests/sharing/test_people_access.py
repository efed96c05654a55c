"""The rules of shares with people: whom a grant applies to, what it covers, which wins, and
that every change takes effect on the next request."""

from uuid import UUID

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.files.test_tree import make_folder
from tests.helpers import Account, assert_problem, register_account, set_user, upload_file
from tests.sharing.people_helpers import browse, granted, share_downloads, shared_items


async def set_active(engine: AsyncEngine, account: Account, active: bool) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE user_account SET is_active = :active WHERE id = :id"),
            {"id": UUID(account.user_id), "active": active},
        )


async def test_a_share_to_an_address_waits_for_whoever_verifies_it(
    client: httpx.AsyncClient, web: httpx.AsyncClient, engine: AsyncEngine, alice: Account
) -> None:
    done = await upload_file(client, web, alice, "plan.txt", b"plan")
    # Nobody holds the address yet: the share is made all the same, and says nothing of it.
    grant = await granted(client, alice, file_id=done["file_id"], email="carol@example.com")
    carol = await register_account(client, "carol@example.com")

    before = await shared_items(client, carol)
    unverified_read = await client.get(f"/files/{done['file_id']}", headers=carol.headers)
    await set_user(engine, carol.user_id, verified=True)
    # The same token as before: access is read from the database, not from the token.
    after = await shared_items(client, carol)
    verified_read = await client.get(f"/files/{done['file_id']}", headers=carol.headers)

    assert before == []
    assert_problem(unverified_read, 404, "file_not_found")
    assert [item["grant_id"] for item in after] == [grant["id"]]
    assert verified_read.status_code == 200, verified_read.text


async def test_a_role_share_reaches_every_verified_account_of_the_role_as_it_is_now(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    engine: AsyncEngine,
    alice: Account,
    bob: Account,
) -> None:
    folder = await make_folder(client, alice, "/team")
    grant = await granted(client, alice, folder_id=folder["folder_id"], role="member")
    carol = await register_account(client, "carol@example.com")

    bob_before = await shared_items(client, bob)
    carol_unverified = await shared_items(client, carol)
    await set_user(engine, bob.user_id, role="admin")
    bob_as_admin = await shared_items(client, bob)
    await set_user(engine, bob.user_id, role="member")
    bob_back = await shared_items(client, bob)

    assert [item["grant_id"] for item in bob_before] == [grant["id"]]
    assert carol_unverified == []
    assert bob_as_admin == []
    assert [item["grant_id"] for item in bob_back] == [grant["id"]]


async def test_a_grant_never_applies_to_its_owner(
    client: httpx.AsyncClient, alice: Account
) -> None:
    # Alice is a member herself: the share to every member still leaves her out.
    folder = await make_folder(client, alice, "/team")
    grant = await granted(client, alice, folder_id=folder["folder_id"], role="member")

    assert await shared_items(client, alice) == []
    assert_problem(await browse(client, alice, grant["id"]), 404, "grant_not_found")


async def test_a_deactivated_account_gets_nothing_even_with_a_valid_token(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    engine: AsyncEngine,
    alice: Account,
    bob: Account,
) -> None:
    done = await upload_file(client, web, alice, "plan.txt", b"plan")
    await granted(client, alice, file_id=done["file_id"], email="bob@example.com")

    await set_active(engine, bob, False)
    listed = await shared_items(client, bob)
    read = await client.get(f"/download/{done['file_id']}", headers=bob.headers)

    assert listed == []
    assert_problem(read, 404, "file_not_found")


async def test_a_trashed_shared_node_gives_nothing_until_it_is_restored(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    done = await upload_file(client, web, alice, "a.txt", b"a", folder="/projects/q1")
    folder = await make_folder(client, alice, "/projects")
    grant = await granted(client, alice, folder_id=folder["folder_id"], email="bob@example.com")

    await client.delete(f"/folders/{folder['folder_id']}", headers=alice.headers)
    listed_in_trash = await shared_items(client, bob)
    browsed_in_trash = await browse(client, bob, grant["id"])
    read_in_trash = await client.get(f"/files/{done['file_id']}", headers=bob.headers)
    await client.post(f"/folders/{folder['folder_id']}/restore", headers=alice.headers)
    listed_restored = await shared_items(client, bob)
    read_restored = await client.get(f"/files/{done['file_id']}", headers=bob.headers)

    assert listed_in_trash == []
    assert_problem(browsed_in_trash, 404, "grant_not_found")
    assert_problem(read_in_trash, 404, "file_not_found")
    assert [item["grant_id"] for item in listed_restored] == [grant["id"]]
    assert read_restored.json()["path"] == "/projects/q1/a.txt"


async def test_a_file_trashed_inside_a_shared_folder_is_gone_for_the_recipient(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    done = await upload_file(client, web, alice, "a.txt", b"a", folder="/projects")
    folder = await make_folder(client, alice, "/projects")
    grant = await granted(client, alice, folder_id=folder["folder_id"], email="bob@example.com")

    await client.delete(f"/files/{done['file_id']}", headers=alice.headers)

    assert_problem(
        await client.get(f"/files/{done['file_id']}", headers=bob.headers), 404, "file_not_found"
    )
    assert (await browse(client, bob, grant["id"])).json()["items"] == []


async def test_the_strongest_permission_wins_and_the_path_starts_at_its_grant(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    engine: AsyncEngine,
    alice: Account,
    bob: Account,
) -> None:
    deep = await upload_file(client, web, alice, "a.pdf", b"%PDF", folder="/projects/reports/q1")
    top = await upload_file(client, web, alice, "todo.txt", b"todo", folder="/projects")
    work = await make_folder(client, alice, "/projects")
    reports = await make_folder(client, alice, "/projects/reports")
    on_work = await granted(client, alice, folder_id=work["folder_id"], email="bob@example.com")
    on_reports = await granted(
        client, alice, folder_id=reports["folder_id"], role="member", permission="editor"
    )

    listed = {item["grant_id"]: item for item in await shared_items(client, bob)}
    deep_read = (await client.get(f"/files/{deep['file_id']}", headers=bob.headers)).json()
    top_read = (await client.get(f"/files/{top['file_id']}", headers=bob.headers)).json()
    await client.get(f"/download/{deep['file_id']}", headers=bob.headers)

    assert listed[on_work["id"]]["permission"] == "viewer"
    assert listed[on_reports["id"]]["permission"] == "editor"
    assert (deep_read["path"], deep_read["permission"], deep_read["grant_id"]) == (
        "/reports/q1/a.pdf",
        "editor",
        on_reports["id"],
    )
    assert (top_read["path"], top_read["permission"], top_read["grant_id"]) == (
        "/projects/todo.txt",
        "viewer",
        on_work["id"],
    )
    assert await share_downloads(engine, deep["file_id"]) == [
        ("share", UUID(bob.user_id), UUID(on_reports["id"]))
    ]

    # An editor grant above makes the folder's own grant the nearer of two equals.
    await client.patch(
        f"/shares/people/{on_work['id']}", json={"permission": "editor"}, headers=alice.headers
    )
    deep_again = (await client.get(f"/files/{deep['file_id']}", headers=bob.headers)).json()
    top_again = (await client.get(f"/files/{top['file_id']}", headers=bob.headers)).json()
    listed_again = {item["grant_id"]: item for item in await shared_items(client, bob)}

    assert (deep_again["grant_id"], deep_again["path"]) == (on_reports["id"], "/reports/q1/a.pdf")
    assert top_again["permission"] == "editor"
    assert listed_again[on_work["id"]]["permission"] == "editor"


async def test_a_stronger_grant_above_lifts_a_weaker_one_below(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    deep = await upload_file(client, web, alice, "a.txt", b"a", folder="/projects/reports")
    work = await make_folder(client, alice, "/projects")
    reports = await make_folder(client, alice, "/projects/reports")
    on_work = await granted(
        client, alice, folder_id=work["folder_id"], email="bob@example.com", permission="editor"
    )
    on_reports = await granted(client, alice, folder_id=reports["folder_id"], role="member")

    listed = {item["grant_id"]: item for item in await shared_items(client, bob)}
    read = (await client.get(f"/files/{deep['file_id']}", headers=bob.headers)).json()
    browsed = (await browse(client, bob, on_reports["id"])).json()

    assert listed[on_reports["id"]]["permission"] == "editor"
    assert (read["grant_id"], read["path"], read["permission"]) == (
        on_work["id"],
        "/projects/reports/a.txt",
        "editor",
    )
    assert browsed["permission"] == "editor"
    assert [item["path"] for item in browsed["items"]] == ["/reports/a.txt"]


async def test_changes_by_the_owner_apply_on_the_recipients_next_request(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    done = await upload_file(client, web, alice, "a.txt", b"a")
    grant = await granted(
        client, alice, file_id=done["file_id"], email="bob@example.com", permission="editor"
    )

    as_editor = (await client.get(f"/files/{done['file_id']}", headers=bob.headers)).json()
    await client.patch(
        f"/shares/people/{grant['id']}", json={"permission": "viewer"}, headers=alice.headers
    )
    as_viewer = (await client.get(f"/files/{done['file_id']}", headers=bob.headers)).json()
    await client.delete(f"/shares/people/{grant['id']}", headers=alice.headers)
    revoked = await client.get(f"/files/{done['file_id']}", headers=bob.headers)
    listed = await shared_items(client, bob)

    assert as_editor["permission"] == "editor"
    assert as_viewer["permission"] == "viewer"
    assert_problem(revoked, 404, "file_not_found")
    assert listed == []
