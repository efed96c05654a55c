"""The shape of a user's tree: folders, renames and moves, the trash and restoring from it."""

import base64
import functools
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    DateTime,
    Integer,
    Select,
    String,
    Subquery,
    Uuid,
    and_,
    bindparam,
    case,
    delete,
    func,
    or_,
    select,
    text,
    true,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.selectable import LateralFromClause
from sqlalchemy.types import TypeEngine

from dropp.core.db import as_text, fetch_dicts
from dropp.core.pagination import CursorError, encode_cursor, newest_first
from dropp.files import locks, service
from dropp.files.errors import (
    FileNotFound,
    FolderNotFound,
    InvalidCursor,
    MoveIntoItself,
    NameTaken,
    NotInTrash,
    StaleBaseRevision,
)
from dropp.files.models import FileRevision, Node, NodeKind, RevisionState
from dropp.files.names import MAX_NAME_BYTES, existing_path_names, name_key
from dropp.files.schemas import (
    ChildOrder,
    ChildrenPage,
    Direction,
    FileMove,
    FolderMove,
    FolderRead,
    NodeRead,
    TrashPage,
    TrashRead,
)
from dropp.sync import changes
from dropp.sync.models import ChangeKind
from dropp.sync.rows import Placement

# How often a move retries autorename when a concurrent writer takes the name it picked.
AUTORENAME_ATTEMPTS = 5


# Every live node under the root, with the root; nodes trashed earlier stay where they are.
TRASH_SUBTREE = text(
    """
    WITH RECURSIVE subtree(id) AS (
        SELECT id FROM node WHERE id = :root_id
        UNION ALL
        SELECT node.id FROM node JOIN subtree ON node.parent_id = subtree.id
        WHERE node.trashed_at IS NULL
    )
    UPDATE node SET trashed_at = :now, trash_root = (node.id = :root_id)
    FROM subtree WHERE node.id = subtree.id
    """
)

# The root and exactly the nodes trashed with it: the same moment, reached through nodes
# trashed at that moment.
RESTORE_SUBTREE = text(
    """
    WITH RECURSIVE subtree(id) AS (
        SELECT id FROM node WHERE id = :root_id
        UNION ALL
        SELECT node.id FROM node JOIN subtree ON node.parent_id = subtree.id
        WHERE node.trashed_at = :trashed_at
    )
    UPDATE node SET trashed_at = NULL, trash_root = false
    FROM subtree WHERE node.id = subtree.id
    """
)

# Everything under the roots, whatever its state: purging a folder purges all it holds.
WHOLE_SUBTREES = text(
    """
    WITH RECURSIVE subtree(id, kind) AS (
        SELECT id, kind FROM node WHERE id = ANY(:root_ids)
        UNION
        SELECT node.id, node.kind FROM node JOIN subtree ON node.parent_id = subtree.id
    )
    SELECT id, kind FROM subtree
    """
)

ANCESTORS = text(
    """
    WITH RECURSIVE chain(id, parent_id) AS (
        SELECT id, parent_id FROM node WHERE id = :start_id
        UNION ALL
        SELECT node.id, node.parent_id FROM node JOIN chain ON node.id = chain.parent_id
    )
    SELECT id FROM chain
    """
)


def _in_parent(parent_id: UUID | None) -> ColumnElement[bool]:
    return Node.parent_id.is_(None) if parent_id is None else Node.parent_id == parent_id


async def _live_child(
    session: AsyncSession, owner_id: UUID, parent_id: UUID | None, name: str
) -> Node | None:
    return await session.scalar(
        select(Node).where(
            Node.owner_id == owner_id,
            _in_parent(parent_id),
            # "report.pdf" is taken by "Report.PDF": one name on Windows and macOS.
            Node.name_key == name_key(name),
            Node.trashed_at.is_(None),
        )
    )


def _not_found(kind: NodeKind) -> FileNotFound | FolderNotFound:
    if kind == NodeKind.FILE:
        return FileNotFound("There is no such file.")
    return FolderNotFound("There is no such folder.")


async def _lock_live(session: AsyncSession, owner_id: UUID, node_id: UUID, kind: NodeKind) -> Node:
    node = await session.scalar(service.live_node(owner_id, node_id, kind).with_for_update())
    if node is None:
        raise _not_found(kind)
    return node


# --- reading -------------------------------------------------------------------------------


