"""The event stream and the signaling socket with PostgreSQL stopped under them."""

import asyncio
import json
import time

import httpx
import pytest
import websockets

from tests.helpers import Account, assert_problem
from tests.outages.conftest import OutageStack
from tests.outages.load import until_ok

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_streams_and_sockets_end_cleanly_and_come_back(
    outage_stack: OutageStack, account: Account
) -> None:
    base = outage_stack.base_url
    async with (
        httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(30, read=None)) as client,
        client.stream("GET", "/events", headers=account.headers) as events,
    ):
        assert events.status_code == 200
        lines = events.aiter_lines()
        async with asyncio.timeout(10):
            async for line in lines:
                if line == "event: ready":
                    break
        outage_stack.stop_postgres()
        try:
            # The open stream ends, as a whole response: no connection is dropped mid-event.
            async with asyncio.timeout(15):
                rest = [line async for line in lines]
            assert all(not line.startswith("event: ") for line in rest), rest

            started = time.monotonic()
            refused = await client.get("/events", headers=account.headers)
            assert_problem(refused, 503, "service_unavailable")
            assert refused.headers["retry-after"] == "1"
            assert time.monotonic() - started < 3

            socket_url = base.replace("http://", "ws://") + "/p2p"
            async with websockets.connect(socket_url) as socket:
                await socket.send(json.dumps({"type": "join", "code": "1234-5678-9012"}))
                error = json.loads(await asyncio.wait_for(socket.recv(), 10))
                await asyncio.wait_for(socket.wait_closed(), 10)
            assert (error["code"], socket.close_code) == ("unavailable", 1011)
        finally:
            outage_stack.start_postgres()
        await until_ok(base, "/list/", account.headers, within=10)
        async with client.stream("GET", "/events", headers=account.headers) as again:
            assert again.status_code == 200
