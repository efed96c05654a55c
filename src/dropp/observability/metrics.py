"""Dropp's Prometheus metrics.

Module-level, unlike Dropp's other state, because a metric is the process's by nature: every
app of a process counts into one registry, which is what Prometheus scrapes. Labels take only
bounded values (route templates, never raw paths; method and status classes), so no client
can grow the series.
"""

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "dropp_http_requests_total",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "dropp_http_request_duration_seconds",
    "Time to answer a request, by method and route template (streams and long-polls apart).",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
IN_FLIGHT = Gauge("dropp_http_requests_in_flight", "Requests being answered now.")
OPEN_WAITS = Gauge(
    "dropp_open_connections",
    "Connections held open: long-polls, event streams and signaling sockets.",
    ["kind"],
)
UPLOADS_STARTED = Counter("dropp_uploads_started_total", "Uploads started (pending revisions).")
UPLOAD_BYTES_DECLARED = Counter(
    "dropp_upload_bytes_declared_total", "Bytes that started uploads declared they would send."
)
UPLOADS_ENDED = Counter("dropp_uploads_ended_total", "Uploads ended, by outcome.", ["state"])
RATE_LIMITED = Counter(
    "dropp_rate_limit_refusals_total", "Requests refused by a rate limit, by group.", ["group"]
)
SWEEPS = Counter("dropp_sweeps_total", "Sweeps run by this process.")
SWEPT = Counter("dropp_swept_total", "What sweeps cleaned, by case.", ["case"])
SWEEP_ERRORS = Counter("dropp_sweep_errors_total", "Sweep cases that failed.")
