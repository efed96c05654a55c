"""The event stream over real HTTP: Dropp served by uvicorn on loopback (httpx's in-process
transport would hold a stream's answer until it ends), read as clients read it."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.core.config import Settings
from tests.conftest import TABLES
from tests.helpers import Account, register_account, serve_dropp

HEARTBEAT_SECONDS = 1


@pytest.fixture(scope="session")
def events_url(settings: Settings) -> Iterator[str]:
    with serve_dropp(
        settings,
        name="dropp-events-tests",
        events_heartbeat_seconds=HEARTBEAT_SECONDS,
        events_max_connections=3,
    ) as url:
        yield url


@pytest.fixture(scope="session")
def quiet_events_url(settings: Settings) -> Iterator[str]:
    """Heartbeats a minute apart: what such a stream hears sooner, a NOTIFY woke it for."""
    with serve_dropp(settings, name="dropp-quiet-events-tests", events_heartbeat_seconds=60) as url:
        yield url


@pytest.fixture
async def api(events_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=events_url, timeout=30) as client:
        yield client


@pytest.fixture
async def member(api: httpx.AsyncClient, engine: AsyncEngine) -> AsyncIterator[Account]:
    yield await register_account(api, f"ev-{uuid.uuid4().hex[:12]}@example.com", engine=engine)
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))


@dataclass
class Event:
    event: str
    id: str | None
    data: dict[str, Any]


@dataclass
class EventReader:
    """The events of one open stream, as an SSE client parses them."""

    lines: AsyncIterator[str]
    pings: int = 0
    retry: int | None = None
    last_id: str | None = None
    seen: list[Event] = field(default_factory=list)

    async def next(self, within: float = 10) -> Event:
        async with asyncio.timeout(within):
            event, data, event_id = "message", [], None
            async for line in self.lines:
                if line == "":
                    if not data:
                        continue
                    found = Event(event, event_id, json.loads("\n".join(data)))
                    self.last_id = event_id or self.last_id
                    self.seen.append(found)
                    return found
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "":
                    self.pings += 1
                elif name == "event":
                    event = value
                elif name == "data":
                    data.append(value)
                elif name == "id":
                    event_id = value
                elif name == "retry":
                    self.retry = int(value)
        raise AssertionError("the stream ended")

    async def expect(self, kind: str, within: float = 10) -> Event:
        """The next event of this kind; others before it are skipped (and kept in `seen`)."""
        while True:
            found = await self.next(within)
            if found.event == kind:
                return found


@asynccontextmanager
async def stream(
    base_url: str, account: Account, *, headers: dict[str, str] | None = None, **params: str
) -> AsyncIterator[EventReader]:
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(30, read=None)) as client,
        client.stream(
            "GET", "/events", params=params, headers={**account.headers, **(headers or {})}
        ) as answer,
    ):
        assert answer.status_code == 200, await answer.aread()
        assert answer.headers["content-type"].startswith("text/event-stream")
        reader = EventReader(answer.aiter_lines())
        yield reader
