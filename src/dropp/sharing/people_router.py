"""Shares with people: the owner's grants (`/shares/people`) and what others shared with the
caller (`/shared`). Shared files are read through the usual file routes."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from dropp.auth.dependencies import CurrentPrincipal
from dropp.auth.errors import InvalidToken
from dropp.core.db import SessionDep
from dropp.core.dependencies import SettingsDep
from dropp.core.errors import NotAuthenticated, responses
from dropp.files.errors import FileNotFound, FolderNotFound, InvalidCursor, NotAFolder
from dropp.sharing import people
from dropp.sharing.people_errors import (
    GrantNotFound,
    RoleShareAdminOnly,
    ShareWithSelf,
    UnknownRole,
)
from dropp.sharing.people_schemas import (
    GrantCreate,
    GrantPage,
    GrantRead,
    GrantUpdate,
    SharedChildrenPage,
    SharedPage,
)

router = APIRouter(tags=["sharing"], responses=responses(NotAuthenticated, InvalidToken))

Cursor = Annotated[str | None, Query(max_length=2000)]
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.post(
    "/shares/people",
    status_code=status.HTTP_201_CREATED,
    responses={
        **responses(FileNotFound, FolderNotFound, UnknownRole, ShareWithSelf, RoleShareAdminOnly),
        200: {
            "model": GrantRead,
            "description": "This node was shared with this grantee already: that share, "
            "with the permission (and note, if given) of this request.",
        },
    },
)
async def share_with_people(
    body: GrantCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
) -> GrantRead:
    """Share one of your files or folders with an address or a role, as `viewer` or `editor`.
    Sharing with a role is for admins (unless the server sets ROLE_SHARES_BY=everyone).

    It applies to the account holding that address once the address is verified (to every
    verified account of the role), so sharing tells nothing of which addresses have accounts.
    """
    grant, created = await people.create_grant(session, settings, principal.user_id, body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return grant


@router.get("/shares/people", responses=responses(InvalidCursor))
async def list_grants(
    principal: CurrentPrincipal,
    session: SessionDep,
    node_id: Annotated[UUID | None, Query(description="Only the shares of this node")] = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> GrantPage:
    """Your shares with people, newest first; pass `next_cursor` back as `cursor` for more."""
    return await people.list_grants(
        session, principal.user_id, node_id=node_id, cursor=cursor, limit=limit
    )


@router.patch("/shares/people/{grant_id}", responses=responses(GrantNotFound, RoleShareAdminOnly))
async def update_grant(
    grant_id: UUID,
    body: GrantUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
    settings: SettingsDep,
) -> GrantRead:
    """Change a share's permission or note; it applies from the recipients' next request.
    A share with a role can be changed only by those who may make one."""
    return await people.update_grant(session, settings, principal.user_id, grant_id, body)


@router.delete(
    "/shares/people/{grant_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(GrantNotFound),
)
async def delete_grant(grant_id: UUID, principal: CurrentPrincipal, session: SessionDep) -> None:
    """Stop sharing: the recipients lose access from their next request."""
    await people.delete_grant(session, principal.user_id, grant_id)


@router.get("/shared", responses=responses(InvalidCursor))
async def shared_with_me(
    principal: CurrentPrincipal,
    session: SessionDep,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> SharedPage:
    """What others shared with you, newest share first. Read a shared file with
    `GET /files/{node_id}` and `GET /download/{node_id}`; browse a shared folder with
    `GET /shared/{grant_id}/items`."""
    return await people.shared_with(session, principal.user_id, cursor=cursor, limit=limit)


@router.get(
    "/shared/{grant_id}/items",
    responses=responses(GrantNotFound, NotAFolder, FolderNotFound, InvalidCursor),
)
async def shared_items(
    grant_id: UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    path: Annotated[
        str, Query(max_length=4096, description="Inside the shared folder; `/` is the folder")
    ] = "/",
    cursor: Cursor = None,
    limit: Limit = 100,
) -> SharedChildrenPage:
    """A folder of a shared folder: folders first, then files, each by name, as
    `GET /folders` lists them; pass `next_cursor` back as `cursor` for the next page."""
    return await people.shared_children(
        session, principal.user_id, grant_id, path, cursor=cursor, limit=limit
    )
