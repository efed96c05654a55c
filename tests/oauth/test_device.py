"""The device authorization grant (RFC 8628): a terminal polls while a person approves."""

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import api_client
from tests.helpers import PASSWORD, assert_problem, register_account
from tests.oauth.conftest import browser_for, form_value, sign_in_settings
from tests.oauth.flow import set_provider_user

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
INTERVAL = 1


@pytest.fixture
async def device_app(
    app_with: Callable[..., AbstractAsyncContextManager[FastAPI]],
    provider_url: str,
    client: httpx.AsyncClient,  # its teardown removes every row the test made
) -> AsyncIterator[FastAPI]:
    settings = sign_in_settings(provider_url, device_poll_interval_seconds=INTERVAL)
    async with app_with(**settings) as app:
        yield app


@pytest.fixture
async def terminal(device_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(device_app) as opened:
        yield opened


@pytest.fixture
async def person(device_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with browser_for(device_app) as opened:
        yield opened


async def start(terminal: httpx.AsyncClient) -> dict[str, Any]:
    answer = await terminal.post("/auth/device", data={"client_id": "dropp-cli"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body: dict[str, Any] = answer.json()
    return body


async def poll(terminal: httpx.AsyncClient, device_code: str) -> httpx.Response:
    return await terminal.post(
        "/auth/token", data={"grant_type": DEVICE_GRANT, "device_code": device_code}
    )


async def sign_in_with_password(person: httpx.AsyncClient, url: str, email: str) -> httpx.Response:
    """Open `url`; Dropp asks to sign in first, then brings the person back to it."""
    to_login = await person.get(url)
    assert to_login.status_code == 303
    assert to_login.headers["location"].startswith("/login/?next=")
    login_page = await person.get(to_login.headers["location"])
    answer = await person.post(
        "/login/",
        data={"email": email, "password": PASSWORD, "next": form_value(login_page.text, "next")},
        follow_redirects=True,
    )
    assert answer.status_code == 200, answer.text
    return answer


async def decide(person: httpx.AsyncClient, page: httpx.Response, action: str) -> httpx.Response:
    return await person.post(
        "/auth/device/verify",
        data={
            "user_code": form_value(page.text, "user_code"),
            "csrf": form_value(page.text, "csrf"),
            "action": action,
        },
    )


async def test_a_device_signs_in_once_a_person_approves_it(
    terminal: httpx.AsyncClient, person: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await register_account(client, "ivy@example.com")
    grant = await start(terminal)
    pending = await poll(terminal, grant["device_code"])

    page = await sign_in_with_password(
        person, grant["verification_uri_complete"], "ivy@example.com"
    )
    approved = await decide(person, page, "approve")
    await asyncio.sleep(INTERVAL)
    tokens = await poll(terminal, grant["device_code"])
    again = await poll(terminal, grant["device_code"])

    assert re.fullmatch(r"[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}", grant["user_code"])
    assert grant["verification_uri"] == "http://dropp.test/auth/device/verify"
    assert grant["interval"] == INTERVAL
    assert_problem(pending, 400, "authorization_pending")
    assert grant["user_code"] in page.text
    assert "Device connected" in approved.text
    assert tokens.status_code == 200, tokens.text
    me = await terminal.get(
        "/me", headers={"Authorization": f"Bearer {tokens.json()['access_token']}"}
    )
    assert me.json()["email"] == "ivy@example.com"
    assert_problem(again, 400, "invalid_grant")


async def test_polling_too_fast_is_told_to_slow_down(terminal: httpx.AsyncClient) -> None:
    grant = await start(terminal)

    first = await poll(terminal, grant["device_code"])
    second = await poll(terminal, grant["device_code"])

    assert_problem(first, 400, "authorization_pending")
    body = assert_problem(second, 400, "slow_down")
    assert body["interval"] == INTERVAL + 5


async def test_a_denied_device_gets_access_denied(
    terminal: httpx.AsyncClient, person: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await register_account(client, "jack@example.com")
    grant = await start(terminal)
    page = await sign_in_with_password(
        person, grant["verification_uri_complete"], "jack@example.com"
    )

    denied = await decide(person, page, "deny")
    answer = await poll(terminal, grant["device_code"])

    assert "Device refused" in denied.text
    assert_problem(answer, 400, "access_denied")


async def test_an_expired_device_code_is_refused(
    terminal: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    grant = await start(terminal)
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE device_authorization SET expires_at = :past"),
            {"past": datetime.now(UTC) - timedelta(seconds=1)},
        )

    answer = await poll(terminal, grant["device_code"])
    unknown = await poll(terminal, "never-issued")

    assert_problem(answer, 400, "expired_token")
    assert_problem(unknown, 400, "invalid_grant")


async def test_a_wrong_user_code_shows_the_form_again(
    terminal: httpx.AsyncClient, person: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await register_account(client, "kim@example.com")
    grant = await start(terminal)
    page = await sign_in_with_password(
        person, grant["verification_uri_complete"], "kim@example.com"
    )

    answer = await person.post(
        "/auth/device/verify",
        data={"user_code": "BBBB-BBBB", "csrf": form_value(page.text, "csrf"), "action": "approve"},
    )
    pending = await poll(terminal, grant["device_code"])

    assert answer.status_code == 400
    assert "No device is waiting for this code" in answer.text
    assert_problem(pending, 400, "authorization_pending")


async def test_an_approval_without_the_pages_csrf_token_is_refused(
    terminal: httpx.AsyncClient, person: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await register_account(client, "lee@example.com")
    grant = await start(terminal)
    await sign_in_with_password(person, grant["verification_uri_complete"], "lee@example.com")

    forged = await person.post(
        "/auth/device/verify",
        data={"user_code": grant["user_code"], "csrf": "0" * 64, "action": "approve"},
    )
    cross_site = await person.post(
        "/auth/device/verify",
        data={"user_code": grant["user_code"], "csrf": "0" * 64, "action": "approve"},
        headers={"Origin": "https://evil.example"},
    )
    pending = await poll(terminal, grant["device_code"])

    assert forged.status_code == 403
    assert cross_site.status_code == 403
    assert_problem(pending, 400, "authorization_pending")


async def test_the_person_can_approve_after_signing_in_with_google(
    terminal: httpx.AsyncClient, person: httpx.AsyncClient, provider_url: str
) -> None:
    await set_provider_user(provider_url, "g-mia", email="mia@example.com", email_verified=True)
    grant = await start(terminal)
    to_login = await person.get(grant["verification_uri_complete"])
    login_page = await person.get(to_login.headers["location"])
    assert "Sign in with Google" in login_page.text

    provider_page = await person.get(
        "/auth/google",
        params={"next": form_value(login_page.text, "next")},
        follow_redirects=True,
    )
    page = await person.post(provider_page.url, data={"sub": "g-mia"}, follow_redirects=True)
    approved = await decide(person, page, "approve")
    await asyncio.sleep(INTERVAL)
    tokens = await poll(terminal, grant["device_code"])

    assert "Connect a device" in page.text
    assert "Device connected" in approved.text
    assert tokens.status_code == 200, tokens.text


async def test_a_wrong_password_on_the_login_page_signs_nobody_in(
    person: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await register_account(client, "ned@example.com")

    answer = await person.post(
        "/login/", data={"email": "ned@example.com", "password": "wrong password!"}
    )
    device_page = await person.get("/auth/device/verify")

    assert answer.status_code == 401
    assert "incorrect" in answer.text
    assert device_page.status_code == 303


async def test_login_page_never_redirects_off_site(
    person: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await register_account(client, "olga@example.com")

    answer = await person.post(
        "/login/",
        data={"email": "olga@example.com", "password": PASSWORD, "next": "//evil.example/x"},
    )

    assert answer.status_code == 303
    assert answer.headers["location"] == "/login/"


async def test_device_start_and_polling_are_rate_limited(
    app_with: Callable[..., AbstractAsyncContextManager[FastAPI]],
    provider_url: str,
    client: httpx.AsyncClient,
) -> None:
    limits = {"rate_limit_per_ip": "3/minute", "rate_limit_per_account": "2/minute"}
    async with app_with(**sign_in_settings(provider_url, **limits)) as app:
        async with api_client(app) as here:
            starts = [await here.post("/auth/device") for _ in range(4)]
        device_code = starts[0].json()["device_code"]
        polls = []
        for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
            transport = httpx.ASGITransport(app=app, client=(address, 1234))
            async with httpx.AsyncClient(
                transport=transport, base_url="http://dropp.test"
            ) as there:
                polls.append(await poll(there, device_code))

    assert [answer.status_code for answer in starts] == [200, 200, 200, 429]
    assert_problem(starts[3], 429, "rate_limited")
    assert int(starts[3].headers["retry-after"]) >= 1
    # The device code is counted whatever the address it polls from.
    assert [answer.status_code for answer in polls] == [400, 400, 429]
