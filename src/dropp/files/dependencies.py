from typing import Annotated
from uuid import UUID

from fastapi import Depends

from dropp.auth.dependencies import CurrentPrincipal
from dropp.core.db import SessionDep
from dropp.files import service
from dropp.files.models import Node


async def get_owned_file(file_id: UUID, principal: CurrentPrincipal, session: SessionDep) -> Node:
    """The caller's file with this id; another user's file is indistinguishable from none."""
    return await service.get_file(session, principal.user_id, file_id)


OwnedFile = Annotated[Node, Depends(get_owned_file)]
