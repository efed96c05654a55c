"""Content hashes computed by the client: the server's two schemes, from one file, and a
file that changes while it is read refused."""

import hashlib
import os
from pathlib import Path

import pytest

from dropp.client.hashing import MIB, FileChanged, hash_file, hash_parts

PART = 8 * MIB


@pytest.mark.parametrize("size", [0, 1, PART, PART + 1, 3 * PART - 5])
def test_whole_and_part_hashes_are_those_of_the_bytes(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = tmp_path / "file.bin"
    path.write_bytes(data)

    hashed = hash_file(path)

    parts = [data[start : start + PART] for start in range(0, size, PART)] or [b""]
    assert hashed.size == size
    assert hashed.sha256 == hashlib.sha256(data).digest()
    assert hashed.part_size == PART
    assert hashed.part_hashes == tuple(hashlib.sha256(part).digest() for part in parts)
    parts_hash = hashlib.sha256(b"".join(hashed.part_hashes)).hexdigest()
    assert hashed.content.hashes == {
        f"sha256:{hashlib.sha256(data).hexdigest()}",
        f"sha256-parts-{PART}:{parts_hash}",
    }
    heard: list[tuple[int, bytes]] = []
    assert hash_parts(path, PART, lambda n, digest: heard.append((n, digest))) == tuple(
        hashlib.sha256(part).digest() for part in parts
    )
    assert heard == list(enumerate(hashed.part_hashes, start=1))


@pytest.mark.parametrize("change", ["append", "truncate"])
def test_a_file_that_changes_while_it_is_hashed_is_refused(tmp_path: Path, change: str) -> None:
    path = tmp_path / "growing.bin"
    path.write_bytes(os.urandom(2 * PART + 100))
    read = 0

    def midway(amount: int) -> None:
        nonlocal read
        read += amount
        if read == PART:
            with path.open("ab") as handle:
                if change == "append":
                    handle.write(b"more")
                else:
                    handle.truncate(PART + 10)

    with pytest.raises(FileChanged):
        hash_file(path, midway)
    path.write_bytes(os.urandom(2 * PART + 100))
    read = 0
    with pytest.raises(FileChanged):
        hash_parts(path, PART, lambda number, _: midway(PART if number == 1 else 0))
