"""The change feed and snapshots a sync client pages through, and what long-polls check.

A snapshot pages through the caller's own live tree, then through every live node shared with
it, grant by grant; a cursor says which of the two it is in.
"""

import hashlib
from datetime import datetime
from typing import cast
from uuid import UUID

from sqlalchemy import ColumnElement, and_, func, or_, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.auth.models import User
from dropp.core.config import Settings
from dropp.core.db import as_text, fetch_dicts, fetch_rows
from dropp.files import service as files_service
from dropp.files.models import FileRevision, Node, NodeKind
from dropp.sync import audience, cursors
from dropp.sync.cursors import Cursor, FeedCursor, SharedSnapshotCursor, SnapshotCursor
from dropp.sync.errors import CursorExpired
from dropp.sync.models import Change, ChangeKind
from dropp.sync.schemas import ChangePage, ChangeRead

# Where the shared part of a snapshot starts: before every grant id.
FIRST_GRANT = UUID(int=0)

# One page of the live nodes under a shared node (the node itself first among them), with
# their paths as a recipient sees them. Each level is an index probe on the live children of
# the folders above (the partial unique index on (parent_id, name)); the walk covers the
# shared subtree on every page, so a page costs what the shared folder holds, not what its
# owner's whole tree holds.
SHARED_SUBTREE_PAGE = text(
    """
    WITH RECURSIVE shared(id, kind, path, created_at, updated_at, current_revision_id) AS (
        SELECT id, kind, '/' || name, created_at, updated_at, current_revision_id
        FROM node WHERE id = CAST(:root_id AS uuid) AND trashed_at IS NULL
        UNION ALL
        SELECT node.id, node.kind, shared.path || '/' || node.name, node.created_at,
               node.updated_at, node.current_revision_id
        FROM shared JOIN node ON node.parent_id = shared.id
        WHERE shared.kind = 'folder' AND node.trashed_at IS NULL
    )
    SELECT shared.id, CAST(shared.id AS text) AS node_id, shared.kind, shared.path,
           shared.created_at, shared.updated_at, CAST(revision.id AS text) AS revision_id,
           revision.size, revision.sha256, revision.part_size
    FROM shared LEFT JOIN file_revision AS revision ON revision.id = shared.current_revision_id
    WHERE (shared.kind = 'folder' OR shared.current_revision_id IS NOT NULL)
      AND (CAST(:after_at AS timestamptz) IS NULL
           OR (shared.created_at, shared.id)
              > (CAST(:after_at AS timestamptz), CAST(:after_id AS uuid)))
    ORDER BY shared.created_at, shared.id
    LIMIT :limit
    """
)

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
    newest = select(func.max(Change.id)).where(Change.user_id == user_id).scalar_subquery()
    head = await session.scalar(
        select(func.greatest(newest, User.changes_pruned_through)).where(User.id == user_id)
    )
    return head or 0


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
    if isinstance(cursor, SharedSnapshotCursor):
        entries, more = await _shared_entries(session, user_id, cursor, limit)
        return await _snapshot_answer(session, key, user_id, cursor.feed_id, entries, more)
    return await _feed_page(session, key, user_id, last_id, limit)


async def _feed_page(
    session: AsyncSession, key: bytes, user_id: UUID, last_id: int, limit: int
) -> ChangePage:
    # Plain rows, not ORM objects: a page is up to 1,000 entries, and a model built per row
    # cost more than the query. The `id` column only places the cursor; serializing a
    # ChangeRead leaves it out.
    rows = await fetch_dicts(
        session,
        select(
            Change.id,
            Change.change,
            as_text(Change.node_id, "node_id"),
            Change.node_kind.label("kind"),
            Change.path,
            as_text(Change.revision_id, "revision_id"),
            Change.size,
            Change.content_hash,
            Change.created_at.label("changed_at"),
            as_text(Change.grant_id, "grant_id"),
        )
        .where(Change.user_id == user_id, Change.id > last_id)
        .order_by(Change.id)
        .limit(limit + 1),
    )
    page = rows[:limit]
    if page:
        last_id = page[-1]["id"]
    # The columns are ChangeRead's fields, under its names, plus `id`.
    changes = cast(list[ChangeRead], page)
    return _page(changes, cursors.encode(key, user_id, FeedCursor(last_id)), len(rows) > limit)


