"""Request bodies over MAX_REQUEST_BODY_BYTES are refused before anything reads them.

Pure ASGI, outermost, so no parse (JSON, forms, the rate limiter's peek at a body) ever sees
more than the limit: a declared Content-Length over it is answered 413 at once, unread; a body
without one (chunked) is counted as it streams and cut off at the limit. File bytes never come
here (they go to storage), so the limit is about JSON and form posts.
"""

import asyncio
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dropp.core.errors import PayloadTooLarge, error_response


class RequestBodyTooLarge(PayloadTooLarge):
    code = "request_body_too_large"


class _Cut(Exception):
    """Raised into the app when a streamed body passes the limit."""


def _refusal(limit: int) -> RequestBodyTooLarge:
    return RequestBodyTooLarge(
        f"The request body is larger than this server takes ({limit} bytes).", max_bytes=limit
    )


# After refusing a streamed body, the rest of it is read and dropped for a while before the
# connection closes (what web servers call a lingering close). Closing on unread bytes makes
# the kernel send a reset, which can destroy the 413 in the client's buffers before it reads
# it. The bound is time, not bytes: on loopback a byte budget is spent in milliseconds, before
# a busy client has looked at its socket. The linger ends early once the client goes quiet.
_LINGER_SECONDS = 2.0
_LINGER_IDLE_SECONDS = 0.5


async def _answer_then_linger(refusal: RequestBodyTooLarge, receive: Receive, send: Send) -> None:
    response = error_response(refusal)
    response.headers["Connection"] = "close"
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": response.raw_headers,
        }
    )
    await send({"type": "http.response.body", "body": response.body, "more_body": True})
    deadline = time.monotonic() + _LINGER_SECONDS
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            message = await asyncio.wait_for(receive(), min(remaining, _LINGER_IDLE_SECONDS))
        except TimeoutError:
            break
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
    await send({"type": "http.response.body", "body": b""})


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            # Answered without reading: the connection closes after the answer, so the
            # client's unsent bytes cost nothing more.
            response = error_response(_refusal(self.max_bytes))
            response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return
        received = 0
        cut = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, cut
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    cut = True
                    raise _Cut
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if cut:
                # Whatever the app answers to a body it never got whole is replaced below.
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not cut:
                raise
        if cut and not started:
            await _answer_then_linger(_refusal(self.max_bytes), receive, send)
