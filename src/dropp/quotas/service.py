"""Storage quotas.

`user_account.used_bytes` is the size of every complete revision the account keeps (history
counts), moved by single atomic UPDATEs. What pending uploads hold is on each revision
(`file_revision.reserved_bytes`) and summed when needed, so an account without a quota never
has its row written or locked at upload-init: its uploads do not queue behind each other.
"""

from uuid import UUID

from sqlalchemy import distinct, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from dropp.auth.models import User
from dropp.core.config import Settings
from dropp.files.models import FileRevision, Node, NodeKind, RevisionState
from dropp.quotas.errors import QuotaExceeded
from dropp.quotas.schemas import ContentTypeUsage, UsageRead

# One statement for every upload-init. Locks the account row only when a quota applies: a row
# the WHERE leaves out is not locked. Without a quota the revision holds what it asked for
# at once. NO KEY UPDATE, because concurrent inserts of the account's nodes hold KEY SHARE on
# its row; taken after the revision was inserted, the order completion and deletion take
# (file row, then account), so an init racing them waits instead of deadlocking.
LOCK_QUOTA_OR_HOLD = text(
    """
    WITH account AS (
        SELECT used_bytes, coalesce(quota_bytes, CAST(:default_quota AS bigint)) AS quota
        FROM user_account
        WHERE id = CAST(:owner_id AS uuid)
          AND coalesce(quota_bytes, CAST(:default_quota AS bigint)) IS NOT NULL
        FOR NO KEY UPDATE
    ), held AS (
        UPDATE file_revision SET reserved_bytes = CAST(:wanted AS bigint)
        WHERE id = CAST(:revision_id AS uuid) AND NOT EXISTS (SELECT FROM account)
    )
    SELECT used_bytes, quota FROM account
    """
)

# A separate statement after the lock, so its snapshot sees every reservation committed by the
# inits that held the lock before this one.
PENDING_RESERVED = text(
    """
    SELECT CAST(coalesce(sum(r.reserved_bytes), 0) AS bigint)
    FROM file_revision r JOIN node n ON n.id = r.node_id
    WHERE n.owner_id = CAST(:owner_id AS uuid) AND r.state = 'pending'
    """
)

# Read and clear what the revision holds, and add what it keeps to its owner's used bytes.
SETTLE_REVISION = text(
    """
    WITH held AS (
        SELECT file_revision.id, node.owner_id
        FROM file_revision JOIN node ON node.id = file_revision.node_id
        WHERE file_revision.id = CAST(:revision_id AS uuid)
        FOR NO KEY UPDATE OF file_revision
    ), cleared AS (
        UPDATE file_revision SET reserved_bytes = 0
        FROM held WHERE file_revision.id = held.id AND file_revision.reserved_bytes <> 0
    )
    UPDATE user_account SET used_bytes = user_account.used_bytes + CAST(:kept AS bigint)
    FROM held WHERE user_account.id = held.owner_id AND CAST(:kept AS bigint) <> 0
    """
)


def effective_quota(settings: Settings, quota_bytes: int | None) -> int | None:
    """The account's own quota, else DEFAULT_QUOTA_BYTES; None: no quota."""
    return quota_bytes if quota_bytes is not None else settings.default_quota_bytes


async def reserve_upload(
    session: AsyncSession,
    settings: Settings,
    owner_id: UUID,
    revision_id: UUID,
    *,
    size: int | None,
    max_bytes: int,
) -> int:
    """Hold quota for a pending revision until it completes, fails, expires or is deleted.

    A declared `size` is held exactly; without one, the most the form may take (`max_bytes`,
    capped at what the quota leaves, at least one byte). Returns the bytes held, which is also
    the largest upload the form may allow. QuotaExceeded, holding nothing, if they do not fit.
    """
    wanted = size if size is not None else max_bytes
    needed = size if size is not None else min(1, max_bytes)
    parameters = {
        "owner_id": owner_id,
        "revision_id": revision_id,
        "default_quota": settings.default_quota_bytes,
        "wanted": wanted,
    }
    account = (await session.execute(LOCK_QUOTA_OR_HOLD, parameters)).one_or_none()
    if account is None:
        return wanted  # no quota: held already
    used: int = account.used_bytes
    quota: int = account.quota
    reserved: int = await session.scalar(PENDING_RESERVED, {"owner_id": owner_id}) or 0
    left = max(quota - used - reserved, 0)
    granted = min(wanted, left)
    if granted >= needed:
        await session.execute(
            update(FileRevision)
            .where(FileRevision.id == revision_id)
            .values(reserved_bytes=granted)
            .execution_options(synchronize_session=False)
        )
        return granted
    if size is None:
        raise QuotaExceeded(
            f"Your quota of {quota} bytes is used up ({used} kept, {reserved} held by pending "
            "uploads): delete files or wait for pending uploads to finish.",
            requested=needed,
            used=used,
            reserved=reserved,
            quota=quota,
        )
    raise QuotaExceeded(
        f"This upload needs {size} bytes, but your quota of {quota} bytes has {left} left "
        f"({used} kept, {reserved} held by pending uploads).",
        requested=size,
        used=used,
        reserved=reserved,
        quota=quota,
    )


async def settle_revision(session: AsyncSession, revision: FileRevision, *, kept: int = 0) -> None:
    """Release what the revision holds of its owner's quota and add `kept` bytes to used.

    Call it when a pending revision completes (`kept`: its real size), fails or expires, and
    before deleting a pending revision by any other path. The hold is read and cleared in the
    same statement, so releasing twice releases nothing the second time.
    """
    await session.execute(SETTLE_REVISION, {"revision_id": revision.id, "kept": kept})
    set_committed_value(revision, "reserved_bytes", 0)


async def settle(session: AsyncSession, owner_id: UUID, *, kept: int) -> None:
    """Add `kept` bytes (negative: freed) to the owner's used bytes. What deleted pending
    revisions held goes with their rows."""
    if kept == 0:
        return
    await session.execute(
        update(User)
        .where(User.id == owner_id)
        .values(used_bytes=User.used_bytes + kept)
        .execution_options(synchronize_session=False)
    )


async def usage(session: AsyncSession, settings: Settings, user: User) -> UsageRead:
    """The account's totals, its quota, and its kept bytes by content type."""
    files = await session.scalar(
        select(func.count()).where(Node.owner_id == user.id, Node.kind == NodeKind.FILE)
    )
    by_type = await session.execute(
        select(
            FileRevision.content_type,
            func.count(distinct(FileRevision.node_id)),
            func.coalesce(func.sum(FileRevision.size), 0),
        )
        .join(Node, Node.id == FileRevision.node_id)
        .where(Node.owner_id == user.id, FileRevision.state == RevisionState.COMPLETE)
        .group_by(FileRevision.content_type)
        .order_by(func.sum(FileRevision.size).desc(), FileRevision.content_type)
    )
    return UsageRead(
        files=files or 0,
        bytes=user.used_bytes,
        reserved=await session.scalar(PENDING_RESERVED, {"owner_id": user.id}) or 0,
        quota=effective_quota(settings, user.quota_bytes),
        by_content_type=[
            ContentTypeUsage(content_type=content_type, files=count, bytes=total)
            for content_type, count, total in by_type
        ],
    )
