"""The per-user tree lock, held until the transaction ends.

A structural change (folders made through the API, moves, trash, restore, purge) takes it
alone: a move racing a trash could otherwise leave a live node inside a trashed folder, and
two crossing folder moves could each pass the cycle check. Upload-init shares it, so uploads
never wait for each other but never interleave with a structural change: a file started in a
folder the moment it is trashed either lands before the trash (and goes with it) or after
(in a new folder of that name), never live inside the trashed one.
"""

from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

# "TREE": the first key of the lock; the second is the user's.
TREE_LOCK_NAMESPACE = 0x54524545


async def lock_tree(session: AsyncSession, owner_id: UUID) -> None:
    await session.execute(
        select(func.pg_advisory_xact_lock(TREE_LOCK_NAMESPACE, func.hashtext(str(owner_id))))
    )


async def share_tree(session: AsyncSession, owner_id: UUID) -> None:
    await session.execute(
        select(func.pg_advisory_xact_lock_shared(TREE_LOCK_NAMESPACE, func.hashtext(str(owner_id))))
    )
