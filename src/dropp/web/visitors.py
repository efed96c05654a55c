"""Who is looking at a page of the web app, and whether a form they sent may act for them.

A form acts only when it comes from one of this server's pages (core/csrf.py) and carries
the token made for the session cookie that sent it, so another site can neither post one
nor read a token to copy.
"""

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote
from uuid import UUID

from fastapi import Cookie, Depends, Form, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse

from dropp.auth.models import User
from dropp.core import csrf
from dropp.core.config import Settings
from dropp.core.dependencies import SettingsDep
from dropp.core.pages import render
from dropp.oauth.dependencies import WebUserDep
from dropp.oauth.web_sessions import SESSION_COOKIE, csrf_token, csrf_valid
from dropp.roles.policy import ADMIN

SessionCookie = Annotated[str | None, Cookie(alias=SESSION_COOKIE)]
CsrfField = Annotated[str, Form(max_length=128)]


@dataclass(frozen=True)
class Visitor:
    """A signed-in person, with the tokens their forms carry. Plain values, not the account's
    row: a page is still drawn after a refused form rolled its transaction back."""

    user_id: UUID
    email: str | None
    form_token: str
    logout_token: str
    is_admin: bool = False
    # The roles this person may share with as a whole; none unless the settings let them.
    shares_with_roles: tuple[str, ...] = ()


def visitor(settings: Settings, user: User | None, cookie: str | None) -> Visitor | None:
    if user is None or not cookie:
        return None
    return Visitor(
        user.id,
        user.email,
        csrf_token(settings, "web", cookie),
        csrf_token(settings, "logout", cookie),
        # The session's account is read from the database on every request: a demotion
        # applies at once.
        is_admin=user.role == ADMIN,
        # What the form offers; the service decides (sharing/people.py) all the same.
        shares_with_roles=(
            settings.role_names
            if user.role == ADMIN or settings.role_shares_by == "everyone"
            else ()
        ),
    )


def sign_in_first(request: Request) -> RedirectResponse:
    """To the sign-in page, which brings the person back here after."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login/?next={quote(here)}", status_code=status.HTTP_303_SEE_OTHER)


def form_sender(
    request: Request, settings: Settings, user: User | None, cookie: str | None, token: str
) -> Visitor | HTMLResponse:
    """The visitor a form acts for, or the page that refuses it."""
    found = visitor(settings, user, cookie)
    if found is None or cookie is None:
        return message("Signed out", "Your session has ended: sign in again.", 401)
    if not csrf.from_this_site(request, settings) or not csrf_valid(settings, token, "web", cookie):
        return message("Refused", "This form was not sent from your Dropp page.", 403)
    return found


class PageRefusal(Exception):
    """Answer with this page instead: what refuses a form before it is read further."""

    def __init__(self, page: Response) -> None:
        super().__init__(page.status_code)
        self.page = page


async def refusal_page(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageRefusal)
    return exc.page


async def form_visitor(
    request: Request,
    settings: SettingsDep,
    user: WebUserDep,
    cookie: SessionCookie = None,
    csrf: CsrfField = "",
) -> Visitor:
    found = form_sender(request, settings, user, cookie, csrf)
    if isinstance(found, Response):
        raise PageRefusal(found)
    return found


async def page_visitor(
    request: Request, settings: SettingsDep, user: WebUserDep, cookie: SessionCookie = None
) -> Visitor:
    found = visitor(settings, user, cookie)
    if found is None:
        raise PageRefusal(sign_in_first(request))
    return found


# The person a web app form acts for; a form that may not act is answered by its refusal.
FormVisitor = Annotated[Visitor, Depends(form_visitor)]
# The person a page of the web app is for; someone signed out is sent to sign in first.
PageVisitor = Annotated[Visitor, Depends(page_visitor)]


def admin_only(person: Visitor) -> Visitor:
    if not person.is_admin:
        raise PageRefusal(message("Admins only", "Only an admin may see or do this.", 403))
    return person


async def admin_page_visitor(person: PageVisitor) -> Visitor:
    return admin_only(person)


async def admin_form_visitor(person: FormVisitor) -> Visitor:
    return admin_only(person)


AdminPageVisitor = Annotated[Visitor, Depends(admin_page_visitor)]
AdminFormVisitor = Annotated[Visitor, Depends(admin_form_visitor)]


def message(title: str, text: str, status_code: int) -> HTMLResponse:
    return render("message.html", status_code, title=title, message=text, error=True)


def see_other(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=status.HTTP_303_SEE_OTHER)
