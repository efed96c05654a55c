"""Folders and the trash: creating, listing, moving, trashing, restoring, emptying."""

from datetime import timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from dropp.auth.dependencies import CurrentPrincipal
from dropp.auth.errors import InvalidToken
from dropp.core.db import SessionDep
from dropp.core.dependencies import SettingsDep
from dropp.core.errors import NotAuthenticated, responses
from dropp.files import service, tree
from dropp.files.errors import (
    FolderNotFound,
    InvalidCursor,
    MoveIntoItself,
    NameTaken,
    NotAFolder,
    NotInTrash,
)
from dropp.files.models import NodeKind
from dropp.files.names import existing_path_names, split_folder_path
from dropp.files.schemas import (
    ChildOrder,
    ChildrenPage,
    Direction,
    FolderCreate,
    FolderMove,
    FolderRead,
    NodeRead,
    NodeRestore,
    TrashPage,
)
from dropp.storage.dependencies import StorageDep

router = APIRouter(tags=["folders"], responses=responses(NotAuthenticated, InvalidToken))


@router.post(
    "/folders",
    status_code=status.HTTP_201_CREATED,
    responses={
        **responses(NotAFolder),
        200: {"description": "The folder was already there.", "model": FolderRead},
    },
)
async def create_folder(
    body: FolderCreate, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> FolderRead:
    """Create a folder and any missing parents (201), or return the existing one (200)."""
    folder, created = await tree.create_folder(
        session, principal.user_id, split_folder_path(body.path)
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return folder


@router.get("/folders", responses=responses(FolderNotFound, InvalidCursor))
async def list_children(
    principal: CurrentPrincipal,
    session: SessionDep,
    path: Annotated[str, Query(max_length=4096, description="`/` is the top level")] = "/",
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    sort: Annotated[
        ChildOrder,
        Query(description="`name`, `size` or `modified`; ties by name, folders first."),
    ] = ChildOrder.NAME,
    direction: Annotated[Direction, Query(description="`asc` or `desc`.")] = Direction.ASC,
) -> ChildrenPage:
    """A folder's children: folders first, then files, each by name (or by `sort`); pass
    `next_cursor` back as `cursor`, with the same `sort` and `direction`, for the next page."""
    try:
        # A lookup: folders named before today's rules can still be listed.
        names = existing_path_names(path)
    except ValueError as error:
        raise FolderNotFound(f"There is no folder {path}: {error}.") from error
    folder_id = await service.find_folder(session, principal.user_id, names)
    return await tree.list_children(
        session,
        principal.user_id,
        folder_id,
        cursor=cursor,
        limit=limit,
        order=sort,
        direction=direction,
    )


@router.patch(
    "/folders/{folder_id}", responses=responses(FolderNotFound, NameTaken, MoveIntoItself)
)
async def move_folder(
    folder_id: UUID, body: FolderMove, principal: CurrentPrincipal, session: SessionDep
) -> NodeRead:
    """Rename a folder and/or move it, with everything in it, into `parent_path`."""
    return await tree.move_node(session, principal.user_id, folder_id, NodeKind.FOLDER, body)


@router.delete(
    "/folders/{folder_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(FolderNotFound),
)
async def trash_folder(folder_id: UUID, principal: CurrentPrincipal, session: SessionDep) -> None:
    """Move a folder and everything in it to the trash."""
    await tree.trash_node(session, principal.user_id, folder_id, NodeKind.FOLDER)


@router.post("/folders/{folder_id}/restore", responses=responses(NotInTrash, NameTaken))
async def restore_folder(
    folder_id: UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    body: NodeRestore | None = None,
) -> NodeRead:
    """Bring a folder back from the trash with what was trashed with it."""
    autorename = body.autorename if body is not None else False
    return await tree.restore_node(
        session, principal.user_id, folder_id, NodeKind.FOLDER, autorename=autorename
    )


@router.get("/trash", responses=responses(InvalidCursor))
async def list_trash(
    principal: CurrentPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> TrashPage:
    """What you deleted, newest first, with when each item is purged."""
    return await tree.list_trash(
        session,
        principal.user_id,
        retention=timedelta(days=settings.trash_retention_days),
        cursor=cursor,
        limit=limit,
    )


@router.delete("/trash", status_code=status.HTTP_204_NO_CONTENT)
async def empty_trash(
    principal: CurrentPrincipal, session: SessionDep, storage: StorageDep
) -> Response:
    """Delete everything in the trash for good: records and stored bytes."""
    await service.forget_stored(
        session, storage, await tree.empty_trash(session, principal.user_id)
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/trash/{node_id}", status_code=status.HTTP_204_NO_CONTENT, responses=responses(NotInTrash)
)
async def purge_from_trash(
    node_id: UUID, principal: CurrentPrincipal, session: SessionDep, storage: StorageDep
) -> Response:
    """Delete one item of the trash for good."""
    keys = await tree.purge_one(session, principal.user_id, node_id)
    await service.forget_stored(session, storage, keys)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
