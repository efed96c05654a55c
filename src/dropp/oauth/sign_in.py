"""Sign-in through the OpenID provider, for a desktop client (ending in an authorization
code) or for a person using Dropp's own pages (ending in a web session).

The state sent to the provider is stored hashed, server-side, with a TTL; it is single use
and bound to the browser that started it by a cookie, so a callback URL replayed or opened in
another browser is refused.
"""

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode, urlsplit
from uuid import UUID

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.auth.models import SignIn, User
from dropp.auth.tokens import new_secret, secret_digest
from dropp.core.config import Settings
from dropp.oauth import codes, pkce, redirect_uris
from dropp.oauth.accounts import user_for_identity
from dropp.oauth.errors import InvalidRedirectUri, InvalidRequest, ProviderRefused
from dropp.oauth.provider import OpenIDProvider

DEFAULT_NEXT = "/login/"
MAX_STATE_LENGTH = 1024


@dataclass(frozen=True, slots=True)
class ClientRequest:
    """What a desktop client (or the docs UI) asked for at /auth/google."""

    redirect_uri: str
    state: str
    code_challenge: str


def allowed_redirect_uris(settings: Settings) -> tuple[str, ...]:
    # The docs UI is a client too; its redirect page is served by this app.
    return (*settings.app_redirect_uri, f"{settings.public_url.rstrip('/')}/docs/oauth2-redirect")


def check_client_request(
    settings: Settings,
    *,
    redirect_uri: str | None,
    state: str | None,
    code_challenge: str | None,
    code_challenge_method: str | None,
    response_type: str | None,
) -> ClientRequest:
    """Refuse a bad request here, before any redirect: an unchecked redirect_uri would send
    the user, and later a code, wherever an attacker chose."""
    if redirect_uri is None or not redirect_uris.is_allowed(
        redirect_uri, allowed_redirect_uris(settings)
    ):
        raise InvalidRedirectUri(
            "redirect_uri is missing or not one this server allows (APP_REDIRECT_URI); "
            "it must match character for character."
        )
    if response_type not in (None, "code"):
        raise InvalidRequest("Only response_type=code is supported.")
    if not state or len(state) > MAX_STATE_LENGTH:
        raise InvalidRequest(f"state is required (1 to {MAX_STATE_LENGTH} characters).")
    if code_challenge_method != "S256":
        raise InvalidRequest("PKCE is required with code_challenge_method=S256; plain is refused.")
    if code_challenge is None or not pkce.CHALLENGE.fullmatch(code_challenge):
        raise InvalidRequest("code_challenge must be the base64url SHA-256 of the verifier.")
    return ClientRequest(redirect_uri, state, code_challenge)


def local_path(next_path: str | None) -> str:
    """`next_path` if it stays on this server, else the default: never an open redirect."""
    if (
        not next_path
        or not next_path.startswith("/")
        or next_path.startswith("//")
        or "\\" in next_path
        or urlsplit(next_path).netloc
    ):
        return DEFAULT_NEXT
    return next_path


async def begin(
    session: AsyncSession,
    settings: Settings,
    provider: OpenIDProvider,
    browser_token: str,
    client: ClientRequest | None,
    next_path: str | None,
) -> str:
    """Record the sign-in and return the provider's authorization URL."""
    state = new_secret()
    nonce = secrets.token_urlsafe(24)
    code_verifier = secrets.token_urlsafe(64)
    url = await provider.authorization_url(state=state, nonce=nonce, code_verifier=code_verifier)
    session.add(
        SignIn(
            state_hash=secret_digest(state),
            browser_hash=secret_digest(browser_token),
            nonce=nonce,
            provider_code_verifier=code_verifier,
            client_redirect_uri=client.redirect_uri if client else None,
            client_state=client.state if client else None,
            code_challenge=client.code_challenge if client else None,
            next_path=None if client else local_path(next_path),
            expires_at=datetime.now(UTC) + timedelta(seconds=settings.sign_in_ttl_seconds),
        )
    )
    return url


async def _pending(
    session: AsyncSession, condition: ColumnElement[bool], browser_token: str | None
) -> SignIn:
    found = await session.scalar(select(SignIn).where(condition).with_for_update())
    if (
        found is None
        or browser_token is None
        or not secrets.compare_digest(found.browser_hash, secret_digest(browser_token))
    ):
        raise InvalidRequest(
            "This sign-in is unknown, or was started in another browser. Start again from the app."
        )
    if found.expires_at <= datetime.now(UTC):
        raise InvalidRequest("This sign-in has expired. Start again from the app.")
    return found


async def provider_returned(
    session: AsyncSession,
    settings: Settings,
    provider: OpenIDProvider,
    browser_token: str | None,
    *,
    state: str | None,
    code: str | None,
    error: str | None,
) -> tuple[SignIn, User | None]:
    """Consume the state and, unless the provider reported an error, sign the user in."""
    if not state:
        raise InvalidRequest("The provider's answer has no state.")
    sign_in = await _pending(session, SignIn.state_hash == secret_digest(state), browser_token)
    if sign_in.returned_at is not None:
        raise InvalidRequest("This sign-in was already used. Start again from the app.")
    sign_in.returned_at = datetime.now(UTC)
    if error is not None or not code:
        return sign_in, None
    identity = await provider.identity(
        code=code, code_verifier=sign_in.provider_code_verifier, nonce=sign_in.nonce
    )
    user = await user_for_identity(session, identity, settings.default_role)
    if not user.is_active:
        raise ProviderRefused("This Dropp account is disabled.")
    sign_in.user_id = user.id
    return sign_in, user


@dataclass(frozen=True, slots=True)
class AwaitingConfirmation:
    """A client's sign-in whose user is known, waiting for the person's one click."""

    record: SignIn
    user_id: UUID
    redirect_uri: str
    client_state: str
    code_challenge: str


async def waiting_confirmation(
    session: AsyncSession, sign_in_id: UUID, browser_token: str | None
) -> AwaitingConfirmation:
    record = await _pending(session, SignIn.id == sign_in_id, browser_token)
    if (
        record.user_id is None
        or record.confirmed_at is not None
        or record.client_redirect_uri is None
        or record.client_state is None
        or record.code_challenge is None
    ):
        raise InvalidRequest("This sign-in cannot be confirmed. Start again from the app.")
    return AwaitingConfirmation(
        record,
        record.user_id,
        record.client_redirect_uri,
        record.client_state,
        record.code_challenge,
    )


def client_redirect(redirect_uri: str, **params: str) -> str:
    separator = "&" if urlsplit(redirect_uri).query else "?"
    return f"{redirect_uri}{separator}{urlencode(params)}"


async def confirm(
    session: AsyncSession, settings: Settings, pending: AwaitingConfirmation, *, allow: bool
) -> str:
    """The person's answer: the client's redirect with a code, or with access_denied."""
    pending.record.confirmed_at = datetime.now(UTC)
    if not allow:
        return client_redirect(
            pending.redirect_uri, error="access_denied", state=pending.client_state
        )
    code = await codes.issue(
        session,
        settings,
        user_id=pending.user_id,
        redirect_uri=pending.redirect_uri,
        code_challenge=pending.code_challenge,
    )
    return client_redirect(pending.redirect_uri, code=code, state=pending.client_state)
