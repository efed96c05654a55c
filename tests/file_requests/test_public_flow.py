"""The link, for anyone holding it: uploads land in the owner's folder as new files, and the
link shows nothing of what the folder holds."""

import hashlib
import re
from uuid import UUID

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.file_requests.flow import (
    PRIVATE,
    STORED,
    complete_drop,
    drop,
    folder_items,
    open_request,
    post_bytes,
    request_row,
    run_sql,
    start_drop,
)
from tests.files.test_tree import change_rows, make_folder
from tests.helpers import Account, assert_problem, download_bytes, start_upload, upload_file

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


async def test_an_anonymous_upload_lands_in_the_owners_folder(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, engine: AsyncEngine
) -> None:
    request = await open_request(client, alice, folder_path="/inbox")
    data = b"the quarterly report"

    started = await start_drop(
        client, request["token"], "report.pdf", len(data), sha256=hashlib.sha256(data).hexdigest()
    )
    assert started.status_code == 201, started.text
    body = started.json()
    assert set(body) == {"upload_id", "file_id", "upload", "expires_at"}
    assert set(body["upload"]) == {"kind", "method", "url", "fields"}
    assert (await post_bytes(web, body, data)).status_code in STORED
    completed = await complete_drop(client, request["token"], body["upload_id"])

    assert completed.status_code == 200, completed.text
    assert completed.json() == {
        "status": "complete",
        "size": len(data),
        "content_hash": f"sha256:{hashlib.sha256(data).hexdigest()}",
    }
    for header, value in PRIVATE.items():
        assert completed.headers[header] == value
    items = await folder_items(client, alice, "/inbox")
    assert list(items) == ["report.pdf"]
    assert items["report.pdf"]["id"] == body["file_id"]
    assert items["report.pdf"]["status"] == "complete"
    downloaded = await download_bytes(client, web, alice, body["file_id"])
    assert downloaded.content == data
    assert ("created", "file", "/inbox/report.pdf") in await change_rows(engine, alice)
    through = await run_sql(
        engine,
        "SELECT file_request_id FROM file_revision WHERE id = :id",
        id=UUID(body["upload_id"]),
    )
    assert str(through) == request["id"]
    assert (await request_row(engine, request["id"])).uploads_used == 1


