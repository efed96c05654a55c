"""Files past their `expires_at`, removed like `DELETE /files/{id}`."""

import logging
from datetime import datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dropp.files import service as files_service
from dropp.files.models import Node, NodeKind
from dropp.storage.s3 import Storage
from dropp.sweeper.one_by_one import one_by_one

logger = logging.getLogger(__name__)


async def _remove_one(
    sessionmaker: async_sessionmaker[AsyncSession],
    storage: Storage,
    now: datetime,
    skipped: set[UUID],
) -> bool:
    async with sessionmaker() as session:
        async with session.begin():
            node = await session.scalar(
                select(Node)
                .where(Node.kind == NodeKind.FILE, Node.expires_at <= now, Node.id.not_in(skipped))
                .order_by(Node.expires_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if node is None:
                return False
            file_id, owner_id, expires_at = node.id, node.owner_id, node.expires_at
            skipped.add(file_id)
            keys = await files_service.delete_file(session, node)
        # Rows first, as DELETE /files does: bytes whose deletion fails are unreferenced
        # objects, which the orphan scan removes later.
        logger.info(
            "sweeper: removed file %s of user %s, expired at %s (%d stored key(s))",
            file_id,
            owner_id,
            expires_at,
            len(keys),
        )
        for key in keys:
            await storage.delete(key)
    return True


async def remove_expired_files(
    sessionmaker: async_sessionmaker[AsyncSession], storage: Storage, now: datetime
) -> tuple[int, int]:
    """Remove every file whose expiry is past, one short transaction each.

    Returns (removed, errors).
    """
    # Each file is tried once per sweep: one that fails waits for the next sweep.
    tried: set[UUID] = set()
    return await one_by_one(
        lambda: _remove_one(sessionmaker, storage, now, tried), "removing an expired file failed"
    )
