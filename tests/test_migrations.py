import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
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


async def test_case_clashes_are_renamed_and_reported_not_lost(empty_database: Settings) -> None:
    """Before names were compared by their folded key, "Report.pdf" and "report.pdf" could
    sit in one folder; the migration keeps both, renames the later ones, and says so."""
    engine = create_async_engine(empty_database.async_database_url)
    try:
        await _in_thread(migrations.upgrade, empty_database, "0006")
        owner, folder = uuid4(), uuid4()
        first, second, third, trashed, elsewhere = (uuid4() for _ in range(5))
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO user_account (id, email, password_hash) "
                    "VALUES (:id, 'clash@example.com', 'x')"
                ),
                {"id": owner},
            )
            nodes = [
                (folder, None, "folder", "Docs", datetime(2026, 1, 1, tzinfo=UTC)),
                (first, folder, "file", "Report.pdf", datetime(2026, 1, 2, tzinfo=UTC)),
                (second, folder, "file", "report.pdf", datetime(2026, 1, 3, tzinfo=UTC)),
                (third, folder, "file", "REPORT.PDF", datetime(2026, 1, 4, tzinfo=UTC)),
                # Also taken: the first free number is 3.
                (
                    uuid4(),
                    folder,
                    "file",
                    "report (case clash 2).pdf",
                    datetime(2026, 1, 5, tzinfo=UTC),
                ),
                (elsewhere, None, "file", "report.pdf", datetime(2026, 1, 6, tzinfo=UTC)),
            ]
            for node_id, parent_id, kind, name, created in nodes:
                await connection.execute(
                    text(
                        "INSERT INTO node (id, owner_id, parent_id, kind, name, created_at) "
                        "VALUES (:id, :owner, :parent, :kind, :name, :created)"
                    ),
                    {
                        "id": node_id,
                        "owner": owner,
                        "parent": parent_id,
                        "kind": kind,
                        "name": name,
                        "created": created,
                    },
                )
            # A trashed node holds no name: it clashes with nothing.
            await connection.execute(
                text(
                    "INSERT INTO node (id, owner_id, parent_id, kind, name, trashed_at) "
                    "VALUES (:id, :owner, :parent, 'file', 'rePort.pdf', now())"
                ),
                {"id": trashed, "owner": owner, "parent": folder},
            )

        await _in_thread(migrations.upgrade, empty_database)

        async with engine.connect() as connection:
            names = dict((await connection.execute(text("SELECT id, name FROM node"))).all())
            reported = (
                await connection.execute(
                    text("SELECT node_id, kept_node_id, old_name, new_name FROM node_name_clash")
                )
            ).all()
            feed = (
                await connection.execute(
                    text("SELECT node_id, change, path FROM change ORDER BY id")
                )
            ).all()
            assert await connection.run_sync(_schema_drift) == []
        assert len(names) == 7
        assert (names[first], names[elsewhere], names[trashed]) == (
            "Report.pdf",
            "report.pdf",
            "rePort.pdf",
        )
        assert (names[second], names[third]) == (
            "report (case clash 3).pdf",
            "REPORT (case clash 4).PDF",
        )
        assert {tuple(row) for row in reported} == {
            (second, first, "report.pdf", "report (case clash 3).pdf"),
            (third, first, "REPORT.PDF", "REPORT (case clash 4).PDF"),
        }
        assert [tuple(row) for row in feed] == [
            (second, "moved", "/Docs/report (case clash 3).pdf"),
            (third, "moved", "/Docs/REPORT (case clash 4).PDF"),
        ]

        # The index now refuses what the renames made room for.
        async with engine.begin() as connection:
            with pytest.raises(IntegrityError):
                await connection.execute(
                    text(
                        "INSERT INTO node (id, owner_id, parent_id, kind, name, name_key) "
                        "VALUES (:id, :owner, :parent, 'file', 'REPORT.pdf', 'report.pdf')"
                    ),
                    {"id": uuid4(), "owner": owner, "parent": folder},
                )

        await _in_thread(migrations.downgrade, empty_database, "0006")
        async with engine.connect() as connection:
            kept = await connection.scalar(text("SELECT count(*) FROM node"))
        assert kept == 7
    finally:
        await engine.dispose()


async def test_node_sizes_are_filled_in_from_their_current_revisions(
    empty_database: Settings,
) -> None:
    engine = create_async_engine(empty_database.async_database_url)
    try:
        await _in_thread(migrations.upgrade, empty_database, "0007")
        owner, uploaded, pending, folder, revision = (uuid4() for _ in range(5))
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO user_account (id, email, password_hash) "
                    "VALUES (:id, 'sizes@example.com', 'x')"
                ),
                {"id": owner},
            )
            for node_id, kind, name in (
                (uploaded, "file", "kept.bin"),
                (pending, "file", "coming.bin"),
                (folder, "folder", "Docs"),
            ):
                await connection.execute(
                    text(
                        "INSERT INTO node (id, owner_id, kind, name, name_key) "
                        "VALUES (:id, :owner, :kind, :name, lower(:name))"
                    ),
                    {"id": node_id, "owner": owner, "kind": kind, "name": name},
                )
            await connection.execute(
                text(
                    "INSERT INTO file_revision (id, node_id, storage_key, size, content_type, "
                    "state, created_at, upload_expires_at) VALUES (:id, :node, 'k', 4321, "
                    "'application/octet-stream', 'complete', now(), now())"
                ),
                {"id": revision, "node": uploaded},
            )
            await connection.execute(
                text("UPDATE node SET current_revision_id = :revision WHERE id = :id"),
                {"revision": revision, "id": uploaded},
            )

        await _in_thread(migrations.upgrade, empty_database)

        async with engine.connect() as connection:
            sizes = dict((await connection.execute(text("SELECT id, size FROM node"))).all())
            assert await connection.run_sync(_schema_drift) == []
        assert sizes == {uploaded: 4321, pending: None, folder: None}
    finally:
        await engine.dispose()
