from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI

from tests.conftest import api_client
from tests.helpers import Account, start_upload, upload_file

PUBLIC = "https://files.example.test:9443"


async def test_presigned_urls_are_signed_for_the_public_endpoint(
    app_with: Callable[..., AbstractAsyncContextManager[FastAPI]],
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    alice: Account,
) -> None:
    done = await upload_file(client, web, alice, "public.txt", b"reachable")
    async with app_with(s3_public_endpoint_url=PUBLIC) as app, api_client(app) as api:
        started = await start_upload(api, alice, "later.txt", size=1)
        download = await api.get(f"/download/{done['file_id']}", headers=alice.headers)
        # The API itself still talks to storage on its internal endpoint.
        ready = await api.get("/readyz")

    assert started["upload"]["url"].startswith(f"{PUBLIC}/")
    assert urlsplit(download.json()["url"]).netloc == urlsplit(PUBLIC).netloc
    assert ready.status_code == 200
