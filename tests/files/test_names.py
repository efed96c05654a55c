"""Names every desktop can hold: the names Windows refuses and invisible characters are
refused at every entry point with a code naming the rule, and names differing only by case
are one name within a folder, whose first spelling is kept."""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import api_client
from tests.file_requests.flow import drop, open_request, start_drop
from tests.files.test_trash import restore, trash
from tests.files.test_tree import change_rows, children, make_folder, move
from tests.helpers import (
    Account,
    assert_problem,
    download_bytes,
    start_upload,
    upload_file,
    verified_account,
)
from tests.sharing.people_helpers import granted

AppWith = Callable[..., AbstractAsyncContextManager[FastAPI]]

REFUSED = [
    pytest.param("CON", "name_reserved_on_windows", "CON", id="con"),
    pytest.param("nul.txt", "name_reserved_on_windows", "NUL", id="nul-with-extension"),
    pytest.param("Aux.tar.gz", "name_reserved_on_windows", "AUX", id="aux-any-case"),
    pytest.param("com1", "name_reserved_on_windows", "COM1", id="com1"),
    pytest.param("LPT9.log", "name_reserved_on_windows", "LPT9", id="lpt9"),
    pytest.param("prn .txt", "name_reserved_on_windows", "PRN", id="space-before-extension"),
    pytest.param("a:b.txt", "name_character_not_on_windows", ":", id="colon"),
    pytest.param("what?.txt", "name_character_not_on_windows", "?", id="question-mark"),
    pytest.param("a*b", "name_character_not_on_windows", "*", id="star"),
    pytest.param('say "hi"', "name_character_not_on_windows", '"', id="quote"),
    pytest.param("a<b>c", "name_character_not_on_windows", "<", id="angle-brackets"),
    pytest.param("a|b", "name_character_not_on_windows", "|", id="pipe"),
    pytest.param("report.", "name_trailing_dot_or_space", "end with a dot", id="trailing-dot"),
    pytest.param("report ", "name_trailing_dot_or_space", "end with a space", id="trailing-space"),
    pytest.param("re\u200bport", "name_invisible_character", "U+200B", id="zero-width-space"),
    pytest.param("\ufeffreport", "name_invisible_character", "U+FEFF", id="byte-order-mark"),
    pytest.param("re\u00adport", "name_invisible_character", "U+00AD", id="soft-hyphen"),
    pytest.param("re\u2060port", "name_invisible_character", "U+2060", id="word-joiner"),
    pytest.param("report\U000e0041", "name_invisible_character", "U+E0041", id="tag-character"),
    pytest.param("\u3164report", "name_invisible_character", "U+3164", id="hangul-filler"),
    pytest.param("\u200dreport", "name_invisible_character", "U+200D", id="joiner-at-start"),
    pytest.param("\ufe0freport", "name_invisible_character", "U+FE0F", id="lone-selector"),
]

WINDOWS_ONLY = ["CON", "nul.txt", "a:b.txt", "report.", "report "]

# Names that look unusual but every desktop holds and tells apart.
ACCEPTED = [
    "\u2764\ufe0f.txt",  # a heart with its emoji variation selector
    "\U0001f468\u200d\U0001f469\u200d\U0001f467.png",  # a family: joiners between emoji
    "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645.txt",  # Persian: a non-joiner in a word
    "CONSOLE.txt",
    "com10",
    "...hidden",
    "Straße.txt",
]


async def test_upload_init_refuses_names_desktops_cannot_hold(
    client: httpx.AsyncClient, alice: Account
) -> None:
    for param in REFUSED:
        name, code, said = param.values
        answer = await client.post(
            "/upload/", json={"filename": name, "size": 1}, headers=alice.headers
        )
        body = assert_problem(answer, 422, str(code))
        assert str(said) in body["detail"], (name, body["detail"])
        in_folder = await client.post(
            "/upload/",
            json={"filename": "ok.txt", "size": 1, "folder": f"/docs/{name}/2026"},
            headers=alice.headers,
        )
        assert_problem(in_folder, 422, str(code))
    listed = await client.get("/folders", params={"path": "/"}, headers=alice.headers)
    assert listed.json()["items"] == []


async def test_the_detail_names_the_rule_and_why(client: httpx.AsyncClient, alice: Account) -> None:
    answer = await client.post(
        "/upload/", json={"filename": "notes.", "size": 1}, headers=alice.headers
    )

    body = assert_problem(answer, 422, "name_trailing_dot_or_space")
    assert body["detail"] == (
        "body.filename: names may not end with a dot (Windows cannot hold them)"
    )


@pytest.mark.parametrize("name", ACCEPTED)
async def test_names_every_desktop_holds_are_accepted(
    client: httpx.AsyncClient, alice: Account, name: str
) -> None:
    started = await start_upload(client, alice, name, size=1)

    shown = await client.get(f"/files/{started['file_id']}", headers=alice.headers)
    assert shown.json()["name"] == name


