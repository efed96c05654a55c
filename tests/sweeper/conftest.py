"""What the sweeper's tests share: sweeps without grace, and uploads whose window ended."""

from uuid import UUID

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.core.config import Settings


@pytest.fixture
def now_settings(settings: Settings) -> Settings:
    """No grace: anything past its window is the sweeper's at once."""
    return settings.model_copy(update={"sweep_grace_seconds": 0})


async def end_window(engine: AsyncEngine, upload_id: str) -> None:
    """Move the upload's window into the past, as if its form had expired."""
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE file_revision SET upload_expires_at = now() - interval '1 second' "
                "WHERE id = :id"
            ),
            {"id": UUID(upload_id)},
        )
