"""Idempotency keys: the first request with a key claims it, its answer is stored with its
work, and a retry with the same key and request gets that answer instead of doing it twice."""

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy import and_, delete, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dropp.idempotency.errors import (
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
)
from dropp.idempotency.models import IdempotencyKey

KEY_TTL = timedelta(hours=24)
# A claim with no answer this old belongs to a request whose process died mid-way (a failed
# request releases its claim): it may be taken over rather than block the key for a day.
ABANDONED_AFTER = timedelta(minutes=1)
KEY_PATTERN = re.compile(r"[\x20-\x7e]{1,255}")


@dataclass(frozen=True, slots=True)
class Claim:
    """This request holds the key; `claimed_at` tells its claim apart from a later takeover."""

    user_id: UUID
    key: str
    claimed_at: datetime


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    status: int
    body: Any


def check_key(key: str) -> str:
    if not KEY_PATTERN.fullmatch(key):
        raise InvalidIdempotencyKey(
            "Idempotency-Key must be 1 to 255 printable ASCII characters, such as a UUID."
        )
    return key


def request_hash(method: str, path: str, body: bytes) -> bytes:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode()):
        # Length-prefixed, so no two different requests hash the same concatenation.
        digest.update(len(part).to_bytes(4, "big") + part)
    digest.update(body)
    return digest.digest()


async def claim(
    sessionmaker: async_sessionmaker[AsyncSession], user_id: UUID, key: str, hashed: bytes
) -> Claim | StoredAnswer:
    """Claim `key` for this request in a transaction of its own, committed before the work
    starts so that concurrent requests see it; or the answer a first request stored.

    Raises IdempotencyKeyReused for another request under the key, IdempotencyKeyInFlight
    while the first request runs.
    """
    now = datetime.now(UTC)
    values = {
        "user_id": user_id,
        "key": key,
        "request_hash": hashed,
        "created_at": now,
        "expires_at": now + KEY_TTL,
    }
    statement = insert(IdempotencyKey).values(values)
    statement = statement.on_conflict_do_update(
        index_elements=[IdempotencyKey.user_id, IdempotencyKey.key],
        set_={**values, "response_status": None, "response_body": None},
        # An expired key is free again, and so is a claim its request abandoned.
        where=or_(
            IdempotencyKey.expires_at <= now,
            and_(
                IdempotencyKey.response_status.is_(None),
                IdempotencyKey.created_at <= now - ABANDONED_AFTER,
            ),
        ),
    )
    # Twice at most: a first request may fail and release the key between the two statements.
    for _ in range(2):
        async with sessionmaker.begin() as session:
            claimed_at = await session.scalar(statement.returning(IdempotencyKey.created_at))
            if claimed_at is not None:
                return Claim(user_id=user_id, key=key, claimed_at=claimed_at)
            existing = await session.scalar(
                select(IdempotencyKey).where(
                    IdempotencyKey.user_id == user_id, IdempotencyKey.key == key
                )
            )
        if existing is not None:
            break
    if existing is not None and existing.request_hash != hashed:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used for a different request in the last 24 hours: "
            "use a new key for a new request."
        )
    if existing is None or existing.response_status is None:
        raise IdempotencyKeyInFlight(
            "A request with this Idempotency-Key is still being handled; retry shortly."
        )
    return StoredAnswer(status=existing.response_status, body=existing.response_body)


async def record(
    session: AsyncSession, claim: Claim | None, status: int, answer: BaseModel
) -> None:
    """Store the answer in the request's own transaction, so it commits with the work it
    describes or not at all."""
    if claim is None:
        return
    stored = await session.scalar(
        update(IdempotencyKey)
        .where(
            IdempotencyKey.user_id == claim.user_id,
            IdempotencyKey.key == claim.key,
            IdempotencyKey.created_at == claim.claimed_at,
            IdempotencyKey.response_status.is_(None),
        )
        .values(response_status=status, response_body=answer.model_dump(mode="json"))
        .returning(IdempotencyKey.key)
    )
    if stored is None:
        # Another request took the claim over as abandoned: it does the work, this one must not.
        raise IdempotencyKeyInFlight(
            "Another request with this Idempotency-Key took over; retry for its answer."
        )


async def release(sessionmaker: async_sessionmaker[AsyncSession], claim: Claim) -> None:
    """Free the key after the request failed: its changes were rolled back, nothing to replay."""
    async with sessionmaker.begin() as session:
        await session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.user_id == claim.user_id,
                IdempotencyKey.key == claim.key,
                IdempotencyKey.created_at == claim.claimed_at,
                IdempotencyKey.response_status.is_(None),
            )
        )


async def delete_expired(session: AsyncSession, now: datetime, batch: int) -> int:
    """Delete up to `batch` expired keys that no other transaction holds; returns how many."""
    expired = (
        select(IdempotencyKey.user_id, IdempotencyKey.key)
        .where(IdempotencyKey.expires_at <= now)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    deleted = await session.scalars(
        delete(IdempotencyKey)
        .where(tuple_(IdempotencyKey.user_id, IdempotencyKey.key).in_(expired))
        .returning(IdempotencyKey.key)
    )
    return len(deleted.all())
