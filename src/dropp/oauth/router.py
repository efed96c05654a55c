"""Dropp as the OAuth authorization server of its own clients (desktop app, CLI, docs UI),
signing people in through an OpenID provider; and the few pages a browser sees on the way."""

from typing import Annotated, Any
from urllib.parse import quote, urlsplit
from uuid import UUID

from fastapi import APIRouter, Cookie, Form, Query, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse

from dropp.auth import service as auth_service
from dropp.auth.dependencies import TokenIssuerDep
from dropp.auth.errors import InvalidCredentials, InvalidRefreshToken, RefreshTokenReused
from dropp.auth.models import User
from dropp.auth.schemas import RefreshRequest, TokenRead
from dropp.auth.tokens import new_secret, refresh_token_digest
from dropp.core import csrf
from dropp.core.config import Settings
from dropp.core.db import SessionDep
from dropp.core.dependencies import SettingsDep
from dropp.core.errors import DroppError, responses
from dropp.core.openapi import SCHEMA_SETTING, SETTING_SCHEMAS
from dropp.core.pages import render
from dropp.core.rate_limit import RateLimited, rate_limited
from dropp.oauth import codes, devices, pkce, redirect_uris, sign_in
from dropp.oauth.dependencies import ProviderDep, WebUserDep
from dropp.oauth.errors import (
    NO_STORE,
    AccessDenied,
    AuthorizationPending,
    ExpiredToken,
    GrantReplayed,
    InvalidGrant,
    InvalidRedirectUri,
    InvalidRequest,
    ProviderNotConfigured,
    ProviderUnavailable,
    SlowDown,
    UnknownUserCode,
    UnsupportedGrantType,
)
from dropp.oauth.schemas import DeviceGrantRead
from dropp.oauth.web_sessions import (
    BROWSER_COOKIE,
    SESSION_COOKIE,
    close_web_session,
    csrf_token,
    csrf_valid,
    open_web_session,
    set_cookie,
)

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

router = APIRouter(tags=["sign-in"])

BrowserCookie = Annotated[str | None, Cookie(alias=BROWSER_COOKIE, include_in_schema=False)]
SessionCookie = Annotated[str | None, Cookie(alias=SESSION_COOKIE, include_in_schema=False)]


def _message(title: str, message: str, status_code: int = 200) -> HTMLResponse:
    return render(
        "message.html", status_code, title=title, message=message, error=status_code >= 400
    )


def _from_this_site(request: Request, settings: Settings) -> bool:
    # The one same-origin rule of every page form (core/csrf.py), besides the forms' tokens.
    return csrf.from_this_site(request, settings)


def _redirect_target(uri: str) -> str:
    # For the page's CSP: browsers apply form-action to where the form's answer redirects.
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        return f"{parts.scheme}://{parts.netloc}"
    return f"{parts.scheme}:"


def _see_other(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=status.HTTP_303_SEE_OTHER)


def _account_name(user: User) -> str:
    return user.email or "your account"


# --- Dropp's own pages ------------------------------------------------------------------


@router.get("/login/", response_class=HTMLResponse, include_in_schema=False)
async def login_page(
    settings: SettingsDep,
    provider: ProviderDep,
    user: WebUserDep,
    session_cookie: SessionCookie = None,
    next: str | None = None,
) -> HTMLResponse:
    return render(
        "login.html",
        user=user,
        google=provider.configured,
        next=sign_in.local_path(next),
        email="",
        error=None,
        csrf=csrf_token(settings, "logout", session_cookie or ""),
    )


@router.post(
    "/login/",
    response_class=HTMLResponse,
    include_in_schema=False,
    dependencies=[rate_limited("login", account_field="email")],
)
async def login_form(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    provider: ProviderDep,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str | None, Form()] = None,
) -> Response:
    if not _from_this_site(request, settings):
        return _message("Sign-in refused", "This form was sent from another site.", 403)
    try:
        user = await auth_service.authenticate(session, email, password)
    except InvalidCredentials as error:
        return render(
            "login.html",
            401,
            user=None,
            google=provider.configured,
            next=sign_in.local_path(next),
            email=email,
            error=error.detail,
            csrf="",
        )
    token = await open_web_session(session, settings, user.id)
    response = _see_other(sign_in.local_path(next))
    set_cookie(response, settings, SESSION_COOKIE, token, settings.web_session_ttl_seconds)
    return response


