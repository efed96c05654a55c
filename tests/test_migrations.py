import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from dropp.core import migrations
from dropp.core.config import Settings
from dropp.models import Base

SCRATCH_DATABASE = "dropp_migrations_check"


@pytest.fixture
async def empty_database(settings: Settings) -> AsyncIterator[Settings]:
    """A database of its own, created empty and dropped after the test."""
    admin_url = settings.async_database_url.replace("/dropp_test?", "/postgres?")
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{SCRATCH_DATABASE}"'))
        await connection.execute(text(f'CREATE DATABASE "{SCRATCH_DATABASE}"'))
    scratch_url = settings.async_database_url.replace("/dropp_test?", f"/{SCRATCH_DATABASE}?")
    yield settings.model_copy(update={"database_url": scratch_url})
    async with admin.connect() as connection:
        await connection.execute(text(f'DROP DATABASE "{SCRATCH_DATABASE}" WITH (FORCE)'))
    await admin.dispose()


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _schema_drift(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


async def test_upgrade_downgrade_upgrade_on_an_empty_database(
    empty_database: Settings,
) -> None:
    engine = create_async_engine(empty_database.async_database_url)
    try:
        await _in_thread(migrations.upgrade, empty_database)
        async with engine.connect() as connection:
            assert await connection.run_sync(_tables) >= {"user_account", "node", "file_revision"}

        await _in_thread(migrations.downgrade, empty_database, "base")
        async with engine.connect() as connection:
            assert await connection.run_sync(_tables) == {"alembic_version"}

        await _in_thread(migrations.upgrade, empty_database)
        async with engine.connect() as connection:
            assert await connection.run_sync(_schema_drift) == []
    finally:
        await engine.dispose()


async def _in_thread(function: Callable[..., None], *args: Any) -> None:
    # Alembic's async env runs its own event loop, so it cannot run on the test's loop.
    await asyncio.to_thread(function, *args)
