"""Which Dropp account a provider identity signs in to.

Accounts are keyed on the provider's (issuer, subject), never on email. An email links a new
identity to an existing account only when both sides have verified it; otherwise a new
account is made, holding the email only if no other account does.
"""

from datetime import UTC, datetime
from uuid import uuid4

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.auth.models import Identity, User
from dropp.oauth.provider import ProviderIdentity


async def _linked_user(session: AsyncSession, identity: ProviderIdentity) -> User | None:
    return await session.scalar(
        select(User)
        .join(Identity, Identity.user_id == User.id)
        .where(Identity.issuer == identity.issuer, Identity.subject == identity.subject)
    )


async def _new_user(session: AsyncSession, identity: ProviderIdentity, role: str) -> User:
    verified_at = datetime.now(UTC) if identity.email_verified else None
    if identity.email is not None:
        created: User | None = await session.scalar(
            insert(User)
            .values(id=uuid4(), email=identity.email, email_verified_at=verified_at, role=role)
            .on_conflict_do_nothing(index_elements=[User.email])
            .returning(User)
        )
        if created is not None:
            return created
    # The address belongs to another account that could not be linked: keep it there.
    user = User(id=uuid4(), email=None, role=role)
    session.add(user)
    await session.flush()
    return user


async def user_for_identity(
    session: AsyncSession, identity: ProviderIdentity, default_role: str
) -> User:
    """The account this identity signs in to, created on first sign-in."""
    linked = await _linked_user(session, identity)
    if linked is not None:
        return linked
    user: User | None = None
    if identity.email is not None and identity.email_verified:
        user = await session.scalar(
            select(User).where(User.email == identity.email, User.email_verified_at.is_not(None))
        )
    created = user is None
    if user is None:
        user = await _new_user(session, identity, default_role)
    added = await session.scalar(
        insert(Identity)
        .values(
            id=uuid4(),
            user_id=user.id,
            issuer=identity.issuer,
            subject=identity.subject,
            email=identity.email,
        )
        .on_conflict_do_nothing(index_elements=[Identity.issuer, Identity.subject])
        .returning(Identity.id)
    )
    if added is None:
        # A concurrent first sign-in of the same identity won: use its account, and drop the
        # one this attempt made for nothing.
        raced = await _linked_user(session, identity)
        assert raced is not None
        if created:
            await session.delete(user)
        return raced
    return user
