"""Revision retention: per file, the current revision, the newest REVISION_KEEP_COUNT others,
and none older than REVISION_KEEP_DAYS. A dropped revision's stored version goes with its row,
and its bytes go back to the owner's quota."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import ColumnElement, Select, delete, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dropp.core.config import Settings
from dropp.files.models import FileRevision, Node, RevisionState
from dropp.quotas import service as quotas_service
from dropp.storage.s3 import Storage

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Dropped:
    storage_key: str
    version_id: str | None


def _beyond_retention(settings: Settings, now: datetime) -> Select[tuple[UUID, UUID]]:
    """(revision id, file id) of every complete, non-current revision retention drops."""
    newest_first = func.row_number().over(
        partition_by=FileRevision.node_id,
        order_by=(FileRevision.completed_at.desc(), FileRevision.id.desc()),
    )
    ranked = (
        select(
            FileRevision.id,
            FileRevision.node_id,
            FileRevision.completed_at,
            newest_first.label("rank"),
        )
        .join(Node, Node.id == FileRevision.node_id)
        .where(
            FileRevision.state == RevisionState.COMPLETE,
            FileRevision.id.is_distinct_from(Node.current_revision_id),
        )
        .subquery()
    )
    limits: list[ColumnElement[bool]] = []
    if settings.revision_keep_count is not None:
        limits.append(ranked.c.rank > settings.revision_keep_count)
    if settings.revision_keep_days is not None:
        cutoff = now - timedelta(days=settings.revision_keep_days)
        limits.append(ranked.c.completed_at < cutoff)
    return select(ranked.c.id, ranked.c.node_id).where(or_(false(), *limits))


async def _prune_one(
    sessionmaker: async_sessionmaker[AsyncSession],
    storage: Storage,
    settings: Settings,
    now: datetime,
    skipped: set[UUID],
) -> int | None:
    """Prune one file's old revisions in one short transaction; None when none is left."""
    beyond = _beyond_retention(settings, now).subquery()
    async with sessionmaker() as session, session.begin():
        # The file row is what completion, restore and deletion lock first: a file busy with
        # one of them is skipped until the next sweep.
        node = await session.scalar(
            select(Node)
            .where(Node.id.in_(select(beyond.c.node_id)), Node.id.not_in(skipped))
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if node is None:
            return None
        skipped.add(node.id)
        # Judged again under the lock: the current revision may have changed meanwhile.
        removed = (
            await session.execute(
                delete(FileRevision)
                .where(FileRevision.id.in_(select(beyond.c.id).where(beyond.c.node_id == node.id)))
                .returning(FileRevision.storage_key, FileRevision.version_id, FileRevision.size)
                .execution_options(synchronize_session=False)
            )
        ).all()
        await quotas_service.settle(
            session, node.owner_id, kept=-sum(row.size or 0 for row in removed)
        )
        dropped = [Dropped(row.storage_key, row.version_id) for row in removed]
    # Rows first, as deletion does: a version whose deletion fails is an unreferenced object,
    # which the orphan scan removes later.
    for item in dropped:
        if item.version_id is not None:
            await storage.delete_version(item.storage_key, item.version_id)
        else:
            await storage.delete(item.storage_key)
    logger.info(
        "sweeper: dropped %d old revision(s) of file %s of user %s",
        len(dropped),
        node.id,
        node.owner_id,
    )
    return len(dropped)


async def prune_revisions(
    sessionmaker: async_sessionmaker[AsyncSession],
    storage: Storage,
    settings: Settings,
    now: datetime,
) -> tuple[int, int]:
    """Apply revision retention to every file, one short transaction each.

    Returns (revisions dropped, errors).
    """
    if settings.revision_keep_count is None and settings.revision_keep_days is None:
        return 0, 0
    dropped = errors = 0
    # Each file is tried once per sweep: one that fails waits for the next sweep.
    tried: set[UUID] = set()
    while True:
        try:
            count = await _prune_one(sessionmaker, storage, settings, now, tried)
        except Exception:
            logger.exception("sweeper: dropping old revisions failed; retried next sweep")
            errors += 1
            continue
        if count is None:
            return dropped, errors
        dropped += count
