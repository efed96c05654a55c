"""Request ids and the JSON log, as a deployed `dropp serve` writes them."""

import json
import re
import secrets
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx
from fastapi import FastAPI

from dropp.core.config import Settings
from tests.helpers import api_process

AppWith = Callable[..., AbstractAsyncContextManager[FastAPI]]
GENERATED = re.compile(r"[0-9a-f]{32}")


async def test_every_answer_names_its_request_and_only_a_trusted_proxy_chooses_it(
    app_with: AppWith,
) -> None:
    async with app_with(forwarded_allow_ips=("10.0.0.0/8",)) as app:
        proxy = httpx.ASGITransport(app=app, client=("10.1.2.3", 5000))
        stranger = httpx.ASGITransport(app=app, client=("203.0.113.9", 5000))
        async with (
            httpx.AsyncClient(transport=proxy, base_url="http://t") as through_proxy,
            httpx.AsyncClient(transport=stranger, base_url="http://t") as direct,
        ):
            plain = await direct.get("/healthz")
            assert GENERATED.fullmatch(plain.headers["x-request-id"])
            forged = await direct.get("/healthz", headers={"X-Request-ID": "chosen-by-me"})
            assert GENERATED.fullmatch(forged.headers["x-request-id"])
            kept = await through_proxy.get("/healthz", headers={"X-Request-ID": "edge-4711"})
            assert kept.headers["x-request-id"] == "edge-4711"
            # Not an id: replaced, even from the proxy.
            odd = await through_proxy.get("/healthz", headers={"X-Request-ID": 'a b"c'})
            assert GENERATED.fullmatch(odd.headers["x-request-id"])
            # Errors carry it too.
            missing = await direct.get("/files/not-an-id")
            assert GENERATED.fullmatch(missing.headers["x-request-id"])


def test_a_json_log_line_for_every_request_with_its_id_and_no_secret(settings: Settings) -> None:
    secret = secrets.token_urlsafe(16)
    with api_process(settings, LOG_FORMAT="json", LOG_LEVEL="info") as (url, server):
        with httpx.Client(base_url=url, timeout=30) as client:
            link = client.get(f"/s/{secret}")
            verify = client.get("/auth/verify-email", params={"token": secret})
        server.terminate()
        _, log = server.communicate(timeout=60)
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    # Every line is JSON, but for the ready line written for whoever waits on it.
    assert all(
        line.startswith("{") or line.startswith("Dropp ready at") for line in log.splitlines()
    ), log
    access = {line["request_id"]: line for line in lines if line["logger"] == "uvicorn.access"}
    for answer in (link, verify):
        line = access[answer.headers["x-request-id"]]
        assert line["status"] == answer.status_code
        assert line["method"] == "GET"
    assert access[link.headers["x-request-id"]]["target"] == "/s/…"
    assert access[verify.headers["x-request-id"]]["target"] == "/auth/verify-email?token=…"
    assert secret not in log
    assert {line["level"] for line in lines} <= {"debug", "info", "warning", "error", "critical"}
