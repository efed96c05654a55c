import asyncio
import logging
from collections.abc import Awaitable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dropp.core.errors import problem_response
from dropp.storage.s3 import Storage

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

CHECK_TIMEOUT_SECONDS = 3


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (touches nothing else)."""
    return {"status": "ok"}


async def _check_database(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session:
        await session.execute(text("SELECT 1"))


async def _check(name: str, probe: Awaitable[None]) -> str | None:
    """None when `probe` succeeds, else the dependency's name (details go to the log only:
    this route is public and error text can name internal hosts)."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await probe
    except Exception:  # whatever the failure, this instance must not take traffic
        logger.warning("readiness: %s is not ready", name, exc_info=True)
        return name
    return None


@router.get("/readyz", responses={503: {"description": "A dependency does not answer."}})
async def readyz(request: Request) -> JSONResponse:
    """PostgreSQL and storage both answer; 503 naming the one that does not."""
    storage: Storage = request.state.storage
    failing = [
        name
        for name in await asyncio.gather(
            _check("postgresql", _check_database(request.state.sessionmaker)),
            _check("storage", storage.check()),
        )
        if name
    ]
    if failing:
        detail = f"Not ready: {' and '.join(failing)} did not answer as expected."
        return problem_response(503, "not_ready", detail, failing=failing)
    return JSONResponse({"status": "ok", "postgresql": "ok", "storage": "ok"})
