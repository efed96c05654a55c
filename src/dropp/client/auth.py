"""Signing in: the ways a person or a script gets a session for this device.

- In the system browser (RFC 8252): the client listens on 127.0.0.1 on a port of its own,
  opens the server's sign-in with that loopback redirect, a state and a PKCE challenge, and
  trades the code the browser brings back for tokens.
- With a code shown here and approved in any browser (the device grant, RFC 8628), for
  terminals and machines without a browser.
- With an email and a password, for scripts.
"""

import asyncio
import base64
import hashlib
import hmac
import html
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlencode, urlsplit

from dropp.client.api import Api
from dropp.client.credentials import Tokens
from dropp.client.errors import ApiError, ClientError

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
CALLBACK_PATH = "/callback"
# RFC 8628 §3.5: a client told to slow down adds 5 seconds to its interval.
SLOW_DOWN_STEP = 5.0
# The server measures the interval between polls; a little more never polls early.
POLL_MARGIN_SECONDS = 0.25
# A connection that sends no request line in this time is dropped (browsers open spare ones).
REQUEST_TIMEOUT_SECONDS = 10.0


async def sign_in_with_password(api: Api, email: str, password: str) -> Tokens:
    """For scripts: `dropp login --email E --password-stdin`."""
    try:
        answer = await api.post(
            "/auth/login", {"email": email, "password": password}, authenticated=False
        )
    except ApiError as error:
        if error.status == 401:
            raise ClientError("Wrong email or password.") from error
        raise
    tokens = Tokens.from_answer(answer)
    api.adopt(tokens)
    return tokens


async def sign_out(api: Api) -> None:
    """Revoke this device's session on the server, then forget it here."""
    tokens = api.tokens
    if tokens is not None:
        await api.post("/auth/logout", {"refresh_token": tokens.refresh_token}, authenticated=False)
    api.forget()


async def _token(api: Api, **form: str) -> Tokens:
    response = await api.request("POST", "/auth/token", authenticated=False, data=form)
    tokens = Tokens.from_answer(response.json())
    api.adopt(tokens)
    return tokens


# --- in the system browser, back on loopback (RFC 8252 §7.3, PKCE RFC 7636) ---------------


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> "Pkce":
        # 48 random bytes: a 64-character verifier, inside RFC 7636's 43 to 128.
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii"))


AUTHORIZE_PATH = "/auth/google"


def authorize_params(redirect_uri: str, state: str, challenge: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }


def authorize_url(server: str, redirect_uri: str, state: str, challenge: str) -> str:
    """Where the browser starts: the server's sign-in, for this client's loopback."""
    query = urlencode(authorize_params(redirect_uri, state, challenge))
    return f"{server.rstrip('/')}{AUTHORIZE_PATH}?{query}"


class BrowserSignInUnavailable(ClientError):
    """The server cannot sign this client in through a browser: no OpenID provider is set
    up, or its APP_REDIRECT_URI has no loopback entry."""


async def check_browser_sign_in(api: Api, redirect_uri: str) -> None:
    """Raise BrowserSignInUnavailable unless the server would start this sign-in.

    Nothing else tells: the sign-in route refuses a redirect URI, or answers 404
    `provider_not_configured`, only to a request it would otherwise start. This one carries
    a throwaway state and challenge, so the sign-in it starts cannot be finished; it expires
    on the server.
    """
    probe = authorize_params(redirect_uri, secrets.token_urlsafe(16), Pkce.new().challenge)
    try:
        await api.request("GET", AUTHORIZE_PATH, params=probe, authenticated=False)
    except ApiError as error:
        if error.code == "provider_not_configured":
            raise BrowserSignInUnavailable(
                f"{api.server} has no browser sign-in (no OpenID provider is set up)."
            ) from error
        if error.code == "invalid_redirect_uri":
            raise BrowserSignInUnavailable(
                f"{api.server} does not accept sign-in on a loopback address "
                "(its APP_REDIRECT_URI lacks http://127.0.0.1/callback)."
            ) from error
        raise


PAGE_STYLE = "body { font-family: system-ui, sans-serif; max-width: 32em; margin: 3em auto }"
# The page's one style, admitted by its hash: no other inline style or script can run.
PAGE_STYLE_HASH = base64.b64encode(hashlib.sha256(PAGE_STYLE.encode()).digest()).decode()
PAGE_POLICY = f"default-src 'none'; style-src 'sha256-{PAGE_STYLE_HASH}'"


def _page(title: str, message: str) -> bytes:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{PAGE_STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>"
    ).encode()


