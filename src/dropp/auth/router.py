from fastapi import APIRouter, BackgroundTasks, status

from dropp.auth import email_links, registration, service
from dropp.auth.dependencies import CurrentPrincipal, TokenIssuerDep
from dropp.auth.errors import InvalidCredentials, InvalidRefreshToken, InvalidToken
from dropp.auth.schemas import (
    LinkSent,
    LoginRequest,
    PasswordChange,
    RefreshRequest,
    TokenRead,
    UserCreate,
    UserRead,
)
from dropp.core.db import SessionDep
from dropp.core.dependencies import SettingsDep
from dropp.core.errors import NotAuthenticated, responses
from dropp.core.rate_limit import RateLimited, rate_limited
from dropp.mail.dependencies import MailerDep

router = APIRouter(tags=["auth"])


REGISTERED = LinkSent(
    detail="Check this address's inbox: a link to confirm it is on its way. Then sign in."
)


@router.post(
    "/auth/register",
    status_code=status.HTTP_201_CREATED,
    responses=responses(RateLimited),
    dependencies=[rate_limited("register", account_field="email")],
)
async def register(
    body: UserCreate,
    session: SessionDep,
    settings: SettingsDep,
    mailer: MailerDep,
    background: BackgroundTasks,
) -> LinkSent:
    """Create an account with an email and a password (at least 8 characters), and email a
    link that verifies the address. The answer is the same for an address that already has
    an account, which is left unchanged; its owner is emailed about the attempt instead."""
    mail = await registration.register(session, settings, body.email, body.password)
    # Sent after the response, so after the commit: no mail for an account that was rolled
    # back, and a mail server that is down or slow costs the registration nothing (the
    # failure is logged; the person asks for a new link with /auth/verify-email/resend).
    if mail is not None:
        background.add_task(email_links.deliver, mailer, mail)
    return REGISTERED


@router.post(
    "/auth/login",
    responses=responses(InvalidCredentials, RateLimited),
    dependencies=[rate_limited("login", account_field="email")],
)
async def login(body: LoginRequest, session: SessionDep, issuer: TokenIssuerDep) -> TokenRead:
    """Trade an email and password for an access token and a refresh token."""
    user = await service.authenticate(session, body.email, body.password)
    return await issuer.issue(session, user)


@router.post(
    "/auth/refresh",
    responses=responses(InvalidRefreshToken, RateLimited),
    dependencies=[rate_limited("refresh")],
)
async def refresh(body: RefreshRequest, session: SessionDep, issuer: TokenIssuerDep) -> TokenRead:
    """Trade a refresh token for a new pair; each refresh token works once."""
    return await issuer.rotate(session, body.refresh_token)


@router.post(
    "/auth/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(NotAuthenticated, InvalidToken, InvalidCredentials, RateLimited),
    dependencies=[rate_limited("password-change")],
)
async def change_password(
    body: PasswordChange, principal: CurrentPrincipal, session: SessionDep
) -> None:
    """Change your password, giving the current one. Every session of the account ends,
    this one's included: sign in again with the new password."""
    await service.change_password(
        session, principal.user_id, body.current_password, body.new_password
    )


@router.get("/me", responses=responses(NotAuthenticated, InvalidToken))
async def me(principal: CurrentPrincipal, session: SessionDep) -> UserRead:
    """The signed-in account."""
    user = await service.get_user(session, principal.user_id)
    if user is None or not user.is_active:
        raise InvalidToken("The account behind this token no longer exists.")
    return UserRead.of(user)
