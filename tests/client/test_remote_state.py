"""The remote mirror against a real server: a snapshot, then the change feed applied to it,
with every change made over HTTP the way another device makes it."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from dropp.client.api import Api
from dropp.client.auth import sign_in_with_password
from dropp.client.credentials import Tokens
from dropp.client.hashing import Content
from dropp.client.sync import remote_state
from dropp.client.sync.journal import Journal
from dropp.client.sync.model import Kind, NodeId, RemoteItem
from dropp.sweeper.changes import prune_changes
from tests.helpers import PASSWORD, Account, register_account, sha256_hex, upload_file


class MemoryStore:
    """Tokens kept in memory: a session for this test only."""

    name = "memory"

    def __init__(self) -> None:
        self.tokens: dict[str, Tokens] = {}

    def load(self, server: str) -> Tokens | None:
        return self.tokens.get(server)

    def save(self, server: str, tokens: Tokens) -> None:
        self.tokens[server] = tokens

    def delete(self, server: str) -> None:
        self.tokens.pop(server, None)


@pytest.fixture
async def api(dropp_url: str, account: Account) -> AsyncIterator[Api]:
    async with Api(dropp_url, MemoryStore()) as signed_in:
        await sign_in_with_password(signed_in, account.email, PASSWORD)
        yield signed_in


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal.open(tmp_path / "config" / "sync" / "pair.sqlite") as opened:
        yield opened


@pytest.fixture
async def other(dropp_url: str, account: Account) -> AsyncIterator["Other"]:
    """Another device of the same account, changing the tree over HTTP."""
    async with (
        httpx.AsyncClient(base_url=dropp_url, headers=account.headers, timeout=30) as client,
        httpx.AsyncClient(timeout=30) as web,
    ):
        yield Other(client, web, account)


class Other:
    def __init__(self, client: httpx.AsyncClient, web: httpx.AsyncClient, account: Account):
        self.client, self.web, self.account = client, web, account

    async def upload(self, folder: str, name: str, data: bytes) -> dict[str, Any]:
        # The top level is no folder the upload names.
        where = {"folder": folder} if folder != "/" else {}
        return await upload_file(
            self.client, self.web, self.account, name, data, sha256=sha256_hex(data), **where
        )

    async def mkdir(self, path: str) -> str:
        made = await self.client.post("/folders", json={"path": path})
        assert made.status_code in (200, 201), made.text
        return str(made.json()["id"])

    async def call(self, method: str, path: str, **body: Any) -> httpx.Response:
        done = await self.client.request(method, path, json=body or None)
        assert done.status_code in (200, 201, 204), done.text
        return done


def content(data: bytes) -> Content:
    return Content.remote(len(data), f"sha256:{sha256_hex(data)}")


def paths(nodes: dict[NodeId, RemoteItem]) -> dict[str, Kind]:
    return {item.path: item.kind for item in nodes.values()}


async def test_a_snapshot_mirrors_the_whole_tree_and_answers_for_one_folder(
    api: Api, journal: Journal, other: Other
) -> None:
    report = await other.upload("/Docs", "report.txt", b"the report\n")
    await other.upload("/Docs/Sub Folder", "deep.bin", b"\x00deep")
    await other.upload("/", "top.txt", b"at the top\n")
    await other.mkdir("/Docs/empty")

    docs = await remote_state.refresh(api, journal, "/Docs")

    assert paths(docs) == {
        "report.txt": Kind.FILE,
        "Sub Folder": Kind.FOLDER,
        "Sub Folder/deep.bin": Kind.FILE,
        "empty": Kind.FOLDER,
    }
    item = docs[report["id"]]
    assert item.revision_id == report["revision_id"]
    assert item.content == content(b"the report\n")
    # The mirror holds the whole account; the cursor is kept.
    assert paths(journal.remote()) == {
        "Docs": Kind.FOLDER,
        "Docs/report.txt": Kind.FILE,
        "Docs/Sub Folder": Kind.FOLDER,
        "Docs/Sub Folder/deep.bin": Kind.FILE,
        "Docs/empty": Kind.FOLDER,
        "top.txt": Kind.FILE,
    }
    assert journal.cursor is not None
    # The server's names are case-insensitive; the whole account; a folder not made yet.
    assert paths(await remote_state.refresh(api, journal, "docs/")) == paths(docs)
    assert len(await remote_state.refresh(api, journal, "/")) == 6
    assert await remote_state.refresh(api, journal, "/Not yet") == {}


async def test_uploads_and_new_revisions_after_the_snapshot_are_applied(
    api: Api, journal: Journal, other: Other
) -> None:
    first = await other.upload("/Docs", "notes.txt", b"version one\n")
    await remote_state.refresh(api, journal, "/Docs")
    cursor = journal.cursor

    second = await other.upload("/Docs", "notes.txt", b"version two\n")
    added = await other.upload("/Docs/new", "added.txt", b"added\n")
    docs = await remote_state.refresh(api, journal, "/Docs")

    assert journal.cursor != cursor
    assert second["id"] == first["id"]
    assert docs[first["id"]].revision_id == second["revision_id"] != first["revision_id"]
    assert docs[first["id"]].content == content(b"version two\n")
    assert docs[added["id"]].path == "new/added.txt"
    assert paths(docs) == {"notes.txt": Kind.FILE, "new": Kind.FOLDER, "new/added.txt": Kind.FILE}


async def test_a_moved_folder_carries_its_subtree_with_the_same_node_ids(
    api: Api, journal: Journal, other: Other
) -> None:
    deep = await other.upload("/Docs/projects/alpha/src", "main.py", b"print(1)\n")
    alpha = await other.mkdir("/Docs/projects/alpha")
    await other.mkdir("/Docs/archive")
    await remote_state.refresh(api, journal, "/Docs")

    # A node only this mirror holds: still there after, so no new snapshot did the work.
    marker = RemoteItem("marker", "marker.txt", Kind.FILE, Content.remote(0, None), "r")
    journal.apply_remote([marker], [], journal.cursor)

    await other.call("PATCH", f"/folders/{alpha}", name="beta", parent_path="/Docs/archive")
    docs = await remote_state.refresh(api, journal, "/Docs")

    assert journal.remote()["marker"] == marker

    assert docs[alpha].path == "archive/beta"
    assert docs[deep["id"]].path == "archive/beta/src/main.py"
    assert docs[deep["id"]].content == content(b"print(1)\n")
    assert paths(docs) == {
        "projects": Kind.FOLDER,
        "archive": Kind.FOLDER,
        "archive/beta": Kind.FOLDER,
        "archive/beta/src": Kind.FOLDER,
        "archive/beta/src/main.py": Kind.FILE,
    }

    # Moved out of the synced folder: gone from it, still in the mirror.
    await other.call("PATCH", f"/folders/{alpha}", parent_path="/")
    docs = await remote_state.refresh(api, journal, "/Docs")
    assert paths(docs) == {"projects": Kind.FOLDER, "archive": Kind.FOLDER}
    assert journal.remote()[deep["id"]].path == "beta/src/main.py"


async def test_a_deleted_folder_takes_its_subtree_and_a_restored_one_brings_it_back(
    api: Api, journal: Journal, other: Other
) -> None:
    kept = await other.upload("/Docs", "kept.txt", b"kept\n")
    photo = await other.upload("/Docs/trip/day 1", "photo.jpg", b"\xff\xd8photo")
    note = await other.upload("/Docs/trip", "note.txt", b"note\n")
    trip = await other.mkdir("/Docs/trip")
    await remote_state.refresh(api, journal, "/Docs")

    await other.call("DELETE", f"/folders/{trip}")
    docs = await remote_state.refresh(api, journal, "/Docs")
    assert paths(docs) == {"kept.txt": Kind.FILE}

    await other.call("POST", f"/folders/{trip}/restore")
    docs = await remote_state.refresh(api, journal, "/Docs")

    assert paths(docs) == {
        "kept.txt": Kind.FILE,
        "trip": Kind.FOLDER,
        "trip/note.txt": Kind.FILE,
        "trip/day 1": Kind.FOLDER,
        "trip/day 1/photo.jpg": Kind.FILE,
    }
    # Listed, not just named: revisions and content hashes as before the trash.
    assert docs[photo["id"]].content == content(b"\xff\xd8photo")
    assert docs[photo["id"]].revision_id == photo["revision_id"]
    assert docs[note["id"]].content == content(b"note\n")
    assert docs[kept["id"]].path == "kept.txt"
    # A deleted file goes alone.
    await other.call("DELETE", f"/files/{note['id']}")
    assert note["id"] not in await remote_state.refresh(api, journal, "/Docs")


async def test_a_renamed_file_keeps_its_revision_and_content(
    api: Api, journal: Journal, other: Other
) -> None:
    file = await other.upload("/Docs", "draft.txt", b"draft\n")
    await other.mkdir("/Docs/final")
    await remote_state.refresh(api, journal, "/Docs")

    await other.call("PATCH", f"/files/{file['id']}", name="done.txt", parent_path="/Docs/final")
    docs = await remote_state.refresh(api, journal, "/Docs")

    assert docs[file["id"]] == RemoteItem(
        file["id"], "final/done.txt", Kind.FILE, content(b"draft\n"), file["revision_id"]
    )


async def test_a_file_moved_in_from_outside_the_mirror_is_looked_up(
    api: Api, journal: Journal, other: Other
) -> None:
    await other.mkdir("/Docs")
    await remote_state.refresh(api, journal, "/Docs")
    outside = await other.upload("/", "outside.txt", b"from outside\n")
    await remote_state.refresh(api, journal, "/Docs")
    # As if the mirror had never seen it (a page it missed): the move alone must do.
    journal.apply_remote([], [outside["id"]], journal.cursor)

    await other.call("PATCH", f"/files/{outside['id']}", parent_path="/Docs")
    docs = await remote_state.refresh(api, journal, "/Docs")

    assert docs[outside["id"]] == RemoteItem(
        outside["id"], "outside.txt", Kind.FILE, content(b"from outside\n"), outside["revision_id"]
    )


async def test_an_expired_cursor_takes_a_new_snapshot(
    api: Api,
    journal: Journal,
    other: Other,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await other.upload("/Docs", "before.txt", b"before\n")
    await remote_state.refresh(api, journal, "/Docs")
    stale = journal.cursor
    after = await other.upload("/Docs", "after.txt", b"after\n")
    # Something the mirror wrongly holds: only a snapshot starting over clears it.
    journal.apply_remote([RemoteItem("ghost", "Docs/ghost.txt", Kind.FOLDER)], [], stale)
    # The sweeper prunes the feed past the mirror's cursor (CHANGE_RETENTION_DAYS).
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE change SET created_at = now() - interval '40 days' WHERE user_id = :id"),
            {"id": UUID(other.account.user_id)},
        )
    assert await prune_changes(sessionmaker, datetime.now(UTC) - timedelta(days=30)) > 0
    assert stale is not None
    assert await remote_state.wait(api, stale, 1) is True

    docs = await remote_state.refresh(api, journal, "/Docs")

    assert paths(docs) == {"before.txt": Kind.FILE, "after.txt": Kind.FILE}
    assert docs[after["id"]].content == content(b"after\n")
    assert journal.cursor not in (None, stale)


async def test_wait_answers_when_a_change_comes_and_not_before(
    api: Api, journal: Journal, other: Other
) -> None:
    await other.mkdir("/Docs")
    await remote_state.refresh(api, journal, "/Docs")
    cursor = journal.cursor
    assert cursor is not None

    assert await remote_state.wait(api, cursor, 1) is False
    waiting = asyncio.create_task(remote_state.wait(api, cursor, 20))
    await asyncio.sleep(0.5)
    assert not waiting.done()
    await other.upload("/Docs", "wake.txt", b"wake up\n")
    assert await asyncio.wait_for(waiting, 15) is True
    # A timeout beyond what this server allows (30 s in the tests) waits its default.
    assert await remote_state.wait(api, cursor, 3600) is True


async def test_what_others_share_is_left_out(
    api: Api, journal: Journal, other: Other, dropp_url: str, engine: AsyncEngine
) -> None:
    await other.mkdir("/Docs")
    async with (
        httpx.AsyncClient(base_url=dropp_url, timeout=30) as anonymous,
        httpx.AsyncClient(timeout=30) as web,
    ):
        bob = await register_account(
            anonymous, f"bob-{uuid.uuid4().hex[:8]}@example.com", engine=engine
        )
        async with httpx.AsyncClient(base_url=dropp_url, headers=bob.headers, timeout=30) as as_bob:
            shared = await upload_file(as_bob, web, bob, "shared.txt", b"bob's\n", folder="/Docs")
            granted = await as_bob.post(
                "/shares/people",
                json={
                    "file_id": shared["id"],
                    "email": other.account.email,
                    "permission": "viewer",
                },
            )
            assert granted.status_code == 201, granted.text

    await remote_state.refresh(api, journal, "/Docs")

    assert shared["id"] not in journal.remote()
    assert paths(journal.remote()) == {"Docs": Kind.FOLDER}


async def test_a_mirror_that_lost_a_folder_is_rebuilt_from_a_snapshot(
    api: Api, journal: Journal, other: Other
) -> None:
    file = await other.upload("/Docs/inner", "file.txt", b"file\n")
    await remote_state.refresh(api, journal, "/Docs")
    # A folder the mirror lost while keeping what is in it: no feed entry can mend that.
    inner = next(item for item in journal.remote().values() if item.path == "Docs/inner")
    journal.apply_remote([], [inner.node_id], journal.cursor)

    docs = await remote_state.refresh(api, journal, "/Docs")

    assert paths(docs) == {"inner": Kind.FOLDER, "inner/file.txt": Kind.FILE}
    assert docs[file["id"]].content == content(b"file\n")
