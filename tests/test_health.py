from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx
from fastapi import FastAPI

from dropp.embedded.seaweedfs import free_port
from dropp.storage.s3 import Storage
from tests.conftest import api_client

AppWith = Callable[..., AbstractAsyncContextManager[FastAPI]]


async def test_healthz_answers_ok(client: httpx.AsyncClient) -> None:
    answer = await client.get("/healthz")

    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


async def test_readyz_answers_ok_when_both_answer(client: httpx.AsyncClient) -> None:
    answer = await client.get("/readyz")

    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"


async def test_readyz_names_storage_when_it_does_not_answer(app_with: AppWith) -> None:
    nothing_there = f"http://127.0.0.1:{free_port()}"
    async with app_with(s3_endpoint_url=nothing_there) as app, api_client(app) as api:
        answer = await api.get("/readyz")
        health = await api.get("/healthz")

    assert answer.status_code == 503
    assert answer.json()["code"] == "not_ready"
    assert answer.json()["failing"] == ["storage"]
    assert health.status_code == 200


async def test_readyz_names_postgresql_when_it_does_not_answer(app_with: AppWith) -> None:
    nowhere = "postgresql+asyncpg://postgres@/dropp?host=/nonexistent-socket-dir"
    async with app_with(database_url=nowhere) as app, api_client(app) as api:
        answer = await api.get("/readyz")

    assert answer.status_code == 503
    assert answer.json()["failing"] == ["postgresql"]


async def test_readyz_refuses_a_bucket_without_versioning(
    app_with: AppWith, storage: Storage
) -> None:
    await storage.client.create_bucket(Bucket="dropp-unversioned")
    async with app_with(aws_s3_bucket="dropp-unversioned") as app, api_client(app) as api:
        answer = await api.get("/readyz")

    assert answer.status_code == 503
    assert answer.json()["failing"] == ["storage"]