@router.post("/logout/", include_in_schema=False)
async def logout_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    csrf: Annotated[str, Form()],
    session_cookie: SessionCookie = None,
) -> Response:
    if (
        session_cookie
        and _from_this_site(request, settings)
        and csrf_valid(settings, csrf, "logout", session_cookie)
    ):
        await close_web_session(session, session_cookie)
    response = _see_other("/login/")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- Sign-in through the OpenID provider --------------------------------------------------

# What makes a request a client's; a person's sign-in sends none of them.
CLIENT_PARAMETERS = ("redirect_uri", "state", "code_challenge")

SETTING_SCHEMAS["redirect_uris"] = lambda settings: redirect_uris.schema(
    sign_in.allowed_redirect_uris(settings)
)

# Separate parameters cannot say "a client's all, or none of them", so the document states
# the query as one object whose fields are the parameters (form style, exploded: the same
# `?redirect_uri=...&state=...` on the wire).
SIGN_IN_QUERY: dict[str, Any] = {
    "name": "sign_in",
    "in": "query",
    "style": "form",
    "explode": True,
    "description": "A client's sign-in (redirect_uri, state, code_challenge and "
    "code_challenge_method=S256, all of them), or a person's (none of them; maybe next). "
    "Other parameters are ignored.",
    "schema": {
        "type": "object",
        "properties": {
            "redirect_uri": {
                "type": "string",
                "maxLength": 2048,
                "description": "Where the code goes: on APP_REDIRECT_URI, character for "
                "character; a loopback entry on any port.",
            },
            "state": {"type": "string", "maxLength": sign_in.MAX_STATE_LENGTH},
            "code_challenge": {"type": "string", "maxLength": 128},
            "code_challenge_method": {"type": "string", "maxLength": 16},
            "response_type": {"type": "string", "maxLength": 32},
            "next": {
                "type": "string",
                "maxLength": 2048,
                "description": "A person's sign-in: the path on this server to go to after.",
            },
        },
        "anyOf": [
            {
                "title": "A person, to Dropp's pages",
                "not": {"anyOf": [{"required": [name]} for name in CLIENT_PARAMETERS]},
            },
            {
                "title": "A client, for an authorization code",
                "required": [*CLIENT_PARAMETERS, "code_challenge_method"],
                "properties": {
                    "redirect_uri": {SCHEMA_SETTING: "redirect_uris"},
                    "state": {"minLength": 1},
                    "code_challenge": {"pattern": pkce.CHALLENGE_PATTERN},
                    "code_challenge_method": {"const": "S256"},
                    "response_type": {"const": "code"},
                },
            },
        ],
    },
}


@router.get(
    "/auth/google",
    status_code=status.HTTP_302_FOUND,
    # A redirect has no body: documented without one, not as the default JSON.
    response_class=RedirectResponse,
    responses={
        302: {"description": "To the provider's sign-in page, with a cookie for this browser."},
        **responses(InvalidRedirectUri, InvalidRequest, ProviderNotConfigured, RateLimited),
    },
    dependencies=[rate_limited("sign-in")],
    openapi_extra={"parameters": [SIGN_IN_QUERY]},
)
async def start_google_sign_in(
    session: SessionDep,
    settings: SettingsDep,
    provider: ProviderDep,
    # Each read on its own, and documented together in SIGN_IN_QUERY.
    redirect_uri: Annotated[str | None, Query(max_length=2048, include_in_schema=False)] = None,
    state: Annotated[
        str | None, Query(max_length=sign_in.MAX_STATE_LENGTH, include_in_schema=False)
    ] = None,
    code_challenge: Annotated[str | None, Query(max_length=128, include_in_schema=False)] = None,
    code_challenge_method: Annotated[
        str | None, Query(max_length=16, include_in_schema=False)
    ] = None,
    response_type: Annotated[str | None, Query(max_length=32, include_in_schema=False)] = None,
    next: Annotated[str | None, Query(max_length=2048, include_in_schema=False)] = None,
) -> RedirectResponse:
    """Start signing in with Google (or the configured OpenID provider).

    A client passes `redirect_uri` (on the allowlist), `state`, and a PKCE `code_challenge`
    with `code_challenge_method=S256`; after the person signs in and confirms, the browser is
    sent to `redirect_uri?code=...&state=...`, and the client trades the code at
    `POST /auth/token`. Without those, a person signs in to Dropp's own pages and goes to
    `next`.
    """
    client = None
    if any(value is not None for value in (redirect_uri, state, code_challenge)):
        client = sign_in.check_client_request(
            settings,
            redirect_uri=redirect_uri,
            state=state,
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method,
            response_type=response_type,
        )
    browser_token = new_secret()
    url = await sign_in.begin(session, settings, provider, browser_token, client, next)
    response = RedirectResponse(url, status_code=status.HTTP_302_FOUND)
    set_cookie(response, settings, BROWSER_COOKIE, browser_token, settings.sign_in_ttl_seconds)
    return response


