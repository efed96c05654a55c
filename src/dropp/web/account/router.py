"""The web app's account page: the address and whether it is verified, usage against the
quota, a new verification link, and a password change; through the JSON API's services."""

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Form, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.auth import email_links, registration
from dropp.auth import service as auth_service
from dropp.auth.errors import EmailNotSent
from dropp.auth.models import User
from dropp.auth.schemas import UserCreate
from dropp.core import csrf
from dropp.core.config import Settings
from dropp.core.db import SessionDep
from dropp.core.dependencies import SettingsDep
from dropp.core.errors import DroppError
from dropp.core.pages import render
from dropp.core.rate_limit import rate_limited
from dropp.mail.dependencies import MailerDep
from dropp.oauth.web_sessions import SESSION_COOKIE, open_web_session, set_cookie
from dropp.quotas import service as quotas_service
from dropp.web.files.views import human_size
from dropp.web.visitors import FormVisitor, PageVisitor, Visitor, message, see_other

router = APIRouter(prefix="/app/account", include_in_schema=False)

PasswordField = Annotated[str, Form(max_length=1024)]
DONE = {
    "password": "Your password was changed. Every other session of your account was signed out.",
    "verification": "A new verification link is on its way to your address.",
}


@router.get("", response_class=HTMLResponse)
async def account_page(
    person: PageVisitor, session: SessionDep, settings: SettingsDep, done: str | None = None
) -> Response:
    return await _page(session, settings, person, notice=DONE.get(done or ""))


async def _page(
    session: AsyncSession,
    settings: Settings,
    person: Visitor,
    *,
    notice: str | None = None,
    error: DroppError | None = None,
) -> HTMLResponse:
    user = await session.get_one(User, person.user_id)
    usage = await quotas_service.usage(session, settings, user)
    page = render(
        "web/account.html",
        error.status if error else 200,
        me=person,
        section="account",
        verified=user.email_verified_at is not None,
        has_password=user.password_hash is not None,
        usage=usage,
        used=human_size(usage.bytes),
        quota=human_size(usage.quota) if usage.quota is not None else None,
        notice=notice,
        error=error.detail if error else None,
    )
    if error is not None:
        page.headers.update(error.response_headers)
    return page


@router.post("/password", dependencies=[rate_limited("password-change")])
async def change_password(
    person: FormVisitor,
    session: SessionDep,
    settings: SettingsDep,
    current: PasswordField = "",
    new: PasswordField = "",
    again: PasswordField = "",
) -> Response:
    try:
        if new != again:
            raise NotTheSame("The new password and its repetition differ.")
        await auth_service.change_password(session, person.user_id, current, new)
    except DroppError as error:
        await session.rollback()
        return await _page(session, settings, person, error=error)
    # Every session ended with the old password, this one's too; this browser just proved
    # it knows the new one, so it gets a session of its own again.
    token = await open_web_session(session, settings, person.user_id)
    answer = see_other("/app/account?done=password")
    set_cookie(answer, settings, SESSION_COOKIE, token, settings.web_session_ttl_seconds)
    return answer


@router.post("/verify", dependencies=[rate_limited("verify-email-resend")])
async def resend_verification(
    person: FormVisitor, session: SessionDep, settings: SettingsDep, mailer: MailerDep
) -> Response:
    try:
        mail = await email_links.resend_verification(session, person.user_id, settings)
    except DroppError as error:
        await session.rollback()
        return await _page(session, settings, person, error=error)
    # The link must exist before anyone can click it: commit, then send.
    await session.commit()
    if not await email_links.deliver(mailer, mail):
        not_sent = EmailNotSent("The email could not be sent. Try again in a few minutes.")
        return await _page(session, settings, person, error=not_sent)
    return see_other("/app/account?done=verification")


class NotTheSame(DroppError):
    status, code = 422, "passwords_differ"


# --- before signing in ------------------------------------------------------------------

# Pages for someone not signed in: no /app prefix, like /login/.
public = APIRouter(include_in_schema=False)

EmailField = Annotated[str, Form(max_length=320)]


@public.get("/signup/", response_class=HTMLResponse)
async def signup_page() -> HTMLResponse:
    return render("web/signup.html", email="", error=None)


@public.post("/signup/", dependencies=[rate_limited("register")])
async def signup(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    mailer: MailerDep,
    background: BackgroundTasks,
    email: EmailField = "",
    password: PasswordField = "",
    again: PasswordField = "",
) -> Response:
    """As POST /auth/register: the same answer whether or not the address has an account
    (its owner is mailed about the attempt instead), so the page tells nothing of accounts."""
    if not csrf.from_this_site(request, settings):
        return message("Refused", "This form was not sent from a Dropp page.", 403)
    try:
        if password != again:
            raise NotTheSame("The password and its repetition differ.")
        body = UserCreate.model_validate({"email": email, "password": password})
    except (DroppError, ValidationError) as error:
        reason = error.detail if isinstance(error, DroppError) else _reasons(error)
        return render("web/signup.html", 422, email=email, error=reason)
    mail = await registration.register(session, settings, body.email, body.password)
    if mail is not None:
        background.add_task(email_links.deliver, mailer, mail)
    return render(
        "message.html",
        title="Check your inbox",
        message=f"A message is on its way to {body.email}: follow its link, then sign in.",
        error=False,
    )


@public.get("/forgot/", response_class=HTMLResponse)
async def forgot_page() -> HTMLResponse:
    return render("web/forgot.html")


@public.post("/forgot/", dependencies=[rate_limited("password-reset")])
async def forgot(
    request: Request,
    settings: SettingsDep,
    mailer: MailerDep,
    background: BackgroundTasks,
    email: EmailField = "",
) -> Response:
    """As POST /auth/password-reset: the link is issued and mailed after the answer, which
    is the same, and as quick, whatever the address."""
    if not csrf.from_this_site(request, settings):
        return message("Refused", "This form was not sent from a Dropp page.", 403)
    if email.strip():
        sessionmaker = request.state.sessionmaker
        background.add_task(
            email_links.send_password_reset, sessionmaker, mailer, settings, email.strip()
        )
    return render(
        "message.html",
        title="Check your inbox",
        message="If an account signs in with this address, a link to set a new password is "
        "on its way to it.",
        error=False,
    )


def _reasons(error: ValidationError) -> str:
    return "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in error.errors())
