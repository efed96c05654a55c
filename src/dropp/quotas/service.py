"""Storage quotas: each account's running totals, moved only by single atomic statements.

`user_account.used_bytes` is the size of every complete revision the account keeps (history
counts); `user_account.reserved_bytes` is the sum of `file_revision.reserved_bytes`, which a
revision holds only while pending. Every change is one UPDATE computed from the row itself, so
concurrent requests never lose an update or overrun a quota.
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

# One statement: lock the account row, grant `wanted` bytes (capped at what the quota leaves),
# record the grant on the pending revision, and report the numbers it was judged on. The
# account is locked after the revision was inserted, the order completion and deletion take
# (file row, then account), so an init racing them waits instead of deadlocking; NO KEY UPDATE
# because concurrent inserts of the account's nodes hold KEY SHARE on its row.
RESERVE = text(
    """
    WITH account AS (
        SELECT id, used_bytes, reserved_bytes,
               coalesce(quota_bytes, CAST(:default_quota AS bigint)) AS quota
        FROM user_account WHERE id = CAST(:owner_id AS uuid)
        FOR NO KEY UPDATE
    ), offer AS (
        SELECT id, used_bytes, reserved_bytes, quota,
               CASE WHEN quota IS NULL THEN CAST(:wanted AS bigint)
                    ELSE least(CAST(:wanted AS bigint),
                               greatest(quota - used_bytes - reserved_bytes, 0))
               END AS amount
        FROM account
    ), taken AS (
        UPDATE user_account SET reserved_bytes = user_account.reserved_bytes + offer.amount
        FROM offer
        WHERE user_account.id = offer.id AND offer.amount >= CAST(:needed AS bigint)
        RETURNING offer.amount
    ), recorded AS (
        UPDATE file_revision SET reserved_bytes = taken.amount
        FROM taken WHERE file_revision.id = CAST(:revision_id AS uuid)
    )
    SELECT (SELECT amount FROM taken) AS granted, used_bytes, reserved_bytes, quota FROM offer
    """
)

# One statement: read and clear what the revision holds, and move the owner's totals by it.
SETTLE_REVISION = text(
    """
    WITH held AS (
        SELECT file_revision.id, file_revision.reserved_bytes, node.owner_id
        FROM file_revision JOIN node ON node.id = file_revision.node_id
        WHERE file_revision.id = CAST(:revision_id AS uuid)
        FOR NO KEY UPDATE OF file_revision
    ), cleared AS (
        UPDATE file_revision SET reserved_bytes = 0
        FROM held WHERE file_revision.id = held.id AND held.reserved_bytes <> 0
    )
    UPDATE user_account
    SET reserved_bytes = user_account.reserved_bytes - held.reserved_bytes,
        used_bytes = user_account.used_bytes + CAST(:kept AS bigint)
    FROM held WHERE user_account.id = held.owner_id
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
    row = (
        await session.execute(
            RESERVE,
            {
                "owner_id": owner_id,
                "revision_id": revision_id,
                "default_quota": settings.default_quota_bytes,
                "wanted": wanted,
                "needed": needed,
            },
        )
    ).one()
    if row.granted is not None:
        granted: int = row.granted
        return granted
    numbers = {"used": row.used_bytes, "reserved": row.reserved_bytes, "quota": row.quota}
    if size is None:
        raise QuotaExceeded(
            f"Your quota of {row.quota} bytes is used up ({row.used_bytes} kept, "
            f"{row.reserved_bytes} held by pending uploads): delete files or wait for pending "
            "uploads to finish.",
            requested=needed,
            **numbers,
        )
    raise QuotaExceeded(
        f"This upload needs {size} bytes, but your quota of {row.quota} bytes has "
        f"{max(row.quota - row.used_bytes - row.reserved_bytes, 0)} left ({row.used_bytes} "
        f"kept, {row.reserved_bytes} held by pending uploads).",
        requested=size,
        **numbers,
    )


async def settle_revision(session: AsyncSession, revision: FileRevision, *, kept: int = 0) -> None:
    """Release what the revision holds of its owner's quota and add `kept` bytes to used.

    Call it when a pending revision completes (`kept`: its real size), fails or expires, and
    before deleting a pending revision by any other path. The hold is read and cleared in the
    same statement, so releasing twice releases nothing the second time.
    """
    await session.execute(SETTLE_REVISION, {"revision_id": revision.id, "kept": kept})
    set_committed_value(revision, "reserved_bytes", 0)


async def settle(
    session: AsyncSession, owner_id: UUID, *, released: int = 0, kept: int = 0
) -> None:
    """Release `released` reserved bytes and add `kept` bytes (negative: freed) to used."""
    if released == 0 and kept == 0:
        return
    await session.execute(
        update(User)
        .where(User.id == owner_id)
        .values(
            reserved_bytes=User.reserved_bytes - released,
            used_bytes=User.used_bytes + kept,
        )
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
        reserved=user.reserved_bytes,
        quota=effective_quota(settings, user.quota_bytes),
        by_content_type=[
            ContentTypeUsage(content_type=content_type, files=count, bytes=total)
            for content_type, count, total in by_type
        ],
    )
