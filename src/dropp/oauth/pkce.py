"""PKCE (RFC 7636), S256 only: `plain` would let whoever sees the authorization request
redeem the code."""

import base64
import hashlib
import hmac
import re

# 32 to 96 random bytes, base64url: 43 to 128 characters of the unreserved set.
VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
# A SHA-256, base64url without padding: always 43 characters. Also the document's pattern.
CHALLENGE_PATTERN = "^[A-Za-z0-9_-]{43}$"
CHALLENGE = re.compile(CHALLENGE_PATTERN)


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verifies(verifier: str, challenge: str) -> bool:
    if not VERIFIER.fullmatch(verifier):
        return False
    return hmac.compare_digest(s256(verifier), challenge)
