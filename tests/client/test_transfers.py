"""`dropp put` and `dropp get` as people run them: trees round trip byte for byte, a large
file goes in parts, bad bytes never take a file's name, and a killed transfer resumes."""

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.client import transfers
from dropp.client.api import Api
from dropp.client.auth import sign_in_with_password
from tests.client.conftest import Device, DeviceFactory
from tests.client.test_remote_state import MemoryStore
from tests.helpers import MIB, PART_SIZE, PASSWORD, Account, owned_revisions

# Above the server's default multipart threshold (64 MiB).
MULTIPART_SIZE = 70 * MIB
LARGE_SIZE = 200 * MIB


def write_random(path: Path, size: int) -> bytes:
    """`size` random bytes written in chunks; their SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with open(path, "wb") as handle:
        remaining = size
        while remaining:
            chunk = os.urandom(min(4 * MIB, remaining))
            digest.update(chunk)
            handle.write(chunk)
            remaining -= len(chunk)
    return digest.digest()


def sha256_of(path: Path) -> bytes:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(4 * MIB):
            digest.update(chunk)
    return digest.digest()


def files_under(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def folders_under(root: Path) -> set[str]:
    return {path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_dir()}


def as_json(done: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    answer: list[dict[str, Any]] = json.loads(done.stdout)
    return answer


def server_sha256(device: Device, account: Account, file_id: str) -> bytes:
    """The bytes the server serves for a file, hashed as they stream."""
    with httpx.Client(base_url=device.server, timeout=120) as client:
        signed = client.get(f"/download/{file_id}", headers=account.headers)
        assert signed.status_code == 200, signed.text
        digest = hashlib.sha256()
        with client.stream("GET", signed.json()["url"]) as response:
            assert response.status_code == 200
            for chunk in response.iter_bytes(4 * MIB):
                digest.update(chunk)
    return digest.digest()


def wait_for(condition: Callable[[], Any], process: subprocess.Popen[str], what: str) -> Any:
    """Poll until `condition` gives something truthy; fails if the command ends first."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if process.poll() is not None:
            raise AssertionError(f"the command ended before {what}: {process.communicate()}")
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL


def upload_state(device: Device) -> dict[str, Any] | None:
    """The resume state of the multipart upload `dropp put` has under way, once started."""
    for path in (device.config_dir / "transfers").glob("*.json"):
        state: dict[str, Any] = json.loads(path.read_text())["state"]
        if "upload_id" in state:
            return state
    return None


def wait_for_parts(
    device: Device, account: Account, process: subprocess.Popen[str], at_least: int
) -> tuple[dict[str, Any], int]:
    """Wait until storage holds `at_least` parts of the upload under way; (its resume
    state, the parts storage holds)."""
    state = wait_for(lambda: upload_state(device), process, "the upload started")
    with httpx.Client(base_url=device.server, timeout=30) as client:

        def stored() -> int:
            listing = client.get(
                f"/upload/{state['file_id']}/parts",
                params={"upload_id": state["upload_id"]},
                headers=account.headers,
            )
            assert listing.status_code == 200, listing.text
            return len(listing.json()["parts"])

        held = wait_for(lambda: (count := stored()) >= at_least and count, process, "parts")
    return state, held


def test_a_tree_goes_up_and_comes_back_byte_for_byte(
    make_device: DeviceFactory, account: Account, tmp_path: Path
) -> None:
    device = make_device("a", account)
    tree = tmp_path / "local" / "Fotos été"
    write_random(tree / "a.txt", 1000)
    write_random(tree / "empty.bin", 0)
    write_random(tree / "日本" / "深い" / "données.bin", 3 * MIB + 17)
    (tree / "vide" / "plus vide").mkdir(parents=True)
    single = tmp_path / "local" / "naïve résumé.pdf"
    write_random(single, 100_000)

    put = device.run("put", str(tree), str(single), "/backup/2026")
    # Not a terminal: one plain line per file, naming where it went.
    lines = put.stdout.splitlines()
    assert len(lines) == 4
    assert any(line.startswith("/backup/2026/Fotos été/日本/深い/données.bin") for line in lines)

    fetched = tmp_path / "fetched"
    device.run("get", "/backup/2026", str(fetched))
    assert files_under(fetched / "2026") == {
        "Fotos été/a.txt": (tree / "a.txt").read_bytes(),
        "Fotos été/empty.bin": b"",
        "Fotos été/日本/深い/données.bin": (tree / "日本/深い/données.bin").read_bytes(),
        "naïve résumé.pdf": single.read_bytes(),
    }
    # Empty folders made the trip too, and no temporary file is left behind.
    assert {"Fotos été/vide", "Fotos été/vide/plus vide"} <= folders_under(fetched / "2026")
    assert not list(fetched.rglob("*.dropp-part"))

    # A second run finds everything in place: nothing is sent or received again.
    again = as_json(device.run("put", str(tree), str(single), "/backup/2026", "--json"))
    assert [entry["sent"] for entry in again] == [0, 0, 0, 0]
    got = as_json(device.run("get", "/backup/2026", str(fetched), "--json"))
    assert all(entry["unchanged"] for entry in got)


