"""What storage holds that no row accounts for: multipart uploads nobody will complete and
objects no revision references. Only one sweeper at a time scans storage."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from dropp.files.models import FileRevision, RevisionState
from dropp.storage.s3 import Storage, StoredVersion

logger = logging.getLogger(__name__)

# Every object Dropp writes is under this prefix (see uploads.service.storage_key): the rest of
# the bucket is not Dropp's to clean.
PREFIX = "u/"
# "DROPPSWP": the PostgreSQL advisory lock one storage scan holds at a time.
SCAN_LOCK_ID = 0x44524F5050535750
BATCH = 500


@asynccontextmanager
async def scan_lock(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncConnection | None]:
    """A connection holding the scan lock, or None if another sweeper holds it.

    A session-level lock on an autocommit connection: no transaction stays open while storage
    is listed, and each query on it is its own short one.
    """
    async with sessionmaker() as session:
        connection = await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        if not await connection.scalar(select(func.pg_try_advisory_lock(SCAN_LOCK_ID))):
            yield None
            return
        try:
            yield connection
        finally:
            try:
                await connection.scalar(select(func.pg_advisory_unlock(SCAN_LOCK_ID)))
            except BaseException:
                # A pooled connection must never keep the lock: drop it, which releases it.
                await connection.invalidate()
                raise


async def abort_stale_multipart_uploads(
    connection: AsyncConnection, storage: Storage, cutoff: datetime
) -> int:
    """Abort multipart uploads started before `cutoff` that no pending revision references."""
    stale = [u for u in await storage.list_multipart_uploads(PREFIX) if u.initiated < cutoff]
    if not stale:
        return 0
    referenced = set(
        await connection.scalars(
            select(FileRevision.multipart_upload_id).where(
                FileRevision.state == RevisionState.PENDING,
                FileRevision.multipart_upload_id.in_([u.upload_id for u in stale]),
            )
        )
    )
    aborted = 0
    for upload in stale:
        if upload.upload_id in referenced:
            continue
        if await storage.abort_multipart_upload(upload.key, upload.upload_id):
            logger.info(
                "sweeper: aborted multipart upload %s of %s, started %s and referenced by no "
                "pending upload",
                upload.upload_id,
                upload.key,
                upload.initiated,
            )
            aborted += 1
    return aborted


async def _delete_unreferenced(
    connection: AsyncConnection, storage: Storage, candidates: list[list[StoredVersion]]
) -> int:
    keys = [versions[0].key for versions in candidates]
    # Listed before this query: a listed object was written after its row committed, so a row
    # that references it is visible here.
    referenced = set(
        await connection.scalars(
            select(FileRevision.storage_key).where(FileRevision.storage_key.in_(keys))
        )
    )
    deleted = 0
    for versions in candidates:
        key = versions[0].key
        if key in referenced:
            continue
        await storage.delete_versions(versions)
        logger.info(
            "sweeper: deleted unreferenced object %s (%d version(s), last written %s)",
            key,
            len(versions),
            max(v.last_modified for v in versions),
        )
        deleted += 1
    return deleted


async def delete_orphan_objects(
    connection: AsyncConnection, storage: Storage, cutoff: datetime
) -> int:
    """Delete every version of keys under `u/` no revision references, last written before
    `cutoff`. Returns how many keys."""
    deleted = 0
    candidates: list[list[StoredVersion]] = []
    async for versions in storage.iter_key_versions(PREFIX):
        if max(v.last_modified for v in versions) < cutoff:
            candidates.append(versions)
        if len(candidates) >= BATCH:
            deleted += await _delete_unreferenced(connection, storage, candidates)
            candidates = []
    if candidates:
        deleted += await _delete_unreferenced(connection, storage, candidates)
    return deleted
