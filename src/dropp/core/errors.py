"""Domain errors and the single problem+json renderer for every error the API returns."""

import logging
import traceback
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, ClassVar

import asyncpg  # type: ignore[import-untyped]
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as StorageConnectionError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


class OutcomeUnknown(ServiceUnavailable):
    """The database stopped answering after the commit was sent."""

    code = "outcome_unknown"


# What a stopped, frozen, restarting or overloaded dependency raises, as opposed to a query
# or request that is wrong: connection refused or lost, a timeout of ours (asyncpg's
# command_timeout and botocore's are TimeoutError / its own), the pool's wait, PostgreSQL's
# class 57 (statement_timeout, shutdown, "starting up") and class 53 (too many connections).
_DATABASE_OUTAGES: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    PoolTimeout,
)
_STORAGE_OUTAGES: tuple[type[BaseException], ...] = (HTTPClientError, StorageConnectionError)


def outage_of(error: BaseException) -> str | None:
    """ "database" or "storage" if `error` (or what caused it) says that dependency is down or
    not answering in time, else None."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _STORAGE_OUTAGES):
            return "storage"
        if isinstance(current, ClientError):
            status = current.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if status >= 500:
                return "storage"
        if isinstance(current, _DATABASE_OUTAGES):
            return "database"
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return "database"
        if isinstance(current, OSError):
            # Refused, reset, unreachable, a socket file gone, or a timeout of ours: raised
            # as it is by the drivers, so where it came from names the dependency.
            return _raised_by(current)
        current = current.__cause__ or current.__context__
    return None


def _raised_by(error: BaseException) -> str:
    files = [frame.f_code.co_filename for frame, _ in traceback.walk_tb(error.__traceback__)]
    if any("asyncpg" in name or "sqlalchemy" in name for name in files):
        return "database"
    if any("botocore" in name or "aiohttp" in name for name in files):
        return "storage"
    return "dependency"


def outage_response(request: Request, dependency: str) -> JSONResponse:
    retry_after = getattr(request.app.state.settings, "outage_retry_after_seconds", 5)
    logger.warning(
        "%s %s: 503, the %s is unavailable", request.method, request.url.path, dependency
    )
    error = ServiceUnavailable(
        f"The {dependency} is unavailable right now; retry after {retry_after} s.",
        headers={"Retry-After": str(retry_after)},
    )
    return error_response(error)


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
    # A rule with a code of its own (a name Windows cannot hold) answers with that code, so
    # clients can tell the rule without parsing `detail`.
    codes = {(e.get("ctx") or {}).get("problem_code") for e in exc.errors()}
    code = codes.pop() if len(codes) == 1 and None not in codes else "validation_error"
    return problem_response(422, str(code), detail, errors=errors)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_")
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).description
    headers = dict(exc.headers) if exc.headers else None
    return problem_response(exc.status_code, code, detail, headers=headers)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    dependency = outage_of(exc)
    if dependency is not None:
        return outage_response(request, dependency)
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(500, "internal_error", "The server failed to handle the request.")


class AnswerEveryError:
    """Answers any error the app raises before its response started, and swallows it.

    Starlette's outermost handler of `Exception` sends its answer and then raises again, and
    the server then closes the connection: under an outage every failing request cost a
    client its keep-alive connection, and answers in flight were lost. Here the error becomes
    its answer (a 503 for an outage) and the connection stays usable.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as error:
            if started:
                raise
            response = await _unexpected_error(Request(scope, receive), error)
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DroppError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    app.add_middleware(AnswerEveryError)
