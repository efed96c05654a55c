"""One sweep: every cleanup case, each in short transactions that claim their rows with
SKIP LOCKED (or, for storage scans, an advisory lock), so sweepers in several API processes
never handle the same thing twice and requests never wait on one for long."""

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dropp.core.config import Settings
from dropp.observability.metrics import SWEEP_ERRORS, SWEEPS, SWEPT
from dropp.storage.s3 import Storage
from dropp.sweeper import (
    changes,
    files,
    housekeeping,
    revisions,
    storage_scan,
    transfers,
    trash,
    uploads,
)
from dropp.sweeper.summary import SweepSummary

logger = logging.getLogger(__name__)


async def sweep(
    sessionmaker: async_sessionmaker[AsyncSession], storage: Storage, settings: Settings
) -> SweepSummary:
    """Run every case once. A failing case is logged and counted; the others still run."""
    summary = SweepSummary()
    now = datetime.now(UTC)
    grace = timedelta(seconds=settings.sweep_grace_seconds)

    completed, expired, errors = await uploads.reconcile_expired_uploads(
        sessionmaker, storage, now - grace
    )
    summary.uploads_completed += completed
    summary.uploads_expired += expired
    summary.errors += errors

    removed, errors = await files.remove_expired_files(sessionmaker, storage, now)
    summary.files_expired += removed
    summary.errors += errors

    pruned, errors = await revisions.prune_revisions(sessionmaker, storage, settings, now)
    summary.revisions_pruned += pruned
    summary.errors += errors

    purged, errors = await trash.purge_old_trash(
        sessionmaker, storage, now - timedelta(days=settings.trash_retention_days)
    )
    summary.trash_purged += purged
    summary.errors += errors

    try:
        async with storage_scan.scan_lock(sessionmaker) as connection:
            if connection is None:
                logger.info("sweeper: another sweeper is scanning storage; skipped here")
            else:
                # An upload's multipart upload is referenced while it may still complete.
                window = timedelta(seconds=settings.multipart_upload_ttl_seconds)
                summary.multipart_uploads_aborted += (
                    await storage_scan.abort_stale_multipart_uploads(
                        connection, storage, now - window - grace
                    )
                )
                summary.orphan_objects_deleted += await storage_scan.delete_orphan_objects(
                    connection, storage, now - grace
                )
    except Exception:
        logger.exception("sweeper: scanning storage failed; retried next sweep")
        summary.errors += 1

    try:
        keys, rows = await housekeeping.delete_stale_rows(sessionmaker, now)
        summary.idempotency_keys_deleted += keys
        summary.stale_rows_deleted += rows
    except Exception:
        logger.exception("sweeper: deleting stale rows failed; retried next sweep")
        summary.errors += 1

    try:
        # Counted with the other stale rows; the log line says how many were feed entries.
        summary.stale_rows_deleted += await changes.prune_changes(
            sessionmaker, now - timedelta(days=settings.change_retention_days)
        )
    except Exception:
        logger.exception("sweeper: pruning the change feed failed; retried next sweep")
        summary.errors += 1

    try:
        expired_transfers, copies, rows = await transfers.sweep_transfers(
            sessionmaker, storage, now, now - timedelta(hours=settings.events_keep_hours)
        )
        summary.transfers_expired += expired_transfers
        summary.transfer_copies_deleted += copies
        summary.stale_rows_deleted += rows
    except Exception:
        logger.exception("sweeper: sweeping transfers failed; retried next sweep")
        summary.errors += 1

    SWEEPS.inc()
    for case, count in summary.counts().items():
        if case == "errors":
            SWEEP_ERRORS.inc(count)
        else:
            SWEPT.labels(case).inc(count)
    logger.info("sweeper: sweep done (%s)", summary.describe())
    return summary
