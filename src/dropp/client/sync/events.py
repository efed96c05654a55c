"""The account's live events (`GET /events`, docs/events.md) as `dropp sync --watch` hears
them: a Server-Sent Events parser, and one stream kept open across waits for changes.

The events are hints: a `changes` (or `reset`) only says "read /sync/changes now". The stream
resumes with `Last-Event-ID` after a drop, reconnects with a fresh token when the server ends
it (its token ran out), and counts as dead when no byte came for a few heartbeats. When it
cannot be had at all (an older server, a proxy that blocks or buffers it), `StreamUnavailable`
tells the caller to long-poll instead.
"""

import asyncio
import codecs
import json
import re
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from dropp.client.api import Api, problem_of
from dropp.client.errors import ApiError, ClientError, NotSignedIn, ServerUnavailable

EVENT_STREAM = "text/event-stream"
# The server's EVENTS_HEARTBEAT_SECONDS, by default; a stream silent for SILENT_HEARTBEATS of
# them is dead, whatever the socket says.
HEARTBEAT_SECONDS = 15.0
SILENT_HEARTBEATS = 2.5
# A proxy that buffers the stream passes on nothing, not even `ready`.
READY_SECONDS = 10.0
# Before a reconnect, until the stream says otherwise (`retry:`).
RETRY_SECONDS = 3.0
# What says the feed has something to read.
CHANGES = frozenset({"changes", "reset"})
# Refusals of where the stream was asked to start (a cursor or an id too old, or another
# server's): the feed is read again from the journal's cursor, which starts over if need be.
START_REFUSED = frozenset({"invalid_cursor", "cursor_expired", "invalid_event_id"})
LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Event:
    """One dispatched event: its type, its data (lines joined by LF), and the stream's last
    event id as of it ("" when none was given yet)."""

    type: str
    data: str
    id: str


class Parser:
    """Server-Sent Events as the HTML standard parses them, fed bytes as they arrive."""

    def __init__(self, last_id: str = "") -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._started = False
        self._rest = ""
        # The last chunk ended with CR: an LF opening the next one is part of that line end.
        self._after_cr = False
        self._type = ""
        self._data: list[str] = []
        self._id = last_id
        self.last_id = last_id
        # Seconds to wait before a reconnect, when the stream said.
        self.retry: float | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        text = self._decoder.decode(chunk)
        if not text:
            return []
        if not self._started:
            self._started = True
            text = text.removeprefix("\ufeff")
        if self._after_cr and text.startswith("\n"):
            text = text[1:]
        text = self._rest + text
        self._after_cr = text.endswith("\r")
        lines = LINE_END.split(text)
        self._rest = lines.pop()
        return [event for line in lines if (event := self._line(line)) is not None]

    def _line(self, line: str) -> Event | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._type = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value) / 1000
        return None

    def _dispatch(self) -> Event | None:
        self.last_id = self._id
        data, self._data = self._data, []
        kind, self._type = self._type or "message", ""
        if not data:
            return None
        return Event(kind, "\n".join(data), self.last_id)


class StreamUnavailable(ClientError):
    """The event stream cannot be had through this server, or what stands before it."""


