"""Opaque keyset cursors: the sort key of the last item seen, never an offset."""

import base64
import json
from datetime import datetime
from typing import TypeVarTuple
from uuid import UUID

from sqlalchemy import Select, tuple_
from sqlalchemy.orm import InstrumentedAttribute

Columns = TypeVarTuple("Columns")


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


def newest_first(
    query: Select[*Columns],
    moment: InstrumentedAttribute[datetime] | InstrumentedAttribute[datetime | None],
    key: InstrumentedAttribute[UUID],
    cursor: str | None,
    limit: int,
) -> Select[*Columns]:
    """`query` newest first by (`moment`, `key`), after `cursor` if given, with one row past
    `limit`, which tells whether there is a next page. A cursor this server did not issue
    raises CursorError."""
    if cursor is not None:
        seen_moment, seen_key = decode_cursor(cursor)
        query = query.where(tuple_(moment, key) < tuple_(seen_moment, seen_key))
    return query.order_by(moment.desc(), key.desc()).limit(limit + 1)
