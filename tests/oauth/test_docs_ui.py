"""The docs UI's "Authorize" runs the same authorization-code + PKCE sign-in as the app."""

import httpx

from tests.oauth.conftest import PUBLIC_URL
from tests.oauth.flow import ClientSignIn, desktop_sign_in, redeem


async def test_openapi_offers_the_authorization_code_flow(api: httpx.AsyncClient) -> None:
    schema = (await api.get("/openapi.json")).json()
    docs = await api.get("/docs")

    flows = schema["components"]["securitySchemes"]["OAuth2AuthorizationCodeBearer"]["flows"]
    assert flows["authorizationCode"]["authorizationUrl"] == "/auth/google"
    assert flows["authorizationCode"]["tokenUrl"] == "/auth/token"
    assert '"usePkceWithAuthorizationCodeGrant": true' in docs.text


async def test_the_docs_ui_signs_in_and_its_token_works(
    browser: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    request = ClientSignIn(redirect_uri=f"{PUBLIC_URL}/docs/oauth2-redirect")

    received = await desktop_sign_in(browser, request, "g-docs")
    tokens = await redeem(api, request, received["code"], client_id="dropp-docs")
    me = await api.get("/me", headers={"Authorization": f"Bearer {tokens.json()['access_token']}"})

    assert me.status_code == 200
