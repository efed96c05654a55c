from typing import Any, ClassVar

from dropp.core.errors import BadRequest, DroppError, NotFound

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(BadRequest):
    """An RFC 6749 §5.2 error. The problem body also carries `error` and `error_description`,
    the fields OAuth client libraries (and Swagger UI) read."""

    code = "invalid_request"
    headers: ClassVar[dict[str, str]] = NO_STORE

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail, error=self.code, error_description=detail, **extra)


class InvalidRequest(OAuthError):
    code = "invalid_request"


class InvalidGrant(OAuthError):
    code = "invalid_grant"


class GrantReplayed(InvalidGrant):
    # The revocation of what the code or token issued must outlive the error response.
    persists_changes = True


class UnsupportedGrantType(OAuthError):
    code = "unsupported_grant_type"


class AuthorizationPending(OAuthError):
    code = "authorization_pending"
    persists_changes = True  # the poll's time is recorded, for slow_down


class SlowDown(OAuthError):
    code = "slow_down"
    persists_changes = True  # the longer interval is recorded


class ExpiredToken(OAuthError):
    code = "expired_token"


class AccessDenied(OAuthError):
    code = "access_denied"


class InvalidRedirectUri(BadRequest):
    code = "invalid_redirect_uri"


class UnknownUserCode(NotFound):
    code = "unknown_user_code"


class ProviderNotConfigured(NotFound):
    """No OpenID provider is configured: the option does not exist on this server, and its
    pages offer none. A permanent state of the server, not a failure of it."""

    code = "provider_not_configured"


class ProviderUnavailable(DroppError):
    status, code = 502, "provider_unavailable"


class ProviderRefused(BadRequest):
    """The provider's answer failed a check (ID token, nonce, issuer) or reported an error."""

    code = "provider_refused"
