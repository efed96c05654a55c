"""`/app/send` (signed in) opens a transfer and sends one file; `/receive` (anyone with the
code) receives it. The pages' script does everything over the `/p2p` socket, the data
channel and, when that does not open, storage: the server draws the pages and their CSP."""

import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Response
from fastapi.responses import HTMLResponse

from dropp.core.config import Settings
from dropp.core.dependencies import SettingsDep
from dropp.core.pages import SECRET_LINK_HEADERS, render
from dropp.oauth.dependencies import WebUserDep
from dropp.storage.dependencies import StorageDep
from dropp.storage.s3 import Storage
from dropp.web.visitors import PageVisitor, SessionCookie, visitor

router = APIRouter(include_in_schema=False)

HASH_WASM = "/static/vendor/hash-wasm-4.13.0/sha256.umd.min.js"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def script_policy(nonce: str, settings: Settings, storage: Storage) -> str:
    """The pages' CSP: their own scripts by nonce, WebAssembly for hash-wasm (compiling it is
    all `'wasm-unsafe-eval'` admits), and connections to this server, its signaling socket
    and storage (the cloud fallback's upload form and download link)."""
    public = urlsplit(settings.public_url)
    # 'self' covers the socket in current browsers; named too for those that read
    # CSP Level 2, where 'self' never matches ws:.
    socket = f"{'wss' if public.scheme == 'https' else 'ws'}://{public.netloc}"
    return (
        f"default-src 'none'; style-src 'self'; script-src 'nonce-{nonce}' 'wasm-unsafe-eval'; "
        f"connect-src 'self' {socket} {_origin(storage.post_forms.url)}; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )


@router.get("/app/send", response_class=HTMLResponse)
async def send_page(person: PageVisitor, settings: SettingsDep, storage: StorageDep) -> Response:
    """Pick a file; the page shows a code for the receiver and sends the file to them."""
    nonce = secrets.token_urlsafe(16)
    return render(
        "web/send.html",
        headers={"Content-Security-Policy": script_policy(nonce, settings, storage)},
        me=person,
        receive_url=f"{settings.public_url.rstrip('/')}/receive",
        nonce=nonce,
        hash_wasm=HASH_WASM,
    )


@router.get("/receive", response_class=HTMLResponse)
async def receive_page(
    settings: SettingsDep,
    storage: StorageDep,
    user: WebUserDep,
    cookie: SessionCookie = None,
    code: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """Type the sender's code (or follow `?code=`) and receive the file; no account needed."""
    nonce = secrets.token_urlsafe(16)
    return render(
        "web/receive.html",
        # The code in the URL is the capability: no Referer, index or cache may keep it.
        headers={
            **SECRET_LINK_HEADERS,
            "Content-Security-Policy": script_policy(nonce, settings, storage),
        },
        me=visitor(settings, user, cookie),
        code=code,
        nonce=nonce,
        hash_wasm=HASH_WASM,
    )
