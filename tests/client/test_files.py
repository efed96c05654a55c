"""`dropp ls`, `mkdir`, `mv`, `rm`, `trash`, `restore`, `revisions` and `revert` as people
run them, checked on the server over HTTP."""

import json
import os
import pty
import re
import subprocess
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.client.errors import ClientError, NotFound
from dropp.client.files import Revision, pick_revision
from tests.client.conftest import Device, DeviceFactory
from tests.client.server_side import current_bytes, folder_names, get, upload
from tests.helpers import Account, register_account

NODE_FIELDS = {
    "id",
    "kind",
    "name",
    "path",
    "size",
    "content_type",
    "status",
    "revision_id",
    "created_at",
    "updated_at",
}
TRASH_FIELDS = {"id", "kind", "name", "original_path", "trashed_at", "purge_at"}
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def as_json(done: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(done.stdout)


def refused(device: Device, *args: str, code: int) -> str:
    """The command fails with `code` and one `dropp:` line; that line."""
    done = device.run(*args, check=False)
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert done.stderr.startswith("dropp: "), done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr


def on_a_terminal(device: Device, *args: str) -> str:
    """What the command shows a person at a terminal (its stdout is a pseudo-terminal)."""
    leader, follower = pty.openpty()
    shown = b""
    try:
        with subprocess.Popen(
            device.command(*args), stdout=follower, stderr=subprocess.PIPE, env=device.environment()
        ) as process:
            os.close(follower)
            while True:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the terminal closes once the command exits (EIO on Linux)
                    break
                if not chunk:
                    break
                shown += chunk
            _, errors = process.communicate(timeout=60)
        assert process.returncode == 0, errors
    finally:
        os.close(leader)
    return ANSI.sub("", shown.decode()).replace("\r\n", "\n")


async def test_ls_lists_folders_first_as_json_lines_and_a_table(
    make_device: DeviceFactory, account: Account, dropp_url: str
) -> None:
    device = make_device("a", account)
    await upload(dropp_url, account, "/b.txt", b"b" * 2048)
    await upload(dropp_url, account, "/docs/report.pdf", b"pdf")
    device.run("mkdir", "/Archive")

    listed = as_json(device.run("ls", "--json"))
    assert [(node["kind"], node["name"]) for node in listed] == [
        ("folder", "Archive"),
        ("folder", "docs"),
        ("file", "b.txt"),
    ]
    assert all(set(node) == NODE_FIELDS for node in listed)
    assert listed[2]["size"] == 2048

    # Piped: one line per item, tab-separated, the name last.
    lines = [line.split("\t") for line in device.run("ls").stdout.splitlines()]
    assert [(line[0], line[-1]) for line in lines] == [
        ("folder", "Archive"),
        ("folder", "docs"),
        ("file", "b.txt"),
    ]
    assert lines[2][1] == "2048"
    assert datetime.fromisoformat(lines[2][2]) == datetime.fromisoformat(listed[2]["updated_at"])

    assert device.run("ls", "docs").stdout.split("\t")[-1] == "report.pdf\n"
    # A file lists itself, as `ls` does.
    (single,) = as_json(device.run("ls", "/docs/report.pdf", "--json"))
    assert single["path"] == "/docs/report.pdf"

    table = on_a_terminal(device, "ls")
    header, *rows = [line.split() for line in table.strip().splitlines()]
    assert header == ["Kind", "Name", "Size", "Modified"]
    assert [row[:2] for row in rows] == [
        ["folder", "Archive/"],
        ["folder", "docs/"],
        ["file", "b.txt"],
    ]
    assert rows[2][2:4] == ["2.0", "KiB"]


async def test_mkdir_creates_parents_and_accepts_a_folder_that_exists(
    make_device: DeviceFactory, account: Account, dropp_url: str
) -> None:
    device = make_device("a", account)
    assert device.run("mkdir", "trips/2024/rome").stdout == "Created /trips/2024/rome.\n"
    assert await folder_names(dropp_url, account, "/trips/2024") == ["rome"]
    assert device.run("mkdir", "/trips/2024/rome").stdout == "/trips/2024/rome exists already.\n"

    await upload(dropp_url, account, "/notes.txt", b"n")
    refused(device, "mkdir", "/notes.txt/sub", code=5)
    refused(device, "mkdir", "/", code=1)


async def test_mv_renames_moves_into_a_folder_and_keeps_the_file(
    make_device: DeviceFactory, account: Account, dropp_url: str
) -> None:
    device = make_device("a", account)
    uploaded = await upload(dropp_url, account, "/draft.txt", b"words")
    file_id = uploaded["id"]
    device.run("mkdir", "/docs")

    # An existing folder as the target: into it, under the same name.
    assert (
        device.run("mv", "/draft.txt", "/docs").stdout == "Moved /draft.txt to /docs/draft.txt.\n"
    )
    # Otherwise the new path: a rename, here in the same folder.
    done = device.run("mv", "docs/draft.txt", "docs/final.txt")
    assert done.stdout == "Moved /docs/draft.txt to /docs/final.txt.\n"
    moved = await get(dropp_url, account, f"/files/{file_id}")
    assert moved.json()["path"] == "/docs/final.txt"
    assert await current_bytes(dropp_url, account, file_id) == b"words"

    # A folder moves with what is in it, and may change case alone.
    device.run("mkdir", "/archive")
    device.run("mv", "/docs", "/archive/Docs")
    assert as_json(device.run("ls", "/archive", "--json"))[0]["path"] == "/archive/Docs"
    device.run("mv", "/archive/Docs", "/archive/docs")
    assert (await get(dropp_url, account, f"/files/{file_id}")).json()["path"] == (
        "/archive/docs/final.txt"
    )
    # To the top level.
    device.run("mv", "/archive/docs/final.txt", "/")
    assert (await get(dropp_url, account, f"/files/{file_id}")).json()["path"] == "/final.txt"

    await upload(dropp_url, account, "/other.txt", b"other")
    refused(device, "mv", "/final.txt", "/other.txt", code=5)
    refused(device, "mv", "/final.txt", "/missing/final.txt", code=4)
    refused(device, "mv", "/archive", "/archive/docs", code=5)


async def test_rm_sends_to_the_trash_and_restore_brings_back(
    make_device: DeviceFactory, account: Account, dropp_url: str
) -> None:
    device = make_device("a", account)
    lone = await upload(dropp_url, account, "/a.txt", b"a")
    inside = await upload(dropp_url, account, "/photos/rome.jpg", b"jpg")

    done = device.run("rm", "/a.txt")
    assert "trash" in done.stdout
    assert "dropp restore /a.txt" in done.stdout
    assert (await get(dropp_url, account, f"/files/{lone['id']}")).status_code == 404
    device.run("rm", "photos")
    assert await folder_names(dropp_url, account, "/") == []

    items = as_json(device.run("trash", "--json"))
    assert [(item["kind"], item["original_path"]) for item in items] == [
        ("folder", "/photos"),
        ("file", "/a.txt"),
    ]
    assert all(set(item) == TRASH_FIELDS for item in items)
    lines = [line.split("\t") for line in device.run("trash").stdout.splitlines()]
    assert [(line[0], line[-1]) for line in lines] == [("folder", "/photos"), ("file", "/a.txt")]

    # What went with a folder comes back with it: the message says which to restore.
    assert "dropp restore /photos" in refused(device, "restore", "/photos/rome.jpg", code=4)
    assert device.run("restore", "/photos").stdout == "Restored /photos.\n"
    assert (await get(dropp_url, account, f"/files/{inside['id']}")).json()["path"] == (
        "/photos/rome.jpg"
    )
    assert device.run("restore", "A.TXT").stdout == "Restored /a.txt.\n"
    assert await current_bytes(dropp_url, account, lone["id"]) == b"a"
    assert as_json(device.run("trash", "--json")) == []
    refused(device, "rm", "/", code=1)


async def test_restore_takes_the_newest_of_several_at_one_path(
    make_device: DeviceFactory, account: Account, dropp_url: str
) -> None:
    device = make_device("a", account)
    first = await upload(dropp_url, account, "/a.txt", b"first")
    device.run("rm", "/a.txt")
    second = await upload(dropp_url, account, "/a.txt", b"second")
    assert second["id"] != first["id"]
    device.run("rm", "/a.txt")

    device.run("restore", "/a.txt")
    assert (await get(dropp_url, account, f"/files/{second['id']}")).status_code == 200
    assert [item["id"] for item in as_json(device.run("trash", "--json"))] == [first["id"]]
    # The older one cannot come back over it.
    refused(device, "restore", "/a.txt", code=5)


async def test_revisions_and_revert_by_a_prefix_of_the_id(
    make_device: DeviceFactory, account: Account, dropp_url: str
) -> None:
    device = make_device("a", account)
    for text in (b"one", b"two!", b"three"):
        uploaded = await upload(dropp_url, account, "/notes.txt", text)
    file_id = uploaded["id"]

    found = as_json(device.run("revisions", "/notes.txt", "--json"))
    assert [item["size"] for item in found] == [5, 4, 3]
    assert [item["current"] for item in found] == [True, False, False]
    lines = [line.split("\t") for line in device.run("revisions", "/notes.txt").stdout.splitlines()]
    assert [(line[0], line[1]) for line in lines] == [
        ("current", found[0]["revision_id"]),
        ("old", found[1]["revision_id"]),
        ("old", found[2]["revision_id"]),
    ]

    oldest = found[2]["revision_id"]
    done = device.run("revert", "/notes.txt", oldest[:8])
    assert done.stdout == f"/notes.txt now serves the bytes of revision {oldest[:8]}.\n"
    assert await current_bytes(dropp_url, account, file_id) == b"one"
    after = as_json(device.run("revisions", "/notes.txt", "--json"))
    assert len(after) == 4
    assert after[0]["current"]
    assert after[0]["size"] == 3
    config = json.loads((device.config_dir / "config.json").read_text())
    assert after[0]["device"] == config["device_name"]

    # The whole id works too; the bytes it already serves change nothing.
    done = device.run("revert", "/notes.txt", after[0]["revision_id"].upper())
    assert "already serves" in done.stdout
    assert len(as_json(device.run("revisions", "/notes.txt", "--json"))) == 4

    refused(device, "revert", "/notes.txt", str(uuid.uuid4()), code=4)
    refused(device, "revisions", "/", code=4)
    device.run("mkdir", "/folder")
    assert "folder" in refused(device, "revisions", "/folder", code=1)


def test_a_prefix_two_revisions_begin_with_is_refused() -> None:
    def revision(revision_id: str) -> Revision:
        return Revision(
            revision_id=revision_id,
            size=1,
            content_hash=None,
            content_type="text/plain",
            created_at="2025-01-01T00:00:00Z",
            completed_at="2025-01-01T00:00:00Z",
            device=None,
            uploaded_by=None,
            uploaded_by_email=None,
            current=False,
        )

    found = [revision("ab12-1"), revision("ab34-2")]
    with pytest.raises(ClientError, match="2 revisions"):
        pick_revision(found, "ab", "/a.txt")
    assert pick_revision(found, "AB3", "/a.txt")["revision_id"] == "ab34-2"
    with pytest.raises(NotFound):
        pick_revision(found, "cd", "/a.txt")
    with pytest.raises(ClientError, match="Name a revision"):
        pick_revision(found, " ", "/a.txt")


def test_a_path_that_does_not_exist_exits_4(make_device: DeviceFactory, account: Account) -> None:
    device = make_device("a", account)
    for args in (
        ("ls", "/nope"),
        ("ls", "/nope/deeper"),
        ("rm", "/nope"),
        ("mv", "/nope", "/elsewhere"),
        ("restore", "/nope"),
        ("revisions", "/nope"),
        ("revert", "/nope", "abcd"),
    ):
        assert "/nope" in refused(device, *args, code=4), args


async def test_another_accounts_paths_are_invisible(
    make_device: DeviceFactory, account: Account, dropp_url: str, engine: AsyncEngine
) -> None:
    async with httpx.AsyncClient(base_url=dropp_url, timeout=30) as api:
        other = await register_account(
            api, f"other-{uuid.uuid4().hex[:8]}@example.com", engine=engine
        )
    secret = await upload(dropp_url, other, "/secret/plans.txt", b"plans")
    device = make_device("a", account)

    assert as_json(device.run("ls", "--json")) == []
    refused(device, "ls", "/secret", code=4)
    refused(device, "rm", "/secret/plans.txt", code=4)
    refused(device, "mv", "/secret/plans.txt", "/mine.txt", code=4)
    refused(device, "revisions", "/secret/plans.txt", code=4)
    # Creating the same path makes a folder of this account's own.
    device.run("mkdir", "/secret")
    assert await folder_names(dropp_url, account, "/secret") == []
    assert await folder_names(dropp_url, other, "/secret") == ["plans.txt"]
    assert await current_bytes(dropp_url, other, secret["id"]) == b"plans"


def test_file_commands_need_a_session(make_device: DeviceFactory) -> None:
    device = make_device("a")
    assert "dropp login" in refused(device, "ls", code=3)
