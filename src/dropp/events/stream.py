"""One account's stream: what it has told (a `Position`), and the lines it sends next."""

import asyncio
import json
import logging
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from dropp.core.errors import outage_of
from dropp.events import service
from dropp.events.errors import InvalidEventId, TooManyStreams
from dropp.events.service import Position
from dropp.sync.listener import ChangeListener

logger = logging.getLogger(__name__)

# `<change id>.<event id>.<unix seconds it was checked>`: the time tells a stream resumed
# after its events were pruned that it cannot know what it missed.
# Ids of up to 18 digits: every bigint id PostgreSQL hands out for a long time yet, and no
# number past what a bigint holds.
_EVENT_ID = r"([0-9]{1,18})\.([0-9]{1,18})\.([0-9]{1,12})"
EVENT_ID = re.compile(_EVENT_ID)
EVENT_ID_PATTERN = f"^{_EVENT_ID}$"
# How long a client waits before reconnecting, told in the stream's first line.
RETRY_MILLISECONDS = 3000
EVENTS_PER_READ = 200


@dataclass(frozen=True)
class Resume:
    position: Position
    checked_at: int


def parse_event_id(value: str) -> Resume:
    found = EVENT_ID.fullmatch(value)
    if found is None:
        raise InvalidEventId("Last-Event-ID is not an id this stream sent.")
    change_id, event_id, checked_at = (int(part) for part in found.groups())
    return Resume(Position(change_id, event_id), checked_at)


def _line(event: str, position: Position, data: dict[str, Any]) -> str:
    event_id = f"{position.change_id}.{position.event_id}.{int(time.time())}"
    return f"event: {event}\nid: {event_id}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@dataclass(eq=False)
class Ticket:
    """One open stream's place: `poke` is set when its token may have been revoked."""

    user_id: UUID
    refused: Callable[[], bool]
    poke: asyncio.Event = field(default_factory=asyncio.Event)


class OpenStreams:
    """This process's open streams: at most EVENTS_MAX_CONNECTIONS per account, and each
    told when a revocation may end it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[UUID] = Counter()
        self._tickets: set[Ticket] = set()

    def take(
        self, user_id: UUID, refused: Callable[[], bool], retry_after: int
    ) -> tuple[Ticket, Callable[[], None]]:
        """A place for one more stream of `user_id`, and what gives it back (once, however
        often it is called)."""
        if self._open[user_id] >= self.limit:
            raise TooManyStreams(
                f"This account already has {self.limit} event streams open: close one.",
                headers={"Retry-After": str(retry_after)},
            )
        ticket = Ticket(user_id, refused)
        self._open[user_id] += 1
        self._tickets.add(ticket)

        def give_back() -> None:
            if ticket not in self._tickets:
                return
            self._tickets.discard(ticket)
            self._open[user_id] -= 1
            if not self._open[user_id]:
                del self._open[user_id]

        return ticket, give_back

    def check_revoked(self) -> None:
        """After a revocation: wake the streams whose token it refuses, which then end."""
        for ticket in self._tickets:
            if ticket.refused():
                ticket.poke.set()


class EventStreamResponse(StreamingResponse):
    """A stream that gives its place back however it ends, even before its first line."""

    media_type = "text/event-stream"

    def __init__(self, lines: AsyncIterator[str], on_close: Callable[[], None]) -> None:
        # Proxies must pass each event on as it comes (nginx buffers unless told).
        super().__init__(lines, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.on_close()


@dataclass
class Stream:
    user_id: UUID
    position: Position
    sessionmaker: async_sessionmaker[AsyncSession]
    listener: ChangeListener
    heartbeat_seconds: float
    # Until when the stream may run (its token's expiry, EVENTS_MAX_SECONDS); its ticket
    # says whether it must end now (the token was revoked).
    ends_at: float
    ticket: Ticket

    async def lines(self, first: str | None) -> AsyncIterator[str]:
        """The stream: `first` (a `reset`, if any), `ready`, then events as they come."""
        yield f"retry: {RETRY_MILLISECONDS}\n\n"
        if first is not None:
            yield _line(first, self.position, {})
        async with self.listener.waiter(self.user_id) as woken:
            yield _line(
                "ready",
                self.position,
                {"user_id": str(self.user_id), "heartbeat_seconds": self.heartbeat_seconds},
            )
            while not self.ticket.refused():
                # Cleared before reading: a wake-up during the read is not lost.
                woken.clear()
                more = True
                while more:
                    try:
                        batch, more = await self._read()
                    except Exception as error:
                        if outage_of(error) is None:
                            raise
                        # The client reconnects with its Last-Event-ID, and is answered
                        # 503 until the database is back.
                        logger.warning("events: the database is unavailable; stream ended")
                        return
                    for line in batch:
                        yield line
                left = self.ends_at - time.time()
                if left <= 0:
                    return
                try:
                    async with asyncio.timeout(min(self.heartbeat_seconds, left)):
                        await _either(woken, self.ticket.poke)
                except TimeoutError:
                    # Also a re-read: a notification lost while the listener reconnected
                    # costs a heartbeat, never an event.
                    if not self.ticket.refused():
                        yield ": ping\n\n"

    async def _read(self) -> tuple[list[str], bool]:
        lines = []
        async with self.sessionmaker() as session:
            newest = await service.newest_change_after(
                session, self.user_id, self.position.change_id
            )
            events = await service.events_after(
                session, self.user_id, self.position.event_id, EVENTS_PER_READ
            )
        if newest is not None:
            self.position = Position(newest, self.position.event_id)
            lines.append(_line("changes", self.position, {}))
        for event in events:
            self.position = Position(self.position.change_id, event.id)
            lines.append(_line(event.kind, self.position, event.body))
        return lines, len(events) == EVENTS_PER_READ


async def _either(first: asyncio.Event, second: asyncio.Event) -> None:
    waits = {asyncio.ensure_future(first.wait()), asyncio.ensure_future(second.wait())}
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
