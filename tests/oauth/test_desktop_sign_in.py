import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import jsonschema_rs
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.core.config import Settings
from dropp.main import create_app
from tests.helpers import assert_problem
from tests.oauth.conftest import DEEP_LINK, LOOPBACK, PUBLIC_URL, browser_for
from tests.oauth.flow import (
    ClientSignIn,
    confirm,
    desktop_sign_in,
    redeem,
    redirect_params,
    set_provider_user,
    sign_in_at_provider,
)


async def test_deep_link_sign_in_gives_tokens_for_a_new_verified_account(
    browser: httpx.AsyncClient, api: httpx.AsyncClient, provider_url: str
) -> None:
    await set_provider_user(provider_url, "g-100", email="Carol@Example.com", email_verified=True)
    request = ClientSignIn()

    received = await desktop_sign_in(browser, request, "g-100")
    tokens = await redeem(api, request, received["code"])

    assert received["state"] == request.state
    assert len(received["code"]) >= 43  # 256 bits, base64url
    assert tokens.status_code == 200, tokens.text
    assert tokens.headers["cache-control"] == "no-store"
    body = tokens.json()
    assert body["token_type"] == "bearer"
    me = await api.get("/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["email"] == "carol@example.com"
    assert me.json()["email_verified"] is True


async def test_loopback_redirect_works_on_any_port(
    browser: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    request = ClientSignIn(redirect_uri=LOOPBACK.replace("127.0.0.1", "127.0.0.1:53682"))

    received = await desktop_sign_in(browser, request, "g-loopback")
    tokens = await redeem(api, request, received["code"])

    assert tokens.status_code == 200, tokens.text


async def test_confirmation_page_keeps_the_code_out_of_referrers_and_frames(
    browser: httpx.AsyncClient,
) -> None:
    page = await sign_in_at_provider(browser, ClientSignIn().authorize_params(), "g-page")

    assert "Sign in to Dropp on this device?" in page.text
    # A Referer only to Dropp itself (its form's post), which saw the code in this page's
    # URL already; never to the app's redirect or another site.
    assert page.headers["referrer-policy"] == "same-origin"
    assert page.headers["x-frame-options"] == "DENY"
    assert "form-action 'self' dropp:" in page.headers["content-security-policy"]


async def test_cancelling_at_the_confirmation_sends_access_denied(
    browser: httpx.AsyncClient,
) -> None:
    request = ClientSignIn()
    page = await sign_in_at_provider(browser, request.authorize_params(), "g-cancel")

    location = await confirm(browser, page, action="deny")

    assert redirect_params(location) == {"error": "access_denied", "state": request.state}


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "dropp://auth/callback/",  # trailing slash
        "Dropp://auth/callback",  # case
        "dropp://auth/callback?x=1",  # extra query
        "dropp://auth/callback#x",
        "https://evil.example/callback",  # other host
        "http://localhost:8080/callback",  # loopback must be the IP literal
        "http://127.0.0.1:8080/callback/",
        "http://127.0.0.1:8080/other",
        "http://127.0.0.1.evil.example/callback",
        "http://user@127.0.0.1:8080/callback",
        "javascript:alert(1)",
        "",
    ],
)
async def test_a_redirect_uri_off_the_allowlist_is_refused_before_any_redirect(
    browser: httpx.AsyncClient, redirect_uri: str
) -> None:
    answer = await browser.get(
        "/auth/google", params=ClientSignIn().authorize_params(redirect_uri=redirect_uri)
    )

    assert_problem(answer, 400, "invalid_redirect_uri")
    assert "location" not in answer.headers


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"code_challenge_method": "plain"}, "plain"),
        ({"code_challenge_method": ""}, "S256"),
        ({"code_challenge": "too-short"}, "code_challenge"),
        ({"state": ""}, "state"),
        ({"response_type": "token"}, "response_type"),
    ],
)
async def test_a_bad_authorization_request_is_refused(
    browser: httpx.AsyncClient, changes: dict[str, str], why: str
) -> None:
    answer = await browser.get("/auth/google", params=ClientSignIn().authorize_params(**changes))

    body = assert_problem(answer, 400, "invalid_request")
    assert why in body["detail"]
    assert "location" not in answer.headers


