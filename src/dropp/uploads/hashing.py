"""Part sizes and content hashes: the arithmetic a client repeats on its side, so it must stay
exactly as documented in the README."""

import base64
import hashlib
import re
from collections.abc import Iterable

MIB = 1024**2
# The smallest part Dropp hands out; S3 refuses parts under 5 MiB except the last.
MIN_PART_SIZE = 8 * MIB
MAX_PARTS = 10_000
# Part URLs signed in one call.
MAX_PARTS_PER_CALL = 100


def part_size_for(size: int) -> int:
    """8 MiB doubled until `size` fits in 10,000 parts: 8 MiB up to 78.1 GiB, 1 GiB at 5 TiB."""
    part_size = MIN_PART_SIZE
    while part_size * MAX_PARTS < size:
        part_size *= 2
    return part_size


def part_count_for(size: int, part_size: int) -> int:
    return max(1, -(-size // part_size))


def expected_part_size(size: int, part_size: int, part_number: int) -> int:
    """Every part is `part_size` bytes except the last, which holds the rest."""
    count = part_count_for(size, part_size)
    return part_size if part_number < count else size - (count - 1) * part_size


# 64 hex digits, or 44 characters of base64 (S3's form): what the schema states, exactly.
SHA256_PATTERN = "^(?:[0-9A-Fa-f]{64}|[A-Za-z0-9+/]{43}=)$"
_SHA256 = re.compile(SHA256_PATTERN)


def parse_sha256(value: str) -> bytes:
    """A SHA-256 given as 64 hex digits or as 44 characters of base64 (S3's form)."""
    # Matched whole first: bytes.fromhex skips spaces, so 64 characters with spaces among
    # them would have passed as a digest shorter than 32 bytes.
    if _SHA256.fullmatch(value):
        return bytes.fromhex(value) if len(value) == 64 else base64.b64decode(value)
    raise ValueError("not a SHA-256: give 64 hex digits or 44 characters of base64")


def normalize_sha256(value: str) -> str:
    """Validate and return as lowercase hex, so a model holds one spelling."""
    return parse_sha256(value).hex()


def parts_hash(part_hashes: Iterable[bytes]) -> bytes:
    """The multipart content hash: SHA-256 over the parts' SHA-256 digests, in part order.

    It is the composite checksum S3 itself keeps for a multipart upload made with SHA-256.
    """
    digest = hashlib.sha256()
    for part in part_hashes:
        digest.update(part)
    return digest.digest()
