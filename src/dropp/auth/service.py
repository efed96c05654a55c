"""Accounts, password sign-in and refresh-token rotation."""

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.auth import passwords, revocations
from dropp.auth.errors import (
    InvalidCredentials,
    InvalidRefreshToken,
    RefreshTokenReused,
)
from dropp.auth.models import RefreshToken, User, WebSession
from dropp.auth.schemas import TokenRead
from dropp.auth.tokens import AccessTokenSigner, new_refresh_token, refresh_token_digest


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def authenticate(session: AsyncSession, email: str, password: str) -> User:
    """The active user with these credentials; one error for every failure."""
    user = await session.scalar(select(User).where(User.email == normalize_email(email)))
    valid = await passwords.verify_password(user.password_hash if user else None, password)
    if user is None or not valid or not user.is_active:
        raise InvalidCredentials("Email or password is incorrect.")
    return user


async def change_password(session: AsyncSession, user_id: UUID, current: str, new: str) -> User:
    """Set a new password for someone who knows the current one, and end every session of
    the account: whoever learnt the old password may hold one. InvalidCredentials when the
    current password is wrong (an account without one has none to give)."""
    user = await session.scalar(select(User).where(User.id == user_id).with_for_update())
    valid = await passwords.verify_password(user.password_hash if user else None, current)
    if user is None or not valid or not user.is_active:
        raise InvalidCredentials("The current password is incorrect.")
    passwords.check_new_password(new)
    user.password_hash = await passwords.hash_password(new)
    await sign_out_everywhere(session, user.id)
    await session.flush()
    return user


async def get_user(session: AsyncSession, user_id: UUID) -> User | None:
    return await session.get(User, user_id)


class TokenIssuer:
    def __init__(self, signer: AccessTokenSigner, refresh_ttl_seconds: int) -> None:
        self.signer = signer
        self.refresh_ttl = timedelta(seconds=refresh_ttl_seconds)

    async def issue(
        self, session: AsyncSession, user: User, family_id: UUID | None = None
    ) -> TokenRead:
        """An access token and a refresh token, the latter starting or continuing a family."""
        tokens, _ = await self.issue_with_family(session, user, family_id)
        return tokens

    async def issue_with_family(
        self, session: AsyncSession, user: User, family_id: UUID | None = None
    ) -> tuple[TokenRead, UUID]:
        """`issue`, also telling which refresh-token family the tokens belong to."""
        now = datetime.now(UTC)
        family_id = family_id or uuid4()
        refresh_token = new_refresh_token()
        session.add(
            RefreshToken(
                user_id=user.id,
                family_id=family_id,
                token_hash=refresh_token_digest(refresh_token),
                expires_at=now + self.refresh_ttl,
            )
        )
        await session.flush()
        tokens = TokenRead(
            access_token=self.signer.issue(
                user.id,
                now,
                role=user.role,
                email_verified=user.email_verified_at is not None,
                family_id=family_id,
            ),
            expires_in=int(self.signer.ttl.total_seconds()),
            refresh_token=refresh_token,
        )
        return tokens, family_id

    async def rotate(self, session: AsyncSession, refresh_token: str) -> TokenRead:
        """Trade a refresh token for a new pair; presenting a used one revokes its whole family."""
        now = datetime.now(UTC)
        stored = await session.scalar(
            select(RefreshToken)
            .where(RefreshToken.token_hash == refresh_token_digest(refresh_token))
            .with_for_update()
        )
        if stored is None or stored.revoked_at is not None or stored.expires_at <= now:
            raise InvalidRefreshToken("The refresh token is invalid or has expired.")
        if stored.used_at is not None:
            await revoke_family(session, stored.family_id, now)
            raise RefreshTokenReused(
                "The refresh token was already used; every session of its family is now signed out."
            )
        user = await session.get(User, stored.user_id)
        if user is None or not user.is_active:
            raise InvalidRefreshToken("The refresh token is invalid or has expired.")
        stored.used_at = now
        return await self.issue(session, user, stored.family_id)


async def revoke_family(session: AsyncSession, family_id: UUID, now: datetime) -> None:
    """Revoke every refresh token of the family; its access tokens are refused from the
    next request, in every API process."""
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    await revocations.announce_family(session, family_id, now)


async def revoke_token_family(session: AsyncSession, token_hash: bytes) -> None:
    """Revoke the family of the refresh token with this digest, if there is one."""
    family_id = await session.scalar(
        select(RefreshToken.family_id).where(RefreshToken.token_hash == token_hash)
    )
    if family_id is not None:
        await revoke_family(session, family_id, datetime.now(UTC))


async def sign_out_everywhere(session: AsyncSession, user_id: UUID) -> None:
    """Revoke every refresh token and web session of the account; the access tokens issued
    so far are refused from the next request, in every API process."""
    now = datetime.now(UTC)
    await revocations.announce_user(session, user_id, now)
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    await session.execute(
        update(WebSession)
        .where(WebSession.user_id == user_id, WebSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
