"""The admin pages of the web app: accounts (role, quota, disable) and the server's
statistics as charts; through the services of /admin, for admins only."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Form, Query, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from dropp.admin import service, stats
from dropp.admin.schemas import UserUpdate
from dropp.core.db import SessionDep
from dropp.core.dependencies import SettingsDep
from dropp.core.errors import DroppError
from dropp.core.pages import render
from dropp.web.admin.charts import bar_chart
from dropp.web.files.router import refused_page
from dropp.web.files.views import human_size
from dropp.web.visitors import AdminFormVisitor, AdminPageVisitor, Visitor, see_other

router = APIRouter(prefix="/app/admin", include_in_schema=False)

DAYS = 30


@router.get("/users", response_class=HTMLResponse)
async def users_page(
    person: AdminPageVisitor,
    session: SessionDep,
    settings: SettingsDep,
    email: Annotated[str, Query(max_length=320)] = "",
    cursor: str | None = None,
) -> Response:
    return await _users_page(session, settings, person, email, cursor)


async def _users_page(
    session: SessionDep,
    settings: SettingsDep,
    person: Visitor,
    email: str,
    cursor: str | None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    try:
        page = await service.list_users(
            session, role=None, email_prefix=email or None, cursor=cursor, limit=100
        )
    except DroppError as refused:
        return refused_page(refused)
    return render(
        "web/admin_users.html",
        status,
        me=person,
        users=page.users,
        roles=settings.role_names,
        email=email,
        next_cursor=page.next_cursor,
        error=error,
    )


@router.post("/users/{user_id}")
async def update_user(
    user_id: UUID,
    person: AdminFormVisitor,
    session: SessionDep,
    settings: SettingsDep,
    role: Annotated[str, Form(max_length=63)] = "",
    quota: Annotated[str, Form(max_length=32)] = "",
    active: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """As PATCH /admin/users/{id}: the role, the quota in bytes (empty: the default), and
    whether the account may sign in."""
    quota_text = quota.strip().replace(",", "").replace("_", "")
    body = {
        "role": role or None,
        "quota_bytes": int(quota_text) if quota_text.isdigit() else quota_text or None,
        "is_active": active == "on",
    }
    try:
        await service.update_user(
            session, user_id, UserUpdate.model_validate(body), settings.role_names
        )
    except (DroppError, ValidationError) as error:
        await session.rollback()
        if isinstance(error, DroppError):
            reason, status = error.detail, error.status
        else:
            reason, status = "; ".join(str(e["msg"]) for e in error.errors()), 422
        return await _users_page(session, settings, person, "", None, reason, status)
    return see_other("/app/admin/users")


@router.get("/stats", response_class=HTMLResponse)
async def stats_page(person: AdminPageVisitor, session: SessionDep) -> Response:
    found = await stats.server_stats(session, days=DAYS)
    dates = [day.date for day in found.days]
    charts = [
        bar_chart("Uploads per day", dates, [day.uploads for day in found.days]),
        bar_chart(
            "Bytes uploaded per day", dates, [day.upload_bytes for day in found.days], human_size
        ),
        bar_chart("Downloads per day", dates, [day.downloads for day in found.days]),
    ]
    return render(
        "web/admin_stats.html",
        me=person,
        stats=found,
        stored=human_size(found.bytes_stored),
        charts=charts,
        days=DAYS,
    )
