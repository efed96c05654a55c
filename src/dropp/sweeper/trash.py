"""Trash older than TRASH_RETENTION_DAYS, purged like `DELETE /trash`."""

import logging
from datetime import datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dropp.files import tree
from dropp.files.models import Node
from dropp.storage.s3 import Storage
from dropp.sweeper.one_by_one import one_by_one

logger = logging.getLogger(__name__)


async def _purge_one(
    sessionmaker: async_sessionmaker[AsyncSession],
    storage: Storage,
    cutoff: datetime,
    skipped: set[UUID],
) -> bool:
    async with sessionmaker() as session:
        async with session.begin():
            # SKIP LOCKED: a root a restore holds right now is left to that request.
            root = await session.scalar(
                select(Node)
                .where(
                    Node.trash_root.is_(True),
                    Node.trashed_at <= cutoff,
                    Node.id.not_in(skipped),
                )
                .order_by(Node.trashed_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if root is None:
                return False
            root_id, owner_id, trashed_at = root.id, root.owner_id, root.trashed_at
            skipped.add(root_id)
            keys = await tree.purge(session, [root_id])
        logger.info(
            "sweeper: purged trash item %s of user %s, trashed at %s (%d stored key(s))",
            root_id,
            owner_id,
            trashed_at,
            len(keys),
        )
        # Rows first: bytes whose deletion fails are unreferenced, for the orphan scan.
        for key in keys:
            await storage.delete(key)
    return True


async def purge_old_trash(
    sessionmaker: async_sessionmaker[AsyncSession], storage: Storage, cutoff: datetime
) -> tuple[int, int]:
    """Purge every trash root trashed before `cutoff`, one short transaction each.

    Returns (purged, errors).
    """
    tried: set[UUID] = set()
    return await one_by_one(
        lambda: _purge_one(sessionmaker, storage, cutoff, tried), "purging a trash item failed"
    )