class EventStream:
    """One `GET /events`, opened on the first wait and kept open across the next ones."""

    def __init__(
        self,
        api: Api,
        *,
        heartbeat_seconds: float | None = None,
        ready_seconds: float = READY_SECONDS,
    ) -> None:
        self.api = api
        self.ready_seconds = ready_seconds
        # Given: fixed. Else what the server says in `ready`, and its default until then.
        self.fixed_heartbeat = heartbeat_seconds is not None
        self.heartbeat_seconds = heartbeat_seconds or HEARTBEAT_SECONDS
        # No read timeout of httpx's: silence is timed per read, by the heartbeat in force.
        self.timeout = httpx.Timeout(10.0, read=None)
        self.retry_seconds = RETRY_SECONDS
        self.last_id = ""
        # Read but not yet acted on; kept across reconnects.
        self._events: deque[Event] = deque()
        self._response: httpx.Response | None = None
        self._chunks: AsyncIterator[bytes] | None = None
        self._parser = Parser()

    async def aclose(self) -> None:
        response, self._response, self._chunks = self._response, None, None
        if response is not None:
            await response.aclose()

    async def changed(self, cursor: str) -> None:
        """Return once the feed may have changes after `cursor` (or after what an earlier
        call returned for): read it then. StreamUnavailable: long-poll instead."""
        while True:
            if self._response is None and not await self._open(cursor):
                return
            event = await self._next()
            if event is None:
                # Ended (the token ran out), dropped or silent: resumed from the last id.
                await self.aclose()
                await asyncio.sleep(self.retry_seconds)
            elif event.type in CHANGES:
                # The read that follows covers the ones already heard, too.
                self._events = deque(e for e in self._events if e.type not in CHANGES)
                return

    async def _open(self, cursor: str) -> bool:
        """Connect and read up to `ready`; False when the server refused where the stream was
        to start, so the feed must be read before following it."""
        response = await self._ready(cursor, await self.api.access_token())
        if response is not None and response.status_code == 401:
            # Revoked, or this clock runs behind the server's: renewed once.
            response = await self._ready(cursor, await self.api.access_token(refused=True))
        if response is None:
            return True
        status, problem = response.status_code, problem_of(response)
        if status == 401:
            raise NotSignedIn(self.api.server, "Your session has ended")
        if status == 503:
            raise ServerUnavailable(f"{self.api.server} is unavailable: {problem}")
        if status in (400, 410) and problem.get("code") in START_REFUSED:
            self.last_id = ""
            return False
        raise self._unavailable(f"the server answered {status}: {ApiError(status, problem)}")

    async def _ready(self, cursor: str, token: str) -> httpx.Response | None:
        """None once the stream said `ready`; else the server's refusal, read and closed."""
        try:
            async with asyncio.timeout(self.ready_seconds):
                response = await self._connect(cursor, token)
                if response.status_code != 200:
                    await response.aread()
                    await self.aclose()
                    return response
                await self._until_ready(response)
                return None
        except TimeoutError:
            await self.aclose()
            raise self._unavailable(
                f"no `ready` within {self.ready_seconds:g} s (a proxy that buffers?)"
            ) from None
        except BaseException:
            await self.aclose()
            raise

    async def _connect(self, cursor: str, token: str) -> httpx.Response:
        headers = {"Accept": EVENT_STREAM, "Authorization": f"Bearer {token}"}
        params = {}
        if self.last_id:
            headers["Last-Event-ID"] = self.last_id
        else:
            params["cursor"] = cursor
        http = self.api.http
        request = http.build_request(
            "GET", "/events", params=params, headers=headers, timeout=self.timeout
        )
        try:
            self._response = await http.send(request, stream=True)
        except httpx.TransportError as error:
            raise ServerUnavailable(
                f"The event stream of {self.api.server} failed: {error or type(error).__name__}."
            ) from error
        return self._response

    async def _until_ready(self, response: httpx.Response) -> None:
        media_type = response.headers.get("content-type", "").partition(";")[0].strip()
        if media_type.lower() != EVENT_STREAM:
            raise self._unavailable(f"the server answered {media_type or 'no content type'}")
        self._parser = Parser(self.last_id)
        self._chunks = response.aiter_bytes()
        while True:
            # Only a `reset` comes before it.
            ready = next((event for event in self._events if event.type == "ready"), None)
            if ready is not None:
                self._events.remove(ready)
                self._adopt_heartbeat(ready)
                return
            if not await self._read():
                raise self._unavailable("the stream ended before it was ready")

    def _adopt_heartbeat(self, ready: Event) -> None:
        if self.fixed_heartbeat:
            return
        try:
            said = json.loads(ready.data).get("heartbeat_seconds")
        except (ValueError, AttributeError):
            return
        if isinstance(said, int | float) and not isinstance(said, bool) and said > 0:
            self.heartbeat_seconds = float(said)

    async def _next(self) -> Event | None:
        """The next event; None when the stream ended, dropped or fell silent."""
        while not self._events:
            if not await self._read():
                return None
        return self._events.popleft()

    async def _read(self) -> bool:
        """What the next chunk brings, queued; False when there is none to come."""
        if self._chunks is None:
            return False
        try:
            async with asyncio.timeout(self.heartbeat_seconds * SILENT_HEARTBEATS):
                chunk = await anext(self._chunks)
        except (StopAsyncIteration, httpx.TransportError, TimeoutError):
            return False
        self._events.extend(self._parser.feed(chunk))
        self.last_id = self._parser.last_id
        if self._parser.retry is not None:
            self.retry_seconds = self._parser.retry
        return True

    def _unavailable(self, why: str) -> StreamUnavailable:
        # The long-poll follows on from the journal's cursor, which covers what this stream
        # had not told: the next stream starts from there too.
        self.last_id = ""
        self._events.clear()
        return StreamUnavailable(f"{self.api.server}/events: {why}")
