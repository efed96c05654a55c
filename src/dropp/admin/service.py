"""Account administration: listing accounts, changing roles, disabling, and making admins."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from uuid import UUID, uuid4

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.admin.errors import InvalidCursor, LastAdmin, UnknownRole, UserNotFound
from dropp.admin.schemas import UserPage, UserUpdate
from dropp.auth.models import User
from dropp.auth.schemas import UserRead
from dropp.auth.service import normalize_email, sign_out_everywhere
from dropp.core.pagination import CursorError, encode_cursor, newest_first
from dropp.roles.policy import ADMIN

# Every change that can remove an admin takes this transaction-level advisory lock first, so
# two admins demoting each other at once cannot both see the other as "still an admin".
ADMINS_LOCK_KEY = 0x64726F7070_0001


async def get_user(session: AsyncSession, user_id: UUID) -> User | None:
    return await session.get(User, user_id)


async def list_users(
    session: AsyncSession,
    *,
    role: str | None,
    email_prefix: str | None,
    cursor: str | None,
    limit: int,
) -> UserPage:
    """Accounts, newest first, optionally of one role or with emails starting with a prefix."""
    query = select(User)
    if role is not None:
        query = query.where(User.role == role)
    if email_prefix:
        # Emails are stored normalized; autoescape keeps `%` and `_` literal.
        query = query.where(User.email.startswith(normalize_email(email_prefix), autoescape=True))
    try:
        query = newest_first(query, User.created_at, User.id, cursor, limit)
    except CursorError as error:
        raise InvalidCursor("The cursor is not one this server issued.") from error
    users = list(await session.scalars(query))
    page = users[:limit]
    next_cursor = None
    if len(users) > limit:
        next_cursor = encode_cursor(page[-1].created_at, page[-1].id)
    return UserPage(users=[UserRead.of(user) for user in page], next_cursor=next_cursor)


async def update_user(
    session: AsyncSession, user_id: UUID, changes: UserUpdate, role_names: Sequence[str]
) -> User:
    """Change an account's role or activity; disabling signs it out everywhere.

    Refuses any change that would leave no active admin.
    """
    if changes.role is not None and changes.role not in role_names:
        raise UnknownRole(
            f"There is no role {changes.role!r}; the roles are {', '.join(role_names)}.",
            allowed_roles=list(role_names),
        )
    await session.execute(select(func.pg_advisory_xact_lock(ADMINS_LOCK_KEY)))
    # populate_existing: the caller's own row may already sit in the session, read before the
    # lock was taken.
    user = await session.get(User, user_id, with_for_update=True, populate_existing=True)
    if user is None:
        raise UserNotFound("There is no such account.")
    role = changes.role if changes.role is not None else user.role
    is_active = changes.is_active if changes.is_active is not None else user.is_active
    if user.role == ADMIN and user.is_active and not (role == ADMIN and is_active):
        other_admins = await session.scalar(
            select(func.count()).where(User.role == ADMIN, User.is_active, User.id != user.id)
        )
        if not other_admins:
            raise LastAdmin(
                "This is the only active admin: make another account admin first, "
                "or no one could administer Dropp."
            )
    user.role = role
    user.is_active = is_active
    if "quota_bytes" in changes.model_fields_set:
        user.quota_bytes = changes.quota_bytes
    if changes.is_active is False:
        await sign_out_everywhere(session, user.id)
    await session.flush()
    return user


class PasswordChange(StrEnum):
    SET = "set"
    KEPT = "kept"
    REMOVED = "removed"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class AdminGrant:
    user_id: UUID
    email: str
    created: bool
    was_admin: bool
    password: PasswordChange


async def grant_admin(session: AsyncSession, email: str, password_hash: str | None) -> AdminGrant:
    """Make the account with this email an active admin with a verified email, creating it
    if needed; with a password hash, that becomes its password.

    The operator vouches for the address. An existing account whose address was never
    verified may have been registered by someone else, so its password is replaced (or
    removed) and its sessions revoked.
    """
    email = normalize_email(email)
    now = datetime.now(UTC)
    created: User | None = await session.scalar(
        insert(User)
        .values(
            id=uuid4(),
            email=email,
            email_verified_at=now,
            password_hash=password_hash,
            role=ADMIN,
        )
        .on_conflict_do_nothing(index_elements=[User.email])
        .returning(User)
    )
    if created is not None:
        password = PasswordChange.SET if password_hash else PasswordChange.NONE
        return AdminGrant(created.id, email, True, False, password)

    user = await session.scalar(select(User).where(User.email == email).with_for_update())
    assert user is not None, "the insert conflicted on this email"
    was_admin = user.role == ADMIN and user.is_active
    unproven = user.email_verified_at is None
    if password_hash is not None:
        password = PasswordChange.SET
    elif unproven and user.password_hash is not None:
        password = PasswordChange.REMOVED
    else:
        password = PasswordChange.KEPT if user.password_hash else PasswordChange.NONE
    if password in (PasswordChange.SET, PasswordChange.REMOVED):
        user.password_hash = password_hash
        await sign_out_everywhere(session, user.id)
    user.role = ADMIN
    user.is_active = True
    user.email_verified_at = user.email_verified_at or now
    await session.flush()
    return AdminGrant(user.id, email, False, was_admin, password)
