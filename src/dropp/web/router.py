"""`/`: the landing page for visitors, the file browser's top level for people signed in."""

from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse

from dropp.core.db import SessionDep
from dropp.core.dependencies import SettingsDep
from dropp.core.pages import render
from dropp.files.schemas import ChildOrder, Direction
from dropp.oauth.dependencies import ProviderDep, WebUserDep
from dropp.web.docs import DOCS_PATH
from dropp.web.files.router import folder_page
from dropp.web.files.views import Sort
from dropp.web.visitors import SessionCookie, visitor

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def home(
    session: SessionDep,
    settings: SettingsDep,
    provider: ProviderDep,
    user: WebUserDep,
    cookie: SessionCookie = None,
    cursor: str | None = None,
    sort: ChildOrder = ChildOrder.NAME,
    direction: Direction = Direction.ASC,
) -> Response:
    person = visitor(settings, user, cookie)
    if person is not None:
        return await folder_page(session, person, None, cursor, Sort(sort, direction))
    return render("home.html", google=provider.configured, docs=DOCS_PATH)
