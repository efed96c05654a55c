from typing import Annotated

from fastapi import Depends

from dropp.admin import service
from dropp.admin.errors import AdminRequired
from dropp.auth.dependencies import CurrentPrincipal
from dropp.auth.errors import InvalidToken
from dropp.auth.models import User
from dropp.core.db import SessionDep
from dropp.roles.policy import ADMIN


async def get_admin(principal: CurrentPrincipal, session: SessionDep) -> User:
    """The caller, if an active admin right now.

    Read from the database rather than the token's claims: demoting or disabling an admin must
    take effect on this API at once, not at their next refresh.
    """
    user = await service.get_user(session, principal.user_id)
    if user is None or not user.is_active:
        raise InvalidToken("The account behind this token is disabled or no longer exists.")
    if user.role != ADMIN:
        raise AdminRequired("Only an admin may do this.")
    return user


AdminPrincipal = Annotated[User, Depends(get_admin)]
