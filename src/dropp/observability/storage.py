"""Storage calls timed and failures counted by S3 operation, from the client's own events
(botocore emits them around every call), so the adapter itself knows nothing of metrics."""

import time
from typing import Any

from prometheus_client import Counter, Histogram

STORAGE_CALLS = Histogram(
    "dropp_storage_call_duration_seconds",
    "Time of each call to storage, by S3 operation.",
    ["operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
STORAGE_FAILURES = Counter(
    "dropp_storage_failures_total",
    "Calls storage failed: answered 5xx, or not answered (refused, reset, timed out).",
    ["operation", "kind"],
)
STARTED = "dropp_started"


def instrument(client: Any) -> None:
    """Time every call `client` (an aiobotocore S3 client) makes from now on."""
    events = client.meta.events
    events.register("before-call.s3", _started)
    events.register("after-call.s3", _answered)
    events.register("after-call-error.s3", _unanswered)


def _started(context: dict[str, Any], **_: Any) -> None:
    # Returns None: a value here would stand in for storage's answer.
    context[STARTED] = time.perf_counter()


def _answered(http_response: Any, model: Any, context: dict[str, Any], **_: Any) -> None:
    started = context.get(STARTED)
    if started is not None:
        STORAGE_CALLS.labels(model.name).observe(time.perf_counter() - started)
    if http_response.status_code >= 500:
        STORAGE_FAILURES.labels(model.name, "5xx").inc()


def _unanswered(event_name: str, **_: Any) -> None:
    STORAGE_FAILURES.labels(event_name.rpartition(".")[2], "unanswered").inc()
