"""Transfer codes: 12 random digits a person can read out and type, stored only as an HMAC."""

import hashlib
import hmac
import re
import secrets

DIGITS = 12
GROUP = 4
# Dashes, spaces and dots are how people write groups of digits; nothing else is dropped.
SEPARATORS = re.compile(r"[\s.\-]+")
# A typed code may carry separators; anything much longer is not a code.
MAX_TYPED_LENGTH = 40


def new_code() -> str:
    """`4821-0937-5562`: 10^12 codes, 39.9 bits."""
    digits = "".join(secrets.choice("0123456789") for _ in range(DIGITS))
    return "-".join(digits[i : i + GROUP] for i in range(0, DIGITS, GROUP))


def normalize(typed: str) -> str | None:
    """The 12 digits of a typed code, or None if it cannot be one."""
    if len(typed) > MAX_TYPED_LENGTH:
        return None
    digits = SEPARATORS.sub("", typed)
    if len(digits) != DIGITS or not digits.isascii() or not digits.isdigit():
        return None
    return digits


def digest(key: bytes, code: str) -> bytes:
    """What the table keeps of a code (of its digits, however it was typed)."""
    digits = normalize(code)
    if digits is None:
        raise ValueError("not a transfer code")
    return hmac.new(key, digits.encode(), hashlib.sha256).digest()


def code_key(secret_key: str) -> bytes:
    return hmac.new(secret_key.encode(), b"dropp p2p codes v1", hashlib.sha256).digest()
