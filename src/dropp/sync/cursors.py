"""Sync cursors: opaque, signed tokens bound to one account.

A feed cursor holds the last change id served; a snapshot cursor holds where the snapshot is
in the tree (the caller's own, then what is shared with it) and the feed position taken
before it began. The HMAC makes them unforgeable, so
a client cannot point one at another account or at ids it was never given.
"""

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from dropp.sync.errors import InvalidSyncCursor

SIGNATURE_BYTES = 16


@dataclass(frozen=True, slots=True)
class FeedCursor:
    last_id: int


@dataclass(frozen=True, slots=True)
class SnapshotCursor:
    # The feed position the snapshot continues with once it is done.
    feed_id: int
    # The keyset position of the last node served: (created_at, id).
    created_at: datetime
    node_id: UUID


@dataclass(frozen=True, slots=True)
class SharedSnapshotCursor:
    """A snapshot past the caller's own tree, in what others share with it: grant by grant
    (by id), each grant's nodes by (created_at, id)."""

    feed_id: int
    grant_id: UUID
    # The keyset position of the last node served within that grant; None: none served yet.
    created_at: datetime | None
    node_id: UUID | None


Cursor = FeedCursor | SnapshotCursor | SharedSnapshotCursor


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(key: bytes, user_id: UUID, payload: bytes) -> bytes:
    message = user_id.bytes + payload
    return hmac.new(key, message, hashlib.sha256).digest()[:SIGNATURE_BYTES]


def encode(key: bytes, user_id: UUID, cursor: Cursor) -> str:
    fields: list[object]
    if isinstance(cursor, FeedCursor):
        fields = ["c", cursor.last_id]
    elif isinstance(cursor, SnapshotCursor):
        fields = ["s", cursor.feed_id, cursor.created_at.isoformat(), str(cursor.node_id)]
    else:
        fields = [
            "g",
            cursor.feed_id,
            str(cursor.grant_id),
            cursor.created_at.isoformat() if cursor.created_at is not None else None,
            str(cursor.node_id) if cursor.node_id is not None else None,
        ]
    payload = json.dumps(fields, separators=(",", ":")).encode()
    return f"{_b64(payload)}.{_b64(_signature(key, user_id, payload))}"


def decode(key: bytes, user_id: UUID, token: str) -> Cursor:
    """The cursor `encode` made for this user; InvalidSyncCursor for anything else."""
    invalid = InvalidSyncCursor(
        "The cursor is not one this server issued to you; call without a cursor to start over."
    )
    try:
        payload_text, signature_text = token.split(".")
        payload = _unb64(payload_text)
        signature = _unb64(signature_text)
    except ValueError as error:
        raise invalid from error
    # The user is part of the signed message: another account's cursor fails right here.
    if not hmac.compare_digest(signature, _signature(key, user_id, payload)):
        raise invalid
    try:
        fields = json.loads(payload)
        if fields[0] == "c" and len(fields) == 2 and type(fields[1]) is int:
            return FeedCursor(fields[1])
        if fields[0] == "s" and len(fields) == 4 and type(fields[1]) is int:
            moment = datetime.fromisoformat(fields[2])
            if moment.tzinfo is not None:
                return SnapshotCursor(fields[1], moment, UUID(fields[3]))
        if fields[0] == "g" and len(fields) == 5 and type(fields[1]) is int:
            if fields[3] is None and fields[4] is None:
                return SharedSnapshotCursor(fields[1], UUID(fields[2]), None, None)
            moment = datetime.fromisoformat(fields[3])
            if moment.tzinfo is not None:
                return SharedSnapshotCursor(fields[1], UUID(fields[2]), moment, UUID(fields[4]))
    except (ValueError, TypeError, IndexError, KeyError) as error:
        raise invalid from error
    raise invalid
