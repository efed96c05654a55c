"""The change feed and snapshots a sync client pages through, and what long-polls check."""

import hashlib
from datetime import datetime
from uuid import UUID

from pydantic import TypeAdapter
from sqlalchemy import ColumnElement, and_, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.auth.models import User
from dropp.core.config import Settings
from dropp.files import service as files_service
from dropp.files.models import FileRevision, Node, NodeKind
from dropp.sync import cursors
from dropp.sync.cursors import Cursor, FeedCursor, SnapshotCursor
from dropp.sync.errors import CursorExpired
from dropp.sync.models import Change, ChangeKind
from dropp.sync.schemas import ChangePage, ChangeRead

# Validating a page as one list is a single call into pydantic-core, not one per entry.
CHANGE_LIST = TypeAdapter(list[ChangeRead])

EXPIRED_DETAIL = "The changes after this cursor were pruned; re-snapshot: call without a cursor."


def cursor_key(settings: Settings) -> bytes:
    """A key for cursors only, derived from SECRET_KEY so no other signature can pass for one."""
    assert settings.secret_key is not None
    secret = settings.secret_key.get_secret_value().encode()
    return hashlib.sha256(b"dropp sync cursor\0" + secret).digest()


async def _pruned_through(session: AsyncSession, user_id: UUID) -> int:
    pruned = await session.scalar(select(User.changes_pruned_through).where(User.id == user_id))
    return pruned or 0


async def feed_head(session: AsyncSession, user_id: UUID) -> int:
    """The feed position now: the user's newest change id (or what pruning reached)."""
    newest = await session.scalar(select(func.max(Change.id)).where(Change.user_id == user_id))
    return max(newest or 0, await _pruned_through(session, user_id))


async def has_changes_after(session: AsyncSession, user_id: UUID, last_id: int) -> bool:
    found = await session.scalar(
        select(Change.id).where(Change.user_id == user_id, Change.id > last_id).limit(1)
    )
    return found is not None


async def check_not_pruned(session: AsyncSession, user_id: UUID, cursor: Cursor) -> int:
    """The feed id the cursor continues from; CursorExpired if changes after it were pruned."""
    last_id = cursor.last_id if isinstance(cursor, FeedCursor) else cursor.feed_id
    if last_id < await _pruned_through(session, user_id):
        raise CursorExpired(EXPIRED_DETAIL)
    return last_id


async def changes_page(
    session: AsyncSession, key: bytes, user_id: UUID, token: str | None, limit: int
) -> ChangePage:
    """A page of the feed after the cursor, or of a snapshot when there is no cursor."""
    if token is None:
        head = await feed_head(session, user_id)
        return await _snapshot_page(session, key, user_id, head, None, limit)
    cursor = cursors.decode(key, user_id, token)
    last_id = await check_not_pruned(session, user_id, cursor)
    if isinstance(cursor, SnapshotCursor):
        return await _snapshot_page(session, key, user_id, last_id, cursor, limit)
    return await _feed_page(session, key, user_id, last_id, limit)


async def _feed_page(
    session: AsyncSession, key: bytes, user_id: UUID, last_id: int, limit: int
) -> ChangePage:
    # Plain rows, not ORM objects, validated as one list: a page is up to 1,000 entries, and
    # a model built per row cost more than the query.
    rows = (
        await session.execute(
            select(
                Change.id,
                Change.change,
                Change.node_id,
                Change.node_kind.label("kind"),
                Change.path,
                Change.revision_id,
                Change.size,
                Change.content_hash,
                Change.created_at.label("changed_at"),
            )
            .where(Change.user_id == user_id, Change.id > last_id)
            .order_by(Change.id)
            .limit(limit + 1)
        )
    ).all()
    page = rows[:limit]
    if page:
        last_id = page[-1].id
    return ChangePage(
        changes=CHANGE_LIST.validate_python([row._asdict() for row in page]),
        cursor=cursors.encode(key, user_id, FeedCursor(last_id)),
        has_more=len(rows) > limit,
        snapshot=False,
    )


def _live(user_id: UUID) -> ColumnElement[bool]:
    # Live folders, and live files that have bytes to download; trashed subtrees carry
    # `trashed_at` on every node, so no ancestor walk is needed.
    return and_(
        Node.owner_id == user_id,
        Node.trashed_at.is_(None),
        or_(Node.kind == NodeKind.FOLDER, Node.current_revision_id.is_not(None)),
    )


async def _snapshot_page(
    session: AsyncSession,
    key: bytes,
    user_id: UUID,
    feed_id: int,
    cursor: SnapshotCursor | None,
    limit: int,
) -> ChangePage:
    query = (
        select(
            Node.id,
            Node.parent_id,
            Node.name,
            Node.kind,
            Node.created_at,
            Node.updated_at,
            FileRevision.id.label("revision_id"),
            FileRevision.size,
            FileRevision.sha256,
            FileRevision.part_size,
        )
        .outerjoin(FileRevision, FileRevision.id == Node.current_revision_id)
        .where(_live(user_id))
    )
    if cursor is not None:
        query = query.where(
            tuple_(Node.created_at, Node.id) > tuple_(cursor.created_at, cursor.node_id)
        )
    query = query.order_by(Node.created_at, Node.id).limit(limit + 1)
    rows = (await session.execute(query)).all()
    page = rows[:limit]
    parents = await files_service.folder_paths(
        session, {row.parent_id for row in page if row.parent_id is not None}
    )
    entries = CHANGE_LIST.validate_python(
        [
            {
                "change": ChangeKind.CREATED,
                "node_id": row.id,
                "kind": row.kind,
                "path": f"{parents[row.parent_id] if row.parent_id else ''}/{row.name}",
                "revision_id": row.revision_id,
                "size": row.size,
                "content_hash": files_service.content_hash(row.sha256, row.part_size),
                "changed_at": row.updated_at,
            }
            for row in page
        ]
    )
    if len(rows) > limit:
        last = page[-1]
        next_cursor: Cursor = SnapshotCursor(feed_id, last.created_at, last.id)
        return ChangePage(
            changes=entries,
            cursor=cursors.encode(key, user_id, next_cursor),
            has_more=True,
            snapshot=True,
        )
    # The snapshot is done: continue with the feed from where it stood when the snapshot began.
    return ChangePage(
        changes=entries,
        cursor=cursors.encode(key, user_id, FeedCursor(feed_id)),
        has_more=await has_changes_after(session, user_id, feed_id),
        snapshot=True,
    )


async def cursor_since(session: AsyncSession, key: bytes, user_id: UUID, since: datetime) -> str:
    """A feed cursor whose next page starts with the first change at or after `since`."""
    first = await session.scalar(
        select(func.min(Change.id)).where(Change.user_id == user_id, Change.created_at >= since)
    )
    pruned = await _pruned_through(session, user_id)
    if pruned:
        oldest_kept = await session.scalar(
            select(func.min(Change.created_at)).where(Change.user_id == user_id)
        )
        # Pruned changes are older than every kept one; a moment before the oldest kept change
        # may have been followed by some of them.
        if oldest_kept is None or since < oldest_kept:
            raise CursorExpired(
                "Changes since that moment were pruned; re-snapshot: call without a timestamp."
            )
    last_id = first - 1 if first is not None else await feed_head(session, user_id)
    return cursors.encode(key, user_id, FeedCursor(last_id))
