"""Pending uploads whose window has passed: completed if storage holds their bytes (a client
that crashed before `complete`), else expired with whatever storage holds for them; and the
files such uploads leave behind with nothing to serve (placeholders), removed."""

import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dropp.core.errors import DroppError
from dropp.files import service as files_service
from dropp.files.models import FileRevision, Node, NodeKind, RevisionState
from dropp.storage.s3 import Storage
from dropp.sweeper.one_by_one import one_by_one
from dropp.uploads import service as uploads_service

logger = logging.getLogger(__name__)


class Outcome(StrEnum):
    COMPLETED = "completed"
    EXPIRED = "expired"
    # Another sweeper or a late `complete` resolved it first.
    ALREADY_RESOLVED = "already_resolved"


@dataclass(frozen=True, slots=True)
class ClaimedUpload:
    owner_id: UUID
    file_id: UUID
    revision_id: UUID


async def _claim(
    session: AsyncSession, cutoff: datetime, skipped: set[UUID]
) -> ClaimedUpload | None:
    # The file row is the one `complete` and deletion lock first; SKIP LOCKED leaves files
    # another sweeper or a request holds to them.
    row = (
        await session.execute(
            select(Node.owner_id, Node.id, FileRevision.id)
            .join(FileRevision, FileRevision.node_id == Node.id)
            .where(
                FileRevision.state == RevisionState.PENDING,
                FileRevision.upload_expires_at < cutoff,
                FileRevision.id.not_in(skipped),
            )
            .order_by(FileRevision.upload_expires_at)
            .limit(1)
            .with_for_update(of=Node, skip_locked=True)
        )
    ).first()
    return None if row is None else ClaimedUpload(*row)


async def _reconcile(session: AsyncSession, storage: Storage, claimed: ClaimedUpload) -> Outcome:
    revision = await files_service.lock_revision(
        session, claimed.owner_id, claimed.file_id, claimed.revision_id
    )
    if revision is None or revision.state != RevisionState.PENDING:
        return Outcome.ALREADY_RESOLVED
    # What `POST /upload/{id}/complete` would do, under the same locks: the outcome is the one
    # a late complete would have given, whichever of the two runs first.
    try:
        await uploads_service.complete_upload(
            session, storage, claimed.owner_id, claimed.file_id, claimed.revision_id
        )
    except DroppError as error:
        if error.status >= 500:
            raise
        reason = error.code
    else:
        logger.info(
            "sweeper: completed upload %s of file %s: storage held its bytes but the client "
            "never called complete",
            revision.id,
            revision.node_id,
        )
        return Outcome.COMPLETED
    # Past its window plus grace, nothing can add bytes any more: this upload will never
    # complete. Its objects go while the row is locked, before the commit: if that commit is
    # lost, the upload is still pending and the next sweep finds nothing left to delete.
    if revision.state == RevisionState.PENDING:
        await files_service.expire_revision(session, revision)
    if revision.multipart_upload_id is not None:
        await storage.abort_multipart_upload(revision.storage_key, revision.multipart_upload_id)
    versions = await storage.key_versions(revision.storage_key)
    if versions:
        await storage.delete_versions(versions)
    logger.info(
        "sweeper: upload %s of file %s ended as %s (%s); deleted %d stored version(s)%s",
        revision.id,
        revision.node_id,
        revision.state,
        reason,
        len(versions),
        ", aborted its multipart upload" if revision.multipart_upload_id else "",
    )
    return Outcome.EXPIRED


async def _sweep_one(
    sessionmaker: async_sessionmaker[AsyncSession],
    storage: Storage,
    cutoff: datetime,
    skipped: set[UUID],
) -> Outcome | None:
    async with sessionmaker() as session, session.begin():
        claimed = await _claim(session, cutoff, skipped)
        if claimed is None:
            return None
        try:
            return await _reconcile(session, storage, claimed)
        except Exception:
            # Rolled back and left pending: the next sweep tries again, this one moves on.
            skipped.add(claimed.revision_id)
            raise


async def _remove_placeholder(
    sessionmaker: async_sessionmaker[AsyncSession],
    storage: Storage,
    cutoff: datetime,
    skipped: set[UUID],
) -> bool:
    """Remove one file that never got a complete revision and has no upload left to give it
    one, its last upload ended before `cutoff`; False when there is none."""
    ended = (
        select(func.max(FileRevision.completed_at))
        .where(FileRevision.node_id == Node.id)
        .scalar_subquery()
    )
    pending = exists().where(
        FileRevision.node_id == Node.id, FileRevision.state == RevisionState.PENDING
    )
    async with sessionmaker() as session:
        async with session.begin():
            # The file row is the one uploads lock first (and take KEY SHARE on through their
            # new revision), so a new upload of this name waits for the removal or is seen.
            node = await session.scalar(
                select(Node)
                .where(
                    Node.kind == NodeKind.FILE,
                    Node.current_revision_id.is_(None),
                    ~pending,
                    ended < cutoff,
                    Node.id.not_in(skipped),
                )
                .limit(1)
                .with_for_update(of=Node, skip_locked=True)
            )
            if node is None:
                return False
            skipped.add(node.id)
            if node.trashed_at is None:
                # Listings showed it (as `expired` or `failed`); the feed says it is gone, as
                # it says for a file going to the trash.
                await files_service.announce_deletion(session, node)
            file_id, owner_id = node.id, node.owner_id
            keys = await files_service.delete_file(session, node)
        logger.info(
            "sweeper: removed file %s of user %s: no upload of it ever completed", file_id, owner_id
        )
        # Rows first: bytes whose deletion fails are unreferenced objects for the orphan scan.
        for key in keys:
            await storage.delete(key)
    return True


async def remove_placeholders(
    sessionmaker: async_sessionmaker[AsyncSession], storage: Storage, cutoff: datetime
) -> tuple[int, int]:
    """Remove every file whose uploads all ended (expired, failed) before `cutoff` without one
    completing: it has nothing to download and nothing can complete it. Returns (removed,
    errors). A late `complete` within the grace still gets its upload's own answer."""
    tried: set[UUID] = set()
    return await one_by_one(
        lambda: _remove_placeholder(sessionmaker, storage, cutoff, tried),
        "removing a file without bytes failed",
    )


async def reconcile_expired_uploads(
    sessionmaker: async_sessionmaker[AsyncSession], storage: Storage, cutoff: datetime
) -> tuple[int, int, int]:
    """Resolve every pending upload whose window ended before `cutoff`, one short transaction
    each. Returns (completed, expired, errors)."""
    counts = {Outcome.COMPLETED: 0, Outcome.EXPIRED: 0, Outcome.ALREADY_RESOLVED: 0}
    errors = 0
    skipped: set[UUID] = set()
    while True:
        try:
            outcome = await _sweep_one(sessionmaker, storage, cutoff, skipped)
        except Exception:
            logger.exception("sweeper: resolving an expired upload failed; retried next sweep")
            errors += 1
            continue
        if outcome is None:
            # Uploads expired by this sweep ended after `cutoff`: their files go in a later
            # sweep, once a late complete has had the grace to learn the upload's outcome.
            removed, failed = await remove_placeholders(sessionmaker, storage, cutoff)
            if removed:
                logger.info("sweeper: removed %d file(s) no upload completed", removed)
            return counts[Outcome.COMPLETED], counts[Outcome.EXPIRED], errors + failed
        counts[outcome] += 1