class LoopbackListener:
    """An HTTP listener on 127.0.0.1, on a port the system picks, that waits for the browser
    to come back to `/callback` with this sign-in's state."""

    def __init__(self, state: str) -> None:
        self.state = state
        self._answer: asyncio.Future[dict[str, str]] | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        # Known once listening: the port is the system's choice.
        self.redirect_uri = ""

    async def __aenter__(self) -> Self:
        self._answer = asyncio.get_running_loop().create_future()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.redirect_uri = f"http://127.0.0.1:{port}{CALLBACK_PATH}"
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        # A spare connection the browser keeps open would hold wait_closed() up.
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    async def wait(self) -> dict[str, str]:
        """The callback's query parameters (`code`, or `error`), state already checked."""
        assert self._answer is not None
        return await asyncio.shield(self._answer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            status, body = await self._respond(reader)
            writer.write(
                f"HTTP/1.1 {status}\r\n"
                "Content-Type: text/html; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\n"
                "Cache-Control: no-store\r\n"
                "Referrer-Policy: no-referrer\r\n"
                f"Content-Security-Policy: {PAGE_POLICY}\r\n"
                "Connection: close\r\n\r\n".encode("ascii")
                + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError, ValueError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _respond(self, reader: asyncio.StreamReader) -> tuple[str, bytes]:
        line = await asyncio.wait_for(reader.readline(), REQUEST_TIMEOUT_SECONDS)
        while True:
            header = await asyncio.wait_for(reader.readline(), REQUEST_TIMEOUT_SECONDS)
            if header in (b"\r\n", b"\n", b""):
                break
        method, target, _ = line.decode("latin-1").split(" ", 2)
        parts = urlsplit(target)
        if method != "GET" or parts.path != CALLBACK_PATH:
            return "404 Not Found", _page("Not found", "This address is dropp's sign-in only.")
        params = {key: values[0] for key, values in parse_qs(parts.query).items()}
        # Another page sending the browser here (login CSRF) cannot know the state.
        if not hmac.compare_digest(params.get("state", "").encode(), self.state.encode()):
            return "400 Bad Request", _page(
                "Not this sign-in", "This answer is not for the sign-in dropp started."
            )
        assert self._answer is not None
        if not self._answer.done():
            self._answer.set_result(params)
        if "code" in params:
            return "200 OK", _page(
                "Signed in", "dropp is signed in. You can close this window and go back."
            )
        return "200 OK", _page("Not signed in", "Sign-in was cancelled. You can close this window.")


async def sign_in_with_browser(
    api: Api,
    *,
    open_browser: Callable[[str], Any],
    announce: Callable[[str], None],
    wait_seconds: float,
) -> Tokens:
    """The person signs in in their browser; the code comes back to a loopback listener and
    is traded, with the PKCE verifier, for tokens."""
    state = secrets.token_urlsafe(24)
    pkce = Pkce.new()
    async with LoopbackListener(state) as listener:
        await check_browser_sign_in(api, listener.redirect_uri)
        url = authorize_url(api.server, listener.redirect_uri, state, pkce.challenge)
        announce(url)
        # In a thread: a console browser may hold its caller while the listener must answer.
        opening = asyncio.create_task(asyncio.to_thread(open_browser, url))
        try:
            async with asyncio.timeout(wait_seconds):
                params = await listener.wait()
        except TimeoutError:
            raise ClientError(
                f"No sign-in came back from the browser within {wait_seconds:.0f} seconds: run "
                "`dropp login` again, or `dropp login --device` on a machine without a browser."
            ) from None
        finally:
            if not opening.done():
                opening.cancel()
    if "code" not in params:
        reason = params.get("error_description") or params.get("error") or "no code"
        raise ClientError(f"Sign-in did not complete in the browser ({reason}).")
    try:
        return await _token(
            api,
            grant_type="authorization_code",
            code=params["code"],
            code_verifier=pkce.verifier,
            redirect_uri=listener.redirect_uri,
        )
    except ApiError as error:
        raise ClientError(f"The server refused the sign-in: {error}") from error


# --- the device grant (RFC 8628) ------------------------------------------------------------


@dataclass(frozen=True)
class DeviceCode:
    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: float
    interval: float


async def sign_in_with_device(
    api: Api,
    *,
    announce: Callable[[DeviceCode], None],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Tokens:
    """Show a code for the person to approve in any browser, then poll until they did."""
    answer = await api.post("/auth/device", authenticated=False)
    device = DeviceCode(
        device_code=answer["device_code"],
        user_code=answer["user_code"],
        verification_uri=answer["verification_uri"],
        verification_uri_complete=answer.get("verification_uri_complete"),
        expires_in=float(answer["expires_in"]),
        interval=float(answer.get("interval", 5)),
    )
    announce(device)
    deadline = time.monotonic() + device.expires_in
    interval = device.interval
    while time.monotonic() < deadline:
        await sleep(interval + POLL_MARGIN_SECONDS)
        try:
            return await _token(api, grant_type=DEVICE_CODE_GRANT, device_code=device.device_code)
        except ApiError as error:
            if error.code == "authorization_pending":
                continue
            if error.code == "slow_down":
                interval = float(error.problem.get("interval") or interval + SLOW_DOWN_STEP)
                continue
            if error.status == 429:
                interval += SLOW_DOWN_STEP
                continue
            if error.code == "access_denied":
                raise ClientError("The sign-in was refused in the browser.") from error
            if error.code == "expired_token":
                break
            raise
    raise ClientError("The code expired before anyone approved it: run `dropp login` again.")
