"""Uploads that say which revision they replace (`base_revision`), and what happens when the
file changed since: keep both, overwrite, or fail."""

import asyncio
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import httpx

from tests.helpers import (
    Account,
    assert_problem,
    complete,
    download_bytes,
    post_form,
    sha256_hex,
    start_upload,
    upload_file,
)


async def started_with_bytes(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    account: Account,
    name: str,
    data: bytes,
    **fields: Any,
) -> dict[str, Any]:
    """Init and POST the bytes to storage, not yet completed."""
    started = await start_upload(client, account, name, size=len(data), **fields)
    posted = await post_form(web, started, data)
    assert posted.status_code in (200, 201, 204), posted.text
    return started


async def upload_whole(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    account: Account,
    name: str,
    data: bytes,
    **fields: Any,
) -> dict[str, Any]:
    """`upload_file` naming its upload, for while another upload of the file is pending."""
    started = await started_with_bytes(client, web, account, name, data, **fields)
    done = await complete(client, account, started["file_id"], upload_id=started["upload_id"])
    assert done.status_code == 200, done.text
    body: dict[str, Any] = done.json()
    return body


async def names(client: httpx.AsyncClient, account: Account) -> set[str]:
    listed = await client.get("/list/", headers=account.headers)
    assert listed.status_code == 200, listed.text
    return {f["name"] for f in listed.json()["files"]}


async def revision_count(client: httpx.AsyncClient, account: Account, file_id: str) -> int:
    listed = await client.get(f"/files/{file_id}/revisions", headers=account.headers)
    assert listed.status_code == 200, listed.text
    return len(listed.json()["revisions"])


def today() -> str:
    return datetime.now(UTC).date().isoformat()


