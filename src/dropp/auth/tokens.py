"""Short-lived signed access tokens (JWT, HS256) and opaque refresh tokens."""

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from uuid import UUID

import jwt

from dropp.auth.errors import InvalidToken
from dropp.auth.revocations import Revocations

ISSUER = "dropp"
AUDIENCE = "dropp-api"
ALGORITHM = "HS256"
VERIFIED_TOKENS_CACHED = 4096


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What an access token says of its holder. Role and verification are as they were when
    the token was issued: a change reaches the holder at the next refresh, within one token
    lifetime, and upload-init needs no database read to apply them."""

    user_id: UUID
    role: str
    email_verified: bool
    # The refresh-token family (the sign-in session) the token was issued in: revoking the
    # family refuses it. None in tokens issued before the claim existed.
    family_id: UUID | None = None
    # Unix seconds, with the fraction: an account signed out at a moment refuses exactly the
    # tokens issued before it.
    issued_at: float = 0.0


class AccessTokenSigner:
    """Signs and verifies access tokens with a key derived from SECRET_KEY for this purpose only."""

    def __init__(self, key: bytes, ttl: timedelta) -> None:
        self.key = key
        self.key_id = hashlib.sha256(key).hexdigest()[:16]
        self.ttl = ttl
        self.revocations = Revocations(ttl)
        # A client sends the same token for minutes: its signature is checked once per
        # process, its expiry on every request.
        self._verified = lru_cache(maxsize=VERIFIED_TOKENS_CACHED)(self._decode)

    @classmethod
    def from_secret(cls, secret_key: str, ttl_seconds: int) -> "AccessTokenSigner":
        key = hmac.new(secret_key.encode(), b"dropp access token v1", hashlib.sha256).digest()
        return cls(key=key, ttl=timedelta(seconds=ttl_seconds))

    def issue(
        self,
        user_id: UUID,
        now: datetime | None = None,
        *,
        role: str = "member",
        email_verified: bool = False,
        family_id: UUID | None = None,
    ) -> str:
        issued_at = now or datetime.now(UTC)
        claims: dict[str, object] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": str(user_id),
            # A NumericDate may have a fraction (RFC 7519, 2): kept, so a revocation in the
            # same second as a new sign-in refuses only the older token.
            "iat": issued_at.timestamp(),
            "exp": issued_at + self.ttl,
            "role": role,
            "email_verified": email_verified,
        }
        if family_id is not None:
            claims["sid"] = str(family_id)
        return jwt.encode(claims, self.key, algorithm=ALGORITHM, headers={"kid": self.key_id})

    def verify(self, token: str) -> AccessClaims:
        """What the token says of its holder; InvalidToken for anything else, a revoked
        token included."""
        claims, expires_at = self._verified(token)
        if expires_at <= time.time():
            raise InvalidToken("The access token has expired.")
        if self.revocations.refuses(claims):
            raise InvalidToken("The access token was revoked: sign in again.")
        return claims

    def _decode(self, token: str) -> tuple[AccessClaims, float]:
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "iss", "aud", "role"]},
            )
            family = claims.get("sid")
            holder = AccessClaims(
                user_id=UUID(claims["sub"]),
                role=str(claims["role"]),
                email_verified=claims.get("email_verified") is True,
                family_id=UUID(family) if isinstance(family, str) else None,
                issued_at=float(claims["iat"]),
            )
            return holder, float(claims["exp"])
        except jwt.ExpiredSignatureError as error:
            raise InvalidToken("The access token has expired.") from error
        except (jwt.InvalidTokenError, ValueError) as error:
            raise InvalidToken("The access token is invalid.") from error


def new_secret() -> str:
    """256 random bits, URL-safe: refresh tokens, authorization codes, cookies, email links."""
    return secrets.token_urlsafe(32)


def secret_digest(secret: str) -> bytes:
    """What is stored of a secret: its SHA-256 (the secret has 256 bits, so no salt is needed)."""
    return hashlib.sha256(secret.encode()).digest()


new_refresh_token = new_secret
refresh_token_digest = secret_digest
