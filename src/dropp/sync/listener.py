"""Long-poll wake-ups: one dedicated connection per API process LISTENs on the change channel
and wakes the waiters of the user each notification names.

The connection is not from the pool (a LISTEN holds its connection for good), and a waiting
long-poll holds no database connection at all, only an `asyncio.Event`.
"""

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, Protocol, cast
from uuid import UUID

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.sync.changes import NOTIFY_CHANNEL

logger = logging.getLogger(__name__)

# Options SQLAlchemy's asyncpg dialect understands but `asyncpg.connect` does not.
DIALECT_ONLY_OPTIONS = frozenset(
    {"prepared_statement_cache_size", "prepared_statement_name_func", "async_fallback"}
)
# Waits between reconnects while the database is down: short, since every long-poll's wake-ups
# wait for the reconnect (they are woken to re-check the feed once it is back).
BACKOFF_START_SECONDS = 0.1
BACKOFF_MAX_SECONDS = 2.0
# A connection that stayed up this long starts the next series of reconnects from the start.
STABLE_AFTER_SECONDS = 30.0


class _Connection(Protocol):
    """What the listener uses of an asyncpg connection."""

    async def add_listener(
        self, channel: str, callback: Callable[[object, int, str, str], None]
    ) -> None: ...

    def add_termination_listener(self, callback: Callable[[object], None]) -> None: ...

    def is_closed(self) -> bool: ...

    def terminate(self) -> None: ...


@dataclass(frozen=True)
class Subscription:
    """Another channel on the same connection (see `ChangeListener.subscribe`)."""

    channel: str
    on_notify: Callable[[str], None]
    on_connect: Callable[[Any], Awaitable[None]]

    def deliver(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        self.on_notify(payload)


class ChangeListener:
    """Per-user wake-ups for long-polls, fed by PostgreSQL NOTIFY."""

    def __init__(self, connect_options: dict[str, Any]) -> None:
        self._connect_options = connect_options
        self._waiters: defaultdict[UUID, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self._subscriptions: list[Subscription] = []

    def subscribe(
        self,
        channel: str,
        on_notify: Callable[[str], None],
        on_connect: Callable[[Any], Awaitable[None]],
    ) -> None:
        """Also LISTEN on `channel`, passing each payload to `on_notify`. `on_connect` gets the
        connection each time it is (re)established, once LISTENing, to re-read from the
        database what notifications may have been missed while none listened."""
        self._subscriptions.append(Subscription(channel, on_notify, on_connect))

    @classmethod
    def for_engine(cls, engine: AsyncEngine, connect_timeout: float = 5.0) -> "ChangeListener":
        """A listener that connects exactly as the engine's pool does, within
        `connect_timeout` (a frozen database must not hold a reconnect for a minute)."""
        _, options = engine.dialect.create_connect_args(engine.url)
        kept = {k: v for k, v in options.items() if k not in DIALECT_ONLY_OPTIONS}
        return cls({**kept, "timeout": connect_timeout})

    @asynccontextmanager
    async def waiter(self, user_id: UUID) -> AsyncIterator[asyncio.Event]:
        """An event set whenever `user_id` may have new changes, while the block runs."""
        event = asyncio.Event()
        self._waiters[user_id].add(event)
        try:
            yield event
        finally:
            waiting = self._waiters[user_id]
            waiting.discard(event)
            if not waiting:
                del self._waiters[user_id]

    def _wake(self, user_id: UUID) -> None:
        for event in self._waiters.get(user_id, ()):
            event.set()

    def _wake_everyone(self) -> None:
        for waiting in self._waiters.values():
            for event in waiting:
                event.set()

    def _on_notify(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            user_id = UUID(payload)
        except ValueError:
            logger.warning("sync: ignored a notification with payload %r", payload)
            return
        self._wake(user_id)

    async def _listen_once(self) -> None:
        connection = cast(_Connection, await asyncpg.connect(**self._connect_options))
        lost = asyncio.Event()
        try:
            connection.add_termination_listener(lambda _: lost.set())
            await connection.add_listener(NOTIFY_CHANNEL, self._on_notify)
            for subscription in self._subscriptions:
                await connection.add_listener(subscription.channel, subscription.deliver)
                await subscription.on_connect(connection)
            if not self.connected.is_set():
                logger.info("sync: LISTENing")
            self.connected.set()
            # Notifications sent while no connection listened are lost: every waiter re-checks
            # the database instead.
            self._wake_everyone()
            await lost.wait()
        finally:
            self.connected.clear()
            if not connection.is_closed():
                # Never waits on a server that may be gone.
                connection.terminate()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        delay = BACKOFF_START_SECONDS
        failing = False
        while True:
            started = loop.time()
            try:
                await self._listen_once()
                logger.warning("sync: the LISTEN connection closed; reconnecting")
                failing = False
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                # Once per outage, not once per attempt.
                if not failing:
                    logger.warning("sync: the LISTEN connection failed: %s; retrying", error)
                failing = True
            # Long-polls may have missed wake-ups while the connection was down.
            self._wake_everyone()
            if loop.time() - started > STABLE_AFTER_SECONDS:
                delay = BACKOFF_START_SECONDS
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_SECONDS)

    @asynccontextmanager
    async def running(self) -> AsyncIterator["ChangeListener"]:
        """Listen for as long as the block runs (the app's lifespan)."""
        self._task = asyncio.create_task(self._run(), name="dropp-change-listener")
        try:
            yield self
        finally:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None