async def test_a_callback_with_unknown_or_missing_state_is_refused(
    browser: httpx.AsyncClient,
) -> None:
    # A real sign-in is under way in this browser, so the cookie is there.
    await browser.get("/auth/google", params=ClientSignIn().authorize_params())

    forged = await browser.get("/auth/google/callback", params={"state": "forged", "code": "x"})
    missing = await browser.get("/auth/google/callback", params={"code": "x"})

    assert forged.status_code == 400
    assert "unknown" in forged.text
    assert missing.status_code == 400


async def test_a_callback_opened_in_another_browser_is_refused(
    browser: httpx.AsyncClient, sign_in_app: FastAPI
) -> None:
    provider_page = await browser.get(
        "/auth/google", params=ClientSignIn().authorize_params(), follow_redirects=True
    )
    to_dropp = await browser.post(provider_page.url, data={"sub": "g-other"})
    callback = to_dropp.headers["location"]

    async with browser_for(sign_in_app) as other_browser:
        stolen = await other_browser.get(callback)
    replayed_here = await browser.get(callback)

    assert stolen.status_code == 400
    # The first use in the right browser still works; a second is refused.
    assert replayed_here.status_code == 200
    again = await browser.get(callback)
    assert again.status_code == 400


async def test_a_replayed_code_fails_and_revokes_what_it_gave(
    browser: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    request = ClientSignIn()
    received = await desktop_sign_in(browser, request, "g-replay")
    first = await redeem(api, request, received["code"])

    second = await redeem(api, request, received["code"])
    refreshed = await api.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": first.json()["refresh_token"]},
    )

    assert first.status_code == 200
    body = assert_problem(second, 400, "invalid_grant")
    assert body["error"] == "invalid_grant"
    assert_problem(refreshed, 400, "invalid_grant")


async def test_two_racing_redemptions_have_exactly_one_winner(
    browser: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    request = ClientSignIn()
    received = await desktop_sign_in(browser, request, "g-race")

    answers = await asyncio.gather(*(redeem(api, request, received["code"]) for _ in range(4)))

    assert sorted(answer.status_code for answer in answers) == [200, 400, 400, 400]


@pytest.mark.parametrize(
    "changes",
    [
        {"code_verifier": "x" * 43},
        {"code_verifier": "short"},
        {"redirect_uri": LOOPBACK.replace("127.0.0.1", "127.0.0.1:1234")},
        {"code": "not-a-code"},
    ],
)
async def test_a_code_needs_its_verifier_and_redirect_uri(
    browser: httpx.AsyncClient, api: httpx.AsyncClient, changes: dict[str, str]
) -> None:
    request = ClientSignIn()
    received = await desktop_sign_in(browser, request, "g-verifier")

    wrong_changes = dict(changes)
    wrong = await redeem(api, request, wrong_changes.pop("code", received["code"]), **wrong_changes)
    right = await redeem(api, request, received["code"])

    assert_problem(wrong, 400, "invalid_grant")
    assert right.status_code == 200, right.text


async def test_an_expired_code_is_refused(
    browser: httpx.AsyncClient, api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    request = ClientSignIn()
    received = await desktop_sign_in(browser, request, "g-expired")
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE authorization_code SET expires_at = :past"),
            {"past": datetime.now(UTC) - timedelta(seconds=1)},
        )

    answer = await redeem(api, request, received["code"])

    body = assert_problem(answer, 400, "invalid_grant")
    assert "expired" in body["detail"]


async def test_codes_live_at_most_a_minute_and_are_stored_hashed(
    browser: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    received = await desktop_sign_in(browser, ClientSignIn(), "g-stored")

    async with engine.connect() as connection:
        row = (
            await connection.execute(text("SELECT code_hash, expires_at FROM authorization_code"))
        ).one()

    assert received["code"].encode() not in bytes(row.code_hash)
    assert len(row.code_hash) == 32
    assert row.expires_at <= datetime.now(UTC) + timedelta(seconds=60)


async def test_refresh_tokens_rotate_and_reuse_revokes_the_family(
    browser: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    request = ClientSignIn()
    received = await desktop_sign_in(browser, request, "g-rotate")
    first = (await redeem(api, request, received["code"])).json()

    def refresh(token: str) -> dict[str, str]:
        return {"grant_type": "refresh_token", "refresh_token": token}

    second = await api.post("/auth/token", data=refresh(first["refresh_token"]))
    reuse = await api.post("/auth/token", data=refresh(first["refresh_token"]))
    after = await api.post("/auth/token", data=refresh(second.json()["refresh_token"]))

    assert second.status_code == 200
    assert second.json()["refresh_token"] != first["refresh_token"]
    assert_problem(reuse, 400, "invalid_grant")
    assert_problem(after, 400, "invalid_grant")


async def test_logout_revokes_the_family(
    browser: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    request = ClientSignIn()
    received = await desktop_sign_in(browser, request, "g-logout")
    tokens = (await redeem(api, request, received["code"])).json()

    out = await api.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    unknown = await api.post("/auth/logout", json={"refresh_token": "never-issued"})
    refreshed = await api.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )

    assert out.status_code == 204
    assert unknown.status_code == 204
    assert_problem(refreshed, 400, "invalid_grant")


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({}, "invalid_request"),
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"grant_type": "authorization_code"}, "invalid_request"),
        ({"grant_type": "refresh_token"}, "invalid_request"),
    ],
)
async def test_token_endpoint_errors_follow_rfc_6749(
    api: httpx.AsyncClient, data: dict[str, str], code: str
) -> None:
    answer = await api.post("/auth/token", data=data)

    body = assert_problem(answer, 400, code)
    assert body["error"] == code
    assert answer.headers["cache-control"] == "no-store"