async def _representative(session: AsyncSession, node: Node) -> FileRevision | None:
    """The revision a file shows: its current one, else its newest upload."""
    if node.kind != NodeKind.FILE:
        return None
    return await session.scalar(
        select(FileRevision)
        .where(FileRevision.node_id == node.id)
        .order_by(
            (FileRevision.id == node.current_revision_id).desc(), FileRevision.created_at.desc()
        )
        .limit(1)
    )


def node_read(node: Node, revision: FileRevision | None, parent_path: str) -> NodeRead:
    read = NodeRead(
        id=str(node.id),
        kind=node.kind,
        name=node.name,
        path=f"{parent_path}/{node.name}",
        size=None,
        content_type=None,
        status=None,
        revision_id=None,
        created_at=node.created_at,
        updated_at=node.updated_at,
    )
    if revision is not None:
        complete = revision.state == RevisionState.COMPLETE
        read["size"] = revision.size if complete else revision.declared_size
        read["content_type"] = revision.content_type
        read["status"] = revision.state
        read["revision_id"] = str(revision.id)
    return read


async def read_node(session: AsyncSession, node: Node) -> NodeRead:
    parent_path = ""
    if node.parent_id is not None:
        parent_path = (await service.folder_paths(session, {node.parent_id}))[node.parent_id]
    return node_read(node, await _representative(session, node), parent_path)


def _encode_children_cursor(
    order: ChildOrder, direction: Direction, rank: int, keys: Sequence[object], node_id: str
) -> str:
    position = [rank, *keys, node_id]
    # By name upward keeps the shape cursors had before there were other orders.
    raw = (
        position
        if (order, direction) == (ChildOrder.NAME, Direction.ASC)
        else {
            "sort": order.value,
            "direction": direction.value,
            "after": position,
        }
    )
    encoded = json.dumps(raw, separators=(",", ":"), default=str)
    return base64.urlsafe_b64encode(encoded.encode()).decode().rstrip("=")


