from fastapi import APIRouter

from dropp.auth import service as auth_service
from dropp.auth.dependencies import CurrentPrincipal
from dropp.auth.errors import InvalidToken
from dropp.core.db import SessionDep
from dropp.core.dependencies import SettingsDep
from dropp.core.errors import NotAuthenticated, responses
from dropp.quotas import service
from dropp.quotas.schemas import UsageRead

router = APIRouter(tags=["quotas"], responses=responses(NotAuthenticated, InvalidToken))


@router.get("/me/usage")
async def my_usage(
    principal: CurrentPrincipal, session: SessionDep, settings: SettingsDep
) -> UsageRead:
    """Your storage: files, bytes kept (every revision), bytes held by pending uploads, your
    quota, and kept bytes by content type."""
    user = await auth_service.get_user(session, principal.user_id)
    if user is None or not user.is_active:
        raise InvalidToken("The account behind this token no longer exists.")
    return await service.usage(session, settings, user)
