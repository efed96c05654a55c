"""The pages a person opens in a browser that are not a step of a sign-in or a link: for now
the landing page at `/`."""

from typing import Annotated

from fastapi import APIRouter, Cookie
from fastapi.responses import HTMLResponse

from dropp.core.dependencies import SettingsDep
from dropp.core.pages import render
from dropp.oauth.dependencies import ProviderDep, WebUserDep
from dropp.oauth.web_sessions import SESSION_COOKIE, csrf_token
from dropp.web.docs import DOCS_PATH

router = APIRouter(include_in_schema=False)

SessionCookie = Annotated[str | None, Cookie(alias=SESSION_COOKIE)]


@router.get("/", response_class=HTMLResponse)
async def home(
    settings: SettingsDep,
    provider: ProviderDep,
    user: WebUserDep,
    session_cookie: SessionCookie = None,
) -> HTMLResponse:
    return render(
        "home.html",
        user=user,
        google=provider.configured,
        docs=DOCS_PATH,
        csrf=csrf_token(settings, "logout", session_cookie or "") if user else "",
    )
