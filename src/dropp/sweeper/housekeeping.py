"""Rows whose purpose is over: expired idempotency keys, and sign-in records (sign-ins,
codes, device authorizations, web sessions, email links) used or expired over a day ago."""

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dropp.auth.models import (
    AuthorizationCode,
    DeviceAuthorization,
    EmailToken,
    SignIn,
    WebSession,
)
from dropp.idempotency import service as idempotency_service

logger = logging.getLogger(__name__)

# Kept a day past their end, so a late replay is still recognized as one.
KEEP = timedelta(days=1)
BATCH = 1000


def _stale(old: datetime) -> list[tuple[Any, ColumnElement[bool]]]:
    return [
        (SignIn, or_(SignIn.expires_at <= old, SignIn.confirmed_at <= old)),
        (AuthorizationCode, AuthorizationCode.expires_at <= old),
        (DeviceAuthorization, DeviceAuthorization.expires_at <= old),
        (WebSession, or_(WebSession.expires_at <= old, WebSession.revoked_at <= old)),
        (EmailToken, or_(EmailToken.expires_at <= old, EmailToken.used_at <= old)),
    ]


async def _delete_batch(session: AsyncSession, model: Any, condition: ColumnElement[bool]) -> int:
    # SKIP LOCKED: a row a request is using right now waits for the next sweep.
    claimed = select(model.id).where(condition).limit(BATCH).with_for_update(skip_locked=True)
    deleted = await session.scalars(delete(model).where(model.id.in_(claimed)).returning(model.id))
    return len(deleted.all())


async def delete_stale_rows(
    sessionmaker: async_sessionmaker[AsyncSession], now: datetime
) -> tuple[int, int]:
    """Returns (idempotency keys deleted, other rows deleted), in batches of short
    transactions."""
    keys = 0
    while True:
        async with sessionmaker.begin() as session:
            count = await idempotency_service.delete_expired(session, now, BATCH)
        keys += count
        if count < BATCH:
            break
    rows = 0
    for model, condition in _stale(now - KEEP):
        table_rows = 0
        while True:
            async with sessionmaker.begin() as session:
                count = await _delete_batch(session, model, condition)
            table_rows += count
            if count < BATCH:
                break
        if table_rows:
            logger.info("sweeper: deleted %d stale %s row(s)", table_rows, model.__tablename__)
        rows += table_rows
    if keys:
        logger.info("sweeper: deleted %d expired idempotency key(s)", keys)
    return keys, rows
