"""Peer-to-peer transfers past their time, the cloud fallback's stored copies nobody needs
any more, finished transfers a day on, and account events past EVENTS_KEEP_HOURS."""

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dropp.events import service as events_service
from dropp.p2p import service as p2p_service
from dropp.storage.s3 import Storage, StoredVersion

logger = logging.getLogger(__name__)

BATCH = 1000
# A finished transfer's row is kept a day, for its sender's history and late messages.
KEEP_FINISHED = timedelta(days=1)


async def _batches(
    sessionmaker: async_sessionmaker[AsyncSession],
    step: Callable[[AsyncSession], Awaitable[int]],
) -> int:
    total = 0
    while True:
        async with sessionmaker.begin() as session:
            count = await step(session)
        total += count
        if count < BATCH:
            return total


async def sweep_transfers(
    sessionmaker: async_sessionmaker[AsyncSession],
    storage: Storage,
    now: datetime,
    events_before: datetime,
) -> tuple[int, int, int]:
    """Returns (transfers expired, stored copies deleted, rows deleted)."""
    expired = await _batches(
        sessionmaker, lambda session: p2p_service.expire_overdue(session, now, BATCH)
    )
    copies = 0
    async for versions in storage.iter_key_versions(p2p_service.STORAGE_PREFIX):
        by_transfer: dict[uuid.UUID, list[StoredVersion]] = {}
        for version in versions:
            try:
                transfer_id = uuid.UUID(version.key.removeprefix(p2p_service.STORAGE_PREFIX))
            except ValueError:
                continue
            by_transfer.setdefault(transfer_id, []).append(version)
        async with sessionmaker() as session:
            needed = await p2p_service.keys_in_use(session, list(by_transfer))
        unneeded = [v for t, vs in by_transfer.items() if t not in needed for v in vs]
        if unneeded:
            await storage.delete_versions(unneeded)
            copies += len({t for t in by_transfer if t not in needed})
    rows = await _batches(
        sessionmaker,
        lambda session: p2p_service.delete_finished(session, now - KEEP_FINISHED, BATCH),
    )
    rows += await _batches(
        sessionmaker, lambda session: events_service.prune(session, events_before, BATCH)
    )
    if expired or copies or rows:
        logger.info(
            "sweeper: %d transfer(s) expired, %d stored cop(ies) deleted, %d row(s) deleted",
            expired,
            copies,
            rows,
        )
    return expired, copies, rows
