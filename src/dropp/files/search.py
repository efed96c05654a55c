"""Finding the caller's files and folders by a piece of their name."""

from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.core.pagination import CursorError, encode_cursor, newest_first
from dropp.files import service, tree
from dropp.files.errors import InvalidCursor
from dropp.files.models import Node, NodeKind
from dropp.files.names import name_key
from dropp.files.schemas import SearchPage


async def search(
    session: AsyncSession, owner_id: UUID, text: str, *, cursor: str | None, limit: int
) -> SearchPage:
    """Live nodes whose name holds `text`, compared as names are (NFC, case folded), most
    recently changed first. `%` and `_` are themselves, not patterns."""
    query = select(Node).where(
        Node.owner_id == owner_id,
        Node.trashed_at.is_(None),
        Node.name_key.contains(name_key(text), autoescape=True),
    )
    try:
        query = newest_first(query, Node.updated_at, Node.id, cursor, limit)
    except CursorError as error:
        raise InvalidCursor("The cursor is not one this server issued.") from error
    rows = list(await session.scalars(query))
    page = rows[:limit]
    paths = await service.folder_paths(
        session, {node.parent_id for node in page if node.parent_id is not None}
    )
    shown = await service.shown_revisions(
        session, [node.id for node in page if node.kind == NodeKind.FILE]
    )
    items = [
        tree.node_read(node, shown.get(node.id), paths[node.parent_id] if node.parent_id else "")
        for node in page
    ]
    next_cursor = encode_cursor(page[-1].updated_at, page[-1].id) if len(rows) > limit else None
    return SearchPage(items=items, next_cursor=next_cursor)
