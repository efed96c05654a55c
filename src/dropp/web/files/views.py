"""What the file browser shows of a folder: where it is, and a page of what it holds, read
through the same services as the JSON API."""

import mimetypes
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from dropp.core.pages import size_text
from dropp.files import service, tree
from dropp.files.conflicts import CONFLICT_MARK
from dropp.files.errors import FolderNotFound
from dropp.files.models import Node, NodeKind, RevisionState
from dropp.files.schemas import ChildOrder, Direction, NodeRead

PAGE_SIZE = 100
ROOT_HREF = "/"

# By the family of a file's type (or, without one, of its name's): the colour of its icon.
# Drawn inline (no image requests, no emoji font needed), with the name's extension on it.
COLOURS = {
    "image": "#2e7d32",
    "audio": "#8e24aa",
    "video": "#c62828",
    "text": "#455a64",
    "application/pdf": "#d84315",
    "application/zip": "#6d4c41",
    "application/gzip": "#6d4c41",
    "application/x-tar": "#6d4c41",
}
FILE_COLOUR = "#1a66d2"


@dataclass(frozen=True)
class Icon:
    folder: bool
    label: str = ""
    colour: str = FILE_COLOUR


FOLDER = Icon(folder=True)


@dataclass(frozen=True)
class Crumb:
    name: str
    href: str


@dataclass(frozen=True)
class Row:
    id: str
    kind: str
    name: str
    href: str
    icon: Icon
    size: str
    updated_at: datetime
    pending: bool
    conflicted: bool
    folder: str
    folder_href: str


@dataclass(frozen=True)
class Sort:
    order: ChildOrder = ChildOrder.NAME
    direction: Direction = Direction.ASC

    def query(self, **more: str) -> str:
        """`?sort=…&direction=…` and `more`, leaving out what the listing does anyway."""
        values = {
            **({"sort": self.order.value} if self.order != ChildOrder.NAME else {}),
            **({"direction": self.direction.value} if self.direction != Direction.ASC else {}),
            **more,
        }
        return f"?{urlencode(values)}" if values else ""


# A column's first click: names and sizes upward, dates newest first.
FIRST_DIRECTION = {
    ChildOrder.NAME: Direction.ASC,
    ChildOrder.SIZE: Direction.ASC,
    ChildOrder.MODIFIED: Direction.DESC,
}
DIRECTION_WORDS = {
    (ChildOrder.NAME, Direction.ASC): "A to Z",
    (ChildOrder.NAME, Direction.DESC): "Z to A",
    (ChildOrder.SIZE, Direction.ASC): "smallest first",
    (ChildOrder.SIZE, Direction.DESC): "largest first",
    (ChildOrder.MODIFIED, Direction.ASC): "oldest first",
    (ChildOrder.MODIFIED, Direction.DESC): "newest first",
}


@dataclass(frozen=True)
class Column:
    """A sortable column's heading: a link that sorts by it (the other way, if it is the
    column sorted by already)."""

    label: str
    href: str
    # `aria-sort` of the column sorted by; None for the others.
    sorted: str | None
    # What following the link does, for a screen reader.
    hint: str


def columns(here: str, sort: Sort) -> dict[str, Column]:
    shown = {}
    for order, label in (
        (ChildOrder.NAME, "Name"),
        (ChildOrder.SIZE, "Size"),
        (ChildOrder.MODIFIED, "Modified"),
    ):
        current = order == sort.order
        if current:
            direction = Direction.DESC if sort.direction == Direction.ASC else Direction.ASC
        else:
            direction = FIRST_DIRECTION[order]
        shown[order.value] = Column(
            label=label,
            href=here + Sort(order, direction).query(),
            sorted=(
                ("ascending" if sort.direction == Direction.ASC else "descending")
                if current
                else None
            ),
            hint=f"sort {DIRECTION_WORDS[order, direction]}",
        )
    return shown


