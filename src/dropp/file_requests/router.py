"""File requests, for their owner: open an upload-only link into a folder, list, close."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, status

from dropp.auth.dependencies import CurrentPrincipal
from dropp.auth.errors import InvalidToken
from dropp.core.db import SessionDep
from dropp.core.dependencies import SettingsDep
from dropp.core.errors import NotAuthenticated, responses
from dropp.file_requests import service
from dropp.file_requests.errors import DeadlineInPast, FileRequestNotFound, FileSizeLimitTooHigh
from dropp.file_requests.schemas import (
    FileRequestCreate,
    FileRequestCreated,
    FileRequestPage,
    FileRequestRead,
)
from dropp.files.errors import FolderNotFound, InvalidCursor, NotAFolder
from dropp.roles.errors import UploadNotAllowed
from dropp.uploads.errors import EmailNotVerified

router = APIRouter(
    prefix="/file-requests",
    tags=["file requests"],
    responses=responses(NotAuthenticated, InvalidToken),
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=responses(
        FolderNotFound,
        NotAFolder,
        DeadlineInPast,
        FileSizeLimitTooHigh,
        EmailNotVerified,
        UploadNotAllowed,
    ),
)
async def create_file_request(
    body: FileRequestCreate, principal: CurrentPrincipal, session: SessionDep, settings: SettingsDep
) -> FileRequestCreated:
    """Open a link through which anyone holding it can upload files into one of your folders,
    and see nothing of it. `token` and `url` appear only in this answer: keep them."""
    return await service.create_request(session, settings, principal, body)


@router.get("", responses=responses(InvalidCursor))
async def list_file_requests(
    principal: CurrentPrincipal,
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> FileRequestPage:
    """Your file requests that are not closed, newest first; pass `next_cursor` back as
    `cursor` for the next page."""
    return await service.list_requests(session, principal.user_id, cursor=cursor, limit=limit)


@router.get("/{request_id}", responses=responses(FileRequestNotFound))
async def get_file_request(
    request_id: UUID, principal: CurrentPrincipal, session: SessionDep
) -> FileRequestRead:
    """One of your file requests that is not closed."""
    return await service.get_request(session, principal.user_id, request_id)


@router.delete(
    "/{request_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(FileRequestNotFound),
)
async def close_file_request(
    request_id: UUID, principal: CurrentPrincipal, session: SessionDep
) -> None:
    """Close a file request: its link answers 404 from now on, to new uploads and to those
    not yet complete. The files it brought stay."""
    await service.close_request(session, principal.user_id, request_id)
