"""A real OpenID provider on loopback (oidc-provider-mock) and Dropp configured to use it."""

import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from dropp.embedded.seaweedfs import free_port
from tests.conftest import api_client

PUBLIC_URL = "http://dropp.test"
DEEP_LINK = "dropp://auth/callback"
LOOPBACK = "http://127.0.0.1/callback"


@pytest.fixture(scope="session")
def provider_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """oidc-provider-mock in its own process, as a real provider would be."""
    port = free_port()
    log = tmp_path_factory.mktemp("oidc") / "provider.log"
    command = [sys.executable, "-m", "oidc_provider_mock", "--port", str(port), "--require-nonce"]
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/.well-known/openid-configuration").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the OpenID provider did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def sign_in_settings(provider_url: str, **changes: Any) -> dict[str, Any]:
    return {
        "google_client_id": "dropp-desktop-test",
        "google_client_secret": SecretStr("not-a-real-secret"),
        "oidc_discovery_url": f"{provider_url}/.well-known/openid-configuration",
        "public_url": PUBLIC_URL,
        "app_redirect_uri": (DEEP_LINK, LOOPBACK),
        **changes,
    }


@pytest.fixture
async def sign_in_app(
    app_with: Callable[..., AbstractAsyncContextManager[FastAPI]],
    provider_url: str,
    client: httpx.AsyncClient,  # its teardown removes every row the test made
) -> AsyncIterator[FastAPI]:
    async with app_with(**sign_in_settings(provider_url)) as app:
        yield app


def browser_for(app: FastAPI) -> httpx.AsyncClient:
    """A browser: cookies, redirects followed, Dropp in process and the provider over HTTP."""
    return httpx.AsyncClient(
        mounts={"all://dropp.test": httpx.ASGITransport(app=app)},
        base_url=PUBLIC_URL,
        timeout=10,
    )


@pytest.fixture
async def browser(sign_in_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with browser_for(sign_in_app) as opened:
        yield opened


@pytest.fixture
async def api(sign_in_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(sign_in_app) as opened:
        yield opened


def form_value(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no {name} field in:\n{html}"
    return match.group(1)
