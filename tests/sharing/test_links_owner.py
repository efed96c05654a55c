"""The owner's side of share links: making, listing, revoking, and the counts read back."""

import hashlib
from uuid import uuid4

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.files.test_tree import make_folder
from tests.helpers import Account, assert_problem, start_upload, upload_file
from tests.sharing.link_helpers import (
    LINK_PASSWORD,
    download_rows,
    link_row,
    make_link,
    set_link,
    visitor,
)


async def test_a_link_has_a_256_bit_token_of_which_only_the_digest_is_stored(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, engine: AsyncEngine
) -> None:
    file = await upload_file(client, web, alice, "report.pdf", b"%PDF report")

    first = await make_link(client, alice, file_id=file["file_id"])
    second = await make_link(client, alice, file_id=file["file_id"])

    token = first["token"]
    # 32 random bytes in URL-safe base64 are 43 characters from a 64-character alphabet.
    assert len(token) >= 43
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert token != second["token"]
    assert first["url"] == f"http://127.0.0.1:8000/s/{token}"
    assert {key: first[key] for key in ("kind", "node_id", "name", "path")} == {
        "kind": "file",
        "node_id": file["file_id"],
        "name": "report.pdf",
        "path": "/report.pdf",
    }
    assert first["password_protected"] is False
    assert (first["expires_at"], first["max_downloads"]) == (None, None)
    assert (first["downloads_used"], first["download_count"], first["expired"]) == (0, 0, False)
    row = await link_row(engine, first["id"])
    assert row["token_digest"] == hashlib.sha256(token.encode()).digest()
    assert token not in repr(row)
    assert row["password_hash"] is None


async def test_a_link_keeps_only_a_hash_of_its_password(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, engine: AsyncEngine
) -> None:
    file = await upload_file(client, web, alice, "a.txt", b"a")

    link = await make_link(
        client,
        alice,
        file_id=file["file_id"],
        password=LINK_PASSWORD,
        expires_in=3600,
        max_downloads=5,
    )

    assert link["password_protected"] is True
    assert link["max_downloads"] == 5
    assert link["expires_at"] is not None
    row = await link_row(engine, link["id"])
    assert row["password_hash"].startswith("$argon2id$")
    assert LINK_PASSWORD not in repr(row)
    assert "password" not in link


async def test_a_link_to_a_folder(client: httpx.AsyncClient, alice: Account) -> None:
    folder = await make_folder(client, alice, "/photos/2026")

    link = await make_link(client, alice, folder_id=folder["folder_id"])

    assert (link["kind"], link["name"], link["path"]) == ("folder", "2026", "/photos/2026")


