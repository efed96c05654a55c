"""Two-way sync driven as people drive it: `dropp sync` on two devices of one account, each
with its own config directory and folder, against the real server."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from dropp.client.sync.engine import MARKER
from tests.client.conftest import Device, DeviceFactory
from tests.helpers import Account

Tree = dict[str, str | None]


def local_tree(root: Path) -> Tree:
    """Every file (its SHA-256) and folder (None) under root, by relative path; the sync
    root's marker aside (it is this device's own)."""
    tree: Tree = {}
    for directory, folders, files in os.walk(root):
        relative = Path(directory).relative_to(root)
        for name in folders:
            tree[(relative / name).as_posix()] = None
        for name in files:
            if name == MARKER:
                continue
            tree[(relative / name).as_posix()] = hashlib.sha256(
                (Path(directory) / name).read_bytes()
            ).hexdigest()
    return tree


def server_tree(server: str, account: Account) -> dict[str, dict[str, Any]]:
    """The account's live tree from a change-feed snapshot, by path without the leading /."""
    nodes: dict[str, dict[str, Any]] = {}
    cursor: str | None = None
    with httpx.Client(base_url=server, headers=account.headers, timeout=60) as api:
        while True:
            params = {"limit": 1000} | ({"cursor": cursor} if cursor else {})
            page = api.get("/sync/changes", params=params).raise_for_status().json()
            for change in page["changes"]:
                if change["change"] == "deleted":
                    nodes.pop(change["path"].lstrip("/"), None)
                else:
                    nodes[change["path"].lstrip("/")] = change
            cursor = page["cursor"]
            if not page["has_more"]:
                return nodes


def sync(device: Device, root: Path, *args: str, check: bool = True) -> dict[str, Any]:
    done = device.run("sync", str(root), "--once", "--json", *args, check=check)
    if done.returncode != 0:
        return {"exit": done.returncode, "stderr": done.stderr}
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


def write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


@pytest.fixture
def two(make_device: DeviceFactory, account: Account) -> tuple[Device, Device]:
    return make_device("a", account), make_device("b", account)


def test_files_and_folders_made_on_one_device_arrive_byte_identical_on_the_other(
    two: tuple[Device, Device], dropp_url: str, account: Account
) -> None:
    a, b = two
    root_a, root_b = a.home / "Dropp", b.home / "Dropp"
    write(root_a / "notes.txt", "first notes\n")
    write(root_a / "empty", b"")
    write(root_a / "Fotos/Zürich/café.jpg", os.urandom(300_000))
    write(root_a / "日本語/資料.txt", "文字\n")
    (root_a / "an empty folder/inside").mkdir(parents=True)
    with open(root_a / "big.bin", "wb") as big:
        for _ in range(50):
            big.write(os.urandom(1024 * 1024))

    first = sync(a, root_a)
    assert first["uploaded"] == 5
    received = sync(b, root_b)

    assert local_tree(root_b) == local_tree(root_a)
    assert received["downloaded"] == 5
    on_server = server_tree(dropp_url, account)
    assert on_server["big.bin"]["size"] == 50 * 1024 * 1024
    assert "an empty folder/inside" in on_server
    # A pass with nothing new moves nothing and hashes nothing.
    again = sync(b, root_b)
    assert (again["uploaded"], again["downloaded"], again["hashed"]) == (0, 0, 0)


def test_edits_renames_moves_and_deletes_flow_both_ways(
    two: tuple[Device, Device], dropp_url: str, account: Account
) -> None:
    a, b = two
    root_a, root_b = a.home / "Dropp", b.home / "Dropp"
    for name in ("edit.txt", "rename.txt", "move.txt", "delete.txt", "keep.txt"):
        write(root_a / "docs" / name, f"{name} v1\n")
    (root_a / "archive").mkdir(parents=True)
    sync(a, root_a)
    sync(b, root_b)

    write(root_a / "docs/edit.txt", "edited on a\n")
    os.rename(root_a / "docs/rename.txt", root_a / "docs/renamed.txt")
    os.rename(root_a / "docs/move.txt", root_a / "archive/move.txt")
    (root_a / "docs/delete.txt").unlink()
    sync(a, root_a)
    on_b = sync(b, root_b)
    assert local_tree(root_b) == local_tree(root_a)
    # Renames and moves arrive as moves, not as downloads of the same bytes.
    assert on_b["moved"] == 2
    assert on_b["downloaded"] == 1

    write(root_b / "docs/keep.txt", "edited on b\n")
    os.rename(root_b / "archive", root_b / "old")
    (root_b / "docs/renamed.txt").unlink()
    sync(b, root_b)
    on_a = sync(a, root_a)
    assert local_tree(root_a) == local_tree(root_b)
    assert on_a["downloaded"] == 1
    assert (root_a / "old/move.txt").read_text() == "move.txt v1\n"
    # The deleted file went to this device's trash, not to oblivion.
    trash = a.home / "data/Trash/files"
    assert any(path.name.startswith("renamed") for path in trash.iterdir())
    assert set(server_tree(dropp_url, account)) == set(local_tree(root_a))


