"""Change-feed entries older than CHANGE_RETENTION_DAYS. Each batch raises its users'
`changes_pruned_through` in the same transaction, so a cursor from before the pruned ids is
answered 410 (re-snapshot) instead of silently missing changes."""

import logging
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

logger = logging.getLogger(__name__)

BATCH = 1000

# The oldest entries by age. `changes_pruned_through` takes the newest id deleted: an entry
# with a lower id may be younger and stay (ids are taken at insert, times at the start of the
# transaction), but no cursor at or past that id needs it, and one before it is answered 410.
PRUNE_BATCH = text(
    """
    WITH oldest AS (
        SELECT user_id, id FROM change WHERE created_at < :cutoff
        ORDER BY created_at LIMIT :batch FOR UPDATE SKIP LOCKED
    ), deleted AS (
        DELETE FROM change USING oldest
        WHERE change.user_id = oldest.user_id AND change.id = oldest.id
        RETURNING change.id, change.user_id
    ), raised AS (
        UPDATE user_account
        SET changes_pruned_through = greatest(user_account.changes_pruned_through, newest.id)
        FROM (SELECT user_id, max(id) AS id FROM deleted GROUP BY user_id) AS newest
        WHERE user_account.id = newest.user_id
    )
    SELECT count(*) FROM deleted
    """
)


async def prune_changes(sessionmaker: async_sessionmaker[AsyncSession], cutoff: datetime) -> int:
    """Delete feed entries made before `cutoff`, in short transactions; returns how many."""
    pruned = 0
    while True:
        async with sessionmaker.begin() as session:
            deleted = await session.scalar(PRUNE_BATCH, {"cutoff": cutoff, "batch": BATCH})
        pruned += deleted or 0
        if not deleted or deleted < BATCH:
            break
    if pruned:
        logger.info("sweeper: pruned %d change feed entr(ies) older than %s", pruned, cutoff)
    return pruned
