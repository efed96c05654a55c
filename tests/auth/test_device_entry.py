"""Entering device codes on the approval page is rate limited per address, so codes cannot be
tried by the hundred."""

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx
from fastapi import FastAPI

from tests.helpers import assert_problem, register_account
from tests.oauth.conftest import browser_for, form_value
from tests.oauth.test_device import sign_in_with_password

AppWith = Callable[..., AbstractAsyncContextManager[FastAPI]]
LIMIT = 5


async def test_guessing_device_codes_is_rate_limited(
    client: httpx.AsyncClient, app_with: AppWith
) -> None:
    await register_account(client, "mallory@example.com")
    async with (
        app_with(rate_limit_per_ip=f"{LIMIT}/minute", public_url="http://dropp.test") as app,
        browser_for(app) as attacker,
    ):
        page = await sign_in_with_password(attacker, "/auth/device/verify", "mallory@example.com")
        csrf = form_value(page.text, "csrf")
        guesses = [
            await attacker.post(
                "/auth/device/verify",
                data={"user_code": f"BCDF-GH{n:02d}", "csrf": csrf, "action": "approve"},
            )
            for n in range(LIMIT + 1)
        ]

    assert [guess.status_code for guess in guesses[:LIMIT]] == [400] * LIMIT
    body = assert_problem(guesses[LIMIT], 429, "rate_limited")
    assert body["retry_after"] == int(guesses[LIMIT].headers["Retry-After"])
