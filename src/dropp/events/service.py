"""Recording account events, and reading what a stream has not told yet.

An event is written in the transaction that made it happen, under its accounts' feed locks
(the change feed's: an account's events then commit in id order, so a stream that has passed
an id never meets an older one later), and wakes those accounts' streams by the change feed's
NOTIFY. Record events last in a transaction, after any change rows: the feed locks are then
already held, or taken after every other lock, as the change feed takes them.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.events.models import AccountEvent, EventKind
from dropp.sync import changes
from dropp.sync.models import Change


@dataclass(frozen=True)
class Position:
    """What a stream has told: the newest change and the newest event, by id."""

    change_id: int
    event_id: int


async def record(
    session: AsyncSession, user_ids: Sequence[UUID], kind: EventKind, body: dict[str, Any]
) -> None:
    """One event for each of these accounts, seen by their streams once this commits."""
    recipients = sorted(set(user_ids))
    if not recipients:
        return
    await changes.lock_feeds(session, recipients)
    await session.execute(
        insert(AccountEvent), [{"user_id": u, "kind": kind, "body": body} for u in recipients]
    )
    await changes.notify(session, recipients)


async def current_position(session: AsyncSession, user_id: UUID) -> Position:
    """Where a stream starting now begins: after everything committed so far."""
    change_id = await session.scalar(select(func.max(Change.id)).where(Change.user_id == user_id))
    event_id = await session.scalar(
        select(func.max(AccountEvent.id)).where(AccountEvent.user_id == user_id)
    )
    return Position(change_id or 0, event_id or 0)


async def newest_change_after(session: AsyncSession, user_id: UUID, change_id: int) -> int | None:
    """The id of the user's newest change after `change_id`, if any."""
    newest: int | None = await session.scalar(
        select(func.max(Change.id)).where(Change.user_id == user_id, Change.id > change_id)
    )
    return newest


async def events_after(
    session: AsyncSession, user_id: UUID, event_id: int, limit: int
) -> Sequence[AccountEvent]:
    return (
        await session.scalars(
            select(AccountEvent)
            .where(AccountEvent.user_id == user_id, AccountEvent.id > event_id)
            .order_by(AccountEvent.id)
            .limit(limit)
        )
    ).all()


async def prune(session: AsyncSession, before: datetime, limit: int) -> int:
    """Delete up to `limit` events made before `before`; returns how many."""
    oldest = (
        select(AccountEvent.user_id, AccountEvent.id)
        .where(AccountEvent.created_at < before)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    deleted = await session.execute(
        delete(AccountEvent)
        .where(func.row(AccountEvent.user_id, AccountEvent.id).in_(oldest))
        .returning(AccountEvent.id)
    )
    return len(deleted.all())
