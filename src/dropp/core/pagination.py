"""Opaque keyset cursors: the sort key of the last item seen, never an offset."""

import base64
import json
from datetime import datetime
from uuid import UUID


class CursorError(ValueError):
    pass


def encode_cursor(created_at: datetime, item_id: UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(item_id)], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created_at, item_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        moment = datetime.fromisoformat(created_at)
        if moment.tzinfo is None:
            raise CursorError("naive timestamp")
        return moment, UUID(item_id)
    except (ValueError, TypeError) as error:
        raise CursorError(str(error)) from error