def _decode_children_cursor(
    cursor: str, order: ChildOrder, direction: Direction
) -> tuple[int, list[object], UUID]:
    """The position after which the page starts: rank, sort keys, id. A cursor made for
    another order is refused, not read as a position it does not mean."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if isinstance(raw, dict):
            if (raw.get("sort"), raw.get("direction")) != (order.value, direction.value):
                raise ValueError("a cursor of another order")
            raw = raw["after"]
        elif (order, direction) != (ChildOrder.NAME, Direction.ASC):
            raise ValueError("a cursor of another order")
        rank, *keys, node_id = raw
        if type(rank) is not int or rank not in (0, 1) or len(keys) != len(_SORT_KEYS[order]):
            raise ValueError("not a children cursor")
        return (
            rank,
            [_read_key(kind, key) for kind, key in zip(_SORT_KEYS[order], keys, strict=True)],
            UUID(node_id),
        )
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise InvalidCursor("The cursor is not one this server issued.") from error


def _read_key(kind: str, value: object) -> object:
    """A cursor's sort key as its column holds it; ValueError for what no row could hold
    (the database would refuse it, and a forged cursor is the client's error)."""
    if kind == "size" and type(value) is int and -(2**63) <= value < 2**63:
        return value
    if kind == "time" and isinstance(value, str):
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("a time without its zone")
        return moment
    if kind == "name" and isinstance(value, str) and "\x00" not in value:
        return value
    raise ValueError("not a sort key")


# The kinds of a cursor's keys for each order, after the rank and before the id.
_SORT_KEYS = {
    ChildOrder.NAME: ("name",),
    ChildOrder.SIZE: ("size", "name"),
    ChildOrder.MODIFIED: ("time", "name"),
}


def _revision_probe(
    condition: ColumnElement[bool], nodes: Subquery, name: str
) -> LateralFromClause:
    """The one revision of a listed file that matches `condition`, newest first."""
    return (
        select(
            FileRevision.id.label("revision_id"),
            FileRevision.state.label("status"),
            # Until it completes, a revision shows the size its upload declared.
            case(
                (FileRevision.state == RevisionState.COMPLETE, FileRevision.size),
                else_=FileRevision.declared_size,
            ).label("size"),
            FileRevision.content_type,
        )
        .where(nodes.c.kind == NodeKind.FILE, condition)
        .order_by(FileRevision.created_at.desc())
        .limit(1)
        .lateral(name)
    )


@functools.cache
def _children_query(
    *, top_level: bool, after_cursor: bool, order: ChildOrder, direction: Direction
) -> Select[Any]:
    """The statement of a page of a folder's children, built once for each shape; its values
    are bound parameters. Building it for every request cost 2 ms."""
    rank = case((Node.kind == NodeKind.FOLDER, 0), else_=1)
    # Code-point order: the same for every client and locale, and what the cursor compares.
    name_key = Node.name.collate("C")
    # Folders have no size: by size they sort among themselves by name. A file not yet
    # uploaded counts as empty.
    size_key = func.coalesce(Node.size, 0)
    first_key: dict[ChildOrder, ColumnElement[Any] | InstrumentedAttribute[Any]] = {
        ChildOrder.SIZE: size_key,
        ChildOrder.MODIFIED: Node.updated_at,
    }
    keys = [name_key] if order == ChildOrder.NAME else [first_key[order], name_key]
    key_types: dict[str, TypeEngine[Any]] = {
        "name": String(),
        "size": BigInteger(),
        "time": DateTime(timezone=True),
    }
    # The page of nodes first, then the revisions of just those nodes: joined before the
    # limit, PostgreSQL hashes every revision of the account, and the page grows with it.
    page_query = select(
        Node.id,
        Node.kind,
        Node.name,
        Node.created_at,
        Node.updated_at,
        Node.current_revision_id,
        rank.label("rank"),
        size_key.label("sort_size"),
    ).where(
        Node.owner_id == bindparam("owner_id"),
        Node.parent_id.is_(None) if top_level else Node.parent_id == bindparam("folder_id"),
        Node.trashed_at.is_(None),
    )
    upward = direction == Direction.ASC
    if after_cursor:
        last: list[BindParameter[Any]] = [
            bindparam(f"last_key_{i}", type_=key_types[kind])
            for i, kind in enumerate(_SORT_KEYS[order])
        ]
        last_rank = bindparam("last_rank", type_=Integer)
        last_id = bindparam("last_id", type_=Uuid)
        if upward:
            after = tuple_(rank, *keys, Node.id) > tuple_(last_rank, *last, last_id)
        else:
            # Folders still come first: only the keys after the rank run downward.
            after = or_(
                rank > last_rank,
                and_(rank == last_rank, tuple_(*keys, Node.id) < tuple_(*last, last_id)),
            )
        page_query = page_query.where(after)
    ordering = [rank, *keys, Node.id] if upward else [rank, *(k.desc() for k in [*keys, Node.id])]
    nodes = page_query.order_by(*ordering).limit(bindparam("rows", type_=Integer)).subquery("page")
    # Columns, not ORM objects: building entities for a thousand rows cost more than the
    # query. Both lookups are LATERAL with LIMIT 1 so that each is an index probe per row of
    # the page: as a plain join, PostgreSQL hashes every revision of the account instead,
    # and the page grows with it. Folders probe nothing.
    current_revision = _revision_probe(
        FileRevision.id == nodes.c.current_revision_id, nodes, "current_revision"
    )
    newest_upload = _revision_probe(
        and_(nodes.c.current_revision_id.is_(None), FileRevision.node_id == nodes.c.id),
        nodes,
        "newest_upload",
    )
    shown = [current_revision.c, newest_upload.c]
    outer_first = {ChildOrder.SIZE: nodes.c.sort_size, ChildOrder.MODIFIED: nodes.c.updated_at}
    outer_order = [nodes.c.name.collate("C"), nodes.c.id]
    if order != ChildOrder.NAME:
        outer_order.insert(0, outer_first[order])
    return (
        select(
            as_text(nodes.c.id, "id"),
            nodes.c.kind,
            nodes.c.name,
            (bindparam("path_prefix", type_=String) + nodes.c.name).label("path"),
            nodes.c.created_at,
            nodes.c.updated_at,
            as_text(func.coalesce(*(c.revision_id for c in shown)), "revision_id"),
            *(
                func.coalesce(*(c[column] for c in shown)).label(column)
                for column in ("status", "size", "content_type")
            ),
            nodes.c.sort_size,
        )
        .select_from(nodes)
        .outerjoin(current_revision, true())
        .outerjoin(newest_upload, true())
        .order_by(nodes.c.rank, *(outer_order if upward else (k.desc() for k in outer_order)))
    )


async def list_children(
    session: AsyncSession,
    owner_id: UUID,
    folder_id: UUID | None,
    *,
    cursor: str | None,
    limit: int,
    order: ChildOrder = ChildOrder.NAME,
    direction: Direction = Direction.ASC,
) -> ChildrenPage:
    """The live folders, then the live files, directly in `folder_id`; each in `order`."""
    values: dict[str, Any] = {"owner_id": owner_id, "folder_id": folder_id, "rows": limit + 1}
    if cursor is not None:
        values["last_rank"], keys, values["last_id"] = _decode_children_cursor(
            cursor, order, direction
        )
        values.update({f"last_key_{i}": key for i, key in enumerate(keys)})
    parent_path = ""
    if folder_id is not None:
        parent_path = (await service.folder_paths(session, {folder_id}))[folder_id]
    values["path_prefix"] = f"{parent_path}/"
    query = _children_query(
        top_level=folder_id is None,
        after_cursor=cursor is not None,
        order=order,
        direction=direction,
    )
    rows = await fetch_dicts(session, query, values)
    sizes = [row.pop("sort_size") for row in rows]
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        rank = 0 if last["kind"] == NodeKind.FOLDER else 1
        keys = {
            ChildOrder.NAME: [last["name"]],
            ChildOrder.SIZE: [sizes[limit - 1], last["name"]],
            ChildOrder.MODIFIED: [last["updated_at"].isoformat(), last["name"]],
        }[order]
        next_cursor = _encode_children_cursor(order, direction, rank, keys, last["id"])
    # Not validated: every entry comes from typed columns, under NodeRead's names, and
    # validating a 1,000-entry page again cost as much as its query. Serializing still checks
    # each value against the schema (a mismatch warns, and the tests turn warnings into errors).
    items = cast(list[NodeRead], page)
    return ChildrenPage.model_construct(items=items, next_cursor=next_cursor)


# --- creating folders ----------------------------------------------------------------------


async def create_folder(
    session: AsyncSession, owner_id: UUID, names: Sequence[str]
) -> tuple[FolderRead, bool]:
    """Like `mkdir -p`; returns the folder and whether it was created now."""
    await locks.lock_tree(session, owner_id)
    parent_id, created_last = await service.make_folders(session, owner_id, names)
    assert parent_id is not None
    folder = await session.get_one(Node, parent_id)
    read = FolderRead(
        folder_id=folder.id,
        name=folder.name,
        # As stored: "/photos" asked for finds "/Photos", which keeps its case.
        path=await service.node_path(session, folder),
        created_at=folder.created_at,
        updated_at=folder.updated_at,
    )
    return read, created_last


# --- names: taken, and the next free one -----------------------------------------------------


def _numbered(name: str, kind: NodeKind, number: int) -> str:
    """`report.pdf` -> `report (2).pdf`; folders and dotfiles get the number at the end."""
    stem, ext = name, ""
    dot = name.rfind(".")
    if kind == NodeKind.FILE and dot > 0:
        stem, ext = name[:dot], name[dot:]
    suffix = f" ({number}){ext}"
    # Shortened by whole characters until the result fits the name limit.
    while stem and len((stem + suffix).encode()) > MAX_NAME_BYTES:
        stem = stem[:-1]
    return stem + suffix


async def free_name(
    session: AsyncSession, owner_id: UUID, parent_id: UUID | None, name: str, kind: NodeKind
) -> str:
    """The first `name (n)` no live node in the folder holds, in any case."""
    prefix = name_key(_numbered(name, kind, 2).rsplit(" (", 1)[0])
    taken = set(
        await session.scalars(
            select(Node.name_key).where(
                Node.owner_id == owner_id,
                _in_parent(parent_id),
                Node.trashed_at.is_(None),
                Node.name_key.startswith(prefix, autoescape=True),
            )
        )
    )
    number = 2
    while name_key(_numbered(name, kind, number)) in taken:
        number += 1
    return _numbered(name, kind, number)


Place = Callable[[UUID | None, str], Awaitable[None]]


async def _place(
    session: AsyncSession,
    node: Node,
    parent_id: UUID | None,
    name: str,
    *,
    autorename: bool,
    apply: Place,
) -> str:
    """Put the node at (parent, name) through `apply`; returns the name it got.

    The unique index on live names decides between concurrent writers: a violation answers
    409, or with autorename tries the next free name.
    """
    owner_id, node_id, kind = node.owner_id, node.id, node.kind
    for _ in range(AUTORENAME_ATTEMPTS):
        holder = await _live_child(session, owner_id, parent_id, name)
        if holder is not None and holder.id != node_id:
            if not autorename:
                raise NameTaken(f"{name!r} is already taken there.", conflicting_id=str(holder.id))
            name = await free_name(session, owner_id, parent_id, name, kind)
        try:
            async with session.begin_nested():
                await apply(parent_id, name)
        except IntegrityError:
            if autorename:
                continue
            holder = await _live_child(session, owner_id, parent_id, name)
            raise NameTaken(
                f"{name!r} was taken there meanwhile.",
                conflicting_id=str(holder.id) if holder is not None else None,
            ) from None
        return name
    raise NameTaken(f"No free name like {name!r} could be taken; try again.")


# --- moving and renaming ----------------------------------------------------------------------


async def move_node(
    session: AsyncSession, owner_id: UUID, node_id: UUID, kind: NodeKind, body: FolderMove
) -> NodeRead:
    """Rename and/or move a file or a folder (with its whole subtree, which follows its
    parent); records one `moved` change. Only a file's move (`FileMove`) has a
    `base_revision`."""
    base_revision = body.base_revision if isinstance(body, FileMove) else None
    await locks.lock_tree(session, owner_id)
    node = await _lock_live(session, owner_id, node_id, kind)
    if base_revision is not None and node.current_revision_id != base_revision:
        current = node.current_revision_id
        raise StaleBaseRevision(
            "The file changed since `base_revision`; sync it, then move it again.",
            current_revision_id=str(current) if current is not None else None,
        )
    parent_id = node.parent_id
    if body.parent_path is not None:
        parent_id = await service.find_folder(
            session, owner_id, existing_path_names(body.parent_path)
        )
        if kind == NodeKind.FOLDER and parent_id is not None:
            chain = set(await session.scalars(ANCESTORS, {"start_id": parent_id}))
            if node.id in chain:
                raise MoveIntoItself("A folder cannot move into itself or its own subfolder.")
    name = body.name if body.name is not None else node.name
    if (parent_id, name) == (node.parent_id, node.name):
        return await read_node(session, node)

    async def apply(target: UUID | None, new_name: str) -> None:
        await session.execute(
            update(Node)
            .where(Node.id == node_id)
            .values(
                parent_id=target,
                name=new_name,
                name_key=name_key(new_name),
                updated_at=func.now(),
            )
            .execution_options(synchronize_session=False)
        )

    # Where it was: recipients of the shares it leaves or enters see it go or arrive.
    previous = Placement(node.parent_id, node.name)
    await _place(session, node, parent_id, name, autorename=body.autorename, apply=apply)
    await session.refresh(node)
    read = await read_node(session, node)
    await changes.record(
        session,
        user_id=owner_id,
        node_id=node.id,
        change=ChangeKind.MOVED,
        node_kind=kind,
        path=read["path"],
        previous=previous,
    )
    return read


# --- the trash ----------------------------------------------------------------------------------


async def trash_node(session: AsyncSession, owner_id: UUID, node_id: UUID, kind: NodeKind) -> None:
    """Move a file or a folder with its live subtree to the trash, all at one moment."""
    await locks.lock_tree(session, owner_id)
    node = await _lock_live(session, owner_id, node_id, kind)
    path = await service.node_path(session, node)
    await session.execute(TRASH_SUBTREE, {"root_id": node.id, "now": datetime.now(UTC)})
    await changes.record(
        session,
        user_id=owner_id,
        node_id=node.id,
        change=ChangeKind.DELETED,
        node_kind=kind,
        path=path,
    )


async def _lock_trash_root(
    session: AsyncSession, owner_id: UUID, node_id: UUID, kind: NodeKind | None
) -> Node:
    query = select(Node).where(
        Node.id == node_id,
        Node.owner_id == owner_id,
        Node.trash_root.is_(True),
        Node.trashed_at.is_not(None),
    )
    if kind is not None:
        query = query.where(Node.kind == kind)
    node = await session.scalar(query.with_for_update())
    if node is None:
        raise NotInTrash("There is no such item in the trash.")
    return node


async def restore_node(
    session: AsyncSession, owner_id: UUID, node_id: UUID, kind: NodeKind, *, autorename: bool
) -> NodeRead:
    """Bring a trash root back with exactly the nodes trashed with it; to the top level when
    its old folder is in the trash itself."""
    await locks.lock_tree(session, owner_id)
    node = await _lock_trash_root(session, owner_id, node_id, kind)
    trashed_at = node.trashed_at
    parent_id = node.parent_id
    if parent_id is not None:
        parent_trashed = await session.scalar(select(Node.trashed_at).where(Node.id == parent_id))
        if parent_trashed is not None:
            parent_id = None

    async def apply(target: UUID | None, name: str) -> None:
        # Renamed while still trashed, then brought back: the unique index judges the
        # un-trashing, which is the statement that can collide.
        await session.execute(
            update(Node)
            .where(Node.id == node_id)
            .values(parent_id=target, name=name, name_key=name_key(name), updated_at=func.now())
            .execution_options(synchronize_session=False)
        )
        await session.execute(RESTORE_SUBTREE, {"root_id": node_id, "trashed_at": trashed_at})

    await _place(session, node, parent_id, node.name, autorename=autorename, apply=apply)
    await session.refresh(node)
    read = await read_node(session, node)
    # A file names the revision it serves now, which may have completed while it was trashed.
    current = await service.get_current_revision(session, node)
    await changes.record(
        session,
        user_id=owner_id,
        node_id=node_id,
        change=ChangeKind.RESTORED,
        node_kind=kind,
        path=read["path"],
        revision_id=current.id if current else None,
        size=current.size if current else None,
        content_hash=service.content_hash(current.sha256, current.part_size) if current else None,
    )
    return read


async def purge(session: AsyncSession, root_ids: Sequence[UUID]) -> list[str]:
    """Delete the nodes and everything under them for good; returns the storage keys to
    delete once the transaction has committed."""
    if not root_ids:
        return []
    rows = (await session.execute(WHOLE_SUBTREES, {"root_ids": list(root_ids)})).all()
    file_ids = [row.id for row in rows if row.kind == NodeKind.FILE]
    folder_ids = [row.id for row in rows if row.kind == NodeKind.FOLDER]
    keys: list[str] = []
    # File by file, so quotas are settled as for any deletion; the folders after their contents.
    for file in await session.scalars(select(Node).where(Node.id.in_(file_ids))):
        keys += await service.delete_file(session, file)
    if folder_ids:
        await session.execute(
            delete(Node).where(Node.id.in_(folder_ids)).execution_options(synchronize_session=False)
        )
    return keys


async def purge_one(session: AsyncSession, owner_id: UUID, node_id: UUID) -> list[str]:
    """Delete one trash root for good, before its time."""
    await locks.lock_tree(session, owner_id)
    node = await _lock_trash_root(session, owner_id, node_id, None)
    return await purge(session, [node.id])


async def empty_trash(session: AsyncSession, owner_id: UUID) -> list[str]:
    """Delete everything in the owner's trash for good."""
    await locks.lock_tree(session, owner_id)
    roots = await session.scalars(
        select(Node.id)
        .where(
            Node.owner_id == owner_id,
            Node.trash_root.is_(True),
            Node.trashed_at.is_not(None),
        )
        .with_for_update()
    )
    return await purge(session, list(roots))


async def list_trash(
    session: AsyncSession,
    owner_id: UUID,
    *,
    retention: timedelta,
    cursor: str | None,
    limit: int,
) -> TrashPage:
    """The owner's trash roots, newest first."""
    query = select(Node).where(
        Node.owner_id == owner_id, Node.trash_root.is_(True), Node.trashed_at.is_not(None)
    )
    try:
        query = newest_first(query, Node.trashed_at, Node.id, cursor, limit)
    except CursorError as error:
        raise InvalidCursor("The cursor is not one this server issued.") from error
    rows = list(await session.scalars(query))
    page = rows[:limit]
    paths = await service.folder_paths(
        session, {node.parent_id for node in page if node.parent_id is not None}
    )
    items = []
    for node in page:
        assert node.trashed_at is not None
        parent_path = paths[node.parent_id] if node.parent_id is not None else ""
        items.append(
            TrashRead(
                id=node.id,
                kind=node.kind,
                name=node.name,
                original_path=f"{parent_path}/{node.name}",
                trashed_at=node.trashed_at,
                purge_at=node.trashed_at + retention,
            )
        )
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        assert last.trashed_at is not None
        next_cursor = encode_cursor(last.trashed_at, last.id)
    return TrashPage(items=items, next_cursor=next_cursor)
