"""The owner's side of share links, and the download counts owners read back."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, status

from dropp.auth.dependencies import CurrentPrincipal
from dropp.auth.errors import InvalidToken
from dropp.core.db import SessionDep
from dropp.core.dependencies import SettingsDep
from dropp.core.errors import NotAuthenticated, responses
from dropp.downloads import service as downloads_service
from dropp.downloads.models import Channel
from dropp.files.dependencies import OwnedFile
from dropp.files.errors import FileNotFound, FolderNotFound, InvalidCursor
from dropp.sharing import links
from dropp.sharing.link_errors import ShareNotFound
from dropp.sharing.link_schemas import (
    DownloadsByChannel,
    FileDownloadsRead,
    ShareLinkCreate,
    ShareLinkCreated,
    ShareLinkPage,
)

router = APIRouter(tags=["share links"], responses=responses(NotAuthenticated, InvalidToken))


@router.post(
    "/shares",
    status_code=status.HTTP_201_CREATED,
    responses=responses(FileNotFound, FolderNotFound),
)
async def create_share_link(
    body: ShareLinkCreate, principal: CurrentPrincipal, session: SessionDep, settings: SettingsDep
) -> ShareLinkCreated:
    """Make a link to one of your files or folders; `token` and `url` are shown only here.

    Anyone holding the URL can open it (after the password, if one is set) until it expires,
    reaches `max_downloads`, or is revoked.
    """
    return await links.create_link(session, settings, principal.user_id, body)


@router.get("/shares", responses=responses(InvalidCursor))
async def list_share_links(
    principal: CurrentPrincipal,
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ShareLinkPage:
    """Your links that are not revoked, newest first, with their download counts; pass
    `next_cursor` back as `cursor` for the next page."""
    return await links.list_links(session, principal.user_id, cursor=cursor, limit=limit)


# `:uuid` so that other /shares/<word> routes are never taken for a link id.
@router.delete(
    "/shares/{share_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(ShareNotFound),
)
async def revoke_share_link(
    share_id: UUID, principal: CurrentPrincipal, session: SessionDep
) -> None:
    """Revoke a link: from now on it answers 404, like a link that never existed."""
    await links.revoke_link(session, principal.user_id, share_id)


@router.get("/files/{file_id}/downloads", tags=["files"], responses=responses(FileNotFound))
async def file_downloads(file: OwnedFile, session: SessionDep) -> FileDownloadsRead:
    """How many download URLs were issued for your file: by you, through share links, and
    to the people it is shared with."""
    counts = await downloads_service.counts_by_file(session, file.owner_id, file.id)
    return FileDownloadsRead(
        file_id=file.id,
        total=sum(counts.by_channel.values()),
        by_channel=DownloadsByChannel(
            owner=counts.by_channel[Channel.OWNER],
            link=counts.by_channel[Channel.LINK],
            share=counts.by_channel[Channel.SHARE],
        ),
        last_downloaded_at=counts.last_downloaded_at,
    )
