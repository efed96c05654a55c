"""The loop of the cleanups that take one row per short transaction."""

import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)


async def one_by_one(step: Callable[[], Awaitable[bool]], failure: str) -> tuple[int, int]:
    """Run `step` until it finds nothing left (returns False); returns (done, errors).

    A step that raises is logged with `failure` and counted, and the loop goes on: the step
    notes what it claims before working on it, so what failed waits for the next sweep
    instead of failing again in this one.
    """
    done = errors = 0
    while True:
        try:
            if not await step():
                return done, errors
        except Exception:
            logger.exception("sweeper: %s; retried next sweep", failure)
            errors += 1
            continue
        done += 1
