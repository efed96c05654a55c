import asyncio
import base64
import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import Account, assert_problem, start_upload, upload_file


async def make_folder(client: httpx.AsyncClient, account: Account, path: str) -> dict[str, Any]:
    made = await client.post("/folders", json={"path": path}, headers=account.headers)
    assert made.status_code in (200, 201), made.text
    body: dict[str, Any] = made.json()
    return body


async def move(
    client: httpx.AsyncClient, account: Account, kind: str, node_id: str, **body: Any
) -> httpx.Response:
    return await client.patch(f"/{kind}/{node_id}", json=body, headers=account.headers)


async def change_rows(engine: AsyncEngine, account: Account) -> list[tuple[str, str, str]]:
    """(change, node kind, path) of the account's feed, oldest first."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT change, node_kind, path FROM change WHERE user_id = :user ORDER BY id"),
            {"user": UUID(account.user_id)},
        )
        return [(row.change, row.node_kind, row.path) for row in rows]


async def children(client: httpx.AsyncClient, account: Account, path: str) -> list[str]:
    listed = await client.get("/folders", params={"path": path}, headers=account.headers)
    assert listed.status_code == 200, listed.text
    return [item["name"] for item in listed.json()["items"]]


async def test_create_folder_creates_missing_parents_once(
    client: httpx.AsyncClient, alice: Account, engine: AsyncEngine
) -> None:
    created = await client.post("/folders", json={"path": "/a/b/c"}, headers=alice.headers)
    again = await client.post("/folders", json={"path": "a/b/c/"}, headers=alice.headers)

    assert created.status_code == 201, created.text
    assert created.json()["path"] == "/a/b/c"
    assert created.json()["name"] == "c"
    assert again.status_code == 200
    assert again.json()["folder_id"] == created.json()["folder_id"]
    assert await children(client, alice, "/") == ["a"]
    assert await children(client, alice, "/a") == ["b"]
    assert await children(client, alice, "/a/b") == ["c"]
    assert await change_rows(engine, alice) == [
        ("created", "folder", "/a"),
        ("created", "folder", "/a/b"),
        ("created", "folder", "/a/b/c"),
    ]


async def test_create_folder_refuses_bad_paths(client: httpx.AsyncClient, alice: Account) -> None:
    await start_upload(client, alice, "x.txt", size=1)

    under_file = await client.post("/folders", json={"path": "/x.txt/y"}, headers=alice.headers)
    top = await client.post("/folders", json={"path": "/"}, headers=alice.headers)
    dots = await client.post("/folders", json={"path": "/a/../b"}, headers=alice.headers)

    assert_problem(under_file, 409, "not_a_folder")
    assert_problem(top, 422, "validation_error")
    assert_problem(dots, 422, "validation_error")
    assert await children(client, alice, "/") == ["x.txt"]


async def test_children_are_paged_folders_first_then_files_by_name(
    client: httpx.AsyncClient, alice: Account
) -> None:
    for name in ("zeta", "Alpha", "beta"):
        await make_folder(client, alice, f"/{name}")
    for name in ("b.txt", "a.txt", "C.txt"):
        await start_upload(client, alice, name, size=1)
    await start_upload(client, alice, "deeper.txt", size=1, folder="/zeta")

    seen: list[tuple[str, str]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"path": "/", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await client.get("/folders", params=params, headers=alice.headers)
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) <= 2
        seen += [(item["kind"], item["name"]) for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break

    assert pages == 3
    assert seen == [
        ("folder", "Alpha"),
        ("folder", "beta"),
        ("folder", "zeta"),
        ("file", "C.txt"),
        ("file", "a.txt"),
        ("file", "b.txt"),
    ]
    listed = await client.get("/folders?path=/", headers=alice.headers)
    file_item = listed.json()["items"][3]
    assert file_item["path"] == "/C.txt"
    assert file_item["status"] == "pending"
    assert await children(client, alice, "/zeta") == ["deeper.txt"]


async def _all_pages(
    client: httpx.AsyncClient, account: Account, **params: Any
) -> list[tuple[str, str]]:
    """Every child of the top level, two to a page, in the order asked for."""
    seen: list[tuple[str, str]] = []
    cursor = None
    while True:
        asked = {"path": "/", "limit": 2, **params, **({"cursor": cursor} if cursor else {})}
        page = await client.get("/folders", params=asked, headers=account.headers)
        assert page.status_code == 200, page.text
        seen += [(item["kind"], item["name"]) for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return seen


async def test_children_sort_by_size_and_by_modified_both_ways_across_pages(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, engine: AsyncEngine
) -> None:
    for path in ("/b-folder", "/a-folder"):
        await make_folder(client, alice, path)
    made = {}
    for name, size in (("mid.txt", 20), ("big.txt", 300), ("small.txt", 1), ("twin.txt", 20)):
        made[name] = await upload_file(client, web, alice, name, b"x" * size)
    await start_upload(client, alice, "pending.txt", size=5000)
    # Modified times far apart and in an order of their own, equal for two of them.
    async with engine.begin() as connection:
        for name, day in (("mid.txt", 3), ("big.txt", 1), ("small.txt", 2), ("twin.txt", 3)):
            await connection.execute(
                text("UPDATE node SET updated_at = :at WHERE id = :id"),
                {"at": datetime(2026, 1, day, 0, 0, 0, 123456, UTC), "id": made[name]["file_id"]},
            )
        await connection.execute(
            text("UPDATE node SET updated_at = '2025-06-01' WHERE name = 'pending.txt'")
        )
        await connection.execute(
            text("UPDATE node SET updated_at = '2026-02-01' WHERE name = 'b-folder'")
        )
        await connection.execute(
            text("UPDATE node SET updated_at = '2026-03-01' WHERE name = 'a-folder'")
        )
    folders_by_name = [("folder", "a-folder"), ("folder", "b-folder")]

    by_size = await _all_pages(client, alice, sort="size")
    by_size_down = await _all_pages(client, alice, sort="size", direction="desc")
    by_date = await _all_pages(client, alice, sort="modified")
    by_date_down = await _all_pages(client, alice, sort="modified", direction="desc")
    by_name_down = await _all_pages(client, alice, direction="desc")

    # Folders first whichever way; a file not uploaded yet counts as empty; ties by name.
    files_by_size = ["pending.txt", "small.txt", "mid.txt", "twin.txt", "big.txt"]
    assert by_size == folders_by_name + [("file", name) for name in files_by_size]
    assert by_size_down == folders_by_name[::-1] + [("file", name) for name in files_by_size[::-1]]
    files_by_date = ["pending.txt", "big.txt", "small.txt", "mid.txt", "twin.txt"]
    assert by_date == [("folder", "b-folder"), ("folder", "a-folder")] + [
        ("file", name) for name in files_by_date
    ]
    assert by_date_down == [("folder", "a-folder"), ("folder", "b-folder")] + [
        ("file", name) for name in files_by_date[::-1]
    ]
    assert by_name_down == folders_by_name[::-1] + [
        ("file", name) for name in ["twin.txt", "small.txt", "pending.txt", "mid.txt", "big.txt"]
    ]


async def test_a_cursor_of_one_order_is_refused_in_another(
    client: httpx.AsyncClient, alice: Account
) -> None:
    for name in ("a.txt", "b.txt", "c.txt"):
        await start_upload(client, alice, name, size=1)
    by_size = await client.get(
        "/folders", params={"limit": 1, "sort": "size"}, headers=alice.headers
    )
    by_name = await client.get("/folders", params={"limit": 1}, headers=alice.headers)
    size_cursor, name_cursor = by_size.json()["next_cursor"], by_name.json()["next_cursor"]

    crossed = [
        await client.get("/folders", params=params, headers=alice.headers)
        for params in (
            {"cursor": size_cursor},
            {"cursor": size_cursor, "sort": "size", "direction": "desc"},
            {"cursor": name_cursor, "sort": "modified"},
        )
    ]
    unknown = await client.get("/folders", params={"sort": "colour"}, headers=alice.headers)

    for answer in crossed:
        assert_problem(answer, 400, "invalid_cursor")
    assert_problem(unknown, 422, "validation_error")
    same = await client.get(
        "/folders", params={"cursor": size_cursor, "sort": "size"}, headers=alice.headers
    )
    assert same.status_code == 200, same.text


async def test_children_refuse_bad_cursors_limits_and_missing_folders(
    client: httpx.AsyncClient, alice: Account
) -> None:
    bad_cursor = await client.get("/folders?cursor=bm9wZQ", headers=alice.headers)
    too_many = await client.get("/folders?limit=1001", headers=alice.headers)
    missing = await client.get("/folders?path=/nowhere", headers=alice.headers)

    assert_problem(bad_cursor, 400, "invalid_cursor")
    assert_problem(too_many, 422, "validation_error")
    assert_problem(missing, 404, "folder_not_found")


async def test_rename_a_file(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, engine: AsyncEngine
) -> None:
    done = await upload_file(client, web, alice, "draft.txt", b"words", folder="/docs")

    renamed = await move(client, alice, "files", done["file_id"], name="final.txt")

    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["path"] == "/docs/final.txt"
    assert renamed.json()["kind"] == "file"
    shown = await client.get(f"/files/{done['file_id']}", headers=alice.headers)
    assert shown.json()["path"] == "/docs/final.txt"
    assert (await change_rows(engine, alice))[-1] == ("moved", "file", "/docs/final.txt")


async def test_move_a_file_to_another_folder_and_to_the_top(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    done = await upload_file(client, web, alice, "f.txt", b"x", folder="/in")
    await make_folder(client, alice, "/out")

    moved = await move(client, alice, "files", done["file_id"], parent_path="/out")
    to_top = await move(client, alice, "files", done["file_id"], parent_path="/")
    nowhere = await move(client, alice, "files", done["file_id"], parent_path="/missing")
    into_file = await move(client, alice, "files", done["file_id"], parent_path="/f.txt")

    assert moved.json()["path"] == "/out/f.txt"
    assert to_top.json()["path"] == "/f.txt"
    assert_problem(nowhere, 404, "folder_not_found")
    assert_problem(into_file, 404, "folder_not_found")
    assert await children(client, alice, "/in") == []
    assert await children(client, alice, "/") == ["in", "out", "f.txt"]


async def test_move_a_folder_moves_its_whole_subtree(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, engine: AsyncEngine
) -> None:
    deep = await upload_file(client, web, alice, "deep.txt", b"d", folder="/a/b/c")
    shallow = await upload_file(client, web, alice, "s.txt", b"s", folder="/a/b")
    folder = await make_folder(client, alice, "/a/b")
    await make_folder(client, alice, "/z")
    before = len(await change_rows(engine, alice))

    moved = await move(client, alice, "folders", folder["folder_id"], parent_path="/z", name="B")

    assert moved.status_code == 200, moved.text
    assert moved.json()["path"] == "/z/B"
    assert moved.json()["kind"] == "folder"
    deep_now = await client.get(f"/files/{deep['file_id']}", headers=alice.headers)
    shallow_now = await client.get(f"/files/{shallow['file_id']}", headers=alice.headers)
    assert deep_now.json()["path"] == "/z/B/c/deep.txt"
    assert shallow_now.json()["path"] == "/z/B/s.txt"
    assert await children(client, alice, "/a") == []
    listed = await client.get("/list/?folder=/z/B/c", headers=alice.headers)
    assert [f["file_id"] for f in listed.json()["files"]] == [deep["file_id"]]
    # One row for the folder; its subtree moves with it.
    assert (await change_rows(engine, alice))[before:] == [("moved", "folder", "/z/B")]


async def test_a_folder_cannot_move_into_itself_or_a_descendant(
    client: httpx.AsyncClient, alice: Account, engine: AsyncEngine
) -> None:
    folder = await make_folder(client, alice, "/a")
    await make_folder(client, alice, "/a/b/c")
    before = await change_rows(engine, alice)

    into_itself = await move(client, alice, "folders", folder["folder_id"], parent_path="/a")
    into_child = await move(client, alice, "folders", folder["folder_id"], parent_path="/a/b/c")

    assert_problem(into_itself, 409, "move_into_itself")
    assert_problem(into_child, 409, "move_into_itself")
    assert await children(client, alice, "/") == ["a"]
    assert await change_rows(engine, alice) == before


async def test_a_taken_name_is_409_unless_autorename(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    there = await upload_file(client, web, alice, "report.pdf", b"1", folder="/docs")
    second = await upload_file(client, web, alice, "report.pdf", b"2")
    third = await upload_file(client, web, alice, "other.pdf", b"3")

    refused = await move(client, alice, "files", second["file_id"], parent_path="/docs")
    renamed = await move(
        client, alice, "files", second["file_id"], parent_path="/docs", autorename=True
    )
    again = await move(
        client,
        alice,
        "files",
        third["file_id"],
        parent_path="/docs",
        name="report.pdf",
        autorename=True,
    )

    body = assert_problem(refused, 409, "name_taken")
    assert body["conflicting_id"] == there["file_id"]
    assert renamed.json()["name"] == "report (2).pdf"
    assert again.json()["name"] == "report (3).pdf"
    assert await children(client, alice, "/docs") == [
        "report (2).pdf",
        "report (3).pdf",
        "report.pdf",
    ]


async def test_autorename_of_a_folder_numbers_its_name(
    client: httpx.AsyncClient, alice: Account
) -> None:
    await make_folder(client, alice, "/dest/photos.2024")
    moving = await make_folder(client, alice, "/photos.2024")

    refused = await move(client, alice, "folders", moving["folder_id"], parent_path="/dest")
    renamed = await move(
        client, alice, "folders", moving["folder_id"], parent_path="/dest", autorename=True
    )

    assert_problem(refused, 409, "name_taken")
    assert renamed.json()["path"] == "/dest/photos.2024 (2)"


async def test_renaming_to_a_folders_name_is_409(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    folder = await make_folder(client, alice, "/notes")
    done = await upload_file(client, web, alice, "n.txt", b"n")

    refused = await move(client, alice, "files", done["file_id"], name="notes")

    assert assert_problem(refused, 409, "name_taken")["conflicting_id"] == folder["folder_id"]


async def test_bad_names_and_paths_are_422_and_change_nothing(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    done = await upload_file(client, web, alice, "keep.txt", b"k")

    for body in (
        {"name": "a/b"},
        {"name": ".."},
        {"name": ""},
        {"name": "evil\u202etxt.exe"},
        {"parent_path": "/a//b"},
        {"autorename": "maybe"},
    ):
        answer = await move(client, alice, "files", done["file_id"], **body)
        assert_problem(answer, 422, "validation_error")
    assert await children(client, alice, "/") == ["keep.txt"]


async def test_a_stale_base_revision_is_409_conflict(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    first = await upload_file(client, web, alice, "f.txt", b"one")
    second = await upload_file(client, web, alice, "f.txt", b"two")
    folder = await make_folder(client, alice, "/d")

    stale = await move(
        client, alice, "files", first["file_id"], name="g.txt", base_revision=first["revision_id"]
    )
    current = await move(
        client, alice, "files", first["file_id"], name="g.txt", base_revision=second["revision_id"]
    )
    on_folder = await move(
        client, alice, "folders", folder["folder_id"], name="e", base_revision=str(uuid4())
    )

    body = assert_problem(stale, 409, "conflict")
    assert body["current_revision_id"] == second["revision_id"]
    assert current.json()["path"] == "/g.txt"
    # A folder has no revisions: its move does not take the field at all.
    body = assert_problem(on_folder, 422, "validation_error")
    assert body["errors"][0]["loc"] == ["body", "base_revision"]


async def test_concurrent_moves_to_one_name_let_one_win(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    one = await upload_file(client, web, alice, "one.txt", b"1")
    two = await upload_file(client, web, alice, "two.txt", b"2")

    answers = await asyncio.gather(
        move(client, alice, "files", one["file_id"], name="same.txt"),
        move(client, alice, "files", two["file_id"], name="same.txt"),
    )

    assert sorted(a.status_code for a in answers) == [200, 409]
    names = await children(client, alice, "/")
    assert len(names) == 2
    assert "same.txt" in names


async def test_another_users_nodes_are_404(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    done = await upload_file(client, web, alice, "private.txt", b"p")
    folder = await make_folder(client, alice, "/secret")
    await make_folder(client, bob, "/bobs")

    answers = [
        await move(client, bob, "files", done["file_id"], name="mine.txt"),
        await move(client, bob, "folders", folder["folder_id"], name="mine"),
        await move(client, alice, "folders", folder["folder_id"], parent_path="/bobs"),
        await client.get("/folders?path=/secret", headers=bob.headers),
    ]

    assert [a.status_code for a in answers] == [404] * 4
    assert await children(client, alice, "/") == ["secret", "private.txt"]


async def test_a_forged_cursor_of_any_shape_is_400(
    client: httpx.AsyncClient, alice: Account
) -> None:
    """Positions no database column can hold are refused as cursors, never sent to the
    database: a size past 64 bits, a name with NUL, a time without its zone."""

    def forged(raw: object) -> str:
        text = json.dumps(raw, separators=(",", ":"))
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    node = str(uuid4())
    for sort, after in (
        ("size", [1, 2**70, "a", node]),
        ("size", [1, True, "a", node]),
        ("size", [1, 5, "a\u0000b", node]),
        ("name", [1, "a\u0000b", node]),
        ("name", [True, "a", node]),
        ("name", [0.0, "a", node]),
        ("modified", [1, "2026-01-01T00:00:00", "a", node]),
        ("modified", [1, "yesterday", "a", node]),
        ("size", [2, 5, "a", node]),
        ("size", [1, 5, "a", "not a uuid"]),
    ):
        raw: object = (
            after if sort == "name" else {"sort": sort, "direction": "asc", "after": after}
        )
        answer = await client.get(
            "/folders", params={"sort": sort, "cursor": forged(raw)}, headers=alice.headers
        )
        assert_problem(answer, 400, "invalid_cursor")
