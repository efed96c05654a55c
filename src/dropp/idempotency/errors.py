from typing import ClassVar

from dropp.core.errors import BadRequest, Conflict, DroppError


class InvalidIdempotencyKey(BadRequest):
    code = "invalid_idempotency_key"


class IdempotencyKeyReused(DroppError):
    """The key already stands for another request (another body, path or method)."""

    status, code = 422, "idempotency_key_reused"


class IdempotencyKeyInFlight(Conflict):
    """The first request with this key has not finished: retry shortly for its answer."""

    code = "idempotency_key_in_flight"
    headers: ClassVar[dict[str, str]] = {"Retry-After": "1"}
