from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from dropp.admin import service, stats
from dropp.admin.dependencies import AdminPrincipal
from dropp.admin.errors import (
    AdminRequired,
    InvalidCursor,
    LastAdmin,
    UnknownRole,
    UserNotFound,
)
from dropp.admin.schemas import StatsRead, UserPage, UserUpdate
from dropp.auth.errors import InvalidToken
from dropp.auth.schemas import UserRead
from dropp.core.db import SessionDep
from dropp.core.dependencies import SettingsDep
from dropp.core.errors import NotAuthenticated, responses
from dropp.roles.policy import ROLE_NAME_PATTERN

router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    responses=responses(NotAuthenticated, InvalidToken, AdminRequired),
)


@router.get("/users", responses=responses(InvalidCursor))
async def list_users(
    _: AdminPrincipal,
    session: SessionDep,
    role: Annotated[
        str | None, Query(pattern=ROLE_NAME_PATTERN, description="Only this role")
    ] = None,
    email: Annotated[
        str | None, Query(max_length=320, description="Only emails starting with this")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> UserPage:
    """Accounts, newest first; pass `next_cursor` back as `cursor` for the next page."""
    return await service.list_users(
        session, role=role, email_prefix=email, cursor=cursor, limit=limit
    )


@router.patch("/users/{user_id}", responses=responses(UserNotFound, UnknownRole, LastAdmin))
async def update_user(
    user_id: UUID,
    body: UserUpdate,
    _: AdminPrincipal,
    session: SessionDep,
    settings: SettingsDep,
) -> UserRead:
    """Change an account's role, or disable it (`is_active: false`), which signs it out
    everywhere. At least one active admin always remains."""
    user = await service.update_user(session, user_id, body, settings.role_names)
    return UserRead.of(user)


@router.get("/stats")
async def server_stats(
    _: AdminPrincipal,
    session: SessionDep,
    days: Annotated[int, Query(ge=1, le=366, description="UTC days, today included")] = 30,
) -> StatsRead:
    """Accounts, files and stored bytes now, and uploads and downloads per day."""
    return await stats.server_stats(session, days=days)
