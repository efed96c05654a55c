from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.auth.dependencies import CurrentPrincipal
from dropp.core.db import SessionDep
from dropp.downloads.models import Channel
from dropp.downloads.service import Downloader
from dropp.files import service
from dropp.files.errors import FileNotFound
from dropp.files.models import Node, NodeKind
from dropp.sharing import access
from dropp.sharing.access import SharedAccess


async def get_owned_file(file_id: UUID, principal: CurrentPrincipal, session: SessionDep) -> Node:
    """The caller's file with this id; another user's file is indistinguishable from none."""
    return await service.get_file(session, principal.user_id, file_id)


OwnedFile = Annotated[Node, Depends(get_owned_file)]


@dataclass(frozen=True, slots=True)
class FileReader:
    """A live file the caller may read: its own, or one shared with it (then `share` says
    through which grant and what the caller sees of it)."""

    file: Node
    user_id: UUID
    share: SharedAccess | None

    @property
    def downloader(self) -> Downloader:
        if self.share is None:
            return Downloader(Channel.OWNER, user_id=self.user_id)
        return Downloader(Channel.SHARE, user_id=self.user_id, grant_id=self.share.grant_id)


async def readable_file(session: AsyncSession, user_id: UUID, file_id: UUID) -> FileReader:
    """The user's live file, or a live file shared with them; FileNotFound for anything else,
    so a file nobody shared with them is indistinguishable from none."""
    node = await session.scalar(service.live_node(user_id, file_id, NodeKind.FILE))
    if node is not None:
        return FileReader(node, user_id, None)
    share = await access.shared_access(session, user_id, file_id)
    node = await session.get(Node, file_id) if share is not None else None
    if share is None or node is None or node.kind != NodeKind.FILE:
        raise FileNotFound("There is no such file.")
    return FileReader(node, user_id, share)


async def get_readable_file(
    file_id: UUID, principal: CurrentPrincipal, session: SessionDep
) -> FileReader:
    return await readable_file(session, principal.user_id, file_id)


ReadableFile = Annotated[FileReader, Depends(get_readable_file)]
