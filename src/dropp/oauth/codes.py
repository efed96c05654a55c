"""Authorization codes: 256 random bits, stored hashed, single use, valid at most a minute,
bound to the redirect URI and the PKCE challenge they were issued for."""

from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.auth.models import AuthorizationCode, User
from dropp.auth.schemas import TokenRead
from dropp.auth.service import TokenIssuer, revoke_family
from dropp.auth.tokens import new_secret, secret_digest
from dropp.core.config import Settings
from dropp.oauth import pkce
from dropp.oauth.errors import GrantReplayed, InvalidGrant


async def issue(
    session: AsyncSession,
    settings: Settings,
    *,
    user_id: UUID,
    redirect_uri: str,
    code_challenge: str,
) -> str:
    code = new_secret()
    session.add(
        AuthorizationCode(
            code_hash=secret_digest(code),
            user_id=user_id,
            redirect_uri=redirect_uri,
            code_challenge=code_challenge,
            expires_at=datetime.now(UTC)
            + timedelta(seconds=settings.authorization_code_ttl_seconds),
        )
    )
    await session.flush()
    return code


async def redeem(
    session: AsyncSession,
    issuer: TokenIssuer,
    *,
    code: str,
    code_verifier: str,
    redirect_uri: str,
) -> TokenRead:
    """Tokens for a valid code. The row lock makes concurrent redemptions take turns, so
    exactly one wins; any later one revokes what the first was given (RFC 6749 §4.1.2)."""
    now = datetime.now(UTC)
    stored = await session.scalar(
        select(AuthorizationCode)
        .where(AuthorizationCode.code_hash == secret_digest(code))
        .with_for_update()
    )
    if stored is None:
        raise InvalidGrant("The authorization code is invalid.")
    if stored.used_at is not None:
        if stored.family_id is not None:
            await revoke_family(session, stored.family_id, now)
        raise GrantReplayed(
            "The authorization code was already used; the tokens it gave are now revoked."
        )
    if stored.expires_at <= now:
        raise InvalidGrant("The authorization code has expired.")
    if stored.redirect_uri != redirect_uri:
        raise InvalidGrant("redirect_uri does not match the one the code was issued for.")
    if not pkce.verifies(code_verifier, stored.code_challenge):
        raise InvalidGrant("code_verifier does not match the code_challenge.")
    user = await session.get(User, stored.user_id)
    if user is None or not user.is_active:
        raise InvalidGrant("The account is disabled.")
    stored.used_at = now
    tokens, family_id = await issuer.issue_with_family(session, user)
    stored.family_id = family_id
    return tokens
