from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import RedirectResponse

from dropp.auth.dependencies import CurrentPrincipal
from dropp.auth.errors import InvalidToken
from dropp.core.db import SessionDep
from dropp.core.dependencies import SettingsDep
from dropp.core.errors import NotAuthenticated, responses
from dropp.files import service
from dropp.files.dependencies import OwnedFile
from dropp.files.errors import FileNotFound, FileNotReady, FolderNotFound, InvalidCursor
from dropp.files.names import split_folder_path
from dropp.files.schemas import DownloadRead, FilePage, FileRead, StatusFilter
from dropp.storage.dependencies import StorageDep

router = APIRouter(tags=["files"], responses=responses(NotAuthenticated, InvalidToken))


@router.get("/list/", responses=responses(FolderNotFound, InvalidCursor))
async def list_files(
    principal: CurrentPrincipal,
    session: SessionDep,
    status: StatusFilter = StatusFilter.COMPLETE,
    folder: Annotated[str | None, Query(max_length=4096, description="Only this folder")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> FilePage:
    """Your files, newest first; pass `next_cursor` back as `cursor` for the next page."""
    folder_id = None
    if folder is not None:
        try:
            names = split_folder_path(folder)
        except ValueError as error:
            raise FolderNotFound(f"There is no folder {folder}: {error}.") from error
        folder_id = await service.find_folder(session, principal.user_id, names)
    return await service.list_files(
        session,
        principal.user_id,
        status=status,
        folder_id=folder_id,
        in_folder=folder is not None,
        cursor=cursor,
        limit=limit,
    )


@router.get("/files/{file_id}", responses=responses(FileNotFound))
async def get_file(file: OwnedFile, session: SessionDep) -> FileRead:
    """A file's metadata."""
    return await service.read_file(session, file.id)


@router.delete(
    "/files/{file_id}", status_code=status.HTTP_204_NO_CONTENT, responses=responses(FileNotFound)
)
async def delete_file(file: OwnedFile, session: SessionDep, storage: StorageDep) -> Response:
    """Delete a file: its record, every revision and the stored bytes."""
    keys = await service.delete_file(session, file)
    # Rows go first: a crash between the two leaves unreferenced objects, never rows that
    # point at missing bytes.
    await session.commit()
    for key in keys:
        await storage.delete(key)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/download/{file_id}",
    response_model=DownloadRead,
    responses={
        **responses(FileNotFound, FileNotReady),
        302: {"description": "With `redirect=true`: the signed URL in `Location`."},
    },
)
async def download_file(
    file: OwnedFile,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
    redirect: bool = False,
) -> DownloadRead | RedirectResponse:
    """A short-lived URL that downloads the file's current bytes as an attachment."""
    revision = await service.get_current_revision(session, file)
    if revision is None:
        raise FileNotReady("The file has no completed upload yet.")
    url = await storage.presign_get(
        revision.storage_key,
        version_id=revision.version_id,
        filename=file.name,
        content_type=revision.content_type,
        expires_in=settings.presign_ttl_seconds,
    )
    if redirect:
        return RedirectResponse(url, status_code=status.HTTP_302_FOUND)
    expires_at = datetime.now(UTC) + timedelta(seconds=settings.presign_ttl_seconds)
    return DownloadRead(url=url, expires_at=expires_at)
