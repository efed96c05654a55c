"""Which account a provider sign-in reaches: keyed on (issuer, subject), linked by email only
when both sides verified it."""

from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import register_account
from tests.oauth.flow import (
    ClientSignIn,
    desktop_sign_in,
    redeem,
    set_provider_user,
    sign_in_at_provider,
)


async def sign_in(browser: httpx.AsyncClient, api: httpx.AsyncClient, sub: str) -> dict[str, Any]:
    request = ClientSignIn()
    received = await desktop_sign_in(browser, request, sub)
    tokens = await redeem(api, request, received["code"])
    assert tokens.status_code == 200, tokens.text
    me = await api.get("/me", headers={"Authorization": f"Bearer {tokens.json()['access_token']}"})
    body: dict[str, Any] = me.json()
    return body


async def test_the_account_follows_the_subject_not_the_email(
    browser: httpx.AsyncClient, api: httpx.AsyncClient, provider_url: str
) -> None:
    await set_provider_user(provider_url, "g-dana", email="dana@example.com", email_verified=True)
    first = await sign_in(browser, api, "g-dana")
    await set_provider_user(provider_url, "g-dana", email="dana@new.example", email_verified=True)

    second = await sign_in(browser, api, "g-dana")

    assert second["id"] == first["id"]


async def test_a_verified_email_links_to_the_verified_account_that_has_it(
    browser: httpx.AsyncClient,
    api: httpx.AsyncClient,
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    provider_url: str,
) -> None:
    existing = await register_account(client, "erin@example.com", engine=engine)
    await set_provider_user(provider_url, "g-erin", email="erin@example.com", email_verified=True)

    signed_in = await sign_in(browser, api, "g-erin")

    assert signed_in["id"] == existing.user_id


async def test_an_unverified_provider_email_never_links_to_an_existing_account(
    browser: httpx.AsyncClient,
    api: httpx.AsyncClient,
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    provider_url: str,
) -> None:
    existing = await register_account(client, "frank@example.com", engine=engine)
    await set_provider_user(
        provider_url, "g-frank", email="frank@example.com", email_verified=False
    )

    signed_in = await sign_in(browser, api, "g-frank")

    assert signed_in["id"] != existing.user_id
    # The address stays with the account that holds it.
    assert signed_in["email"] is None
    assert signed_in["email_verified"] is False


async def test_a_verified_email_does_not_take_over_an_unverified_account(
    browser: httpx.AsyncClient, api: httpx.AsyncClient, client: httpx.AsyncClient, provider_url: str
) -> None:
    # Anyone can register someone else's address; without verifying it, it links to nothing.
    squatter = await register_account(client, "gina@example.com")
    await set_provider_user(provider_url, "g-gina", email="gina@example.com", email_verified=True)

    signed_in = await sign_in(browser, api, "g-gina")

    assert signed_in["id"] != squatter.user_id


async def test_a_disabled_account_cannot_sign_in_with_the_provider(
    browser: httpx.AsyncClient, api: httpx.AsyncClient, engine: AsyncEngine, provider_url: str
) -> None:
    await set_provider_user(provider_url, "g-hank", email="hank@example.com", email_verified=True)
    hank = await sign_in(browser, api, "g-hank")
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE user_account SET is_active = false WHERE email = 'hank@example.com'")
        )

    page = await sign_in_at_provider(browser, ClientSignIn().authorize_params(), "g-hank")

    assert hank["is_active"] is True
    assert page.status_code == 400
    assert "disabled" in page.text


async def test_an_id_token_with_another_nonce_is_refused(
    browser: httpx.AsyncClient, engine: AsyncEngine, provider_url: str
) -> None:
    provider_page = await browser.get(
        "/auth/google", params=ClientSignIn().authorize_params(), follow_redirects=True
    )
    # The provider will sign the nonce it was sent; Dropp now expects another one.
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE sign_in SET nonce = 'not-the-one-sent'"))

    page = await browser.post(provider_page.url, data={"sub": "g-nonce"}, follow_redirects=True)

    assert page.status_code == 400
    assert "refused" in page.text
    async with engine.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM identity")) == 0


async def test_the_provider_reporting_an_error_sends_access_denied_to_the_client(
    browser: httpx.AsyncClient,
) -> None:
    request = ClientSignIn()
    provider_page = await browser.get(
        "/auth/google", params=request.authorize_params(), follow_redirects=True
    )
    # What a provider sends back when the person declines (RFC 6749 §4.1.2.1); the test
    # provider leaves `state` out of its own error redirect, so it is written here.
    state = provider_page.url.params["state"]

    back = await browser.get(
        "/auth/google/callback", params={"error": "access_denied", "state": state}
    )

    assert back.status_code == 303
    assert back.headers["location"] == (
        f"{request.redirect_uri}?error=access_denied&state={request.state}"
    )
