"""Every request's id: on every log line the request writes, and on its response.

`X-Request-ID` is taken from a proxy FORWARDED_ALLOW_IPS trusts (so one id follows a request
from the edge to the logs), when it looks like an id; anyone else's is replaced, so a client
cannot forge the id of another's log lines.
"""

import ipaddress
import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-request-id"
# What proxies send (UUIDs, hex, base64url, nginx's $request_id) and nothing a log reader
# could take for structure.
ACCEPTED = re.compile(r"[A-Za-z0-9._:-]{1,128}")

current: ContextVar[str | None] = ContextVar("dropp_request_id", default=None)


class RequestIdMiddleware:
    """Outside the proxy-headers middleware, so the peer it judges is the real one."""

    def __init__(self, app: ASGIApp, *, trusted_proxies: tuple[str, ...]) -> None:
        self.app = app
        self.trusted = _trusting(trusted_proxies)

    def _given(self, scope: Scope) -> str | None:
        client = scope.get("client")
        if not client or not self.trusted(client[0]):
            return None
        for name, value in scope["headers"]:
            if name == HEADER.encode():
                given = value.decode("latin-1")
                return given if ACCEPTED.fullmatch(given) else None
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = self._given(scope) or uuid.uuid4().hex
        token = current.set(request_id)

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            current.reset(token)


def _trusting(entries: tuple[str, ...]) -> Callable[[str], bool]:
    """Whether a peer is one of FORWARDED_ALLOW_IPS (addresses, networks, or "*")."""
    if "*" in entries:
        return lambda _host: True
    networks = [ipaddress.ip_network(entry, strict=False) for entry in entries]

    def trusted(host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in networks)

    return trusted
