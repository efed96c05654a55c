"""Caps on the pending uploads of one account (MAX_PENDING_UPLOADS, MAX_PENDING_BYTES).

Every upload-init path calls `check_pending_caps` after it added its pending revision and
held its bytes, so the new upload counts: direct and multipart uploads, editors' uploads
into a share (the owner's account) and uploads through a file request (the owner's too).
"""

from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.core.config import Settings
from dropp.core.errors import DroppError

# "PEND": the first key of the advisory lock; the second is the owner's, hashed as the other
# per-user locks hash it.
PENDING_LOCK_NAMESPACE = 0x50454E44

# Inits of one account take turns from here to their commit, so two of them cannot both see
# room for one more upload. The lock is the account's alone: other accounts never wait.
LOCK_AND_COUNT = text(
    f"""
    WITH locked AS MATERIALIZED (
        SELECT pg_advisory_xact_lock(
            {PENDING_LOCK_NAMESPACE}, hashtext(CAST(CAST(:owner_id AS uuid) AS text))
        )
    )
    SELECT count(*) AS uploads,
           CAST(coalesce(
               sum(greatest(r.reserved_bytes, coalesce(r.declared_size, 0))), 0
           ) AS bigint) AS held
    FROM locked, file_revision r JOIN node n ON n.id = r.node_id
    WHERE n.owner_id = CAST(:owner_id AS uuid) AND r.state = 'pending'
    """
)


class TooManyPendingUploads(DroppError):
    """The account holds MAX_PENDING_UPLOADS pending uploads, or MAX_PENDING_BYTES in them."""

    status, code = 429, "too_many_pending_uploads"


async def check_pending_caps(session: AsyncSession, settings: Settings, owner_id: UUID) -> None:
    """Refuse the upload just added if the owner's pending uploads, it included, exceed a cap.

    Raised before the commit, so the refused upload leaves nothing behind.
    """
    row = (await session.execute(LOCK_AND_COUNT, {"owner_id": owner_id})).one()
    uploads, held = int(row.uploads), int(row.held)
    if uploads > settings.max_pending_uploads:
        raise TooManyPendingUploads(
            f"This account already has {uploads - 1} uploads pending, the most it may hold "
            f"({settings.max_pending_uploads}): complete or cancel some, or wait for them to "
            "expire, before starting more.",
            pending_uploads=uploads - 1,
            max_pending_uploads=settings.max_pending_uploads,
        )
    if held > settings.max_pending_bytes:
        raise TooManyPendingUploads(
            f"Pending uploads of this account would hold {held} bytes, more than the "
            f"{settings.max_pending_bytes} it may hold at once: complete or cancel some, or "
            "declare the file's `size`, before starting more.",
            pending_bytes=held,
            max_pending_bytes=settings.max_pending_bytes,
        )