async def test_small_files_start_in_one_batch_and_a_refused_one_stops_no_other(
    make_device: DeviceFactory, account: Account, engine: AsyncEngine, tmp_path: Path
) -> None:
    device = make_device("a", account)
    folder = tmp_path / "notes"
    for number in range(4):
        write_random(folder / f"note {number}.md", 500 + number)
    # A name this file system holds but the server refuses (a control character).
    write_random(folder / "bad\x01name.md", 10)

    done = await asyncio.to_thread(device.run, "put", str(folder), "--json", check=False)
    assert done.returncode == 1
    assert "bad\x01name.md" in done.stderr
    entries = {Path(entry["local"]).name: entry for entry in as_json(done)}
    assert "error" in entries["bad\x01name.md"]
    async with httpx.AsyncClient(base_url=device.server, timeout=30) as client:
        listing = await client.get("/folders", params={"path": "/notes"}, headers=account.headers)
    assert sorted(item["name"] for item in listing.json()["items"]) == [
        f"note {number}.md" for number in range(4)
    ]
    # All five were started by one call of the batch route.
    async with engine.connect() as connection:
        batches = await connection.scalar(
            text(
                "SELECT count(*) FROM idempotency_key WHERE user_id = CAST(:user AS uuid) "
                "AND response_body ? 'items'"
            ),
            {"user": account.user_id},
        )
    assert batches == 1


def test_a_large_file_goes_in_parts_and_is_verified_on_the_way_back(
    make_device: DeviceFactory, account: Account, tmp_path: Path
) -> None:
    device = make_device("a", account)
    source = tmp_path / "video.mkv"
    digest = write_random(source, MULTIPART_SIZE)

    [sent] = as_json(device.run("put", str(source), "/media", "--json"))
    assert sent["size"] == sent["sent"] == MULTIPART_SIZE
    assert sent["content_hash"].startswith(f"sha256-parts-{PART_SIZE}:")
    assert server_sha256(device, account, sent["file_id"]) == digest
    # Nothing of the finished upload is left to resume.
    assert not list((device.config_dir / "transfers").glob("*.json"))

    other = make_device("b", account)
    [got] = as_json(other.run("get", "/media/video.mkv", str(tmp_path / "b"), "--json"))
    assert got["sha256"] == digest.hex()
    assert sha256_of(tmp_path / "b" / "video.mkv") == digest


def test_bytes_that_do_not_match_are_discarded_and_a_rerun_gets_the_right_ones(
    make_device: DeviceFactory, account: Account, tmp_path: Path
) -> None:
    device = make_device("a", account)
    source = tmp_path / "report.pdf"
    digest = write_random(source, 2 * MIB)
    device.run("put", str(source))

    # What a download interrupted mid-way leaves, but with bytes the file does not hold.
    target_dir = tmp_path / "out"
    partial = target_dir / ".report.pdf.dropp-part"
    write_random(partial, MIB)

    refused = device.run("get", "/report.pdf", str(target_dir), check=False)
    assert refused.returncode == 1
    assert "do not match" in refused.stderr
    assert not partial.exists()
    assert not (target_dir / "report.pdf").exists()

    device.run("get", "/report.pdf", str(target_dir))
    assert sha256_of(target_dir / "report.pdf") == digest


