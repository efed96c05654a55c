"""Links sent by email: verifying an address, resetting a password.

The pages' forms carry no separate CSRF token: the link's token in the form is itself the
secret, and a site that does not know it cannot forge the post; one that does could use the
link directly anyway. The link's token is in the pages' URLs, so they send no Referer at all.

A link that does not exist answers its page with 404, as share links do, and one that did
and can no longer be used with 410; a token missing or damaged, with 400.
"""

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Form, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dropp.auth import email_links
from dropp.auth.dependencies import CurrentPrincipal
from dropp.auth.errors import (
    EmailAlreadyVerified,
    EmailNotSent,
    InvalidEmailLink,
    InvalidNewPassword,
    InvalidToken,
    NoEmailAddress,
)
from dropp.auth.schemas import LinkSent, PasswordResetRequest
from dropp.core.db import SessionDep
from dropp.core.dependencies import SettingsDep
from dropp.core.errors import NotAuthenticated, responses
from dropp.core.pages import SECRET_LINK_HEADERS, render
from dropp.core.rate_limit import RateLimited, rate_limited
from dropp.mail.dependencies import MailerDep

RESET_ACCEPTED = LinkSent(
    detail="If an account uses this address, a link to reset its password is on its way."
)

VERIFY_HINT = "Sign in to the Dropp app to have a new link sent."
RESET_HINT = "Ask for a new link from the Dropp app's sign-in screen."

TOKEN_DESCRIPTION = "The token of the link Dropp emailed."
QueryToken = Annotated[
    str,
    Query(min_length=1, max_length=email_links.MAX_TOKEN_LENGTH, description=TOKEN_DESCRIPTION),
]
FormToken = Annotated[
    str,
    Field(min_length=1, max_length=email_links.MAX_TOKEN_LENGTH, description=TOKEN_DESCRIPTION),
]

_HTML = {"text/html": {"schema": {"type": "string"}}}
PAGE_ANSWERS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A page: the link's token is missing or damaged.", "content": _HTML},
    404: {"description": "A page: no link was sent with this token.", "content": _HTML},
    410: {
        "description": "A page: the link has expired, was already used, or was sent to an "
        "address the account no longer uses.",
        "content": _HTML,
    },
}


class VerifyEmailForm(BaseModel):
    """What the verification page's form posts; unknown fields are refused (422)."""

    model_config = ConfigDict(extra="forbid")

    token: FormToken


class PasswordResetForm(BaseModel):
    """What the reset page's form posts; unknown fields are refused (422)."""

    model_config = ConfigDict(extra="forbid")

    token: FormToken
    # Only an empty one is refused here (a form's empty field is a missing one, 422): any
    # other refused password gets the form again, saying why (400).
    password: str = Field(
        min_length=1,
        description=f"The new password, {email_links.MIN_PASSWORD_LENGTH} to "
        f"{email_links.MAX_PASSWORD_LENGTH} characters.",
    )
    # The form sends it so password managers store the new password under the right account.
    username: str | None = Field(None, description="The account's address; ignored.")


def _invalid_link(error: InvalidEmailLink, hint: str) -> HTMLResponse:
    return render(
        "email_link_invalid.html",
        error.status,
        headers=SECRET_LINK_HEADERS,
        detail=error.detail,
        hint=hint,
    )


def _invalid_verification(error: InvalidEmailLink) -> HTMLResponse:
    return _invalid_link(error, VERIFY_HINT)


def _invalid_reset(error: InvalidEmailLink) -> HTMLResponse:
    return _invalid_link(error, RESET_HINT)


def _names_the_token(error: dict[str, Any]) -> bool:
    return list(error.get("loc", ()))[1:] == ["token"]


