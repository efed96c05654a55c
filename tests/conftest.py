"""One real PostgreSQL and one real SeaweedFS for the whole session; fresh rows for every test."""

import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from dropp.core import migrations
from dropp.core.config import Settings
from dropp.core.db import create_sessionmaker
from dropp.embedded.stack import prepare_bucket, run_embedded_stack
from dropp.main import create_app
from dropp.storage.s3 import Storage, open_storage
from tests.helpers import Account, register_account

# `download` has no foreign keys (its history outlives what it names), so CASCADE misses it.
TABLES = ("download", "file_revision", "node", "refresh_token", "user_account")


def isolated_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings from nothing but what a test says: no `.env`, no DATABASE_URL from the shell."""
    values: dict[str, Any] = {
        "DROPP_DATA_DIR": data_dir,
        "database_url": None,
        "s3_endpoint_url": None,
        "s3_public_endpoint_url": None,
        "secret_key": None,
        "aws_access_key_id": None,
        "aws_secret_access_key": None,
        "aws_s3_bucket": "dropp-test",
        # Tests register many accounts from one address; tests/core/test_rate_limit.py sets
        # small limits on an app of its own.
        "rate_limit_per_ip": "100000/minute",
        "rate_limit_per_account": "100000/minute",
        # Tests move timestamps into the past; only tests/sweeper sweeps, when it says so.
        "sweep_interval_seconds": 0,
        **overrides,
    }
    return Settings(_env_file=None, **values)


@contextmanager
def stack_dir() -> Iterator[Path]:
    """A data dir outside pytest's basetemp: pytest makes that 0700 at every session start,
    which locks out the unprivileged user embedded PostgreSQL runs as when tests run as root."""
    with tempfile.TemporaryDirectory(prefix="dropp-test-") as directory:
        yield Path(directory)


@pytest.fixture(scope="session")
def settings() -> Iterator[Settings]:
    with (
        stack_dir() as data_dir,
        run_embedded_stack(isolated_settings(data_dir), database="dropp_test") as running,
    ):
        migrations.upgrade(running)
        prepare_bucket(running)
        yield running


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        yield manager.app  # type: ignore[misc]


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with running_app(settings) as started:
        yield started


@pytest.fixture
def app_with(
    settings: Settings,
) -> Callable[..., AbstractAsyncContextManager[FastAPI]]:
    """Another app on the same stack with some settings changed (short TTLs, small limits)."""

    def start(**changes: Any) -> AbstractAsyncContextManager[FastAPI]:
        return running_app(settings.model_copy(update=changes))

    return start


def api_client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dropp.test")


@pytest.fixture
async def client(app: FastAPI, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    """The API, in process; every row a test made is gone after it."""
    async with api_client(app) as api:
        yield api
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))


@pytest.fixture(scope="session")
async def web() -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client for what desktop clients send to storage directly."""
    async with httpx.AsyncClient(timeout=30) as plain:
        yield plain


@pytest.fixture(scope="session")
async def storage(settings: Settings) -> AsyncIterator[Storage]:
    async with open_storage(settings) as opened:
        yield opened


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    created = create_async_engine(settings.async_database_url)
    yield created
    await created.dispose()


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions as the app's own code gets them, for what tests call directly (the sweeper)."""
    return create_sessionmaker(engine)


@pytest.fixture
async def alice(client: httpx.AsyncClient, engine: AsyncEngine) -> Account:
    """A member with a verified email, signed in."""
    return await register_account(client, "alice@example.com", engine=engine)


@pytest.fixture
async def bob(client: httpx.AsyncClient, engine: AsyncEngine) -> Account:
    """A member with a verified email, signed in."""
    return await register_account(client, "bob@example.com", engine=engine)