def test_concurrent_edits_of_one_file_keep_both_versions_on_both_devices(
    two: tuple[Device, Device],
) -> None:
    a, b = two
    root_a, root_b = a.home / "Dropp", b.home / "Dropp"
    write(root_a / "plan.txt", "the plan\n")
    sync(a, root_a)
    sync(b, root_b)

    write(root_a / "plan.txt", "a's plan\n")
    write(root_b / "plan.txt", "b's plan, longer\n")
    sync(a, root_a)
    on_b = sync(b, root_b)
    sync(a, root_a)

    assert local_tree(root_a) == local_tree(root_b)
    contents = sorted(path.read_text() for path in root_a.iterdir() if path.name != MARKER)
    assert contents == ["a's plan\n", "b's plan, longer\n"]
    assert len(on_b["conflicts"]) == 1
    assert "conflicted copy" in on_b["conflicts"][0]


def test_a_folder_renamed_on_one_device_while_the_other_edits_inside_keeps_the_edit_inside(
    two: tuple[Device, Device],
) -> None:
    a, b = two
    root_a, root_b = a.home / "Dropp", b.home / "Dropp"
    write(root_a / "project/draft.txt", "draft 1\n")
    write(root_a / "project/other.txt", "other\n")
    sync(a, root_a)
    sync(b, root_b)

    os.rename(root_a / "project", root_a / "project-2026")
    write(root_b / "project/draft.txt", "draft 2, from b\n")
    sync(a, root_a)
    sync(b, root_b)
    sync(a, root_a)

    expected = {
        "project-2026": None,
        "project-2026/draft.txt": hashlib.sha256(b"draft 2, from b\n").hexdigest(),
        "project-2026/other.txt": hashlib.sha256(b"other\n").hexdigest(),
    }
    assert local_tree(root_a) == expected
    assert local_tree(root_b) == expected


def test_a_recreated_or_restored_sync_folder_deletes_nothing_on_the_server(
    make_device: DeviceFactory, account: Account, dropp_url: str, tmp_path: Path
) -> None:
    a = make_device("a", account)
    root = a.home / "Dropp"
    for index in range(12):
        write(root / f"file-{index}.txt", f"file {index}\n")
    sync(a, root)
    backup = tmp_path / "backup"
    shutil.copytree(root, backup, copy_function=shutil.copy2)
    write(root / "later.txt", "made after the backup\n")
    sync(a, root)

    # Re-created empty (an unmounted disk's mount point, a wiped folder): nothing deleted.
    shutil.rmtree(root)
    root.mkdir()
    again = sync(a, root)
    assert again["deleted"] == 0
    assert len(server_tree(dropp_url, account)) == 13
    assert len(local_tree(root)) == 13

    # Restored from the backup, which lacks the newest file: it comes back; nothing goes.
    shutil.rmtree(root)
    shutil.copytree(backup, root, copy_function=shutil.copy2)
    restored = sync(a, root)
    assert restored["deleted"] == 0, restored
    assert restored["conflicts"] == []
    assert len(server_tree(dropp_url, account)) == 13
    assert (root / "later.txt").read_text() == "made after the backup\n"


def test_a_missing_sync_folder_stops_without_touching_the_server(
    make_device: DeviceFactory, account: Account, dropp_url: str
) -> None:
    a = make_device("a", account)
    root = a.home / "Dropp"
    write(root / "kept.txt", "kept\n")
    sync(a, root)
    shutil.rmtree(root)

    failed = sync(a, root, check=False)

    assert failed["exit"] == 1
    assert "missing" in failed["stderr"]
    assert "kept.txt" in server_tree(dropp_url, account)


