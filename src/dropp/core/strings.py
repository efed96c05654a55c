"""Refuse text PostgreSQL cannot store, at the edge, before any route or parser sees it.

PostgreSQL's text types cannot hold U+0000, and a lone UTF-16 surrogate (U+D800..U+DFFF) is
not a character at all: either one reaching a query raised deep in asyncpg and answered 500.
One check here covers every string a client sends (path, query, headers, JSON and form
bodies), so no route can forget it; the answer is the usual 422 problem.
"""

import json
import re
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dropp.core.errors import problem_response

# Text that would fail in PostgreSQL: NUL, or a surrogate code point on its own.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Only a body containing one of these can decode to NUL or a lone surrogate: a raw NUL byte,
# or a JSON `\u` escape (raw surrogates are not valid UTF-8 and fail JSON decoding already).
_SUSPECT_BYTES = (b"\x00", b"\\u")
_JSON_TYPES = ("application/json", "application/problem+json")
_FORM_TYPE = "application/x-www-form-urlencoded"


def unstorable(text: str) -> bool:
    """Whether `text` holds a character PostgreSQL text cannot store."""
    return UNSTORABLE.search(text) is not None


def _json_strings(value: Any) -> bool:
    if isinstance(value, str):
        return unstorable(value)
    if isinstance(value, dict):
        return any(unstorable(k) or _json_strings(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_json_strings(v) for v in value)
    return False


def _query_unstorable(raw: str) -> bool:
    # surrogateescape keeps invalid percent-encoded UTF-8 visible as lone surrogates.
    pairs = parse_qsl(raw, keep_blank_values=True, errors="surrogateescape")
    return any(unstorable(k) or unstorable(v) for k, v in pairs)


def _head_problem(scope: Scope) -> str | None:
    """Where the request line or headers carry unstorable text, if they do."""
    path = unquote(scope.get("raw_path", b"").decode("latin-1"), errors="surrogateescape")
    if unstorable(path) or unstorable(scope.get("path", "")):
        return "The path contains a NUL character or an invalid code point."
    if _query_unstorable(scope.get("query_string", b"").decode("latin-1")):
        return "A query parameter contains a NUL character or an invalid code point."
    for _, value in scope.get("headers", ()):
        if b"\x00" in value:
            return "A header contains a NUL character."
    return None


def _body_problem(content_type: str, body: bytes) -> str | None:
    if content_type.startswith(_JSON_TYPES):
        if not any(marker in body for marker in _SUSPECT_BYTES):
            return None
        try:
            parsed = json.loads(body)
        except ValueError:
            # Malformed JSON is the route's 400 to give; a raw NUL is refused either way.
            return "The body contains a NUL character." if b"\x00" in body else None
        if _json_strings(parsed):
            return "A field contains a NUL character or an invalid code point."
    elif content_type.startswith(_FORM_TYPE) and _query_unstorable(body.decode("latin-1")):
        return "A form field contains a NUL character or an invalid code point."
    return None


class RefuseUnstorableText:
    """ASGI middleware: 422 for NUL or lone surrogates anywhere a client sends text."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = _head_problem(scope)
        if problem is not None:
            await _refuse(problem, scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        if not content_type.startswith((*_JSON_TYPES, _FORM_TYPE)):
            # Multipart and binary bodies are bytes, not text for the database.
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        body = bytearray()
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body.extend(message.get("body", b""))
            if not message.get("more_body", False):
                break
        problem = _body_problem(content_type, bytes(body))
        if problem is not None:
            await _refuse(problem, scope, receive, send)
            return

        async def replay() -> Message:
            if messages:
                return messages.pop(0)
            return await receive()

        await self.app(scope, replay, send)


async def _refuse(detail: str, scope: Scope, receive: Receive, send: Send) -> None:
    response = problem_response(422, "unstorable_text", detail)
    await response(scope, receive, send)