async def test_folder_create_and_rename_and_move_refuse_them(
    client: httpx.AsyncClient, alice: Account
) -> None:
    folder = await make_folder(client, alice, "/docs")
    started = await start_upload(client, alice, "plan.txt", size=1)

    created = await client.post("/folders", json={"path": "/docs/AUX"}, headers=alice.headers)
    renamed_folder = await move(client, alice, "folders", folder["folder_id"], name="a|b")
    renamed_file = await move(client, alice, "files", started["file_id"], name="plan\u200b.txt")
    moved_and_renamed = await move(
        client, alice, "files", started["file_id"], parent_path="/docs", name="LPT1.txt"
    )

    assert_problem(created, 422, "name_reserved_on_windows")
    assert_problem(renamed_folder, 422, "name_character_not_on_windows")
    assert_problem(renamed_file, 422, "name_invisible_character")
    assert_problem(moved_and_renamed, 422, "name_reserved_on_windows")
    assert await children(client, alice, "/") == ["docs", "plan.txt"]
    assert await children(client, alice, "/docs") == []


async def test_file_requests_refuse_them_in_the_folder_and_in_dropped_names(
    client: httpx.AsyncClient, alice: Account
) -> None:
    bad_folder = await client.post(
        "/file-requests",
        json={"folder_path": "/inbox/con", "title": "Send"},
        headers=alice.headers,
    )
    request = await open_request(client, alice)

    dropped = await start_drop(client, request["token"], "photo?.jpg", 1)

    assert_problem(bad_folder, 422, "name_reserved_on_windows")
    assert_problem(dropped, 422, "name_character_not_on_windows")
    assert await children(client, alice, "/inbox") == []


