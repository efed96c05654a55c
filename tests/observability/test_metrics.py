"""GET /metrics: what it counts, by route template, and who may read it."""

import json
import re
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import httpx
from fastapi import FastAPI
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from dropp.core.config import Settings
from dropp.core.db import create_engine, create_sessionmaker
from dropp.storage.s3 import Storage
from dropp.sweeper.service import sweep
from tests.helpers import Account, assert_problem, upload_file

AppWith = Callable[..., AbstractAsyncContextManager[FastAPI]]
DOCS = Path(__file__).parents[2] / "docs"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = await client.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return samples(answer.text)


def requests_of(
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float], route: str, status: str
) -> float:
    key = ("dropp_http_requests_total", (("method", "GET"), ("route", route), ("status", status)))
    return found.get(key, 0.0)


async def test_requests_are_counted_by_route_template_never_by_path(
    client: httpx.AsyncClient, alice: Account
) -> None:
    before = await scrape(client)
    missing = f"/files/{uuid.uuid4()}"
    assert (await client.get(missing, headers=alice.headers)).status_code == 404
    assert (await client.get("/no/such/page/" + uuid.uuid4().hex)).status_code == 404
    after = await scrape(client)
    assert requests_of(after, "/files/{file_id}", "404") == (
        requests_of(before, "/files/{file_id}", "404") + 1
    )
    assert requests_of(after, "unmatched", "404") == requests_of(before, "unmatched", "404") + 1
    text = (await client.get("/metrics")).text
    assert missing not in text
    assert "/no/such/page" not in text
    assert ("dropp_db_pool_connections", (("state", "in_use"),)) in after


async def test_uploads_and_sweeps_are_counted(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    alice: Account,
    settings: Settings,
    storage: Storage,
) -> None:
    before = await scrape(client)
    await upload_file(client, web, alice, "counted.txt", b"12345")
    engine = create_engine(settings)
    try:
        await sweep(create_sessionmaker(engine), storage, settings)
    finally:
        await engine.dispose()
    after = await scrape(client)
    for name, labels, grew in [
        ("dropp_uploads_started_total", (), 1),
        ("dropp_upload_bytes_declared_total", (), 5),
        ("dropp_uploads_ended_total", (("state", "complete"),), 1),
        ("dropp_sweeps_total", (), 1),
    ]:
        assert after[(name, labels)] == before.get((name, labels), 0) + grew, name
    # Complete asked storage what it holds.
    heads = ("dropp_storage_call_duration_seconds_count", (("operation", "HeadObject"),))
    assert after[heads] > before.get(heads, 0)


async def test_rate_limit_refusals_are_counted(app_with: AppWith) -> None:
    async with (
        app_with(rate_limit_per_ip="2/minute") as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api,
    ):
        before = await scrape(api)
        body = {"email": "nobody@example.com", "password": "wrong password"}
        statuses = [(await api.post("/auth/login", json=body)).status_code for _ in range(3)]
        assert statuses[-1] == 429
        after = await scrape(api)
    key = ("dropp_rate_limit_refusals_total", (("group", "login"),))
    assert after[key] == before.get(key, 0) + 1


async def test_metrics_are_for_this_machine_or_the_token(app_with: AppWith) -> None:
    async with app_with(metrics_token=SecretStr("s3cret-metrics-token")) as app:
        here = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
        away = httpx.ASGITransport(app=app, client=("203.0.113.9", 5000))
        async with (
            httpx.AsyncClient(transport=here, base_url="http://t") as local,
            httpx.AsyncClient(transport=away, base_url="http://t") as remote,
        ):
            assert (await local.get("/metrics")).status_code == 200
            # Through a reverse proxy on this machine: the request is not this machine's.
            proxied = await local.get("/metrics", headers={"X-Forwarded-For": "198.51.100.4"})
            assert_problem(proxied, 403, "metrics_forbidden")
            assert_problem(await remote.get("/metrics"), 403, "metrics_forbidden")
            wrong = {"Authorization": "Bearer not-the-token"}
            assert_problem(await remote.get("/metrics", headers=wrong), 403, "metrics_forbidden")
            right = {"Authorization": "Bearer s3cret-metrics-token"}
            assert (await remote.get("/metrics", headers=right)).status_code == 200


def test_the_starter_dashboard_queries_only_metrics_dropp_exports() -> None:
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    queried = {
        name.removesuffix("_bucket")
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bdropp_[a-z_]+", target["expr"])
    }
    exported = {family.name for family in REGISTRY.collect()}
    exported |= {f"{name}_total" for name in exported}
    assert queried
    assert queried <= exported, queried - exported


async def test_storage_that_does_not_answer_is_counted(
    app_with: AppWith, settings: Settings
) -> None:
    # A port nothing listens on: every call is refused.
    async with (
        app_with(s3_endpoint_url="http://127.0.0.1:9", storage_max_attempts=1) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api,
    ):
        before = await scrape(api)
        assert (await api.get("/readyz")).status_code == 503
        after = await scrape(api)
    key = ("dropp_storage_failures_total", (("kind", "unanswered"), ("operation", "HeadBucket")))
    assert after[key] == before.get(key, 0) + 1