async def test_keep_both_puts_a_conflicted_copy_beside_the_changed_file(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    base = await upload_file(client, web, alice, "plan.txt", b"v1")
    # Another device changes the file; this one still has v1.
    newer = await upload_file(
        client, web, alice, "plan.txt", b"v2 from desktop", base_revision=base["revision_id"]
    )
    started = await started_with_bytes(
        client,
        web,
        alice,
        "plan.txt",
        b"v2 from laptop",
        device="laptop",
        base_revision=base["revision_id"],
    )

    done = await complete(client, alice, started["file_id"])

    assert done.status_code == 200, done.text
    body = done.json()
    assert body["name"] == f"plan (conflicted copy laptop {today()}).txt"
    assert body["file_id"] != base["file_id"]
    assert body["path"] == f"/{body['name']}"
    assert body["conflict"] == {
        "kind": "keep_both",
        "original_file_id": base["file_id"],
        "current_revision": newer["revision_id"],
    }
    assert (await download_bytes(client, web, alice, body["file_id"])).content == (
        b"v2 from laptop"
    )
    # The original is untouched.
    original = (await client.get(f"/files/{base['file_id']}", headers=alice.headers)).json()
    assert original["revision_id"] == newer["revision_id"]
    assert (await download_bytes(client, web, alice, base["file_id"])).content == (
        b"v2 from desktop"
    )
    assert await revision_count(client, alice, base["file_id"]) == 2
    assert await names(client, alice) == {"plan.txt", body["name"]}


async def test_a_second_conflicted_copy_the_same_day_gets_a_number(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    base = await upload_file(client, web, alice, "archive.tar.gz", b"v1")
    await upload_file(client, web, alice, "archive.tar.gz", b"v2")
    copies = []
    for data in (b"copy one", b"copy two"):
        started = await started_with_bytes(
            client, web, alice, "archive.tar.gz", data, base_revision=base["revision_id"]
        )
        done = await complete(client, alice, started["file_id"])
        assert done.status_code == 200, done.text
        copies.append(done.json()["name"])

    assert copies == [
        f"archive.tar (conflicted copy another device {today()}).gz",
        f"archive.tar (conflicted copy another device {today()} 2).gz",
    ]


async def test_overwrite_makes_the_upload_the_newest_revision_anyway(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    base = await upload_file(client, web, alice, "plan.txt", b"v1")
    await upload_file(client, web, alice, "plan.txt", b"v2")

    done = await upload_file(
        client,
        web,
        alice,
        "plan.txt",
        b"v3 wins",
        base_revision=base["revision_id"],
        conflict="overwrite",
    )

    assert done["file_id"] == base["file_id"]
    assert "conflict" not in done or done["conflict"] is None
    assert (await download_bytes(client, web, alice, base["file_id"])).content == b"v3 wins"
    assert await names(client, alice) == {"plan.txt"}
    assert await revision_count(client, alice, base["file_id"]) == 3


async def test_fail_refuses_at_init_with_the_current_revision_and_stores_nothing(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    base = await upload_file(client, web, alice, "plan.txt", b"v1")
    newer = await upload_file(client, web, alice, "plan.txt", b"v2")

    refused = await client.post(
        "/upload/",
        json={
            "filename": "plan.txt",
            "size": 2,
            "base_revision": base["revision_id"],
            "conflict": "fail",
        },
        headers=alice.headers,
    )

    body = assert_problem(refused, 409, "revision_conflict")
    assert body["current_revision"] == newer["revision_id"]
    assert await revision_count(client, alice, base["file_id"]) == 2
    pending = await client.get("/list/", params={"status": "all"}, headers=alice.headers)
    assert [f["status"] for f in pending.json()["files"]] == ["complete"]


async def test_fail_at_complete_discards_the_upload_and_changes_nothing(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    base = await upload_file(client, web, alice, "plan.txt", b"v1")
    started = await started_with_bytes(
        client, web, alice, "plan.txt", b"mine", base_revision=base["revision_id"], conflict="fail"
    )
    usage_before = (await client.get("/me/usage", headers=alice.headers)).json()
    newer = await upload_whole(client, web, alice, "plan.txt", b"theirs")

    refused = await complete(client, alice, started["file_id"], upload_id=started["upload_id"])

    body = assert_problem(refused, 409, "revision_conflict")
    assert body["current_revision"] == newer["revision_id"]
    assert (await download_bytes(client, web, alice, base["file_id"])).content == b"theirs"
    assert await revision_count(client, alice, base["file_id"]) == 2
    assert await names(client, alice) == {"plan.txt"}
    usage = (await client.get("/me/usage", headers=alice.headers)).json()
    # The upload's hold is released; only "theirs" was added.
    assert usage["reserved"] == 0
    assert usage["bytes"] == usage_before["bytes"] + len(b"theirs")
    again = await complete(client, alice, started["file_id"], upload_id=started["upload_id"])
    assert_problem(again, 404, "upload_not_found")


async def test_identical_bytes_at_init_are_never_a_conflict(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    base = await upload_file(client, web, alice, "plan.txt", b"v1")
    newer = await upload_file(client, web, alice, "plan.txt", b"same", sha256=sha256_hex(b"same"))
    # This device made the same change: same bytes, stale base.
    at_init = await client.post(
        "/upload/",
        json={
            "filename": "plan.txt",
            "size": 4,
            "sha256": sha256_hex(b"same"),
            "base_revision": base["revision_id"],
            "conflict": "fail",
        },
        headers=alice.headers,
    )
    assert at_init.status_code == 200, at_init.text
    assert at_init.json()["status"] == "complete"

    assert await names(client, alice) == {"plan.txt"}
    assert await revision_count(client, alice, base["file_id"]) == 2
    assert newer["file_id"] == base["file_id"]


async def test_identical_bytes_at_complete_are_never_a_conflict(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    base = await upload_file(client, web, alice, "plan.txt", b"v1")
    started = await started_with_bytes(
        client,
        web,
        alice,
        "plan.txt",
        b"same",
        sha256=sha256_hex(b"same"),
        base_revision=base["revision_id"],
        conflict="fail",
    )
    newer = await upload_whole(client, web, alice, "plan.txt", b"same", sha256=sha256_hex(b"same"))

    done = await complete(client, alice, started["file_id"], upload_id=started["upload_id"])

    assert done.status_code == 200, done.text
    assert done.json()["revision_id"] == newer["revision_id"]
    assert await names(client, alice) == {"plan.txt"}
    assert await revision_count(client, alice, base["file_id"]) == 2


async def test_two_devices_completing_against_one_base_at_once_lose_nothing(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    base = await upload_file(client, web, alice, "plan.txt", b"v1")
    laptop = await started_with_bytes(
        client,
        web,
        alice,
        "plan.txt",
        b"from laptop",
        device="laptop",
        base_revision=base["revision_id"],
    )
    desktop = await started_with_bytes(
        client,
        web,
        alice,
        "plan.txt",
        b"from desktop",
        device="desktop",
        base_revision=base["revision_id"],
    )

    answers = await asyncio.gather(
        complete(client, alice, laptop["file_id"], upload_id=laptop["upload_id"]),
        complete(client, alice, desktop["file_id"], upload_id=desktop["upload_id"]),
    )

    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    bodies = [a.json() for a in answers]
    winners = [b for b in bodies if b.get("conflict") is None]
    copies = [b for b in bodies if b.get("conflict") is not None]
    assert len(winners) == 1
    assert len(copies) == 1
    winner, copy = winners[0], copies[0]
    assert winner["file_id"] == base["file_id"]
    assert copy["conflict"]["current_revision"] == winner["revision_id"]
    loser_device = "desktop" if winner["revision_id"] == laptop["upload_id"] else "laptop"
    assert copy["name"] == f"plan (conflicted copy {loser_device} {today()}).txt"
    contents = {(await download_bytes(client, web, alice, b["file_id"])).content for b in bodies}
    assert contents == {b"from laptop", b"from desktop"}
    assert await names(client, alice) == {"plan.txt", copy["name"]}


async def test_bad_sync_fields_are_refused(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    for fields in (
        {"device": "a/b"},
        {"device": "x" * 65},
        {"device": "line\nbreak"},
        {"device": ""},
        {"conflict": "merge"},
        {"base_revision": "not-a-uuid"},
    ):
        refused = await client.post(
            "/upload/", json={"filename": "a.txt", "size": 1, **fields}, headers=alice.headers
        )
        assert_problem(refused, 422, "validation_error")
    assert await names(client, alice) == set()


async def test_a_base_revision_of_another_users_file_is_just_stale(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    bobs = await upload_file(client, web, bob, "plan.txt", b"bob")
    await upload_file(client, web, alice, "plan.txt", b"alice")

    refused = await client.post(
        "/upload/",
        json={
            "filename": "plan.txt",
            "size": 1,
            "base_revision": bobs["revision_id"],
            "conflict": "fail",
        },
        headers=alice.headers,
    )
    body = assert_problem(refused, 409, "revision_conflict")
    assert body["current_revision"] != bobs["revision_id"]
    unknown = await client.post(
        "/upload/",
        json={"filename": "new.txt", "size": 1, "base_revision": str(uuid4()), "conflict": "fail"},
        headers=alice.headers,
    )
    # No such file yet: nothing to lose, so nothing to refuse.
    assert unknown.status_code == 201, unknown.text
