"""Registering a password account without telling whether the address already has one.

Both outcomes answer the same, after the same work: the password is hashed, the account
inserted (or the insert meets the existing address and does nothing), the account read back,
and one email link stored. A new address gets a verification link; the owner of an address
in use gets a notice instead, with a reset link, and the account is left as it was.
"""

from uuid import uuid4

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.auth import email_links, passwords
from dropp.auth.models import User
from dropp.auth.service import normalize_email
from dropp.core.config import Settings
from dropp.mail.sender import Mail


async def register(
    session: AsyncSession, settings: Settings, email: str, password: str
) -> Mail | None:
    """Create the account if the address is free; the mail to send either way (None only for
    a disabled account's address, which is told nothing)."""
    address = normalize_email(email)
    password_hash = await passwords.hash_password(password)
    created = await session.scalar(
        insert(User)
        .values(id=uuid4(), email=address, password_hash=password_hash, role=settings.default_role)
        .on_conflict_do_nothing(index_elements=[User.email])
        .returning(User.id)
    )
    user = await session.scalar(select(User).where(User.email == address))
    assert user is not None, "the address was inserted or already taken"
    if created is not None:
        return await email_links.issue_verification(session, user.id, address, settings)
    return await email_links.issue_registration_notice(session, user, settings)
