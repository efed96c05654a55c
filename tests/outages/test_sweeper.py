"""The sweeper while PostgreSQL is stopped: in the background, and as `dropp sweep`."""

import asyncio
import logging
import os
import subprocess
import sys

import pytest

from dropp.core.db import create_engine, create_sessionmaker
from dropp.storage.s3 import open_storage
from dropp.sweeper.runner import background_sweeper
from tests.outages.conftest import OutageStack


@pytest.mark.asyncio(loop_scope="session")
async def test_background_sweeper_logs_a_database_outage_once(
    outage_stack: OutageStack, caplog: pytest.LogCaptureFixture
) -> None:
    settings = outage_stack.settings.model_copy(update={"sweep_interval_seconds": 1})
    engine = create_engine(settings)
    try:
        async with open_storage(settings) as storage:
            outage_stack.stop_postgres()
            try:
                with caplog.at_level(logging.INFO, logger="dropp.sweeper"):
                    async with background_sweeper(create_sessionmaker(engine), storage, settings):
                        await asyncio.sleep(5)
                        outage_stack.start_postgres()
                        await asyncio.sleep(4)
            finally:
                if not (outage_stack.pgdata / "postmaster.pid").exists():
                    outage_stack.start_postgres()
    finally:
        await engine.dispose()
    records = [r for r in caplog.records if r.name.startswith("dropp.sweeper")]
    assert not [r for r in records if r.levelno >= logging.ERROR], records
    outage = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert len(outage) == 2, outage
    assert "the database is unavailable" in outage[0]
    assert "answers again" in outage[1]


def test_dropp_sweep_fails_fast_with_one_line(outage_stack: OutageStack) -> None:
    settings = outage_stack.settings
    assert settings.database_url is not None
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "DB_CONNECT_TIMEOUT_SECONDS": "2",
        "S3_ENDPOINT_URL": settings.s3_endpoint_url or "",
        "AWS_ACCESS_KEY_ID": settings.aws_access_key_id or "",
        "AWS_SECRET_ACCESS_KEY": "unused",
        "DROPP_DATA_DIR": str(settings.data_dir / "cli"),
    }
    outage_stack.stop_postgres()
    try:
        ran = subprocess.run(
            [sys.executable, "-m", "dropp", "sweep"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        outage_stack.start_postgres()
    assert ran.returncode != 0
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1, ran.stderr
    assert "database is unavailable" in lines[0]