async def test_share_editors_cannot_upload_them(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    folder = await make_folder(client, alice, "/projects")
    grant = await granted(
        client, alice, folder_id=folder["folder_id"], email=bob.email, permission="editor"
    )

    refused = await client.post(
        "/upload/",
        json={"filename": "notes\u00ad.txt", "size": 1, "share_id": grant["id"]},
        headers=bob.headers,
    )

    assert_problem(refused, 422, "name_invisible_character")
    assert await children(client, alice, "/projects") == []


@dataclass(frozen=True)
class Lenient:
    """A server that allows names Windows cannot hold, and an account on it."""

    api: httpx.AsyncClient
    carol: Account


@pytest.fixture
async def lenient(
    app_with: AppWith, engine: AsyncEngine, client: httpx.AsyncClient
) -> AsyncIterator[Lenient]:
    # Asks for `client`, which empties the tables after the test, for this app's rows too.
    async with (
        app_with(allow_windows_incompatible_names=True) as app,
        api_client(app) as api,
    ):
        carol = await verified_account(api, engine, "carol@example.com")
        yield Lenient(api, carol)


async def test_the_setting_allows_only_the_windows_rules(lenient: Lenient) -> None:
    api, carol = lenient.api, lenient.carol
    for name in WINDOWS_ONLY:
        await start_upload(api, carol, name, size=1)
    folder = await api.post("/folders", json={"path": "/NUL"}, headers=carol.headers)
    invisible = await api.post(
        "/upload/", json={"filename": "a\u200bb", "size": 1}, headers=carol.headers
    )

    assert folder.status_code == 201, folder.text
    assert_problem(invisible, 422, "name_invisible_character")
    assert sorted(await children(api, carol, "/")) == sorted([*WINDOWS_ONLY, "NUL"])


async def test_a_folder_named_before_the_rules_can_still_be_listed(
    lenient: Lenient, client: httpx.AsyncClient
) -> None:
    # As if made by an earlier version: a lenient server creates it, a strict one lists it.
    carol = lenient.carol
    await lenient.api.post("/folders", json={"path": "/NUL"}, headers=carol.headers)
    await start_upload(lenient.api, carol, "inside.txt", size=1, folder="/NUL")

    listed = await client.get("/folders", params={"path": "/NUL"}, headers=carol.headers)

    assert listed.status_code == 200, listed.text
    assert [item["name"] for item in listed.json()["items"]] == ["inside.txt"]


async def test_folders_found_case_insensitively_keep_their_first_spelling(
    client: httpx.AsyncClient, alice: Account, engine: AsyncEngine
) -> None:
    await make_folder(client, alice, "/Photos")

    again = await client.post("/folders", json={"path": "/photos/2026"}, headers=alice.headers)
    uploaded = await start_upload(client, alice, "a.jpg", size=1, folder="/PHOTOS/2026")

    assert again.status_code == 201, again.text
    assert again.json()["path"] == "/Photos/2026"
    assert await children(client, alice, "/") == ["Photos"]
    assert await children(client, alice, "/photos") == ["2026"]
    shown = await client.get(f"/files/{uploaded['file_id']}", headers=alice.headers)
    assert shown.json()["path"] == "/Photos/2026/a.jpg"
    assert [path for _, _, path in await change_rows(engine, alice)] == [
        "/Photos",
        "/Photos/2026",
    ]


async def test_an_upload_differing_only_by_case_is_a_new_revision_of_the_file(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    first = await upload_file(client, web, alice, "Report.PDF", b"v1")

    second = await upload_file(client, web, alice, "report.pdf", b"v2")

    assert second["file_id"] == first["file_id"]
    assert second["path"] == "/Report.PDF"
    assert (await download_bytes(client, web, alice, first["file_id"])).content == b"v2"
    assert await children(client, alice, "/") == ["Report.PDF"]


async def test_a_case_variant_of_a_folder_name_is_taken_for_an_upload(
    client: httpx.AsyncClient, alice: Account
) -> None:
    await make_folder(client, alice, "/Docs")

    refused = await client.post(
        "/upload/", json={"filename": "docs", "size": 1}, headers=alice.headers
    )

    assert_problem(refused, 409, "name_taken")


async def test_keep_both_beside_a_case_variant_makes_a_conflicted_copy(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    base = await upload_file(client, web, alice, "Plan.txt", b"v1")
    await upload_file(client, web, alice, "plan.txt", b"v2 from laptop")

    late = await upload_file(
        client,
        web,
        alice,
        "PLAN.TXT",
        b"v2 from desktop",
        base_revision=base["revision_id"],
        conflict="keep_both",
        device="desktop",
    )

    copy, kept = await children(client, alice, "/")
    assert late["file_id"] != base["file_id"]
    assert copy.startswith("Plan (conflicted copy desktop ")
    assert copy.endswith(").txt")
    assert kept == "Plan.txt"


async def test_fail_mode_refuses_a_stale_upload_under_a_case_variant(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    base = await upload_file(client, web, alice, "Plan.txt", b"v1")
    await upload_file(client, web, alice, "plan.txt", b"v2")

    refused = await client.post(
        "/upload/",
        json={
            "filename": "PLAN.txt",
            "size": 2,
            "base_revision": base["revision_id"],
            "conflict": "fail",
        },
        headers=alice.headers,
    )

    assert_problem(refused, 409, "revision_conflict")


async def test_renames_and_moves_onto_a_case_variant_are_taken(
    client: httpx.AsyncClient, alice: Account
) -> None:
    taken = await start_upload(client, alice, "Budget.xlsx", size=1, folder="/a")
    other = await start_upload(client, alice, "draft.xlsx", size=1, folder="/a")
    elsewhere = await start_upload(client, alice, "BUDGET.XLSX", size=1, folder="/b")

    renamed = await move(client, alice, "files", other["file_id"], name="budget.xlsx")
    moved = await move(client, alice, "files", elsewhere["file_id"], parent_path="/A")
    numbered = await move(
        client, alice, "files", elsewhere["file_id"], parent_path="/a", autorename=True
    )
    own_case = await move(client, alice, "files", taken["file_id"], name="BUDGET.xlsx")

    body = assert_problem(renamed, 409, "name_taken")
    assert body["conflicting_id"] == taken["file_id"]
    assert_problem(moved, 409, "name_taken")
    assert numbered.status_code == 200, numbered.text
    assert numbered.json()["path"] == "/a/BUDGET (2).XLSX"
    # Changing only a name's case is a rename, not a clash with itself.
    assert own_case.status_code == 200, own_case.text
    assert await children(client, alice, "/a") == ["BUDGET (2).XLSX", "BUDGET.xlsx", "draft.xlsx"]


async def test_autorename_skips_numbered_names_taken_in_another_case(
    client: httpx.AsyncClient, alice: Account
) -> None:
    await start_upload(client, alice, "notes.txt", size=1)
    await start_upload(client, alice, "NOTES (2).TXT", size=1)
    other = await start_upload(client, alice, "other.txt", size=1)

    renamed = await move(
        client, alice, "files", other["file_id"], name="Notes.txt", autorename=True
    )

    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Notes (3).txt"


async def test_a_restore_into_a_case_variant_name_is_taken(
    client: httpx.AsyncClient, alice: Account
) -> None:
    old = await make_folder(client, alice, "/Music")
    await trash(client, alice, "folders", old["folder_id"])
    new = await make_folder(client, alice, "/music")

    refused = await restore(client, alice, "folders", old["folder_id"])
    numbered = await restore(client, alice, "folders", old["folder_id"], autorename=True)

    assert assert_problem(refused, 409, "name_taken")["conflicting_id"] == new["folder_id"]
    assert numbered.status_code == 200, numbered.text
    assert numbered.json()["path"] == "/Music (2)"


async def test_a_file_request_drop_beside_a_case_variant_gets_a_number(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    request = await open_request(client, alice)
    await drop(client, web, request["token"], "Photo.JPG", b"one")

    await drop(client, web, request["token"], "photo.jpg", b"two")

    assert await children(client, alice, "/inbox") == ["Photo.JPG", "photo (2).jpg"]


async def test_a_share_editor_uploading_a_case_variant_of_a_shared_file_revises_it(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    original = await upload_file(client, web, alice, "Plan.txt", b"v1", folder="/p")
    grant = await granted(
        client, alice, file_id=original["file_id"], email=bob.email, permission="editor"
    )

    started = await client.post(
        "/upload/",
        json={"filename": "plan.TXT", "size": 2, "share_id": grant["id"]},
        headers=bob.headers,
    )

    assert started.status_code == 201, started.text
    assert started.json()["file_id"] == original["file_id"]