async def test_making_a_link_refuses_bad_bodies(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    file = await upload_file(client, web, alice, "a.txt", b"a")
    folder = await make_folder(client, alice, "/f")
    bad_bodies = [
        {},
        {"file_id": file["file_id"], "folder_id": folder["folder_id"]},
        {"file_id": file["file_id"], "expires_in": 59},
        {"file_id": file["file_id"], "expires_in": 365 * 24 * 3600 + 1},
        {"file_id": file["file_id"], "expires_in": "3600"},
        {"file_id": file["file_id"], "password": "7 chars"},
        {"file_id": file["file_id"], "password": "x" * 257},
        {"file_id": file["file_id"], "max_downloads": 0},
        {"file_id": file["file_id"], "max_downloads": 1_000_001},
        {"file_id": "not-a-uuid"},
    ]

    for body in bad_bodies:
        answer = await client.post("/shares", json=body, headers=alice.headers)
        assert_problem(answer, 422, "validation_error")
    listed = await client.get("/shares", headers=alice.headers)
    assert listed.json()["items"] == []


async def test_a_link_needs_the_callers_own_live_node_of_that_kind(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    file = await upload_file(client, web, alice, "a.txt", b"a")
    folder = await make_folder(client, alice, "/f")
    trashed = await upload_file(client, web, alice, "old.txt", b"old")
    await client.delete(f"/files/{trashed['file_id']}", headers=alice.headers)

    cases = [
        (bob, {"file_id": file["file_id"]}, "file_not_found"),
        (bob, {"folder_id": folder["folder_id"]}, "folder_not_found"),
        (alice, {"file_id": folder["folder_id"]}, "file_not_found"),
        (alice, {"folder_id": file["file_id"]}, "folder_not_found"),
        (alice, {"file_id": trashed["file_id"]}, "file_not_found"),
        (alice, {"file_id": str(uuid4())}, "file_not_found"),
    ]
    for account, body, code in cases:
        answer = await client.post("/shares", json=body, headers=account.headers)
        assert_problem(answer, 404, code)


async def test_links_are_listed_newest_first_in_pages_without_their_tokens(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    file = await upload_file(client, web, alice, "a.txt", b"a")
    made = [(await make_link(client, alice, file_id=file["file_id"]))["id"] for _ in range(3)]
    await make_link(
        client, bob, file_id=(await upload_file(client, web, bob, "b", b"b"))["file_id"]
    )

    first = await client.get("/shares", params={"limit": 2}, headers=alice.headers)
    second = await client.get(
        "/shares", params={"limit": 2, "cursor": first.json()["next_cursor"]}, headers=alice.headers
    )

    assert first.status_code == 200, first.text
    ids = [item["id"] for item in first.json()["items"] + second.json()["items"]]
    assert ids == list(reversed(made))
    assert second.json()["next_cursor"] is None
    item = first.json()["items"][0]
    assert "token" not in item
    assert "url" not in item
    assert item["expired"] is False
    assert item["in_trash"] is False


async def test_listing_refuses_a_cursor_it_did_not_issue(
    client: httpx.AsyncClient, alice: Account
) -> None:
    answer = await client.get("/shares", params={"cursor": "bogus"}, headers=alice.headers)

    assert_problem(answer, 400, "invalid_cursor")


async def test_expired_and_trashed_links_are_listed_as_such(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, engine: AsyncEngine
) -> None:
    file = await upload_file(client, web, alice, "a.txt", b"a")
    expired = await make_link(client, alice, file_id=file["file_id"], expires_in=60)
    await set_link(engine, expired["id"], "expires_at = now() - interval '1 second'")
    other = await upload_file(client, web, alice, "b.txt", b"b")
    in_trash = await make_link(client, alice, file_id=other["file_id"])
    await client.delete(f"/files/{other['file_id']}", headers=alice.headers)

    listed = await client.get("/shares", headers=alice.headers)

    by_id = {item["id"]: item for item in listed.json()["items"]}
    assert (by_id[expired["id"]]["expired"], by_id[expired["id"]]["in_trash"]) == (True, False)
    assert (by_id[in_trash["id"]]["expired"], by_id[in_trash["id"]]["in_trash"]) == (False, True)


async def test_revoking_a_link_ends_it_for_good(
    client: httpx.AsyncClient, web: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    file = await upload_file(client, web, alice, "a.txt", b"a")
    link = await make_link(client, alice, file_id=file["file_id"])

    revoked = await client.delete(f"/shares/{link['id']}", headers=alice.headers)
    again = await client.delete(f"/shares/{link['id']}", headers=alice.headers)

    assert revoked.status_code == 204, revoked.text
    assert_problem(again, 404, "share_not_found")
    assert (await client.get("/shares", headers=alice.headers)).json()["items"] == []
    async with visitor(app) as anyone:
        assert_problem(await anyone.get(f"/s/{link['token']}"), 404, "share_not_found")


async def test_only_the_owner_can_see_or_revoke_a_link(
    client: httpx.AsyncClient, web: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
) -> None:
    file = await upload_file(client, web, alice, "a.txt", b"a")
    link = await make_link(client, alice, file_id=file["file_id"])

    by_bob = await client.delete(f"/shares/{link['id']}", headers=bob.headers)
    unknown = await client.delete(f"/shares/{uuid4()}", headers=alice.headers)
    bobs_list = await client.get("/shares", headers=bob.headers)
    bobs_counts = await client.get(f"/files/{file['file_id']}/downloads", headers=bob.headers)

    assert assert_problem(by_bob, 404, "share_not_found") == assert_problem(
        unknown, 404, "share_not_found"
    )
    assert bobs_list.json()["items"] == []
    assert_problem(bobs_counts, 404, "file_not_found")
    async with visitor(app) as anyone:
        assert (await anyone.get(f"/s/{link['token']}")).status_code == 200


async def test_owner_routes_need_a_bearer_token(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    file = await upload_file(client, web, alice, "a.txt", b"a")
    link = await make_link(client, alice, file_id=file["file_id"])

    answers = [
        await client.post("/shares", json={"file_id": file["file_id"]}),
        await client.get("/shares"),
        await client.delete(f"/shares/{link['id']}"),
        await client.get(f"/files/{file['file_id']}/downloads"),
        await client.get("/shares", headers={"Authorization": "Bearer forged"}),
    ]

    for answer in answers[:4]:
        assert_problem(answer, 401, "not_authenticated")
    assert_problem(answers[4], 401, "invalid_token")
    assert len((await client.get("/shares", headers=alice.headers)).json()["items"]) == 1


async def test_a_link_id_route_takes_only_uuids(client: httpx.AsyncClient, alice: Account) -> None:
    # Other /shares/<word> routes belong to shares with people: never taken for a link id.
    answer = await client.delete("/shares/not-a-uuid", headers=alice.headers)

    assert answer.status_code in (404, 405)
    assert answer.json()["code"] != "share_not_found"


async def test_download_counts_per_link_and_per_file(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    app: FastAPI,
    alice: Account,
    engine: AsyncEngine,
) -> None:
    file = await upload_file(client, web, alice, "a.txt", b"a")
    first = await make_link(client, alice, file_id=file["file_id"])
    second = await make_link(client, alice, file_id=file["file_id"])
    never = await client.get(f"/files/{file['file_id']}/downloads", headers=alice.headers)
    async with visitor(app) as anyone:
        for _ in range(2):
            assert (await anyone.get(f"/s/{first['token']}/download")).status_code == 302
        assert (await anyone.get(f"/s/{second['token']}/download")).status_code == 302
    owner = await client.get(f"/download/{file['file_id']}", headers=alice.headers)
    assert owner.status_code == 200, owner.text

    listed = await client.get("/shares", headers=alice.headers)
    counts = await client.get(f"/files/{file['file_id']}/downloads", headers=alice.headers)

    assert never.json() == {
        "file_id": file["file_id"],
        "total": 0,
        "by_channel": {"owner": 0, "link": 0, "share": 0},
        "last_downloaded_at": None,
    }
    by_id = {item["id"]: item for item in listed.json()["items"]}
    assert (by_id[first["id"]]["download_count"], by_id[first["id"]]["downloads_used"]) == (2, 2)
    assert (by_id[second["id"]]["download_count"], by_id[second["id"]]["downloads_used"]) == (1, 1)
    assert counts.status_code == 200, counts.text
    body = counts.json()
    assert (body["total"], body["by_channel"]) == (4, {"owner": 1, "link": 3, "share": 0})
    assert body["last_downloaded_at"] is not None
    assert len(await download_rows(engine, first["id"])) == 2


async def test_download_counts_are_for_live_files_only(
    client: httpx.AsyncClient, alice: Account
) -> None:
    pending = await start_upload(client, alice, "p.txt", size=1)
    await client.delete(f"/files/{pending['file_id']}", headers=alice.headers)

    answer = await client.get(f"/files/{pending['file_id']}/downloads", headers=alice.headers)

    assert_problem(answer, 404, "file_not_found")