def test_a_folder_rename_downloads_nothing_again(two: tuple[Device, Device]) -> None:
    a, b = two
    root_a, root_b = a.home / "Dropp", b.home / "Dropp"
    for index in range(20):
        write(root_a / f"photos/{index:02}.jpg", os.urandom(20_000))
    sync(a, root_a)
    sync(b, root_b)

    os.rename(root_b / "photos", root_b / "Photos 2026")
    sync(b, root_b)
    on_a = sync(a, root_a)

    assert on_a["downloaded"] == 0
    assert on_a["moved"] == 1
    assert local_tree(root_a) == local_tree(root_b)


def test_identical_files_on_both_sides_without_a_base_make_no_conflict_and_no_transfer(
    two: tuple[Device, Device], dropp_url: str, account: Account
) -> None:
    a, b = two
    root_a, root_b = a.home / "Dropp", b.home / "Dropp"
    for index in range(5):
        write(root_a / f"same/{index}.txt", f"the same bytes {index}\n")
    sync(a, root_a)
    # The same files copied onto the other device by hand, before it ever synced.
    shutil.copytree(root_a, root_b)

    first = sync(b, root_b)

    assert (first["uploaded"], first["downloaded"], first["conflicts"]) == (0, 0, [])
    assert len(server_tree(dropp_url, account)) == 6


def test_a_mass_local_delete_stops_at_the_guard(
    make_device: DeviceFactory, account: Account, dropp_url: str
) -> None:
    a = make_device("a", account)
    root = a.home / "Dropp"
    for index in range(20):
        write(root / f"f{index:02}.txt", f"{index}\n")
    sync(a, root)
    for index in range(15):
        (root / f"f{index:02}.txt").unlink()

    stopped = sync(a, root, check=False)

    assert stopped["exit"] == 6
    assert "--allow-mass-delete" in stopped["stderr"]
    assert len(server_tree(dropp_url, account)) == 20
    allowed = sync(a, root, "--allow-mass-delete")
    assert allowed["deleted"] == 15
    assert len(server_tree(dropp_url, account)) == 5


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.3)


def stop(process: "subprocess.Popen[str]") -> str:
    process.send_signal(signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
    return stderr


def test_watch_follows_both_sides_as_they_change(
    two: tuple[Device, Device], dropp_url: str, account: Account
) -> None:
    a, b = two
    root_a, root_b = a.home / "Dropp", b.home / "Dropp"
    root_a.mkdir()
    watching = a.start("sync", str(root_a), "--watch")
    try:
        write(root_a / "written while watching.txt", "hello\n")
        wait_for(lambda: "written while watching.txt" in server_tree(dropp_url, account))
        write(root_b / "from b.txt", "from b\n")
        sync(b, root_b)
        wait_for(lambda: (root_a / "from b.txt").exists())
    finally:
        stderr = stop(watching)
    assert (root_a / "from b.txt").read_text() == "from b\n", stderr


def test_a_watcher_that_misses_events_is_corrected_by_the_rescan(
    make_device: DeviceFactory, account: Account, dropp_url: str
) -> None:
    a = make_device("a", account)
    root = a.home / "Dropp"
    root.mkdir()
    # No local events at all, as on a network share: only the periodic rescan can see this.
    watching = a.start("sync", str(root), "--watch", "--no-watcher", "--rescan-interval", "2")
    try:
        time.sleep(3)
        write(root / "unheard.txt", "no event announced me\n")
        wait_for(lambda: "unheard.txt" in server_tree(dropp_url, account))
    finally:
        stop(watching)


def test_a_sync_killed_midway_converges_on_the_next_run(
    two: tuple[Device, Device], dropp_url: str, account: Account
) -> None:
    a, b = two
    root_a, root_b = a.home / "Dropp", b.home / "Dropp"
    for index in range(150):
        write(root_a / f"many/{index:03}.txt", os.urandom(2_000))
    with open(root_a / "large.bin", "wb") as large:
        for _ in range(80):
            large.write(os.urandom(1024 * 1024))
    running = a.start("sync", str(root_a), "--once")
    wait_for(lambda: len(server_tree(dropp_url, account)) > 20, timeout=120)
    running.send_signal(signal.SIGKILL)
    running.communicate()

    sync(a, root_a)
    sync(b, root_b)

    assert local_tree(root_b) == local_tree(root_a)
    assert len(server_tree(dropp_url, account)) == 152