class EmailLinkPage(APIRoute):
    """A link's page: a token that is missing or damaged (a link cut short by a mail client)
    gets the page saying the link cannot be used, as a browser needs; other refused input,
    such as an unknown form field, the usual 422 problem."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        hint = RESET_HINT if self.path.endswith(email_links.RESET_PATH) else VERIFY_HINT

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as error:
                if not any(_names_the_token(e) for e in error.errors()):
                    raise
                return _invalid_link(InvalidEmailLink(email_links.DAMAGED_LINK), hint)

        return answer


router = APIRouter(tags=["auth"])
pages = APIRouter(tags=["auth"], route_class=EmailLinkPage)


def _reset_form(token: str, email: str, error: str | None = None) -> HTMLResponse:
    return render(
        "email_reset_form.html",
        status.HTTP_400_BAD_REQUEST if error else status.HTTP_200_OK,
        headers=SECRET_LINK_HEADERS,
        token=token,
        email=email,
        error=error,
        min_length=email_links.MIN_PASSWORD_LENGTH,
        max_length=email_links.MAX_PASSWORD_LENGTH,
    )


@pages.get(email_links.VERIFY_PATH, response_class=HTMLResponse, responses=PAGE_ANSWERS)
async def verify_email_page(session: SessionDep, token: QueryToken) -> HTMLResponse:
    """The page an email verification link opens: one button that verifies.

    Opening the link changes nothing, because mail scanners open links too.
    """
    try:
        email = await email_links.check_verification(session, token)
    except InvalidEmailLink as error:
        return _invalid_verification(error)
    return render("email_verify.html", headers=SECRET_LINK_HEADERS, token=token, email=email)


@pages.post(email_links.VERIFY_PATH, response_class=HTMLResponse, responses=PAGE_ANSWERS)
async def verify_email(
    session: SessionDep, form: Annotated[VerifyEmailForm, Form()]
) -> HTMLResponse:
    """Verify the address the link was sent to."""
    try:
        user = await email_links.verify_email(session, form.token)
    except InvalidEmailLink as error:
        return _invalid_verification(error)
    return render("email_verified.html", headers=SECRET_LINK_HEADERS, email=user.email)


@router.post(
    f"{email_links.VERIFY_PATH}/resend",
    status_code=status.HTTP_202_ACCEPTED,
    responses=responses(
        NotAuthenticated,
        InvalidToken,
        EmailAlreadyVerified,
        NoEmailAddress,
        EmailNotSent,
        RateLimited,
    ),
    dependencies=[rate_limited("verify-email-resend")],
)
async def resend_verification(
    principal: CurrentPrincipal, session: SessionDep, settings: SettingsDep, mailer: MailerDep
) -> LinkSent:
    """Email a new verification link to the account's address."""
    mail = await email_links.resend_verification(session, principal.user_id, settings)
    # The link must exist before anyone can click it: commit, then send.
    await session.commit()
    if not await email_links.deliver(mailer, mail):
        raise EmailNotSent("The email could not be sent. Try again in a few minutes.")
    return LinkSent(detail="A new verification link was sent to the account's address.")


@router.post(
    "/auth/password-reset",
    status_code=status.HTTP_202_ACCEPTED,
    responses=responses(RateLimited),
    dependencies=[rate_limited("password-reset", account_field="email")],
)
async def request_password_reset(
    body: PasswordResetRequest,
    request: Request,
    settings: SettingsDep,
    mailer: MailerDep,
    background: BackgroundTasks,
) -> LinkSent:
    """Email a password reset link; the answer is the same whether or not the account exists."""
    # Nothing about the account is looked up before the answer: the look-up, the link and
    # the mail all happen after it, so its content and timing are the same for any address.
    sessionmaker: async_sessionmaker[AsyncSession] = request.state.sessionmaker
    background.add_task(email_links.send_password_reset, sessionmaker, mailer, settings, body.email)
    return RESET_ACCEPTED


@pages.get(email_links.RESET_PATH, response_class=HTMLResponse, responses=PAGE_ANSWERS)
async def password_reset_page(session: SessionDep, token: QueryToken) -> HTMLResponse:
    """The page a password reset link opens: a form for the new password."""
    try:
        email = await email_links.check_password_reset(session, token)
    except InvalidEmailLink as error:
        return _invalid_reset(error)
    return _reset_form(token, email)


@pages.post(
    email_links.RESET_PATH,
    response_class=HTMLResponse,
    responses={
        **PAGE_ANSWERS,
        400: {
            "description": "A page: the link's token is missing or damaged; or the form "
            "again, saying why the new password was refused.",
            "content": _HTML,
        },
        **responses(RateLimited),
    },
    # Per client address only: a 256-bit token cannot be guessed, so the limit guards the
    # server's work (database locks, Argon2), not the token.
    dependencies=[rate_limited("password-reset-confirm")],
)
async def reset_password(
    session: SessionDep, form: Annotated[PasswordResetForm, Form()]
) -> HTMLResponse:
    """Set the new password and sign the account out everywhere."""
    try:
        await email_links.reset_password(session, form.token, form.password)
    except InvalidEmailLink as error:
        return _invalid_reset(error)
    except InvalidNewPassword as error:
        email = await email_links.check_password_reset(session, form.token)
        return _reset_form(form.token, email, error.detail)
    return render("email_reset_done.html", headers=SECRET_LINK_HEADERS)


# The pages keep their route class in the router the app includes.
router.include_router(pages)
