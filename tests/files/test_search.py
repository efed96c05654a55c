"""Search by name: the caller's live files and folders, compared as names are."""

import httpx

from tests.helpers import Account, assert_problem, upload_file


async def found(client: httpx.AsyncClient, account: Account, q: str, **params: str) -> list[str]:
    answer = await client.get("/search", params={"q": q, **params}, headers=account.headers)
    assert answer.status_code == 200, answer.text
    return [item["path"] for item in answer.json()["items"]]


async def test_names_are_found_anywhere_in_the_tree_whatever_their_case(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    await upload_file(client, web, alice, "Report 2026.pdf", b"a", folder="/work/q1")
    await upload_file(client, web, alice, "notes.txt", b"b", folder="/reports")
    await upload_file(client, web, alice, "old report.txt", b"c")
    await upload_file(client, web, bob, "bob's report.txt", b"d")
    trashed = await upload_file(client, web, alice, "report draft.txt", b"e")
    await client.delete(f"/files/{trashed['file_id']}", headers=alice.headers)

    # Newest change first; the folder matches as well as files; bob's and the trash do not.
    assert await found(client, alice, "REPORT") == [
        "/old report.txt",
        "/reports",
        "/work/q1/Report 2026.pdf",
    ]
    assert await found(client, alice, "ß") == []
    assert await found(client, alice, "2026.P") == ["/work/q1/Report 2026.pdf"]


async def test_wildcards_are_plain_characters_and_pages_follow_each_other(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    await upload_file(client, web, alice, "100% done.txt", b"a")
    await upload_file(client, web, alice, "1000 done.txt", b"b")
    await upload_file(client, web, alice, "a_b.txt", b"c")
    await upload_file(client, web, alice, "axb.txt", b"d")

    assert await found(client, alice, "100%") == ["/100% done.txt"]
    assert await found(client, alice, "a_b") == ["/a_b.txt"]

    first = await client.get("/search", params={"q": "done", "limit": 1}, headers=alice.headers)
    cursor = first.json()["next_cursor"]
    assert cursor is not None
    rest = await found(client, alice, "done", cursor=cursor)
    assert [first.json()["items"][0]["path"], *rest] == ["/1000 done.txt", "/100% done.txt"]
    assert_problem(
        await client.get("/search", params={"q": ""}, headers=alice.headers),
        422,
        "validation_error",
    )
    assert_problem(
        await client.get("/search", params={"q": "x", "cursor": "nope"}, headers=alice.headers),
        400,
        "invalid_cursor",
    )
