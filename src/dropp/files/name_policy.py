"""Which name rules a request is judged by: the Windows-only ones unless the server allows
names Windows cannot hold (ALLOW_WINDOWS_INCOMPATIBLE_NAMES)."""

from collections.abc import Iterator
from contextlib import contextmanager

from starlette.types import ASGIApp, Receive, Scope, Send

from dropp.files.names import allow_windows_incompatible


@contextmanager
def name_policy(*, allow_windows_incompatible_names: bool) -> Iterator[None]:
    """Names are judged by this policy inside the block, and documented by it: the name
    schemas of the OpenAPI document read it as their validators do."""
    token = allow_windows_incompatible.set(allow_windows_incompatible_names)
    try:
        yield
    finally:
        allow_windows_incompatible.reset(token)


class NamePolicyMiddleware:
    """Sets the request's name policy where the schemas that judge names can read it."""

    def __init__(self, app: ASGIApp, *, allow_windows_incompatible_names: bool) -> None:
        self.app = app
        self.allow = allow_windows_incompatible_names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with name_policy(allow_windows_incompatible_names=self.allow):
            await self.app(scope, receive, send)
