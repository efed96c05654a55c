"""PostgreSQL stopped or frozen under a running server and under load."""

import asyncio
import time

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.helpers import Account
from tests.outages.conftest import OutageStack
from tests.outages.load import Load, run_load, until_ok
from tests.sync.feed import drain

pytestmark = pytest.mark.asyncio(loop_scope="session")


def assert_answered_as_unavailable(load: Load) -> None:
    """Every request got an answer; each failure is a 503 problem with Retry-After."""
    assert load.failures == []
    assert load.unavailable(), "the outage was never seen"
    assert load.statuses() <= {200, 201, 503}, load.statuses()
    for answer in load.unavailable():
        assert answer.content_type == "application/problem+json"
        assert answer.retry_after == "1"
        assert answer.code in {"service_unavailable", "outcome_unknown"}


async def test_stopped_database_answers_503_and_service_resumes(
    outage_stack: OutageStack, account: Account
) -> None:
    async def listing(client: httpx.AsyncClient, _: int) -> tuple[httpx.Response, str]:
        return await client.get("/list/", headers=account.headers), ""

    async def scenario() -> None:
        await asyncio.sleep(0.5)
        outage_stack.stop_postgres()
        await asyncio.sleep(2)
        outage_stack.start_postgres()
        await until_ok(outage_stack.base_url, "/list/", account.headers, within=10)
        await asyncio.sleep(0.5)

    load = await run_load(outage_stack.base_url, listing, workers=6, scenario=scenario)
    assert_answered_as_unavailable(load)
    # Back on its own: the last answers of every worker are successes again.
    assert load.answers[-1].status == 200


async def test_frozen_database_answers_503_within_seconds_and_commits_nothing_unseen(
    outage_stack: OutageStack, account: Account
) -> None:
    async def init(client: httpx.AsyncClient, number: int) -> tuple[httpx.Response, str]:
        name = f"frozen-{id(client)}-{number}.txt"
        response = await client.post(
            "/upload/", json={"filename": name, "size": 1}, headers=account.headers
        )
        return response, name

    async def scenario() -> None:
        await asyncio.sleep(0.5)
        frozen = outage_stack.postgres_processes()
        outage_stack.freeze(frozen)
        try:
            await asyncio.sleep(5)
        finally:
            outage_stack.thaw(frozen)
        await until_ok(outage_stack.base_url, "/list/", account.headers, within=10)

    load = await run_load(outage_stack.base_url, init, workers=4, scenario=scenario)
    assert_answered_as_unavailable(load)
    # Bounded by the statement and pool timeouts (2 s each here), not by the freeze.
    assert max(answer.seconds for answer in load.answers) < 6
    engine = create_async_engine(outage_stack.settings.async_database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.scalars(
                text(
                    "SELECT n.name FROM file_revision r JOIN node n ON n.id = r.node_id"
                    " WHERE r.state = 'pending' AND n.name LIKE 'frozen-%'"
                )
            )
            pending = set(rows)
    finally:
        await engine.dispose()
    created = {answer.tag for answer in load.answers if answer.status == 201}
    # The only rows no 201 announced are those whose commit was sent when the database froze:
    # their answer says the outcome is unknown.
    unknown = {answer.tag for answer in load.answers if answer.code == "outcome_unknown"}
    assert created <= pending
    assert pending - created <= unknown


async def test_longpoll_is_woken_promptly_after_the_database_returns(
    outage_stack: OutageStack, account: Account
) -> None:
    async with httpx.AsyncClient(base_url=outage_stack.base_url, timeout=60) as client:
        _, cursor = await drain(client, account)
        # Down long enough for a reconnect backoff to have grown.
        outage_stack.stop_postgres()
        await asyncio.sleep(9)
        outage_stack.start_postgres()
        await until_ok(outage_stack.base_url, "/list/", account.headers, within=10)
        # The listener still reconnects; a change made now must wake a poll within seconds.
        waiting = asyncio.create_task(
            client.get(
                "/sync/longpoll",
                params={"cursor": cursor, "timeout": 25},
                headers=account.headers,
            )
        )
        await asyncio.sleep(0.3)
        started = time.monotonic()
        made = await client.post(
            "/folders", json={"path": "/after-restart"}, headers=account.headers
        )
        assert made.status_code == 201, made.text
        answered = await waiting
        elapsed = time.monotonic() - started
    assert answered.status_code == 200, answered.text
    assert answered.json() == {"changes": True}
    # Reconnects every 2 s at most while the database is down.
    assert elapsed < 4
