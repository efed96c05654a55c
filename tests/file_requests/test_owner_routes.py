"""The owner's routes: opening a request on a folder, listing, reading and closing them."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.auth.tokens import secret_digest
from dropp.roles.policy import UploadPolicy
from tests.file_requests.flow import drop, open_request, request_row, run_sql
from tests.files.test_tree import make_folder
from tests.helpers import Account, assert_problem, register_account, start_upload


async def test_a_request_on_a_new_path_creates_the_folder_and_shows_its_token_once(
    client: httpx.AsyncClient, alice: Account, engine: AsyncEngine, settings: Any
) -> None:
    created = await client.post(
        "/file-requests",
        json={"folder_path": "/clients/acme", "title": "  Contracts  ", "max_uploads": 5},
        headers=alice.headers,
    )

    assert created.status_code == 201, created.text
    body = created.json()
    assert body["title"] == "Contracts"
    assert body["folder_path"] == "/clients/acme"
    assert body["url"] == f"{settings.public_url.rstrip('/')}/r/{body['token']}"
    assert len(body["token"]) >= 43
    assert (body["uploads_used"], body["files_received"], body["state"]) == (0, 0, "open")
    assert (body["max_uploads"], body["deadline"], body["max_file_bytes"]) == (5, None, None)
    folders = await client.get("/folders", params={"path": "/clients"}, headers=alice.headers)
    assert [item["name"] for item in folders.json()["items"]] == ["acme"]
    assert folders.json()["items"][0]["id"] == body["folder_id"]
    # Only the token's digest is stored.
    row = await request_row(engine, body["id"])
    assert row.token_digest == secret_digest(body["token"])
    # The token is never shown again.
    listed = await client.get("/file-requests", headers=alice.headers)
    single = await client.get(f"/file-requests/{body['id']}", headers=alice.headers)
    assert body["token"] not in listed.text + single.text
    assert "token" not in single.json()
    assert "url" not in single.json()


async def test_a_request_on_an_existing_folder_by_id_or_path(
    client: httpx.AsyncClient, alice: Account
) -> None:
    folder = await make_folder(client, alice, "/shared/in")

    by_id = await open_request(client, alice, folder_path=None, folder_id=folder["folder_id"])
    by_path = await open_request(client, alice, folder_path="shared/in/")

    assert by_id["folder_id"] == by_path["folder_id"] == folder["folder_id"]
    assert by_id["folder_path"] == by_path["folder_path"] == "/shared/in"
    assert by_id["token"] != by_path["token"]


async def test_the_folder_must_be_the_callers_live_folder(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    bobs = await make_folder(client, bob, "/private")
    trashed = await make_folder(client, alice, "/old")
    await client.delete(f"/folders/{trashed['folder_id']}", headers=alice.headers)
    file = await start_upload(client, alice, "a.txt", size=1)

    for folder_id in (bobs["folder_id"], trashed["folder_id"], file["file_id"], str(uuid4())):
        refused = await client.post(
            "/file-requests",
            json={"folder_id": folder_id, "title": "x"},
            headers=alice.headers,
        )
        assert_problem(refused, 404, "folder_not_found")
    under_file = await client.post(
        "/file-requests", json={"folder_path": "/a.txt/in", "title": "x"}, headers=alice.headers
    )
    assert_problem(under_file, 409, "not_a_folder")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"title": "x"}, id="no-folder"),
        pytest.param({"title": "x", "folder_path": "/a", "folder_id": str(uuid4())}, id="both"),
        pytest.param({"title": "x", "folder_path": "/"}, id="top-level"),
        pytest.param({"title": "x", "folder_path": "/a/../b"}, id="dot-dot"),
        pytest.param({"title": "   ", "folder_path": "/a"}, id="blank-title"),
        pytest.param({"title": "a\nb", "folder_path": "/a"}, id="two-line-title"),
        pytest.param({"title": "x" * 201, "folder_path": "/a"}, id="long-title"),
        pytest.param({"title": "x", "folder_path": "/a", "expires_in": 59}, id="short-expiry"),
        pytest.param({"title": "x", "folder_path": "/a", "max_uploads": 0}, id="no-uploads"),
        pytest.param({"title": "x", "folder_path": "/a", "max_file_bytes": 0}, id="zero-size"),
        pytest.param({"title": "x", "folder_path": "/a", "max_uploads": "3"}, id="string-count"),
        pytest.param(
            {"title": "x", "folder_path": "/a", "deadline": "2099-01-01T00:00:00"},
            id="naive-deadline",
        ),
        pytest.param(
            {
                "title": "x",
                "folder_path": "/a",
                "deadline": "2099-01-01T00:00:00Z",
                "expires_in": 3600,
            },
            id="deadline-and-expires-in",
        ),
    ],
)
async def test_bad_bodies_are_refused(
    client: httpx.AsyncClient, alice: Account, body: dict[str, Any]
) -> None:
    refused = await client.post("/file-requests", json=body, headers=alice.headers)

    assert_problem(refused, 422, "validation_error")
    listed = await client.get("/file-requests", headers=alice.headers)
    assert listed.json()["file_requests"] == []


async def test_a_deadline_must_be_in_the_future(client: httpx.AsyncClient, alice: Account) -> None:
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    refused = await client.post(
        "/file-requests",
        json={"folder_path": "/a", "title": "x", "deadline": past},
        headers=alice.headers,
    )

    assert_problem(refused, 422, "deadline_in_past")


async def test_expires_in_sets_the_deadline(client: httpx.AsyncClient, alice: Account) -> None:
    before = datetime.now(UTC)
    created = await open_request(client, alice, expires_in=3600)

    deadline = datetime.fromisoformat(created["deadline"])
    assert before + timedelta(seconds=3600) <= deadline <= datetime.now(UTC) + timedelta(hours=1)


async def test_max_file_bytes_cannot_exceed_what_the_owner_may_upload(
    client: httpx.AsyncClient, app_with: Any, engine: AsyncEngine
) -> None:
    roles = {"small": UploadPolicy(max_file_bytes=1000)}
    async with (
        app_with(roles=roles, max_upload_bytes=10_000) as app,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://dropp.test"
        ) as api,
    ):
        small = await register_account(api, "small@example.com", engine=engine, role="small")
        member = await register_account(api, "member@example.com", engine=engine)

        over_role = await api.post(
            "/file-requests",
            json={"folder_path": "/a", "title": "x", "max_file_bytes": 1001},
            headers=small.headers,
        )
        over_server = await api.post(
            "/file-requests",
            json={"folder_path": "/a", "title": "x", "max_file_bytes": 10_001},
            headers=member.headers,
        )
        role_default = await api.post(
            "/file-requests", json={"folder_path": "/a", "title": "x"}, headers=small.headers
        )

    assert assert_problem(over_role, 422, "max_file_bytes_too_high")["max_bytes"] == 1000
    assert assert_problem(over_server, 422, "max_file_bytes_too_high")["max_bytes"] == 10_000
    assert role_default.status_code == 201, role_default.text
    assert role_default.json()["max_file_bytes"] == 1000


async def test_an_owner_who_may_not_upload_cannot_accept_files(
    client: httpx.AsyncClient, app_with: Any, engine: AsyncEngine
) -> None:
    roles = {"reader": UploadPolicy(can_upload=False)}
    async with (
        app_with(roles=roles) as app,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://dropp.test"
        ) as api,
    ):
        reader = await register_account(api, "reader@example.com", engine=engine, role="reader")
        refused = await api.post(
            "/file-requests", json={"folder_path": "/a", "title": "x"}, headers=reader.headers
        )

    assert_problem(refused, 403, "upload_not_allowed")


async def test_an_unverified_owner_cannot_accept_files(
    client: httpx.AsyncClient, app_with: Any
) -> None:
    async with (
        app_with(require_email_verification=True) as app,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://dropp.test"
        ) as api,
    ):
        unverified = await register_account(api, "new@example.com")
        refused = await api.post(
            "/file-requests",
            json={"folder_path": "/a", "title": "x"},
            headers=unverified.headers,
        )

    assert_problem(refused, 403, "email_not_verified")


async def test_the_list_is_paged_newest_first_without_closed_requests(
    client: httpx.AsyncClient, alice: Account
) -> None:
    made = [await open_request(client, alice, title=f"r{n}") for n in range(5)]
    closed = await client.delete(f"/file-requests/{made[2]['id']}", headers=alice.headers)
    assert closed.status_code == 204

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} if cursor is None else {"limit": 2, "cursor": cursor}
        page = await client.get("/file-requests", params=params, headers=alice.headers)
        assert page.status_code == 200, page.text
        seen += [item["title"] for item in page.json()["file_requests"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break

    assert seen == ["r4", "r3", "r1", "r0"]
    bad = await client.get("/file-requests", params={"cursor": "nope"}, headers=alice.headers)
    assert_problem(bad, 400, "invalid_cursor")


async def test_the_list_shows_each_requests_state_and_what_it_received(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, engine: AsyncEngine
) -> None:
    open_one = await open_request(client, alice, title="open", folder_path="/open")
    full = await open_request(client, alice, title="full", folder_path="/full", max_uploads=1)
    expired = await open_request(client, alice, title="expired", folder_path="/expired")
    trashed = await open_request(client, alice, title="trashed", folder_path="/trashed")
    await drop(client, web, open_one["token"], "a.txt", b"a")
    await drop(client, web, open_one["token"], "b.txt", b"b")
    await drop(client, web, full["token"], "c.txt", b"c")
    await run_sql(
        engine,
        "UPDATE file_request SET deadline = now() - interval '1 second' WHERE id = :id",
        id=UUID(expired["id"]),
    )
    await client.delete(f"/folders/{trashed['folder_id']}", headers=alice.headers)

    listed = await client.get("/file-requests", headers=alice.headers)

    states = {
        item["title"]: (item["state"], item["uploads_used"], item["files_received"])
        for item in listed.json()["file_requests"]
    }
    assert states == {
        "open": ("open", 2, 2),
        "full": ("full", 1, 1),
        "expired": ("expired", 0, 0),
        "trashed": ("folder_in_trash", 0, 0),
    }


async def test_the_owner_routes_answer_the_owner_only(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    request = await open_request(client, alice)
    path = f"/file-requests/{request['id']}"

    # The owner.
    assert (await client.get(path, headers=alice.headers)).json()["id"] == request["id"]
    alices = await client.get("/file-requests", headers=alice.headers)
    assert [item["id"] for item in alices.json()["file_requests"]] == [request["id"]]
    # An unrelated user: 404, and nothing in their list.
    assert_problem(await client.get(path, headers=bob.headers), 404, "file_request_not_found")
    assert_problem(await client.delete(path, headers=bob.headers), 404, "file_request_not_found")
    assert (await client.get("/file-requests", headers=bob.headers)).json()["file_requests"] == []
    # Nobody signed in.
    for answer in (
        await client.post("/file-requests", json={"folder_path": "/a", "title": "x"}),
        await client.get("/file-requests"),
        await client.get(path),
        await client.delete(path),
    ):
        assert_problem(answer, 401, "not_authenticated")
    # Still open after all of that.
    assert (await client.get(f"/r/{request['token']}")).status_code == 200


async def test_closing_a_request_is_final(client: httpx.AsyncClient, alice: Account) -> None:
    request = await open_request(client, alice)
    path = f"/file-requests/{request['id']}"

    assert (await client.delete(path, headers=alice.headers)).status_code == 204

    assert_problem(await client.delete(path, headers=alice.headers), 404, "file_request_not_found")
    assert_problem(await client.get(path, headers=alice.headers), 404, "file_request_not_found")
    assert_problem(
        await client.delete(f"/file-requests/{uuid4()}", headers=alice.headers),
        404,
        "file_request_not_found",
    )
    assert_problem(await client.get(f"/r/{request['token']}"), 404, "file_request_not_found")
