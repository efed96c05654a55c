"""Running the sweeper: in the background of every API process, or once (`dropp sweep`)."""

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dropp.core.config import Settings
from dropp.core.db import create_engine, create_sessionmaker
from dropp.core.errors import outage_of
from dropp.storage.s3 import Storage, open_storage
from dropp.sweeper.service import sweep
from dropp.sweeper.summary import SweepSummary

logger = logging.getLogger(__name__)


# While the database is down the sweeper waits this long before asking again, doubling up to
# the cap (never past the sweep interval): a down database must not cost a core and a log
# line per attempt.
OUTAGE_BACKOFF_START_SECONDS = 1.0
OUTAGE_BACKOFF_MAX_SECONDS = 60.0


class DatabaseUnavailable(Exception):
    """The database does not answer, so there is nothing to sweep now."""


async def check_database(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Raise DatabaseUnavailable unless the database answers a trivial query."""
    try:
        async with sessionmaker() as session:
            await session.execute(text("SELECT 1"))
    except Exception as error:
        if outage_of(error) is None:
            raise
        root: BaseException = error
        while root.__cause__ is not None:
            root = root.__cause__
        reason = (str(root).splitlines() or [""])[0] or type(root).__name__
        raise DatabaseUnavailable(f"the database is unavailable ({reason})") from error


async def _sweep_forever(
    sessionmaker: async_sessionmaker[AsyncSession], storage: Storage, settings: Settings
) -> None:
    interval = settings.sweep_interval_seconds
    # Started together, several processes would sweep in lockstep; a random first wait
    # spreads them over the interval.
    await asyncio.sleep(random.uniform(0, interval))
    backoff = OUTAGE_BACKOFF_START_SECONDS
    down_since: float | None = None
    loop = asyncio.get_running_loop()
    while True:
        try:
            # Asked first: every task of a sweep would otherwise fail on its own, each with a
            # traceback.
            await check_database(sessionmaker)
        except DatabaseUnavailable as error:
            if down_since is None:
                down_since = loop.time()
                logger.warning("sweeper: %s; sweeping again once it answers", error)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, OUTAGE_BACKOFF_MAX_SECONDS, max(interval, 1))
            continue
        if down_since is not None:
            logger.warning(
                "sweeper: the database answers again after %.0f s", loop.time() - down_since
            )
            down_since = None
            backoff = OUTAGE_BACKOFF_START_SECONDS
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
        sessionmaker = create_sessionmaker(engine)
        # Fails fast (DB_CONNECT_TIMEOUT_SECONDS) with one line instead of a traceback per task.
        await check_database(sessionmaker)
        async with open_storage(settings) as storage:
            return await sweep(sessionmaker, storage, settings)
    finally:
        await engine.dispose()
