from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Query
from fastapi.responses import RedirectResponse

from dropp.auth.dependencies import CurrentPrincipal
from dropp.auth.errors import InvalidToken
from dropp.core.db import SessionDep
from dropp.core.dependencies import SettingsDep
from dropp.core.errors import NotAuthenticated, responses
from dropp.files import revisions
from dropp.files.dependencies import ReadableFile
from dropp.files.errors import FileNotFound, InvalidCursor
from dropp.files.revision_errors import RevisionNotFound
from dropp.files.revision_schemas import RevisionPage, RevisionRestore
from dropp.files.router import download_answer
from dropp.files.schemas import DownloadRead, FileRead
from dropp.quotas.errors import QuotaExceeded
from dropp.storage.dependencies import StorageDep

router = APIRouter(
    prefix="/files/{file_id}/revisions",
    tags=["files"],
    responses=responses(NotAuthenticated, InvalidToken, FileNotFound),
)


@router.get("", responses=responses(InvalidCursor))
async def list_revisions(
    reader: ReadableFile,
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> RevisionPage:
    """The file's revisions, newest first; pass `next_cursor` back as `cursor` for more.
    Also for a file someone shared with you."""
    return await revisions.list_revisions(session, reader.file, cursor=cursor, limit=limit)


@router.get(
    "/{revision_id}/download",
    response_model=DownloadRead,
    responses={
        **responses(RevisionNotFound),
        302: {"description": "With `redirect=true`: the signed URL in `Location`."},
    },
)
async def download_revision(
    reader: ReadableFile,
    revision_id: UUID,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
    redirect: bool = False,
) -> DownloadRead | RedirectResponse:
    """A short-lived URL that downloads this revision's bytes as an attachment (also of a
    file someone shared with you)."""
    revision = await revisions.get_revision(session, reader.file, revision_id)
    return await download_answer(
        session, storage, settings, reader.file, revision, reader.downloader, redirect=redirect
    )


@router.post("/{revision_id}/restore", responses=responses(RevisionNotFound, QuotaExceeded))
async def restore_revision(
    file_id: UUID,
    revision_id: UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
    body: Annotated[RevisionRestore | None, Body()] = None,
) -> FileRead:
    """Make this revision's bytes the file's newest revision (copied inside storage; it
    counts against your quota). Restoring the bytes the file already has changes nothing."""
    return await revisions.restore_revision(
        session,
        storage,
        settings,
        principal.user_id,
        file_id,
        revision_id,
        device=body.device if body else None,
    )
