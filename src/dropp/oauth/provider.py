"""The OpenID Connect provider (Google unless configured otherwise), through authlib.

Dropp keeps the sign-in state itself (see `sign_in`), so only authlib's stateless calls are
used: building the authorization URL, redeeming the code, validating the ID token.
"""

from dataclasses import dataclass
from typing import Any

import httpx2
from authlib.integrations.base_client.errors import OAuthError as AuthlibOAuthError
from authlib.integrations.starlette_client import OAuth
from joserfc.errors import JoseError

from dropp.core.config import Settings
from dropp.oauth.errors import ProviderNotConfigured, ProviderRefused, ProviderUnavailable

SCOPE = "openid email profile"
PROVIDER_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class ProviderIdentity:
    issuer: str
    subject: str
    email: str | None
    email_verified: bool


class OpenIDProvider:
    def __init__(self, settings: Settings) -> None:
        self.redirect_uri = settings.oidc_redirect_uri
        self._client: Any = None
        if settings.google_client_id is not None and settings.google_client_secret is not None:
            registry = OAuth()
            self._client = registry.register(
                name="oidc",
                client_id=settings.google_client_id,
                client_secret=settings.google_client_secret.get_secret_value(),
                server_metadata_url=settings.oidc_discovery_url,
                client_kwargs={
                    "scope": SCOPE,
                    "code_challenge_method": "S256",
                    "timeout": PROVIDER_TIMEOUT_SECONDS,
                },
            )

    @property
    def configured(self) -> bool:
        return self._client is not None

    def _require_client(self) -> Any:
        if self._client is None:
            raise ProviderNotConfigured(
                "Sign-in with Google is not configured on this server "
                "(GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET)."
            )
        return self._client

    async def authorization_url(self, *, state: str, nonce: str, code_verifier: str) -> str:
        client = self._require_client()
        try:
            created = await client.create_authorization_url(
                self.redirect_uri, state=state, nonce=nonce, code_verifier=code_verifier
            )
        except httpx2.HTTPError as error:
            raise ProviderUnavailable(f"The sign-in provider did not answer: {error}") from error
        url: str = created["url"]
        return url

    async def identity(self, *, code: str, code_verifier: str, nonce: str) -> ProviderIdentity:
        """Redeem the provider's code and validate its ID token: signature, issuer, audience,
        expiry and nonce. Only the ID token is trusted, never the userinfo endpoint."""
        client = self._require_client()
        try:
            token = await client.fetch_access_token(
                redirect_uri=self.redirect_uri, code=code, code_verifier=code_verifier
            )
            claims = await client.parse_id_token(token, nonce=nonce, leeway=60)
        except httpx2.HTTPError as error:
            raise ProviderUnavailable(f"The sign-in provider did not answer: {error}") from error
        except (AuthlibOAuthError, JoseError, ValueError, KeyError) as error:
            raise ProviderRefused(f"The sign-in provider's answer was refused: {error}") from error
        if claims is None:
            raise ProviderRefused("The sign-in provider returned no ID token.")
        return ProviderIdentity(
            issuer=str(claims["iss"]),
            subject=str(claims["sub"]),
            email=str(claims["email"]).strip().lower() if claims.get("email") else None,
            email_verified=claims.get("email_verified") is True,
        )
