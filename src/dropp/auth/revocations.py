"""Access tokens refused before they expire: those of a disabled or signed-out account, and
those of a revoked refresh-token family.

An access token is checked without a database read, so every API process keeps a small deny
set in memory. Whoever revokes sends a PostgreSQL NOTIFY in the revoking transaction (so it is
delivered on commit, and only then); each process's listener applies it. When the listener
(re)connects it may have missed notifications, so it re-reads the set from the database.

An entry is kept only as long as a token it refuses could still be alive (one access-token
lifetime after the revocation), so the set holds what was revoked in the last few minutes.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

logger = logging.getLogger(__name__)

CHANNEL = "dropp_revocations"
USER = "user"
FAMILY = "family"
# A reload that takes longer fails like a lost connection, and the listener tries again.
RELOAD_TIMEOUT_SECONDS = 10.0

NOTIFY = text("SELECT pg_notify(:channel, :payload)")

# What a reconnecting listener re-reads. Disabled accounts are refused whatever their tokens'
# age (they get no new ones); families revoked within one token lifetime stay refused. The
# statements run on the listener's own asyncpg connection, hence plain SQL.
REVOKED_FAMILIES = """
    SELECT family_id, max(revoked_at) AS revoked_at FROM refresh_token
    WHERE revoked_at > now() - make_interval(secs => $1)
    GROUP BY family_id
"""
DISABLED_USERS = "SELECT id FROM user_account WHERE NOT is_active"


class _Fetcher(Protocol):
    """What a reload uses of an asyncpg connection."""

    async def fetch(self, query: str, *args: object) -> list[Any]: ...


class Holder(Protocol):
    """What a check needs to know of a token (see `tokens.AccessClaims`)."""

    @property
    def user_id(self) -> UUID: ...

    @property
    def family_id(self) -> UUID | None: ...

    @property
    def issued_at(self) -> float: ...


class Revocations:
    """The process's deny set: accounts whose tokens issued before a moment are refused, and
    refresh-token families whose access tokens are all refused."""

    def __init__(self, access_token_ttl: timedelta) -> None:
        self._keep_seconds = access_token_ttl.total_seconds()
        # user id -> tokens issued before this moment (Unix seconds) are refused.
        self._users: dict[UUID, float] = {}
        # family id -> when it was revoked; every token of the family is refused.
        self._families: dict[UUID, float] = {}
        # Called after every revocation this process hears of: open event streams end.
        self._watchers: list[Callable[[], None]] = []

    def watch(self, callback: Callable[[], None]) -> None:
        self._watchers.append(callback)

    def refuses(self, holder: Holder) -> bool:
        """Whether the token was revoked; a dictionary look-up or two, no I/O."""
        cutoff = self._users.get(holder.user_id)
        if cutoff is not None and holder.issued_at < cutoff:
            return True
        return holder.family_id is not None and holder.family_id in self._families

    def deny_user(self, user_id: UUID, before: float) -> None:
        self._users[user_id] = max(before, self._users.get(user_id, before))
        self._prune()

    def deny_family(self, family_id: UUID, revoked_at: float) -> None:
        self._families[family_id] = max(revoked_at, self._families.get(family_id, revoked_at))
        self._prune()

    def __len__(self) -> int:
        return len(self._users) + len(self._families)

    def _prune(self) -> None:
        oldest = time.time() - self._keep_seconds
        for entries in (self._users, self._families):
            for key in [key for key, moment in entries.items() if moment < oldest]:
                del entries[key]

    def on_notify(self, payload: str) -> None:
        """Apply one notification: `user <id> <Unix time>` or `family <id> <Unix time>`."""
        try:
            kind, identifier, moment = payload.split(" ")
            key, when = UUID(identifier), float(moment)
        except ValueError:
            logger.warning("auth: ignored a revocation notification %r", payload)
            return
        if kind == USER:
            self.deny_user(key, when)
        elif kind == FAMILY:
            self.deny_family(key, when)
        else:
            logger.warning("auth: ignored a revocation notification %r", payload)
            return
        for watcher in self._watchers:
            watcher()

    async def reload(self, connection: _Fetcher) -> None:
        """Re-read what may have been missed while no connection listened; entries already
        held are kept (they age out on their own)."""
        # TimeoutError is an OSError: the listener counts it as a lost connection.
        async with asyncio.timeout(RELOAD_TIMEOUT_SECONDS):
            families = await connection.fetch(REVOKED_FAMILIES, self._keep_seconds)
            disabled = await connection.fetch(DISABLED_USERS)
        now = time.time()
        for row in families:
            self.deny_family(row["family_id"], row["revoked_at"].timestamp())
        for row in disabled:
            # Every token a disabled account holds was issued before now.
            self.deny_user(row["id"], now)
        for watcher in self._watchers:
            watcher()
        logger.info(
            "auth: %d revoked families and %d disabled accounts loaded",
            len(families),
            len(disabled),
        )


async def announce_user(session: AsyncSession, user_id: UUID, before: datetime) -> None:
    """Tell every process to refuse the account's tokens issued before `before`, once the
    session's transaction commits."""
    payload = f"{USER} {user_id} {before.timestamp()!r}"
    await session.execute(NOTIFY, {"channel": CHANNEL, "payload": payload})


async def announce_family(session: AsyncSession, family_id: UUID, revoked_at: datetime) -> None:
    """Tell every process to refuse the family's access tokens, once the transaction commits."""
    payload = f"{FAMILY} {family_id} {revoked_at.timestamp()!r}"
    await session.execute(NOTIFY, {"channel": CHANNEL, "payload": payload})
