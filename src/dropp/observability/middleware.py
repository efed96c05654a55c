"""Counting and timing every HTTP request by the route it matched."""

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dropp.observability.metrics import IN_FLIGHT, LATENCY, OPEN_WAITS, REQUESTS

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Held open by design: counted as open connections, not timed as requests.
HELD_OPEN = {"/events": "event_stream", "/sync/longpoll": "longpoll"}
UNMATCHED = "unmatched"


def route_of(scope: Scope) -> str:
    """The matched route's template (`/files/{file_id}`); one label for every path no route
    matched, so scanners cannot add series."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            with OPEN_WAITS.labels("p2p_socket").track_inprogress():
                await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"] if scope["method"] in METHODS else "OTHER"
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        held = HELD_OPEN.get(scope["path"])
        started = time.perf_counter()
        IN_FLIGHT.inc()
        if held is not None:
            OPEN_WAITS.labels(held).inc()
        try:
            await self.app(scope, receive, sending)
        finally:
            IN_FLIGHT.dec()
            route = route_of(scope)
            REQUESTS.labels(method, route, str(status)).inc()
            if held is not None:
                OPEN_WAITS.labels(held).dec()
            else:
                LATENCY.labels(method, route).observe(time.perf_counter() - started)
