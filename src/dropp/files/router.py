from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, status
from fastapi.responses import RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.auth.dependencies import CurrentPrincipal
from dropp.auth.errors import InvalidToken
from dropp.core.config import Settings
from dropp.core.db import SessionDep
from dropp.core.dependencies import SettingsDep
from dropp.core.errors import NotAuthenticated, responses
from dropp.downloads.service import Downloader, issue_download
from dropp.files import search, service, tree
from dropp.files.dependencies import ReadableFile
from dropp.files.errors import (
    FileNotFound,
    FileNotReady,
    FolderNotFound,
    InvalidCursor,
    NameTaken,
    NotInTrash,
    StaleBaseRevision,
)
from dropp.files.models import FileRevision, Node, NodeKind
from dropp.files.names import split_folder_path
from dropp.files.schemas import (
    DownloadRead,
    FileMove,
    FilePage,
    FileRead,
    NodeRead,
    NodeRestore,
    SearchPage,
    StatusFilter,
)
from dropp.sharing.people_schemas import RecipientFileRead
from dropp.storage.dependencies import StorageDep
from dropp.storage.s3 import Storage

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


@router.get("/search", responses=responses(InvalidCursor))
async def search_nodes(
    principal: CurrentPrincipal,
    session: SessionDep,
    q: Annotated[str, Query(min_length=1, max_length=255, description="A piece of a name.")],
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> SearchPage:
    """Your files and folders (not in the trash) whose name holds `q`, compared as names are
    (so `REPORT` finds `report.pdf`), most recently changed first."""
    return await search.search(session, principal.user_id, q, cursor=cursor, limit=limit)


@router.get("/files/{file_id}", responses=responses(FileNotFound))
async def get_file(reader: ReadableFile, session: SessionDep) -> FileRead | RecipientFileRead:
    """A file's metadata. For a file someone shared with you: its path as you see it, and
    the share (`grant_id`) and `permission` you have it through."""
    read = await service.read_file(session, reader.file.id)
    if reader.share is None:
        return read
    return RecipientFileRead(
        **read.model_dump(exclude={"path"}),
        path=reader.share.path,
        grant_id=reader.share.grant_id,
        permission=reader.share.permission,
    )


@router.patch(
    "/files/{file_id}",
    responses=responses(FileNotFound, FolderNotFound, NameTaken, StaleBaseRevision),
)
async def move_file(
    file_id: UUID, body: FileMove, principal: CurrentPrincipal, session: SessionDep
) -> NodeRead:
    """Rename a file and/or move it into `parent_path`."""
    return await tree.move_node(session, principal.user_id, file_id, NodeKind.FILE, body)


@router.delete(
    "/files/{file_id}", status_code=status.HTTP_204_NO_CONTENT, responses=responses(FileNotFound)
)
async def trash_file(file_id: UUID, principal: CurrentPrincipal, session: SessionDep) -> None:
    """Move a file to the trash; `DELETE /trash` or the retention period deletes it for good."""
    await tree.trash_node(session, principal.user_id, file_id, NodeKind.FILE)


@router.post("/files/{file_id}/restore", responses=responses(NotInTrash, NameTaken))
async def restore_file(
    file_id: UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    body: NodeRestore | None = None,
) -> NodeRead:
    """Bring a file back from the trash."""
    autorename = body.autorename if body is not None else False
    return await tree.restore_node(
        session, principal.user_id, file_id, NodeKind.FILE, autorename=autorename
    )


@router.get(
    "/download/{file_id}",
    response_model=DownloadRead,
    responses={
        **responses(FileNotFound, FileNotReady),
        302: {"description": "With `redirect=true`: the signed URL in `Location`."},
    },
)
async def download_file(
    reader: ReadableFile,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
    redirect: bool = False,
) -> DownloadRead | RedirectResponse:
    """A short-lived URL that downloads the file's current bytes as an attachment (also for
    a file someone shared with you)."""
    revision = await service.get_current_revision(session, reader.file)
    if revision is None:
        raise FileNotReady("The file has no completed upload yet.")
    return await download_answer(
        session, storage, settings, reader.file, revision, reader.downloader, redirect=redirect
    )


async def download_answer(
    session: AsyncSession,
    storage: Storage,
    settings: Settings,
    file: Node,
    revision: FileRevision,
    downloader: Downloader,
    *,
    redirect: bool,
) -> DownloadRead | RedirectResponse:
    """The signed download as JSON, or with `redirect` as a 302 to it (also for
    GET /files/{id}/revisions/{revision_id}/download)."""
    signed = await issue_download(
        session, storage, downloader, file, revision, expires_in=settings.presign_ttl_seconds
    )
    if redirect:
        return RedirectResponse(signed.url, status_code=status.HTTP_302_FOUND)
    return signed