def test_an_upload_killed_midway_resumes_with_the_parts_storage_lacks(
    make_device: DeviceFactory, account: Account, tmp_path: Path
) -> None:
    device = make_device("a", account)
    source = tmp_path / "disk.img"
    digest = write_random(source, LARGE_SIZE)
    process = device.start("put", str(source), "/images")
    state, held = wait_for_parts(device, account, process, 3)
    kill(process)
    assert held < LARGE_SIZE // PART_SIZE

    [resumed] = as_json(device.run("put", str(source), "/images", "--json"))
    # The rerun sent only what storage lacked when the first run died (or less).
    assert 0 < resumed["sent"] <= LARGE_SIZE - held * PART_SIZE
    assert resumed["file_id"] == state["file_id"]
    assert server_sha256(device, account, resumed["file_id"]) == digest
    assert upload_state(device) is None


def test_a_download_killed_midway_continues_from_its_part_file(
    make_device: DeviceFactory, account: Account, tmp_path: Path
) -> None:
    device = make_device("a", account)
    source = tmp_path / "up" / "archive.tar"
    digest = write_random(source, LARGE_SIZE)
    device.run("put", str(source))

    target_dir = tmp_path / "down"
    partial = target_dir / ".archive.tar.dropp-part"

    def some_received() -> int:
        size = partial.stat().st_size if partial.exists() else 0
        return size if size >= 16 * MIB else 0

    process = device.start("get", "/archive.tar", str(target_dir))
    wait_for(some_received, process, "bytes were received")
    kill(process)
    held = partial.stat()
    assert held.st_size < LARGE_SIZE
    assert not (target_dir / "archive.tar").exists()

    [got] = as_json(device.run("get", "/archive.tar", str(target_dir), "--json"))
    assert got["resumed_from"] >= held.st_size
    assert sha256_of(target_dir / "archive.tar") == digest
    # The very file the first run was writing became the download: it was continued.
    assert (target_dir / "archive.tar").stat().st_ino == held.st_ino
    assert not partial.exists()


def test_ctrl_c_stops_an_upload_with_130_and_the_rerun_resumes(
    make_device: DeviceFactory, account: Account, tmp_path: Path
) -> None:
    device = make_device("a", account)
    source = tmp_path / "backup.tar"
    digest = write_random(source, LARGE_SIZE)
    process = device.start("put", str(source))
    wait_for_parts(device, account, process, 1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr
    assert upload_state(device) is not None

    [resumed] = as_json(device.run("put", str(source), "--json"))
    assert resumed["sent"] < LARGE_SIZE
    assert server_sha256(device, account, resumed["file_id"]) == digest


async def test_a_file_that_changes_while_its_parts_are_hashed_beside_the_upload_is_not_kept(
    dropp_url: str, account: Account, engine: AsyncEngine, tmp_path: Path, monkeypatch: Any
) -> None:
    """A large file's parts go out while the rest of it is still being hashed; one written
    to meanwhile never becomes a revision, and its upload is cancelled on the server."""
    source = tmp_path / "growing.bin"
    write_random(source, MULTIPART_SIZE)
    real_hash_parts = transfers.hash_parts

    def written_to_midway(
        path: Path, part_size: int, on_part: Callable[[int, bytes], None] | None = None
    ) -> tuple[bytes, ...]:
        def heard(number: int, digest: bytes) -> None:
            if number == 1:
                with path.open("ab") as handle:
                    handle.write(b"appended while the upload ran")
            if on_part is not None:
                on_part(number, digest)

        return real_hash_parts(path, part_size, heard)

    cancelled: list[str] = []
    real_cancel = transfers._cancel

    async def cancel(api: Api, started: dict[str, Any]) -> None:
        cancelled.append(started["upload_id"])
        await real_cancel(api, started)

    monkeypatch.setattr(transfers, "hash_parts", written_to_midway)
    monkeypatch.setattr(transfers, "_cancel", cancel)
    async with Api(dropp_url, MemoryStore()) as api:
        await sign_in_with_password(api, account.email, PASSWORD)
        with pytest.raises(transfers.TransferError, match="changed while it was read"):
            await transfers.upload(
                api, transfers.UploadRequest(source=source, folder="/", name=source.name)
            )

    # Started before the hash was done, then cancelled: nothing is left of it.
    assert len(cancelled) == 1
    assert await owned_revisions(engine, account.user_id) == 0
