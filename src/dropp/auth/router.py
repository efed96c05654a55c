from fastapi import APIRouter, BackgroundTasks, status

from dropp.auth import email_links, service
from dropp.auth.dependencies import CurrentPrincipal, TokenIssuerDep
from dropp.auth.errors import (
    EmailTaken,
    InvalidCredentials,
    InvalidRefreshToken,
    InvalidToken,
)
from dropp.auth.schemas import LoginRequest, RefreshRequest, TokenRead, UserCreate, UserRead
from dropp.core.db import SessionDep
from dropp.core.dependencies import SettingsDep
from dropp.core.errors import NotAuthenticated, responses
from dropp.core.rate_limit import RateLimited, rate_limited
from dropp.mail.dependencies import MailerDep

router = APIRouter(tags=["auth"])


@router.post(
    "/auth/register",
    status_code=status.HTTP_201_CREATED,
    responses=responses(EmailTaken, RateLimited),
    dependencies=[rate_limited("register", account_field="email")],
)
async def register(
    body: UserCreate,
    session: SessionDep,
    settings: SettingsDep,
    mailer: MailerDep,
    background: BackgroundTasks,
) -> UserRead:
    """Create an account with an email and a password (at least 8 characters), and email a
    link that verifies the address."""
    user = await service.register(session, body.email, body.password, settings.default_role)
    assert user.email is not None
    mail = await email_links.issue_verification(session, user.id, user.email, settings)
    # Sent after the response, so after the account is committed: no mail for an account that
    # was rolled back, and a mail server that is down or slow costs the registration nothing
    # (the failure is logged; the person asks for a new link with /auth/verify-email/resend).
    background.add_task(email_links.deliver, mailer, mail)
    return UserRead.of(user)


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


@router.get("/me", responses=responses(NotAuthenticated, InvalidToken))
async def me(principal: CurrentPrincipal, session: SessionDep) -> UserRead:
    """The signed-in account."""
    user = await service.get_user(session, principal.user_id)
    if user is None or not user.is_active:
        raise InvalidToken("The account behind this token no longer exists.")
    return UserRead.of(user)
