"""A terminal shows a code; a person opens the link, signs in, and approves or denies it."""

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.browser.conftest import Browsing, assert_accessible
from tests.browser.flows import expect_heading, sign_in_with_password
from tests.helpers import register_account

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


async def start_device(api: httpx.AsyncClient) -> dict[str, Any]:
    started = await api.post("/auth/device", data={"client_id": "dropp-cli"})
    assert started.status_code == 200, started.text
    body: dict[str, Any] = started.json()
    return body


async def poll(api: httpx.AsyncClient, device: dict[str, Any]) -> httpx.Response:
    return await api.post(
        "/auth/token", data={"grant_type": DEVICE_GRANT, "device_code": device["device_code"]}
    )


@pytest.mark.parametrize(
    ("button", "heading", "status", "error"),
    [
        ("Approve", "Device connected", 200, None),
        ("Deny", "Device refused", 400, "access_denied"),
    ],
)
async def test_a_person_decides_on_a_device(
    browsing: Browsing,
    api: httpx.AsyncClient,
    engine: AsyncEngine,
    button: str,
    heading: str,
    status: int,
    error: str | None,
) -> None:
    await register_account(api, "ops@example.com", engine=engine)
    device = await start_device(api)
    page = browsing.page

    await page.goto(device["verification_uri_complete"])
    await expect_heading(page, "Sign in to Dropp")
    await sign_in_with_password(page, "ops@example.com")
    await expect_heading(page, "Connect a device")
    await assert_accessible(page)
    await page.get_by_role("button", name=button).click()

    await expect_heading(page, heading)
    await assert_accessible(page)
    answer = await poll(api, device)
    assert answer.status_code == status, answer.text
    if error is not None:
        assert answer.json()["error"] == error
