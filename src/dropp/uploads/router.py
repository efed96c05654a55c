from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, status

from dropp.auth.dependencies import CurrentPrincipal
from dropp.auth.errors import InvalidToken
from dropp.core.db import SessionDep
from dropp.core.dependencies import SettingsDep
from dropp.core.errors import NotAuthenticated, responses
from dropp.files.errors import NameTaken, NotAFolder
from dropp.files.schemas import FileRead
from dropp.roles.errors import FileTypeNotAllowed, UploadNotAllowed
from dropp.storage.dependencies import StorageDep
from dropp.uploads import service
from dropp.uploads.errors import (
    EmailNotVerified,
    FileTooLarge,
    StorageVersioningDisabled,
    UploadAmbiguous,
    UploadExpired,
    UploadIncomplete,
    UploadNotFound,
    UploadSizeMismatch,
)
from dropp.uploads.schemas import UploadComplete, UploadCreate, UploadRead

router = APIRouter(
    prefix="/upload", tags=["uploads"], responses=responses(NotAuthenticated, InvalidToken)
)


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    responses=responses(
        EmailNotVerified, UploadNotAllowed, FileTypeNotAllowed, FileTooLarge, NameTaken, NotAFolder
    ),
)
async def start_upload(
    body: UploadCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
) -> UploadRead:
    """Start an upload: POST the file to `upload.url` with `upload.fields`, then complete it.

    Needs a verified email (unless REQUIRE_EMAIL_VERIFICATION is off) and a role whose upload
    policy admits the file's name, type and size.
    """
    return await service.start_upload(session, storage, settings, principal, body)


@router.post(
    "/{file_id}/complete",
    responses=responses(
        UploadNotFound,
        UploadAmbiguous,
        UploadIncomplete,
        UploadSizeMismatch,
        UploadExpired,
        StorageVersioningDisabled,
    ),
)
async def complete_upload(
    file_id: UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    storage: StorageDep,
    body: Annotated[UploadComplete | None, Body()] = None,
) -> FileRead:
    """Finish an upload once its bytes are in storage; storage's size is the one that counts."""
    upload_id = body.upload_id if body else None
    return await service.complete_upload(session, storage, principal.user_id, file_id, upload_id)
