"""Dropp on a real loopback port for the contract tests, with a member and an admin."""

import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.core.config import Settings
from dropp.embedded.seaweedfs import free_port
from dropp.main import create_app
from dropp.roles.policy import ADMIN
from tests.conftest import TABLES
from tests.helpers import Account, register_account


@dataclass(frozen=True)
class Contract:
    url: str
    member: Account
    admin: Account


@pytest.fixture(scope="session")
def contract_url(settings: Settings) -> Iterator[str]:
    """uvicorn serving the app on 127.0.0.1 in a thread with its own loop: the fuzzer sends
    real HTTP, so bytes that no Python client would send reach the real parser."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="dropp-contract", daemon=True)
    thread.start()
    for _ in range(600):
        if server.started or not thread.is_alive():
            break
        threading.Event().wait(0.05)
    assert server.started, "the contract server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="session")
async def contract(contract_url: str, engine: AsyncEngine) -> AsyncIterator[Contract]:
    """A verified member and an admin; every row the fuzzer made is gone afterwards, so the
    tests that follow start from empty tables as they expect."""
    async with httpx.AsyncClient(base_url=contract_url) as client:
        member = await register_account(client, "contract-member@example.com", engine=engine)
        admin = await register_account(
            client, "contract-admin@example.com", engine=engine, role=ADMIN
        )
    yield Contract(contract_url, member, admin)
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))
