"""Change-feed entries older than CHANGE_RETENTION_DAYS. Each batch raises its users'
`changes_pruned_through` in the same transaction, so a cursor from before the pruned ids is
answered 410 (re-snapshot) instead of silently missing changes."""

import logging
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

logger = logging.getLogger(__name__)

BATCH = 1000

# The oldest entries by id (the primary key's order, which follows time), so no index on
# `created_at` is needed: a batch that reaches an entry still within retention is the last.
PRUNE_BATCH = text(
    """
    WITH oldest AS (
        SELECT id, user_id, created_at < :cutoff AS old FROM change
        ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED
    ), deleted AS (
        DELETE FROM change USING oldest
        WHERE change.id = oldest.id AND oldest.old
        RETURNING change.id, change.user_id
    ), raised AS (
        UPDATE user_account
        SET changes_pruned_through = greatest(user_account.changes_pruned_through, newest.id)
        FROM (SELECT user_id, max(id) AS id FROM deleted GROUP BY user_id) AS newest
        WHERE user_account.id = newest.user_id
    )
    SELECT (SELECT count(*) FROM deleted) AS deleted,
           (SELECT count(*) FROM oldest WHERE NOT old) AS kept
    """
)


async def prune_changes(sessionmaker: async_sessionmaker[AsyncSession], cutoff: datetime) -> int:
    """Delete feed entries made before `cutoff`, in short transactions; returns how many."""
    pruned = 0
    while True:
        async with sessionmaker.begin() as session:
            row = (await session.execute(PRUNE_BATCH, {"cutoff": cutoff, "batch": BATCH})).one()
        pruned += int(row.deleted)
        if row.kept or row.deleted < BATCH:
            break
    if pruned:
        logger.info("sweeper: pruned %d change feed entr(ies) older than %s", pruned, cutoff)
    return pruned
