"""SeaweedFS frozen under a running server: completes answer 503 fast and hold no connection."""

import asyncio
import time

import httpx
import pytest

from tests.helpers import Account, post_form, start_upload
from tests.outages.conftest import OUTAGE_SETTINGS, OutageStack
from tests.outages.load import run_load, until_ok

pytestmark = pytest.mark.asyncio(loop_scope="session")

WORKERS = 6


async def test_frozen_storage_answers_503_fast_and_listing_keeps_working(
    outage_stack: OutageStack, account: Account
) -> None:
    # More completes at once than the pool has connections: each held one across its HEAD.
    assert OUTAGE_SETTINGS["database_pool_size"] < WORKERS
    file_ids = []
    async with (
        httpx.AsyncClient(base_url=outage_stack.base_url, timeout=30) as client,
        httpx.AsyncClient(timeout=30) as web,
    ):
        for number in range(WORKERS):
            started = await start_upload(client, account, f"stored-{number}.txt", size=1)
            posted = await post_form(web, started, b"x")
            assert posted.status_code in (200, 201, 204), posted.text
            file_ids.append(started["file_id"])
    listings: list[tuple[int, float]] = []

    async def completing(client: httpx.AsyncClient, number: int) -> tuple[httpx.Response, str]:
        file_id = file_ids[(id(client) + number) % WORKERS]
        response = await client.post(f"/upload/{file_id}/complete", headers=account.headers)
        return response, file_id

    async def scenario() -> None:
        # Before the first complete: one that succeeded would never ask storage again.
        frozen = outage_stack.weed()
        outage_stack.freeze(frozen)
        try:
            await asyncio.sleep(1)
            async with httpx.AsyncClient(base_url=outage_stack.base_url, timeout=30) as lister:
                for _ in range(5):
                    started = time.monotonic()
                    listed = await lister.get("/list/", headers=account.headers)
                    listings.append((listed.status_code, time.monotonic() - started))
                    await asyncio.sleep(1)
        finally:
            outage_stack.thaw(frozen)
        await until_ok(outage_stack.base_url, "/list/", account.headers, within=10)
        await asyncio.sleep(1)

    load = await run_load(outage_stack.base_url, completing, workers=WORKERS, scenario=scenario)
    assert load.failures == []
    assert load.unavailable(), "the outage was never seen"
    assert load.statuses() <= {200, 503}, load.statuses()
    for answer in load.unavailable():
        assert answer.content_type == "application/problem+json"
        assert answer.retry_after == "1"
    # Bounded by the storage timeouts (1 s connect, 2 s read here), not by the freeze.
    assert max(answer.seconds for answer in load.answers) < 10
    # Completes waiting on storage hold no pooled connection: the listing is served.
    assert [status for status, _ in listings] == [200] * 5
    assert load.answers[-1].status == 200