@router.get("/auth/google/callback", response_class=HTMLResponse, include_in_schema=False)
async def google_callback(
    session: SessionDep,
    settings: SettingsDep,
    provider: ProviderDep,
    browser_token: BrowserCookie = None,
    state: Annotated[str | None, Query(max_length=1024)] = None,
    code: Annotated[str | None, Query(max_length=2048)] = None,
    error: Annotated[str | None, Query(max_length=256)] = None,
) -> Response:
    try:
        pending, user = await sign_in.provider_returned(
            session, settings, provider, browser_token, state=state, code=code, error=error
        )
    except ProviderUnavailable as failure:
        return _message("Sign-in failed", failure.detail, failure.status)
    except DroppError as failure:
        return _message("Sign-in failed", failure.detail, 400)
    if pending.client_redirect_uri is not None and pending.client_state is not None:
        if user is None:
            return _see_other(
                sign_in.client_redirect(
                    pending.client_redirect_uri, error="access_denied", state=pending.client_state
                )
            )
        assert browser_token is not None
        return render(
            "sign_in_confirm.html",
            form_targets=_redirect_target(pending.client_redirect_uri),
            account=_account_name(user),
            sign_in_id=str(pending.id),
            csrf=csrf_token(settings, "confirm", str(pending.id), browser_token),
        )
    if user is None:
        return _message("Sign-in cancelled", "You did not sign in.", 400)
    token = await open_web_session(session, settings, user.id)
    response = _see_other(pending.next_path or sign_in.DEFAULT_NEXT)
    set_cookie(response, settings, SESSION_COOKIE, token, settings.web_session_ttl_seconds)
    response.delete_cookie(BROWSER_COOKIE, path="/")
    return response


@router.post("/auth/google/confirm", response_class=HTMLResponse, include_in_schema=False)
async def confirm_google_sign_in(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    sign_in_id: Annotated[UUID, Form(alias="sign_in")],
    csrf: Annotated[str, Form(max_length=128)],
    action: Annotated[str, Form(max_length=16)],
    browser_token: BrowserCookie = None,
) -> Response:
    if not _from_this_site(request, settings) or not csrf_valid(
        settings, csrf, "confirm", str(sign_in_id), browser_token or ""
    ):
        return _message("Sign-in refused", "This confirmation did not come from this page.", 403)
    try:
        pending = await sign_in.waiting_confirmation(session, sign_in_id, browser_token)
    except DroppError as failure:
        return _message("Sign-in failed", failure.detail, 400)
    location = await sign_in.confirm(session, settings, pending, allow=action == "allow")
    response = _see_other(location)
    response.delete_cookie(BROWSER_COOKIE, path="/")
    return response


# --- Tokens ----------------------------------------------------------------------------------


