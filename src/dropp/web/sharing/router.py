"""Sharing with people in the web app: an item shared with an address as viewer or editor,
the shares you made (to stop), and what others shared with you (to open and download);
through the services of /shares/people and /shared."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Form, Query, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from dropp.core.db import SessionDep
from dropp.core.dependencies import SettingsDep
from dropp.core.errors import DroppError
from dropp.core.pages import render
from dropp.files.models import NodeKind
from dropp.oauth.sign_in import local_path
from dropp.sharing import people
from dropp.sharing.people_schemas import GrantCreate
from dropp.web.files.router import refused_page, shown_on
from dropp.web.files.views import PAGE_SIZE, row
from dropp.web.visitors import FormVisitor, PageVisitor, see_other

router = APIRouter(prefix="/app", include_in_schema=False)


@router.post("/{kind}/{node_id}/people")
async def share_with_someone(
    kind: NodeKind,
    node_id: UUID,
    person: FormVisitor,
    session: SessionDep,
    settings: SettingsDep,
    email: Annotated[str, Form(max_length=320)] = "",
    role: Annotated[str, Form(max_length=64)] = "",
    permission: Annotated[str, Form(max_length=16)] = "viewer",
    note: Annotated[str, Form(max_length=1000)] = "",
    back: Annotated[str, Form(max_length=2048)] = "/",
) -> Response:
    target = "file_id" if kind == NodeKind.FILE else "folder_id"
    try:
        # A role chosen is who it is shared with; else the address given.
        grantee = {"role": role} if role else {"email": email}
        body = GrantCreate.model_validate(
            {target: str(node_id), **grantee, "permission": permission, "note": note or None}
        )
        await people.create_grant(session, settings, person.user_id, body)
    except (DroppError, ValidationError) as error:
        await session.rollback()
        return await shown_on(session, person, local_path(back), error)
    return see_other("/app/people")


@router.get("/people", response_class=HTMLResponse)
async def people_page(
    person: PageVisitor, session: SessionDep, cursor: str | None = None
) -> Response:
    """The shares with people you made, newest first."""
    try:
        page = await people.list_grants(
            session, person.user_id, node_id=None, cursor=cursor, limit=PAGE_SIZE
        )
    except DroppError as error:
        return refused_page(error)
    next_href = f"/app/people?cursor={page.next_cursor}" if page.next_cursor else None
    return render("web/people.html", me=person, grants=page.grants, next_href=next_href)


@router.post("/people/{grant_id}/stop")
async def stop_sharing(grant_id: UUID, person: FormVisitor, session: SessionDep) -> Response:
    try:
        await people.delete_grant(session, person.user_id, grant_id)
    except DroppError as error:
        return refused_page(error)
    return see_other("/app/people")


@router.get("/shared", response_class=HTMLResponse)
async def shared_page(
    person: PageVisitor, session: SessionDep, cursor: str | None = None
) -> Response:
    """What others shared with you, newest share first."""
    try:
        page = await people.shared_with(session, person.user_id, cursor=cursor, limit=PAGE_SIZE)
    except DroppError as error:
        return refused_page(error)
    next_href = f"/app/shared?cursor={page.next_cursor}" if page.next_cursor else None
    return render("web/shared.html", me=person, items=page.items, next_href=next_href)


@router.get("/shared/{grant_id}", response_class=HTMLResponse)
async def shared_folder(
    grant_id: UUID,
    person: PageVisitor,
    session: SessionDep,
    path: Annotated[str, Query(max_length=4096)] = "/",
    cursor: str | None = None,
) -> Response:
    """A folder inside a folder someone shared with you."""
    try:
        page = await people.shared_children(
            session, person.user_id, grant_id, path, cursor=cursor, limit=PAGE_SIZE
        )
    except DroppError as error:
        return refused_page(error)
    here = f"/app/shared/{grant_id}"
    rows = [row(item) for item in page.items]
    inner = {r.id: f"{path.rstrip('/')}/{r.name}" for r in rows if r.kind == "folder"}
    return render(
        "web/shared_folder.html",
        me=person,
        page=page,
        rows=rows,
        here=here,
        path=path,
        inner=inner,
        up=path.rstrip("/").rpartition("/")[0] or "/" if path not in ("", "/") else None,
    )
