"""Links sent by email: verifying an address, resetting a password.

The pages' forms carry no separate CSRF token: the link's token in the form is itself the
secret, and a site that does not know it cannot forge the post; one that does could use the
link directly anyway. The link's token is in the pages' URLs, so they send no Referer at all.
"""

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Form, Request, status
from fastapi.responses import HTMLResponse
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

router = APIRouter(tags=["auth"])

# Token parameters default to "": a truncated link gets the invalid-link page, not a JSON 422.
FormToken = Annotated[str, Form()]

RESET_ACCEPTED = LinkSent(
    detail="If an account uses this address, a link to reset its password is on its way."
)


def _invalid_link(error: InvalidEmailLink, hint: str) -> HTMLResponse:
    return render(
        "email_link_invalid.html",
        status.HTTP_400_BAD_REQUEST,
        headers=SECRET_LINK_HEADERS,
        detail=error.detail,
        hint=hint,
    )


def _invalid_verification(error: InvalidEmailLink) -> HTMLResponse:
    return _invalid_link(error, "Sign in to the Dropp app to have a new link sent.")


def _invalid_reset(error: InvalidEmailLink) -> HTMLResponse:
    return _invalid_link(error, "Ask for a new link from the Dropp app's sign-in screen.")


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


@router.get(email_links.VERIFY_PATH, response_class=HTMLResponse)
async def verify_email_page(session: SessionDep, token: str = "") -> HTMLResponse:
    """The page an email verification link opens: one button that verifies.

    Opening the link changes nothing, because mail scanners open links too.
    """
    try:
        email = await email_links.check_verification(session, token)
    except InvalidEmailLink as error:
        return _invalid_verification(error)
    return render("email_verify.html", headers=SECRET_LINK_HEADERS, token=token, email=email)


@router.post(email_links.VERIFY_PATH, response_class=HTMLResponse)
async def verify_email(session: SessionDep, token: FormToken = "") -> HTMLResponse:
    """Verify the address the link was sent to."""
    try:
        user = await email_links.verify_email(session, token)
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


@router.get(email_links.RESET_PATH, response_class=HTMLResponse)
async def password_reset_page(session: SessionDep, token: str = "") -> HTMLResponse:
    """The page a password reset link opens: a form for the new password."""
    try:
        email = await email_links.check_password_reset(session, token)
    except InvalidEmailLink as error:
        return _invalid_reset(error)
    return _reset_form(token, email)


@router.post(
    email_links.RESET_PATH,
    response_class=HTMLResponse,
    responses=responses(RateLimited),
    # Per client address only: a 256-bit token cannot be guessed, so the limit guards the
    # server's work (database locks, Argon2), not the token.
    dependencies=[rate_limited("password-reset-confirm")],
)
async def reset_password(
    session: SessionDep, token: FormToken = "", password: Annotated[str, Form()] = ""
) -> HTMLResponse:
    """Set the new password and sign the account out everywhere."""
    try:
        await email_links.reset_password(session, token, password)
    except InvalidEmailLink as error:
        return _invalid_reset(error)
    except InvalidNewPassword as error:
        email = await email_links.check_password_reset(session, token)
        return _reset_form(token, email, error.detail)
    return render("email_reset_done.html", headers=SECRET_LINK_HEADERS)