@router.post(
    "/auth/token",
    # Per address; the device code counts as the account, so one device cannot poll faster by
    # spreading its requests over addresses.
    dependencies=[rate_limited("token", account_field="device_code")],
    responses=responses(
        RateLimited,
        InvalidRequest,
        InvalidGrant,
        UnsupportedGrantType,
        AuthorizationPending,
        SlowDown,
        ExpiredToken,
        AccessDenied,
    ),
)
async def token(
    response: Response,
    session: SessionDep,
    issuer: TokenIssuerDep,
    grant_type: Annotated[str | None, Form(max_length=128)] = None,
    code: Annotated[str | None, Form(max_length=256)] = None,
    code_verifier: Annotated[str | None, Form(max_length=256)] = None,
    redirect_uri: Annotated[str | None, Form(max_length=2048)] = None,
    refresh_token: Annotated[str | None, Form(max_length=256)] = None,
    device_code: Annotated[str | None, Form(max_length=256)] = None,
) -> TokenRead:
    """The OAuth token endpoint (form-encoded, RFC 6749): `authorization_code` (code,
    code_verifier, redirect_uri), `refresh_token`, and the device grant (`device_code`)."""
    response.headers.update(NO_STORE)
    if grant_type == "authorization_code":
        if not code or not code_verifier or not redirect_uri:
            raise InvalidRequest("code, code_verifier and redirect_uri are required.")
        return await codes.redeem(
            session, issuer, code=code, code_verifier=code_verifier, redirect_uri=redirect_uri
        )
    if grant_type == "refresh_token":
        if not refresh_token:
            raise InvalidRequest("refresh_token is required.")
        try:
            return await issuer.rotate(session, refresh_token)
        except RefreshTokenReused as error:
            raise GrantReplayed(error.detail) from error
        except InvalidRefreshToken as error:
            raise InvalidGrant(error.detail) from error
    if grant_type == DEVICE_CODE_GRANT:
        if not device_code:
            raise InvalidRequest("device_code is required.")
        return await devices.poll(session, issuer, device_code)
    if grant_type is None:
        raise InvalidRequest("grant_type is required.")
    raise UnsupportedGrantType(f"grant_type {grant_type!r} is not supported.")


@router.post(
    "/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[rate_limited("logout")],
    responses=responses(RateLimited),
)
async def logout(body: RefreshRequest, session: SessionDep) -> None:
    """Sign out the session this refresh token belongs to: its whole family is revoked.
    Answers 204 whatever the token, so it tells nothing about tokens."""
    await auth_service.revoke_token_family(session, refresh_token_digest(body.refresh_token))


# --- The device authorization grant (RFC 8628) ------------------------------------------------


@router.post(
    "/auth/device",
    dependencies=[rate_limited("device")],
    responses=responses(RateLimited),
)
async def start_device_sign_in(
    response: Response, session: SessionDep, settings: SettingsDep
) -> DeviceGrantRead:
    """Start signing in a terminal or headless machine: show `user_code` and
    `verification_uri` to the person, then poll `POST /auth/token` with
    `grant_type=urn:ietf:params:oauth:grant-type:device_code` every `interval` seconds."""
    response.headers.update(NO_STORE)
    return await devices.start(session, settings)


def _device_page(
    settings: Settings, user: User, session_cookie: str, user_code: str, error: str | None = None
) -> HTMLResponse:
    return render(
        "device.html",
        400 if error else 200,
        account=_account_name(user),
        user_code=user_code,
        error=error,
        csrf=csrf_token(settings, "device", session_cookie),
    )


@router.get("/auth/device/verify", response_class=HTMLResponse, include_in_schema=False)
async def device_page(
    request: Request,
    settings: SettingsDep,
    user: WebUserDep,
    session_cookie: SessionCookie = None,
    user_code: Annotated[str, Query(max_length=32)] = "",
) -> Response:
    if user is None or session_cookie is None:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return _see_other(f"/login/?next={quote(here, safe='')}")
    return _device_page(settings, user, session_cookie, user_code)


@router.post(
    "/auth/device/verify",
    response_class=HTMLResponse,
    include_in_schema=False,
    # Counted per address before anything is read: a user code has about 34 bits, and a
    # guessed one would connect a stranger's device to the guesser's account (or refuse it).
    dependencies=[rate_limited("device-verify")],
)
async def device_decision(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: WebUserDep,
    user_code: Annotated[str, Form(max_length=32)],
    action: Annotated[str, Form(max_length=16)],
    csrf: Annotated[str, Form(max_length=128)],
    session_cookie: SessionCookie = None,
) -> Response:
    if user is None or session_cookie is None:
        return _see_other("/login/?next=/auth/device/verify")
    if not _from_this_site(request, settings) or not csrf_valid(
        settings, csrf, "device", session_cookie
    ):
        return _message("Refused", "This approval did not come from this page.", 403)
    approve = action == "approve"
    try:
        await devices.decide(session, user_code, user, approve=approve)
    except UnknownUserCode as failure:
        return _device_page(settings, user, session_cookie, user_code, failure.detail)
    if approve:
        return _message("Device connected", "The device is signed in. You can close this page.")
    return _message("Device refused", "The device was not signed in.")
