from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import (
    HTTPAuthorizationCredentials,
    HTTPBearer,
    OAuth2AuthorizationCodeBearer,
)

from dropp.auth.service import TokenIssuer
from dropp.auth.tokens import AccessClaims, AccessTokenSigner
from dropp.core.errors import NotAuthenticated

# auto_error=False: a missing header is answered by our own 401 problem, not FastAPI's 403.
bearer_scheme = HTTPBearer(auto_error=False, description="An access token from /auth/login.")
# The same header, described as the sign-in the docs UI's "Authorize" button runs.
sign_in_scheme = OAuth2AuthorizationCodeBearer(
    authorizationUrl="/auth/google",
    tokenUrl="/auth/token",
    refreshUrl="/auth/token",
    auto_error=False,
    description="Sign in with Google (authorization code with PKCE).",
)


# Who the request acts for, as proven by its access token (no database read).
Principal = AccessClaims


async def get_token_issuer(request: Request) -> TokenIssuer:
    issuer: TokenIssuer = request.state.token_issuer
    return issuer


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    _documented: Annotated[str | None, Depends(sign_in_scheme)],
) -> Principal:
    # Only the bearer token identifies the caller: headers such as X-User-Id are never read.
    if credentials is None:
        raise NotAuthenticated("This route needs an `Authorization: Bearer <token>` header.")
    signer: AccessTokenSigner = request.state.token_issuer.signer
    return signer.verify(credentials.credentials)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
TokenIssuerDep = Annotated[TokenIssuer, Depends(get_token_issuer)]
