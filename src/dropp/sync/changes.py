"""Recording the change feed: every change to a user's tree adds one row, in the same
transaction as the change, and wakes the user's long-polls through PostgreSQL NOTIFY (which
PostgreSQL delivers only if that transaction commits, to every API process listening)."""

from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.sync.models import Change, ChangeKind

NOTIFY_CHANNEL = "dropp_changes"


async def record(
    session: AsyncSession,
    *,
    user_id: UUID,
    node_id: UUID,
    change: ChangeKind,
    node_kind: str,
    path: str,
    revision_id: UUID | None = None,
    size: int | None = None,
    content_hash: str | None = None,
) -> None:
    """Add a change to `user_id`'s feed. `path` is where the node is after the change (where
    it was, for a deletion); a moved folder's subtree moves with it and gets no rows of its own."""
    # Ids come from one global sequence and transactions commit in any order, so a reader could
    # pass an id whose transaction commits later. Holding the account row (the lock quotas
    # already take, after the file row) from before the id is drawn until commit makes each
    # user's changes commit in id order, so a cursor never skips one.
    await session.execute(
        text("SELECT 1 FROM user_account WHERE id = :user_id FOR NO KEY UPDATE"),
        {"user_id": user_id},
    )
    session.add(
        Change(
            user_id=user_id,
            node_id=node_id,
            change=change,
            node_kind=node_kind,
            path=path,
            revision_id=revision_id,
            size=size,
            content_hash=content_hash,
        )
    )
    # PostgreSQL folds identical notifications of one transaction into one.
    await session.execute(
        text("SELECT pg_notify(:channel, :user_id)"),
        {"channel": NOTIFY_CHANNEL, "user_id": str(user_id)},
    )
