"""The OpenAPI document is the contract: a fuzzer checks every operation against it.

Every operation runs its examples, coverage and fuzzing phases as a member (admin routes as an
admin), and every answer must be no server error, a documented status and content type, a body
matching its schema, valid data accepted and invalid data refused.
"""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode, checks
from schemathesis.schemas import APIOperation

from tests.contract.conftest import Contract

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.positive_data_acceptance,
    checks.negative_data_rejection,
    checks.allow_header_conformance,
]


MAX_EXAMPLES = 10


def check_operation(operation: APIOperation, mode: GenerationMode, contract: Contract) -> None:
    """Generated cases of one operation in one mode, derandomized so a failure reproduces."""
    account = contract.admin if operation.path.startswith("/admin") else contract.member

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the first failure is reported
    )
    def run(case: schemathesis.Case) -> None:
        if mode is GenerationMode.POSITIVE and case.query and "cursor" in case.query:
            # A cursor is valid only as this server issued it (signed, for this account and
            # listing): no generator can make one, and a made-up one is rightly a 400
            # `invalid_cursor` (tests of each listing cover that). Positive cases use one
            # the server issued, or ask for the first page.
            if operation.path.startswith("/sync/"):
                case.query["cursor"] = contract.sync_cursor
            else:
                del case.query["cursor"]
        # An Idempotency-Key names one request: the generator reuses its values across
        # different requests, which the server rightly refuses with 422
        # `idempotency_key_reused` (tests/idempotency covers it). Positive cases each get
        # a key of their own.
        if (
            mode is GenerationMode.POSITIVE
            and case.headers
            and "idempotency-key" in {name.lower() for name in case.headers}
        ):
            for name in [name for name in case.headers if name.lower() == "idempotency-key"]:
                del case.headers[name]
            case.headers["Idempotency-Key"] = uuid4().hex
        # A file request's deadline must be in the future when the request arrives: a rule
        # of time, which no schema states (the field's description does). Positive cases get
        # one a day ahead; the 422 of a past one has its own test.
        if (
            mode is GenerationMode.POSITIVE
            and operation.path == "/file-requests"
            and isinstance(case.body, dict)
            and case.body.get("deadline") is not None
        ):
            case.body["deadline"] = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        case.call_and_validate(headers=account.headers, checks=CHECKS, timeout=15)

    run()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_honours_its_contract(contract: Contract, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(f"{contract.url}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        takes_input = bool(operation.definition.raw.get("parameters")) or operation.body
        if mode is GenerationMode.NEGATIVE and not takes_input:
            continue  # nothing to make invalid: no parameter, no body
        try:
            check_operation(operation, mode, contract)
        except (
            Exception,
            BaseExceptionGroup,
        ) as error:  # collected, so one run reports every operation
            failures.append(f"{operation.method.upper()} {operation.path}: {error}")
    assert operations >= 60
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("POST", "/auth/login", {"json": {"email": "a\u0000@example.com", "password": "x"}}),
        ("POST", "/auth/password-reset", {"json": {"email": "a@example.com\u0000"}}),
        ("GET", "/admin/users?email=%00", {}),
        ("POST", "/login/", {"data": {"email": "a\u0000@example.com", "password": "x"}}),
        ("POST", "/shares/people", {"json": {"file_id": "x", "note": "\ud800"}}),
    ],
)
async def test_nul_and_lone_surrogates_are_refused_at_the_edge(
    contract: Contract, method: str, path: str, kwargs: dict[str, object]
) -> None:
    headers = contract.admin.headers
    if "json" in kwargs:
        # httpx cannot encode a lone surrogate; send the JSON escape as a client would.
        import json

        body = json.dumps(kwargs.pop("json"))
        kwargs = {"content": body, "headers": {**headers, "content-type": "application/json"}}
    else:
        kwargs = {**kwargs, "headers": headers}
    async with httpx.AsyncClient(base_url=contract.url) as client:
        response = await client.request(method, path, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "unstorable_text"
