"""Dropp on a real loopback port for the contract tests, with a member and an admin."""

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.core.config import Settings
from dropp.embedded.seaweedfs import free_port
from dropp.main import create_app
from dropp.roles.policy import ADMIN
from tests.conftest import TABLES
from tests.helpers import Account, register_account, serve_in_thread
from tests.oauth.conftest import provider_url, sign_in_settings

__all__ = ["provider_url"]  # the session's OpenID provider, shared with tests/oauth


@dataclass(frozen=True)
class Contract:
    url: str
    member: Account
    admin: Account
    # A change-feed cursor the server issued to the member: no generator can forge one.
    sync_cursor: str


@pytest.fixture(scope="session")
def contract_url(settings: Settings, provider_url: str) -> Iterator[str]:
    """uvicorn serving the app on 127.0.0.1 in a thread with its own loop: the fuzzer sends
    real HTTP, so bytes that no Python client would send reach the real parser."""
    port = free_port()
    # Sign-in with Google through the project's OpenID test provider, as a deployment has
    # it: /auth/google is fuzzed against a real provider, not refused for lack of one.
    settings = settings.model_copy(
        update=sign_in_settings(provider_url, public_url=f"http://127.0.0.1:{port}")
    )
    # Long polls as long as the document allows, but short enough that the fuzzer's
    # positive cases of GET /sync/longpoll each answer within seconds; event streams that
    # end as soon.
    # Bodies are bounded at the largest MAX_REQUEST_BODY_BYTES allows: a generated body
    # over the default 2 MiB would get the documented 413 before any validation, which the
    # negative check does not count among its expected refusals.
    app = create_app(
        settings.model_copy(
            update={
                "longpoll_max_seconds": 2,
                "events_max_seconds": 2,
                "max_request_body_bytes": 64 * 1024 * 1024,
            }
        )
    )
    with serve_in_thread(app, port, name="dropp-contract") as url:
        yield url


@pytest.fixture(scope="session")
async def contract(contract_url: str, engine: AsyncEngine) -> AsyncIterator[Contract]:
    """A verified member and an admin; every row the fuzzer made is gone afterwards, so the
    tests that follow start from empty tables as they expect."""
    async with httpx.AsyncClient(base_url=contract_url) as client:
        member = await register_account(client, "contract-member@example.com", engine=engine)
        admin = await register_account(
            client, "contract-admin@example.com", engine=engine, role=ADMIN
        )
        feed = await client.get("/sync/changes", headers=member.headers)
        feed.raise_for_status()
    yield Contract(contract_url, member, admin, feed.json()["cursor"])
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))
