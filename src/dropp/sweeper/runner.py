"""Running the sweeper: in the background of every API process, or once (`dropp sweep`)."""

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dropp.core.config import Settings
from dropp.core.db import create_engine, create_sessionmaker
from dropp.storage.s3 import Storage, open_storage
from dropp.sweeper.service import sweep
from dropp.sweeper.summary import SweepSummary

logger = logging.getLogger(__name__)


async def _sweep_forever(
    sessionmaker: async_sessionmaker[AsyncSession], storage: Storage, settings: Settings
) -> None:
    interval = settings.sweep_interval_seconds
    # Started together, several processes would sweep in lockstep; a random first wait
    # spreads them over the interval.
    await asyncio.sleep(random.uniform(0, interval))
    while True:
        try:
            await sweep(sessionmaker, storage, settings)
        except Exception:
            # Never fatal to the API: the next interval tries again.
            logger.exception("sweeper: sweep failed; retrying in %d s", interval)
        await asyncio.sleep(interval)


@asynccontextmanager
async def background_sweeper(
    sessionmaker: async_sessionmaker[AsyncSession], storage: Storage, settings: Settings
) -> AsyncIterator[None]:
    """Sweep every SWEEP_INTERVAL_SECONDS while the app runs (never when it is 0)."""
    if settings.sweep_interval_seconds == 0:
        yield
        return
    task = asyncio.create_task(
        _sweep_forever(sessionmaker, storage, settings), name="dropp-sweeper"
    )
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


async def sweep_once(settings: Settings) -> SweepSummary:
    """One sweep with an engine and storage clients of its own."""
    engine = create_engine(settings)
    try:
        async with open_storage(settings) as storage:
            return await sweep(create_sessionmaker(engine), storage, settings)
    finally:
        await engine.dispose()