async def test_completing_again_gives_the_same_answer(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    request = await open_request(client, alice)
    body = await drop(client, web, request["token"], "a.txt", b"abc")

    again = await complete_drop(client, request["token"], body["upload_id"])

    assert again.status_code == 200, again.text
    assert again.json() == {"status": "complete", "size": 3, "content_hash": None}


async def test_taken_names_get_fresh_numbered_names_and_existing_files_stay(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    await make_folder(client, alice, "/inbox/photos")
    own = await upload_file(client, web, alice, "report.pdf", b"alice's own", folder="/inbox")
    request = await open_request(client, alice, folder_path="/inbox")

    first = await drop(client, web, request["token"], "report.pdf", b"first drop")
    second = await drop(client, web, request["token"], "report.pdf", b"second drop")
    folder_name = await drop(client, web, request["token"], "photos", b"not a folder")
    dotfile = await drop(client, web, request["token"], ".env", b"dotfile")
    again = await drop(client, web, request["token"], ".env", b"dotfile again")

    items = await folder_items(client, alice, "/inbox")
    assert sorted(items) == [
        ".env",
        ".env (2)",
        "photos",
        "photos (2)",
        "report (2).pdf",
        "report (3).pdf",
        "report.pdf",
    ]
    assert items["photos"]["kind"] == "folder"
    assert items["report.pdf"]["id"] == own["file_id"]
    assert items["report.pdf"]["revision_id"] == own["revision_id"]
    assert (await download_bytes(client, web, alice, own["file_id"])).content == b"alice's own"
    expected = {
        "report (2).pdf": (first, b"first drop"),
        "report (3).pdf": (second, b"second drop"),
        "photos (2)": (folder_name, b"not a folder"),
        ".env": (dotfile, b"dotfile"),
        ".env (2)": (again, b"dotfile again"),
    }
    for name, (dropped, data) in expected.items():
        assert items[name]["id"] == dropped["file_id"]
        assert (await download_bytes(client, web, alice, dropped["file_id"])).content == data
    history = await client.get(f"/files/{own['file_id']}/revisions", headers=alice.headers)
    assert history.status_code == 200, history.text
    assert [item["revision_id"] for item in history.json()["revisions"]] == [own["revision_id"]]


async def test_a_pending_owner_upload_of_the_same_name_is_not_joined(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    pending = await start_upload(client, alice, "draft.txt", size=5, folder="/inbox")
    request = await open_request(client, alice, folder_path="/inbox")

    dropped = await drop(client, web, request["token"], "draft.txt", b"drop!")

    assert dropped["file_id"] != pending["file_id"]
    items = await folder_items(client, alice, "/inbox")
    assert items["draft (2).txt"]["id"] == dropped["file_id"]
    assert items["draft.txt"]["status"] == "pending"


async def test_the_link_shows_only_what_it_asks_for(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    await upload_file(client, web, alice, "secret-plans.txt", b"x", folder="/vault-7")
    request = await open_request(
        client,
        alice,
        folder_path="/vault-7",
        title="Your receipts",
        max_uploads=3,
        max_file_bytes=1000,
        deadline="2099-01-01T00:00:00Z",
    )
    await drop(client, web, request["token"], "uploaded-by-someone.txt", b"y")

    shown = await client.get(f"/r/{request['token']}")

    assert shown.status_code == 200, shown.text
    assert shown.json() == {
        "title": "Your receipts",
        "deadline": "2099-01-01T00:00:00Z",
        "max_file_bytes": 1000,
        "uploads_left": 2,
    }
    for header, value in PRIVATE.items():
        assert shown.headers[header] == value
    page = await client.get(f"/r/{request['token']}", headers={"Accept": BROWSER_ACCEPT})
    for answer in (shown, page):
        for secret in ("secret-plans", "uploaded-by-someone", "vault-7", alice.email, "alice"):
            assert secret not in answer.text


async def test_a_browser_gets_an_upload_page(
    client: httpx.AsyncClient, alice: Account, settings: object
) -> None:
    request = await open_request(client, alice, title="Photos <from> the trip", max_uploads=2)

    page = await client.get(f"/r/{request['token']}", headers={"Accept": BROWSER_ACCEPT})

    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    for header, value in PRIVATE.items():
        assert page.headers[header] == value
    assert "Photos &lt;from&gt; the trip" in page.text
    assert "2 uploads left" in page.text
    policy = page.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy)
    assert nonce is not None
    assert f'<script nonce="{nonce.group(1)}">' in page.text
    assert "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    # Its script talks to this server and to storage, and to nothing else.
    connect = re.search(r"connect-src ([^;]+)", policy)
    assert connect is not None
    assert connect.group(1).split()[0] == "'self'"
    assert len(connect.group(1).split()) == 2
    assert "src=" not in page.text
    # No link out of the page: its one href is this server's stylesheet.
    assert re.findall(r'href="([^"]*)"', page.text) == ["/static/pages.css"]
    # JSON stays the answer for everything else.
    for accept in ("*/*", "application/json", "application/json, text/html;q=0.5"):
        answer = await client.get(f"/r/{request['token']}", headers={"Accept": accept})
        assert answer.headers["content-type"].startswith("application/json"), accept


async def test_a_closed_expired_or_trashed_link_answers_like_an_unknown_one(
    client: httpx.AsyncClient, alice: Account, engine: AsyncEngine
) -> None:
    unknown = "A" * 43
    closed = await open_request(client, alice, folder_path="/closed")
    expired = await open_request(client, alice, folder_path="/expired")
    trashed = await open_request(client, alice, folder_path="/trashed/deep")
    parent_trashed = await open_request(client, alice, folder_path="/parent/child")
    await client.delete(f"/file-requests/{closed['id']}", headers=alice.headers)
    await run_sql(
        engine,
        "UPDATE file_request SET deadline = now() - interval '1 second' WHERE id = :id",
        id=UUID(expired["id"]),
    )
    await client.delete(f"/folders/{trashed['folder_id']}", headers=alice.headers)
    parent = await folder_items(client, alice, "/")
    await client.delete(f"/folders/{parent['parent']['id']}", headers=alice.headers)

    tokens = [
        unknown,
        "x" * 500,
        closed["token"],
        expired["token"],
        trashed["token"],
        parent_trashed["token"],
    ]
    views, starts = [], []
    for token in tokens:
        views.append(await client.get(f"/r/{token}"))
        starts.append(await start_drop(client, token, "a.txt", 1))
    pages = [
        await client.get(f"/r/{token}", headers={"Accept": BROWSER_ACCEPT}) for token in tokens
    ]

    for answers in (views, starts):
        for answer in answers:
            assert_problem(answer, 404, "file_request_not_found")
            for header, value in PRIVATE.items():
                assert answer.headers[header] == value
        assert len({answer.text for answer in answers}) == 1
    assert {page.status_code for page in pages} == {404}
    assert len({page.text for page in pages}) == 1
    assert all(page.headers["content-type"].startswith("text/html") for page in pages)
    for request in (closed, expired, trashed, parent_trashed):
        assert (await request_row(engine, request["id"])).uploads_used == 0


async def test_an_upload_started_before_the_deadline_may_complete_after_it(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, engine: AsyncEngine
) -> None:
    request = await open_request(client, alice, expires_in=3600)
    started = (await start_drop(client, request["token"], "late.txt", 4)).json()
    assert (await post_bytes(web, started, b"late")).status_code in STORED
    await run_sql(
        engine,
        "UPDATE file_request SET deadline = now() - interval '1 second' WHERE id = :id",
        id=UUID(request["id"]),
    )

    completed = await complete_drop(client, request["token"], started["upload_id"])

    assert completed.status_code == 200, completed.text
    assert "late.txt" in await folder_items(client, alice, "/inbox")
    assert_problem(await client.get(f"/r/{request['token']}"), 404, "file_request_not_found")


async def test_a_closed_request_completes_nothing_more(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    request = await open_request(client, alice)
    started = (await start_drop(client, request["token"], "a.txt", 1)).json()
    assert (await post_bytes(web, started, b"a")).status_code in STORED
    await client.delete(f"/file-requests/{request['id']}", headers=alice.headers)

    completed = await complete_drop(client, request["token"], started["upload_id"])

    assert_problem(completed, 404, "file_request_not_found")
    assert (await folder_items(client, alice, "/inbox"))["a.txt"]["status"] == "pending"


async def test_only_uploads_made_through_the_link_can_be_completed_or_cancelled(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    mine = await open_request(client, alice, folder_path="/one")
    other = await open_request(client, alice, folder_path="/two")
    bobs = await open_request(client, bob, folder_path="/bob")
    through_other = (await start_drop(client, other["token"], "o.txt", 1)).json()
    through_bobs = (await start_drop(client, bobs["token"], "b.txt", 1)).json()
    owners = await start_upload(client, alice, "own.txt", size=1, folder="/one")
    for started in (through_other, through_bobs):
        assert (await post_bytes(web, started, b"x")).status_code in STORED

    for upload_id in (
        through_other["upload_id"],
        through_bobs["upload_id"],
        owners["upload_id"],
        owners["file_id"],
        "00000000-0000-0000-0000-000000000000",
    ):
        completed = await complete_drop(client, mine["token"], upload_id)
        cancelled = await client.delete(f"/r/{mine['token']}/uploads/{upload_id}")
        assert_problem(completed, 404, "upload_not_found")
        assert_problem(cancelled, 404, "upload_not_found")

    assert (await folder_items(client, alice, "/two"))["o.txt"]["status"] == "pending"
    assert (await folder_items(client, alice, "/one"))["own.txt"]["status"] == "pending"


async def test_cancelling_removes_the_pending_file_and_gives_the_use_back(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, engine: AsyncEngine
) -> None:
    request = await open_request(client, alice, max_uploads=1)
    started = (await start_drop(client, request["token"], "oops.txt", 4)).json()
    assert (await post_bytes(web, started, b"oops")).status_code in STORED
    assert_problem(await start_drop(client, request["token"], "b.txt", 1), 410, "file_request_full")

    cancelled = await client.delete(f"/r/{request['token']}/uploads/{started['upload_id']}")

    assert cancelled.status_code == 204, cancelled.text
    assert cancelled.headers["cache-control"] == "no-store"
    assert await folder_items(client, alice, "/inbox") == {}
    assert (await request_row(engine, request["id"])).uploads_used == 0
    assert_problem(
        await complete_drop(client, request["token"], started["upload_id"]),
        404,
        "upload_not_found",
    )
    done = await drop(client, web, request["token"], "right.txt", b"right")
    refused = await client.delete(f"/r/{request['token']}/uploads/{done['upload_id']}")
    assert_problem(refused, 409, "upload_complete")
    assert "right.txt" in await folder_items(client, alice, "/inbox")


async def test_completing_before_the_bytes_arrive_is_409_and_can_be_retried(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    request = await open_request(client, alice)
    started = (await start_drop(client, request["token"], "slow.txt", 4)).json()

    early = await complete_drop(client, request["token"], started["upload_id"])
    assert_problem(early, 409, "upload_incomplete")
    assert (await post_bytes(web, started, b"slow")).status_code in STORED
    later = await complete_drop(client, request["token"], started["upload_id"])

    assert later.status_code == 200, later.text
    assert later.json()["size"] == 4


async def test_a_link_stops_when_its_owner_may_no_longer_upload(
    client: httpx.AsyncClient, alice: Account, engine: AsyncEngine
) -> None:
    request = await open_request(client, alice)
    await run_sql(
        engine, "UPDATE user_account SET role = 'retired' WHERE id = :id", id=UUID(alice.user_id)
    )

    assert_problem(await client.get(f"/r/{request['token']}"), 404, "file_request_not_found")
    assert_problem(
        await start_drop(client, request["token"], "a.txt", 1), 404, "file_request_not_found"
    )


async def test_a_full_links_page_offers_no_upload(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    request = await open_request(client, alice, max_uploads=1)
    await drop(client, web, request["token"], "a.txt", b"a")

    page = await client.get(f"/r/{request['token']}", headers={"Accept": BROWSER_ACCEPT})

    assert page.status_code == 200, page.text
    assert "taken all the uploads it allows" in page.text
    assert "<script" not in page.text
    assert "<form" not in page.text
