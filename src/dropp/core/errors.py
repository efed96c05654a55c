"""Domain errors and the single problem+json renderer for every error the API returns."""

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"


class DroppError(Exception):
    """An error a client can act on; `code` is stable, `detail` is for people."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    # Headers every response of this error class carries; an instance adds its own through
    # `headers=` (a Retry-After computed for this request).
    headers: ClassVar[dict[str, str]] = {}
    # An error that records an outcome (a token family revoked, an upload failed) keeps the
    # request's changes: the session commits instead of rolling back.
    persists_changes: ClassVar[bool] = False

    def __init__(
        self, detail: str, *, headers: Mapping[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra
        self.response_headers = {**self.headers, **(headers or {})}


class BadRequest(DroppError):
    status, code = 400, "bad_request"


class NotAuthenticated(DroppError):
    status, code = 401, "not_authenticated"
    headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": "Bearer"}


class NotFound(DroppError):
    status, code = 404, "not_found"


class Conflict(DroppError):
    status, code = 409, "conflict"


class PayloadTooLarge(DroppError):
    status, code = 413, "payload_too_large"


class ServiceUnavailable(DroppError):
    status, code = 503, "service_unavailable"


class Problem(BaseModel):
    """RFC 9457 problem details, the body of every error response."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str


def problem_response(
    status: int,
    code: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def error_response(error: DroppError) -> JSONResponse:
    return problem_response(
        error.status,
        error.code,
        error.detail,
        headers=error.response_headers or None,
        **error.extra,
    )


def responses(*errors: type[DroppError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for a route, so the docs list the errors it can answer."""
    documented: dict[int | str, dict[str, Any]] = {}
    for error in errors:
        entry = documented.setdefault(
            error.status,
            {"model": Problem, "content": {PROBLEM_MEDIA_TYPE: {}}, "description": ""},
        )
        codes = [c for c in entry["description"].split(", ") if c]
        entry["description"] = ", ".join([*codes, f"`{error.code}`"])
    return documented


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DroppError)
    return error_response(exc)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    if any(e["type"] == "json_invalid" for e in errors):
        return problem_response(400, "malformed_json", "The request body is not valid JSON.")
    detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
    return problem_response(422, "validation_error", detail, errors=errors)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_")
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).description
    headers = dict(exc.headers) if exc.headers else None
    return problem_response(exc.status_code, code, detail, headers=headers)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(500, "internal_error", "The server failed to handle the request.")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DroppError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