@dataclass(frozen=True)
class FolderView:
    folder_id: UUID | None
    name: str
    path: str
    crumbs: list[Crumb]
    rows: list[Row]
    next_href: str | None
    # This page's own address with its order: where forms on it come back to.
    here: str
    columns: dict[str, Column]
    sort: Sort


def folder_href(folder_id: UUID | str | None) -> str:
    return ROOT_HREF if folder_id is None else f"/app/folder/{folder_id}"


def path_href(path: str) -> str:
    """The folder at this path, found when followed."""
    return ROOT_HREF if path == "/" else f"/app/path?{urlencode({'p': path})}"


def file_href(file_id: UUID | str) -> str:
    return f"/app/get/{file_id}"


async def live_folder(session: AsyncSession, owner_id: UUID, folder_id: UUID) -> Node:
    """The owner's folder, not in the trash; FolderNotFound for anything else (another
    user's folder included)."""
    folder = await session.scalar(service.live_node(owner_id, folder_id, NodeKind.FOLDER))
    if folder is None:
        raise FolderNotFound("There is no such folder.")
    return folder


async def folder_view(
    session: AsyncSession,
    owner_id: UUID,
    folder: Node | None,
    cursor: str | None,
    sort: Sort = Sort(),
) -> FolderView:
    page = await tree.list_children(
        session,
        owner_id,
        folder.id if folder else None,
        cursor=cursor,
        limit=PAGE_SIZE,
        order=sort.order,
        direction=sort.direction,
    )
    here = folder_href(folder.id if folder else None)
    next_cursor = page.next_cursor
    return FolderView(
        folder_id=folder.id if folder else None,
        name=folder.name if folder else "Files",
        path=await service.node_path(session, folder) if folder else "/",
        crumbs=await _crumbs(session, folder),
        rows=[row(item) for item in page.items],
        next_href=here + sort.query(cursor=next_cursor) if next_cursor else None,
        here=here + sort.query(),
        columns=columns(here, sort),
        sort=sort,
    )


async def _crumbs(session: AsyncSession, folder: Node | None) -> list[Crumb]:
    """From the top level down to the folder's parent (the folder itself is the heading)."""
    crumbs: list[Crumb] = []
    parent_id = folder.parent_id if folder else None
    while parent_id is not None:
        parent = await session.get_one(Node, parent_id)
        crumbs.append(Crumb(parent.name, folder_href(parent.id)))
        parent_id = parent.parent_id
    if folder is not None:
        crumbs.append(Crumb("Files", ROOT_HREF))
    return crumbs[::-1]


def row(item: NodeRead) -> Row:
    kind = NodeKind(item["kind"])
    folder = kind == NodeKind.FOLDER
    node_id = str(item["id"])
    return Row(
        id=node_id,
        kind=kind.value,
        name=item["name"],
        href=folder_href(node_id) if folder else file_href(node_id),
        icon=FOLDER if folder else icon(item["name"], item["content_type"]),
        size="" if folder else human_size(item["size"]),
        updated_at=item["updated_at"],
        pending=not folder and item["status"] != RevisionState.COMPLETE,
        conflicted=not folder and CONFLICT_MARK in item["name"],
        folder=item["path"].rpartition("/")[0] or "/",
        folder_href=path_href(item["path"].rpartition("/")[0] or "/"),
    )


def icon(name: str, content_type: str | None) -> Icon:
    kind = content_type or mimetypes.guess_type(name, strict=False)[0] or ""
    colour = COLOURS.get(kind) or COLOURS.get(kind.partition("/")[0]) or FILE_COLOUR
    extension = name.rpartition(".")[2] if "." in name.strip(".") else ""
    return Icon(folder=False, label=extension[:4].upper(), colour=colour)


def human_size(size: int | None) -> str:
    """A file's size as the pages write sizes; nothing for a folder's."""
    return "" if size is None else size_text(size)
