"""The interactive API docs (Swagger UI), served from the package with a strict CSP.

FastAPI's default /docs loads Swagger UI from a public CDN, on the same origin as the
web-session cookie, with no integrity check: blank without internet, and a CDN compromise
would run in Dropp's origin. Here the assets are vendored under static/vendor (see its
VENDORED.md) and the page may run only them and its own inline init script (by nonce).
"""

import secrets
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from dropp.core.pages import PAGE_HEADERS

STATIC = Path(__file__).resolve().parent.parent / "static"
STATIC_PATH = "/static"
SWAGGER_UI = f"{STATIC_PATH}/vendor/swagger-ui-dist-5.35.0"
DOCS_PATH = "/docs"
REDIRECT_PATH = "/docs/oauth2-redirect"
# "Authorize" runs the same authorization-code + PKCE sign-in as the desktop app, as the
# client `dropp-docs`; REDIRECT_PATH is on the redirect allowlist (oauth/sign_in.py).
INIT_OAUTH = {"clientId": "dropp-docs", "usePkceWithAuthorizationCodeGrant": True}

router = APIRouter(include_in_schema=False)


def _headers(policy: str) -> dict[str, str]:
    return {
        **PAGE_HEADERS,
        "Content-Security-Policy": (
            f"default-src 'none'; {policy}; form-action 'none'; frame-ancestors 'none'; "
            "base-uri 'none'"
        ),
    }


@router.get(DOCS_PATH, response_class=HTMLResponse)
async def docs_page(request: Request) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    page = get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} · API docs",
        swagger_js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js",
        swagger_css_url=f"{SWAGGER_UI}/swagger-ui.css",
        swagger_favicon_url=f"{SWAGGER_UI}/favicon-32x32.png",
        oauth2_redirect_url=REDIRECT_PATH,
        init_oauth=INIT_OAUTH,
    )
    # FastAPI writes one inline <script> (the init); the nonce lets exactly that one run.
    html = bytes(page.body).decode().replace("<script>", f'<script nonce="{nonce}">', 1)
    if f'<script nonce="{nonce}">' not in html:
        raise RuntimeError("Swagger UI's init script was not found: update web/docs.py")
    policy = (
        f"script-src 'self' 'nonce-{nonce}'; style-src 'self'; img-src 'self' data:; "
        # The OpenAPI document and the token endpoint; the sign-in itself runs in a window
        # of its own, as navigations.
        "connect-src 'self'"
    )
    return HTMLResponse(html, headers=_headers(policy))


REDIRECT_HTML = f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Signing in · Dropp</title></head>
<body>
<script src="{SWAGGER_UI}/oauth2-redirect.js"></script>
</body>
</html>
"""


@router.get(REDIRECT_PATH, response_class=HTMLResponse)
async def docs_oauth2_redirect() -> HTMLResponse:
    """Where the docs UI's sign-in window lands with the code: Swagger UI's own script hands
    it to the docs page that opened the window."""
    # Its URL holds the authorization code: no Referer, not even for its own script.
    headers = {**_headers("script-src 'self'"), "Referrer-Policy": "no-referrer"}
    return HTMLResponse(REDIRECT_HTML, headers=headers)
