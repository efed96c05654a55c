"""The OpenAPI document as the server really answers, and `Allow` on 405 answers.

FastAPI documents its own validation error (`application/json`, `detail` an array) on every
route with parameters; Dropp answers every error as one problem+json shape (core/errors.py).
This rewrites the generated document once, so clients and fuzzers see the real contract.
"""

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from dropp.core.errors import PROBLEM_MEDIA_TYPE, Problem, problem_response
from dropp.files.name_policy import name_policy

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
VALIDATION_REF = {"$ref": "#/components/schemas/ValidationProblem"}
_BODY_METHODS = {"post", "put", "patch"}


def _validation_problem_schema() -> dict[str, Any]:
    """The 422 body: a problem whose `errors` lists each refused field."""
    return {
        "title": "ValidationProblem",
        "type": "object",
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "code": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                        "msg": {"type": "string"},
                        "type": {"type": "string"},
                    },
                },
            },
        },
    }


def _problem(description: str, ref: dict[str, str]) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {"schema": ref}}}


# Every string the server accepts is free of NUL (core/strings.py refuses it at the edge).
# Lone surrogates are refused too, but a pattern cannot name them: JSON Schema strings are
# Unicode text, which has none, and validators with Unicode-scalar regex engines (Rust's)
# reject a pattern that mentions them, which drops the whole constraint.
STORABLE_TEXT = "^[^\\x00]*$"


STORABLE_JSON_REF = {"$ref": "#/components/schemas/StorableJson"}


def _storable_json_schema() -> dict[str, Any]:
    """Any JSON value whose strings and keys are free of NUL and lone surrogates."""
    return {
        "anyOf": [
            {"type": "string", "pattern": STORABLE_TEXT},
            {"type": ["number", "boolean", "null"]},
            {"type": "array", "items": STORABLE_JSON_REF},
            {
                "type": "object",
                "propertyNames": {"pattern": STORABLE_TEXT},
                "additionalProperties": STORABLE_JSON_REF,
            },
        ]
    }


def _declare_storable_text(node: Any) -> None:
    """Say in every string schema (and free-form object keys) that NUL is refused."""
    if isinstance(node, dict):
        if node.get("type") == "string" and "pattern" not in node and "enum" not in node:
            node["pattern"] = STORABLE_TEXT
        if node.get("type") == "object" and node.get("additionalProperties", True) is not False:
            node.setdefault("propertyNames", {"pattern": STORABLE_TEXT})
            if node.get("additionalProperties", True) is True:
                # Unknown fields are ignored, but their text is checked all the same.
                node["additionalProperties"] = STORABLE_JSON_REF
        for value in list(node.values()):
            _declare_storable_text(value)
    elif isinstance(node, list):
        for value in node:
            _declare_storable_text(value)


def _declare_errors(operation: dict[str, Any], method: str) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    ok = responses.get("200", {}).get("content", {})
    if "text/html" in ok:
        # A page answers a link it cannot use with a page of its own, not a problem.
        responses.setdefault(
            "400", {"description": "A page saying the link is not valid", "content": {}}
        )["content"].setdefault("text/html", {"schema": {"type": "string"}})
    has_input = bool(operation.get("parameters")) or "requestBody" in operation
    if has_input or "422" in responses:
        responses["422"] = _problem(
            "`validation_error`: a parameter or field breaks its constraint", VALIDATION_REF
        )
    if method in _BODY_METHODS and "requestBody" in operation:
        # Malformed JSON (or bytes that are not UTF-8) is refused before validation.
        entry = responses.setdefault("400", _problem("`malformed_json`", PROBLEM_REF))
        entry.setdefault("content", {}).setdefault(PROBLEM_MEDIA_TYPE, {"schema": PROBLEM_REF})
        # A body over the limit is refused before anything reads it (core/body_limit.py).
        responses.setdefault(
            "413", _problem("`request_body_too_large`: over MAX_REQUEST_BODY_BYTES", PROBLEM_REF)
        )
    for status, entry in responses.items():
        if status.startswith(("4", "5")) and "text/html" not in entry.get("content", {}):
            content = entry.setdefault("content", {})
            content.pop("application/json", None)
            content.setdefault(PROBLEM_MEDIA_TYPE, {"schema": PROBLEM_REF})
            if not content[PROBLEM_MEDIA_TYPE].get("schema"):
                content[PROBLEM_MEDIA_TYPE]["schema"] = PROBLEM_REF


# Mark a field whose maximum, or whose list of values, a setting chooses: routes and schemas
# are declared once for every app, and the document of each app states its own.
MAXIMUM_SETTING = "x-maximum-setting"
ENUM_SETTING = "x-enum-setting"
# Mark a schema that a function of the settings builds, registered under the marker's value
# by the module that knows the rule (the redirect URIs a server allows, say).
SCHEMA_SETTING = "x-schema-setting"
SETTING_SCHEMAS: dict[str, Callable[[Any], dict[str, Any]]] = {}


def _declare_settings(node: Any, settings: Any) -> None:
    if isinstance(node, dict):
        maximum = node.pop(MAXIMUM_SETTING, None)
        if maximum is not None:
            node["maximum"] = getattr(settings, maximum)
        values = node.pop(ENUM_SETTING, None)
        if values is not None:
            nullable = {"type": "null"} in node.get("anyOf", ())
            node["enum"] = [*getattr(settings, values), *([None] if nullable else [])]
        built = node.pop(SCHEMA_SETTING, None)
        if built is not None:
            node.update(SETTING_SCHEMAS[built](settings))
        for value in node.values():
            _declare_settings(value, settings)
    elif isinstance(node, list):
        for value in node:
            _declare_settings(value, settings)


def contract_openapi(app: FastAPI) -> dict[str, Any]:
    """The generated document with Dropp's error shape on every operation."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    # Name fields state the rules this app judges names by, whatever request (or none)
    # asks for the document first.
    allow = app.state.settings.allow_windows_incompatible_names
    with name_policy(allow_windows_incompatible_names=allow):
        document = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
        )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Problem"] = Problem.model_json_schema()
    schemas["ValidationProblem"] = _validation_problem_schema()
    for path_item in document.get("paths", {}).values():
        for method, operation in path_item.items():
            _declare_errors(operation, method)
    _declare_storable_text(document)
    _declare_settings(document, app.state.settings)
    schemas["StorableJson"] = _storable_json_schema()
    app.openapi_schema = document
    return document


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        route_methods = getattr(route, "methods", None)
        if match is not Match.NONE and route_methods:
            methods.update(route_methods)
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


async def _method_not_allowed(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    methods = allowed_methods(request)
    return problem_response(
        405,
        "method_not_allowed",
        f"{request.method} is not allowed here; use {', '.join(methods)}.",
        headers={"Allow": ", ".join(methods)},
    )


def install_contract(app: FastAPI) -> None:
    """Publish the real error shape and answer 405 with a complete `Allow`."""
    app.openapi = lambda: contract_openapi(app)  # type: ignore[method-assign]
    app.add_exception_handler(405, _method_not_allowed)