async def test_without_a_provider_sign_in_with_google_is_not_found(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    # The landing and login pages offer no Google button then: the option does not exist.
    answer = await client.get("/auth/google", params=ClientSignIn().authorize_params())
    document = create_app(settings).openapi()

    assert_problem(answer, 404, "provider_not_configured")
    assert "location" not in answer.headers
    declared = document["paths"]["/auth/google"]["get"]["responses"]
    assert "provider_not_configured" in declared["404"]["description"]
    assert not any(status.startswith("5") for status in declared)
    # With a provider, the answer is a redirect, which has no body.
    assert "content" not in declared["302"]


async def test_the_token_endpoint_ignores_unknown_parameters(api: httpx.AsyncClient) -> None:
    # RFC 6749 §3.2: a token endpoint ignores parameters it does not know.
    answer = await api.post("/auth/token", data={"grant_type": "refresh_token", "extra": "x"})

    body = assert_problem(answer, 400, "invalid_request")
    assert "refresh_token" in body["detail"]


SIGN_IN_QUERIES = [
    # A person signing in to Dropp's pages: none of a client's parameters.
    ({}, True),
    ({"next": "/devices/"}, True),
    ({"code_challenge_method": "plain", "response_type": "token", "scope": "x"}, True),
    # A client: all of them, as RFC 6749 and PKCE have them.
    (ClientSignIn().authorize_params(), True),
    (ClientSignIn().authorize_params(response_type="code", client_id="dropp"), True),
    (
        ClientSignIn(
            redirect_uri=LOOPBACK.replace("127.0.0.1", "127.0.0.1:53682")
        ).authorize_params(),
        True,
    ),
    (ClientSignIn(redirect_uri=f"{PUBLIC_URL}/docs/oauth2-redirect").authorize_params(), True),
    # Anything between is refused before any redirect.
    ({"code_challenge": ClientSignIn().authorize_params()["code_challenge"]}, False),
    ({"state": ""}, False),
    ({"redirect_uri": DEEP_LINK}, False),
    (ClientSignIn().authorize_params(redirect_uri="https://elsewhere.example/callback"), False),
    (ClientSignIn().authorize_params(redirect_uri=LOOPBACK + "\n"), False),
    (ClientSignIn().authorize_params(code_challenge_method="plain"), False),
    (ClientSignIn().authorize_params(code_challenge="too-short"), False),
    (ClientSignIn().authorize_params(response_type="token"), False),
    (ClientSignIn().authorize_params(state=""), False),
]


@pytest.mark.parametrize(("query", "taken"), SIGN_IN_QUERIES)
async def test_the_document_states_which_sign_in_requests_are_taken(
    browser: httpx.AsyncClient, api: httpx.AsyncClient, query: dict[str, str], taken: bool
) -> None:
    document = (await api.get("/openapi.json")).json()
    [parameter] = document["paths"]["/auth/google"]["get"]["parameters"]

    answer = await browser.get("/auth/google", params=query)

    assert (parameter["in"], parameter["style"], parameter["explode"]) == ("query", "form", True)
    # With the components at its root, for the references in it.
    schema = {**parameter["schema"], "components": document["components"]}
    assert jsonschema_rs.validator_for(schema).is_valid(query) is taken
    assert answer.status_code == (302 if taken else 400), answer.text
