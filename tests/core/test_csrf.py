"""The same-origin rule of page forms, for what only a non-browser or an older browser sends
(Chromium's side is in tests/browser/test_forged_forms.py)."""

import httpx
import pytest

from tests.helpers import PASSWORD, register_account

PUBLIC = "http://127.0.0.1:8000"  # the default PUBLIC_URL the test app runs with


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Sec-Fetch-Site": "same-origin", "Origin": "null"}, 303),
        ({"Sec-Fetch-Site": "same-origin"}, 303),
        ({"Origin": PUBLIC}, 303),
        ({}, 303),  # a script: no browser, no ambient cookies to abuse
        ({"Sec-Fetch-Site": "same-site", "Origin": PUBLIC}, 403),
        ({"Sec-Fetch-Site": "cross-site"}, 403),
        ({"Sec-Fetch-Site": "none"}, 403),
        ({"Origin": "null"}, 403),
        ({"Origin": "http://127.0.0.1:8001"}, 403),
        ({"Origin": "http://localhost:8000"}, 403),
    ],
)
async def test_the_login_form_passes_only_requests_from_this_origin(
    client: httpx.AsyncClient, headers: dict[str, str], status: int
) -> None:
    await register_account(client, "ada@example.com")

    answer = await client.post(
        "/login/", data={"email": "ada@example.com", "password": PASSWORD}, headers=headers
    )

    assert answer.status_code == status, answer.text


async def test_the_google_option_shows_only_with_a_provider(client: httpx.AsyncClient) -> None:
    login = await client.get("/login/")
    home = await client.get("/")

    assert login.status_code == home.status_code == 200
    assert "Sign in with Google" not in login.text
    assert "Google" not in home.text
    assert 'href="/docs"' in home.text
