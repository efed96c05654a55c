"""Browser sessions for Dropp's own pages: a random cookie, stored hashed, and CSRF tokens
derived from it (so forms need no stored token)."""

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from uuid import UUID

from fastapi import Response
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.auth.models import User, WebSession
from dropp.auth.tokens import new_secret, secret_digest
from dropp.core.config import Settings

SESSION_COOKIE = "dropp_session"
# Binds a sign-in through the provider to the browser that started it.
BROWSER_COOKIE = "dropp_sign_in"


def _csrf_key(settings: Settings) -> bytes:
    assert settings.secret_key is not None
    return hmac.new(
        settings.secret_key.get_secret_value().encode(), b"dropp csrf v1", hashlib.sha256
    ).digest()


def csrf_token(settings: Settings, *bound_to: str) -> str:
    """A token only this server can make for these values (a cookie, a record id)."""
    message = "\x00".join(bound_to).encode()
    return hmac.new(_csrf_key(settings), message, hashlib.sha256).hexdigest()


def csrf_valid(settings: Settings, token: str, *bound_to: str) -> bool:
    return hmac.compare_digest(csrf_token(settings, *bound_to), token)


def set_cookie(response: Response, settings: Settings, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        # Lax: sent on the provider's top-level redirect back, never on cross-site form posts.
        samesite="lax",
        secure=settings.public_url.startswith("https://"),
    )


async def open_web_session(session: AsyncSession, settings: Settings, user_id: UUID) -> str:
    token = new_secret()
    session.add(
        WebSession(
            user_id=user_id,
            token_hash=secret_digest(token),
            expires_at=datetime.now(UTC) + timedelta(seconds=settings.web_session_ttl_seconds),
        )
    )
    await session.flush()
    return token


async def web_session_user(session: AsyncSession, token: str | None) -> User | None:
    """The active user signed in with this cookie, if the session is still valid."""
    if not token:
        return None
    return await session.scalar(
        select(User)
        .join(WebSession, WebSession.user_id == User.id)
        .where(
            WebSession.token_hash == secret_digest(token),
            WebSession.revoked_at.is_(None),
            WebSession.expires_at > datetime.now(UTC),
            User.is_active,
        )
    )


async def close_web_session(session: AsyncSession, token: str) -> None:
    await session.execute(
        update(WebSession)
        .where(WebSession.token_hash == secret_digest(token), WebSession.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