def _page(
    changes: list[ChangeRead], cursor: str, has_more: bool, *, snapshot: bool = False
) -> ChangePage:
    # Not validated: every entry comes from typed columns, and validating a 1,000-entry page
    # again cost as much as its query. Serializing still checks each value against the schema
    # (a mismatch warns, and the tests turn warnings into errors).
    return ChangePage.model_construct(
        changes=changes, cursor=cursor, has_more=has_more, snapshot=snapshot
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
            as_text(Node.id, "node_id"),
            Node.parent_id,
            Node.name,
            Node.kind,
            Node.created_at,
            Node.updated_at,
            as_text(FileRevision.id, "revision_id"),
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
    rows = (await fetch_rows(session, query)).all()
    page = rows[:limit]
    # Rows unpacked, not read by attribute: on a 1,000-row page, `row.name` and the like cost
    # three times as much as building the entries.
    parents = await files_service.folder_paths(
        session, {parent_id for _, parent_id, *_ in page if parent_id is not None}
    )
    # Dict displays, which mypy checks against ChangeRead all the same: calling the TypedDict
    # took twice as long.
    entries: list[ChangeRead] = [
        {
            "change": ChangeKind.CREATED,
            "node_id": node_id,
            "kind": kind,
            "path": f"{parents[parent_id] if parent_id else ''}/{name}",
            "revision_id": revision_id,
            "size": size,
            "content_hash": files_service.content_hash(sha256, part_size),
            "changed_at": updated_at,
            "grant_id": None,
        }
        for (
            node_id,
            parent_id,
            name,
            kind,
            _,
            updated_at,
            revision_id,
            size,
            sha256,
            part_size,
        ) in page
    ]
    if len(rows) > limit:
        last = page[-1]
        own_cursor = SnapshotCursor(feed_id, last.created_at, UUID(last.node_id))
        return await _snapshot_answer(session, key, user_id, feed_id, entries, own_cursor)
    # The caller's own tree is done: what others share with it fills the rest of the page.
    start = SharedSnapshotCursor(feed_id, FIRST_GRANT, None, None)
    shared, more = await _shared_entries(session, user_id, start, limit - len(page))
    return await _snapshot_answer(session, key, user_id, feed_id, entries + shared, more)


async def _shared_entries(
    session: AsyncSession, user_id: UUID, position: SharedSnapshotCursor, limit: int
) -> tuple[list[ChangeRead], SharedSnapshotCursor | None]:
    """Up to `limit` live nodes shared with the user, from `position` on, as snapshot
    entries; and where the next page starts, if there is more."""
    entries: list[ChangeRead] = []
    last = position
    for grant_id, node_id in await audience.visible_grants(session, user_id, position.grant_id):
        after = position if grant_id == position.grant_id else None
        shown_grant_id = str(grant_id)
        rows = (
            await fetch_rows(
                session,
                SHARED_SUBTREE_PAGE,
                {
                    "root_id": node_id,
                    "after_at": after.created_at if after else None,
                    "after_id": after.node_id if after else None,
                    "limit": limit + 1 - len(entries),
                },
            )
        ).all()
        for row in rows:
            if len(entries) == limit:
                return entries, last
            # Unpacked, not read by attribute (see `_snapshot_page`).
            shared_id, node_id, kind, path, created_at, updated_at, *revision = row
            revision_id, size, sha256, part_size = revision
            entries.append(
                {
                    "change": ChangeKind.CREATED,
                    "node_id": node_id,
                    "kind": kind,
                    "path": path,
                    "revision_id": revision_id,
                    "size": size,
                    "content_hash": files_service.content_hash(sha256, part_size),
                    "changed_at": updated_at,
                    "grant_id": shown_grant_id,
                }
            )
            last = SharedSnapshotCursor(position.feed_id, grant_id, created_at, shared_id)
    return entries, None


async def _snapshot_answer(
    session: AsyncSession,
    key: bytes,
    user_id: UUID,
    feed_id: int,
    entries: list[ChangeRead],
    next_cursor: Cursor | None,
) -> ChangePage:
    if next_cursor is not None:
        return _page(entries, cursors.encode(key, user_id, next_cursor), True, snapshot=True)
    # The snapshot is done: continue with the feed from where it stood when the snapshot began.
    return _page(
        entries,
        cursors.encode(key, user_id, FeedCursor(feed_id)),
        await has_changes_after(session, user_id, feed_id),
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
