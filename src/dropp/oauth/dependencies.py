from typing import Annotated

from fastapi import Cookie, Depends, Request

from dropp.auth.models import User
from dropp.core.db import SessionDep
from dropp.oauth.provider import OpenIDProvider
from dropp.oauth.web_sessions import SESSION_COOKIE, web_session_user


async def get_provider(request: Request) -> OpenIDProvider:
    provider: OpenIDProvider = request.state.oidc_provider
    return provider


async def get_web_user(
    session: SessionDep,
    token: Annotated[str | None, Cookie(alias=SESSION_COOKIE, include_in_schema=False)] = None,
) -> User | None:
    return await web_session_user(session, token)


ProviderDep = Annotated[OpenIDProvider, Depends(get_provider)]
WebUserDep = Annotated[User | None, Depends(get_web_user)]
