"""Which name rules a request is judged by: the Windows-only ones unless the server allows
names Windows cannot hold (ALLOW_WINDOWS_INCOMPATIBLE_NAMES)."""

from starlette.types import ASGIApp, Receive, Scope, Send

from dropp.files.names import allow_windows_incompatible


class NamePolicyMiddleware:
    """Sets the request's name policy where the schemas that judge names can read it."""

    def __init__(self, app: ASGIApp, *, allow_windows_incompatible_names: bool) -> None:
        self.app = app
        self.allow = allow_windows_incompatible_names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = allow_windows_incompatible.set(self.allow)
        try:
            await self.app(scope, receive, send)
        finally:
            allow_windows_incompatible.reset(token)
