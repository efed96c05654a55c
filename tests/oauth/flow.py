"""What a desktop client and its user do, step by step, against Dropp and the provider."""

import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from dropp.oauth.pkce import s256
from tests.oauth.conftest import DEEP_LINK, form_value


@dataclass
class ClientSignIn:
    """One sign-in as a desktop app starts it: its own state and PKCE verifier."""

    redirect_uri: str = DEEP_LINK
    state: str = ""
    verifier: str = ""

    def __post_init__(self) -> None:
        self.state = self.state or secrets.token_urlsafe(16)
        self.verifier = self.verifier or secrets.token_urlsafe(48)

    def authorize_params(self, **changes: str) -> dict[str, str]:
        return {
            "redirect_uri": self.redirect_uri,
            "state": self.state,
            "code_challenge": s256(self.verifier),
            "code_challenge_method": "S256",
            **changes,
        }


async def set_provider_user(provider_url: str, sub: str, **claims: Any) -> None:
    async with httpx.AsyncClient() as plain:
        answer = await plain.put(f"{provider_url}/users/{sub}", json=claims)
        answer.raise_for_status()


async def sign_in_at_provider(
    browser: httpx.AsyncClient, params: dict[str, str], sub: str
) -> httpx.Response:
    """Open /auth/google, follow it to the provider's page, sign in there as `sub`, and follow
    the provider back to Dropp: the page Dropp shows next."""
    provider_page = await browser.get("/auth/google", params=params, follow_redirects=True)
    assert provider_page.status_code == 200, provider_page.text
    assert provider_page.url.host == "localhost"
    return await browser.post(provider_page.url, data={"sub": sub}, follow_redirects=True)


async def confirm(browser: httpx.AsyncClient, page: httpx.Response, action: str = "allow") -> str:
    """Click the confirmation page's button; the Location Dropp sends the browser to."""
    assert page.status_code == 200, page.text
    answer = await browser.post(
        "/auth/google/confirm",
        data={
            "sign_in": form_value(page.text, "sign_in"),
            "csrf": form_value(page.text, "csrf"),
            "action": action,
        },
    )
    assert answer.status_code == 303, answer.text
    return answer.headers["location"]


def redirect_params(location: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


async def desktop_sign_in(
    browser: httpx.AsyncClient, request: ClientSignIn, sub: str
) -> dict[str, str]:
    """The whole browser part: the code and state the app receives on its redirect URI."""
    page = await sign_in_at_provider(browser, request.authorize_params(), sub)
    location = await confirm(browser, page)
    assert location.startswith(f"{request.redirect_uri}?"), location
    return redirect_params(location)


async def redeem(
    api: httpx.AsyncClient, request: ClientSignIn, code: str, **changes: str
) -> httpx.Response:
    return await api.post(
        "/auth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": request.verifier,
            "redirect_uri": request.redirect_uri,
            **changes,
        },
    )
