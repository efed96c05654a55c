"""Content hashes as the server states them, computed here.

A file uploaded in one POST is `sha256:<hex>`; a multipart one is
`sha256-parts-<part size>:<hex>`, the SHA-256 of its parts' SHA-256s with the part size the
server's documented rule gives (8 MiB, doubled until the file fits in 10,000 parts). Which
scheme a remote file carries depends on how it was uploaded, so a local file gets both, and
two contents are the same when their sizes match and one of their hashes does.
"""

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MIB = 1024**2
MIN_PART_SIZE = 8 * MIB
MAX_PARTS = 10_000
READ_SIZE = MIB


def part_size_for(size: int) -> int:
    """8 MiB doubled until `size` fits in 10,000 parts (the server's rule, docs/api.md)."""
    part_size = MIN_PART_SIZE
    while part_size * MAX_PARTS < size:
        part_size *= 2
    return part_size


def part_count_for(size: int, part_size: int) -> int:
    return max(1, -(-size // part_size))


@dataclass(frozen=True)
class Content:
    """What a file holds, as far as sync compares: its size and its content hashes."""

    size: int
    hashes: frozenset[str]

    def same(self, other: "Content | None") -> bool:
        return other is not None and self.size == other.size and bool(self.hashes & other.hashes)

    @property
    def sha256(self) -> str | None:
        """The whole file's SHA-256 in hex, when known (always, for a local file)."""
        for value in self.hashes:
            if value.startswith("sha256:"):
                return value.removeprefix("sha256:")
        return None

    @classmethod
    def remote(cls, size: int | None, content_hash: str | None) -> "Content":
        """A remote file's content; one uploaded without a hash matches nothing."""
        return cls(size or 0, frozenset({content_hash}) if content_hash else frozenset())


@dataclass(frozen=True)
class FileHash:
    """One read of a file: its whole SHA-256 and each part's, for the part size its size
    gives (what a multipart upload declares)."""

    size: int
    sha256: bytes
    part_size: int
    part_hashes: tuple[bytes, ...]

    @property
    def parts_hash(self) -> bytes:
        return hashlib.sha256(b"".join(self.part_hashes)).digest()

    @property
    def content(self) -> Content:
        return Content(
            self.size,
            frozenset(
                {
                    f"sha256:{self.sha256.hex()}",
                    f"sha256-parts-{self.part_size}:{self.parts_hash.hex()}",
                }
            ),
        )


class FileChanged(Exception):
    """The file changed while it was read: its hash describes no state it was ever in."""


def hash_file(
    path: Path,
    progress: Callable[[int], None] | None = None,
    on_part: Callable[[int, bytes], None] | None = None,
) -> FileHash:
    """Hash a file; refuse the result if size or mtime moved meanwhile, so a file being
    written is never taken for what it holds halfway.

    A file of one part has that part's hash as its whole hash. A larger one is hashed twice
    at once, whole here and part by part on another thread (hashlib lets go of the GIL), so
    the two take the time of one on a machine with a second core. `on_part` hears each part's
    hash (number from 1) as soon as it is known, from whichever thread knew it; it is only
    true of the file if the result comes.
    """
    before = os.stat(path)
    part_size = part_size_for(before.st_size)
    with open(path, "rb") as handle:
        if before.st_size <= part_size:
            whole, total = _hash_range(handle, 0, before.st_size, progress)
            parts = [whole]
            if on_part is not None:
                on_part(1, whole)
        else:
            with ThreadPoolExecutor(max_workers=1) as pool:
                by_part = pool.submit(_part_hashes, path, before.st_size, part_size, on_part)
                whole, total = _hash_range(handle, 0, before.st_size, progress)
                parts = by_part.result()
    after = os.stat(path)
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns) or (
        total != before.st_size
    ):
        raise FileChanged(f"{path} changed while it was read")
    return FileHash(total, whole, part_size, tuple(parts))


def hash_parts(
    path: Path, part_size: int, on_part: Callable[[int, bytes], None] | None = None
) -> tuple[bytes, ...]:
    """Only the parts' hashes, each told to `on_part` as it is known: what a multipart
    upload needs, in one pass; refused, like `hash_file`, if the file changed meanwhile."""
    before = os.stat(path)
    parts = _part_hashes(path, before.st_size, part_size, on_part)
    after = os.stat(path)
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise FileChanged(f"{path} changed while it was read")
    return tuple(parts)


def _hash_range(
    handle: BinaryIO, offset: int, length: int, progress: Callable[[int], None] | None = None
) -> tuple[bytes, int]:
    """The SHA-256 of `length` bytes from `offset` (fewer if the file ends first) and how
    many were read; a file that grew is caught by its size after."""
    digest = hashlib.sha256()
    done = 0
    handle.seek(offset)
    while done < length and (chunk := handle.read(min(READ_SIZE, length - done))):
        digest.update(chunk)
        done += len(chunk)
        if progress is not None:
            progress(len(chunk))
    return digest.digest(), done


def _part_hashes(
    path: Path, size: int, part_size: int, on_part: Callable[[int, bytes], None] | None
) -> list[bytes]:
    parts = []
    with open(path, "rb") as handle:
        # An empty file is one empty part.
        for offset in range(0, max(size, 1), part_size):
            digest, _ = _hash_range(handle, offset, min(part_size, size - offset))
            parts.append(digest)
            if on_part is not None:
                on_part(len(parts), digest)
    return parts
