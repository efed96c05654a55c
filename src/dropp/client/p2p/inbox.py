"""One queue for everything a transfer waits on: the server's messages, the WebRTC peer's
state, and the tasks beside it. Sender and receiver are each one loop over it, so every
decision (go on peer to peer, fall back, finish) is taken in one place, in order."""

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from dropp.client.p2p.signaling import Signaling


@dataclass(frozen=True)
class Message:
    """A message from the server."""

    body: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.body["type"])


@dataclass(frozen=True)
class Closed:
    """The server closed the socket normally (it does after `done`)."""


@dataclass(frozen=True)
class ChannelOpen:
    """The data channel can carry bytes."""

    channel: Any  # aiortc's RTCDataChannel: this module does not import aiortc


@dataclass(frozen=True)
class Disconnected:
    """The peer connection failed, or the data channel closed."""

    reason: str


@dataclass(frozen=True)
class Arrived:
    """Every declared byte has come over the data channel."""


@dataclass(frozen=True)
class TaskEnded:
    task: "asyncio.Task[Any]"


@dataclass(frozen=True)
class TimedOut:
    pass


Event = Message | Closed | ChannelOpen | Disconnected | Arrived | TaskEnded | TimedOut


class Inbox:
    def __init__(self) -> None:
        self._queue: asyncio.Queue[Event | BaseException] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()

    def put(self, event: Event) -> None:
        self._queue.put_nowait(event)

    def fail(self, error: BaseException) -> None:
        """End the loop: `get()` raises `error`."""
        self._queue.put_nowait(error)

    async def get(self, within: float | None = None) -> Event:
        """The next event; `TimedOut` after `within` seconds without one. A failure of the
        socket's reader is raised here."""
        try:
            async with asyncio.timeout(within):
                event = await self._queue.get()
        except TimeoutError:
            return TimedOut()
        if isinstance(event, BaseException):
            raise event
        return event

    def follow(self, signaling: Signaling) -> None:
        """Read the socket into the inbox until it closes."""

        async def read() -> None:
            try:
                while (message := await signaling.receive()) is not None:
                    self.put(Message(message))
            except Exception as error:
                self.fail(error)
                return
            self.put(Closed())

        self._keep(asyncio.create_task(read()))

    def start(self, work: Coroutine[Any, Any, Any]) -> "asyncio.Task[Any]":
        """Run `work` beside the loop; its end (result or exception) is a `TaskEnded`."""
        task: asyncio.Task[Any] = asyncio.create_task(work)

        def ended(done: "asyncio.Task[Any]") -> None:
            if not done.cancelled():
                self.put(TaskEnded(done))

        task.add_done_callback(ended)
        self._keep(task)
        return task

    def _keep(self, task: "asyncio.Task[Any]") -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Cancel what still runs, and wait for it to stop."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
