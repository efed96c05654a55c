"""Dropp's HTTP API as the client uses it: one session per server, refreshed on its own.

Access tokens last minutes; refresh tokens rotate (each works once), so a refresh stores the
new pair before anything uses it, and concurrent requests that find the token expired refresh
it once between them. A refresh the server refuses means the session is over (signed out
elsewhere, revoked, disabled): the person is asked to sign in again.
"""

import asyncio
import email.utils
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import httpx

from dropp.client.credentials import CredentialStore, Tokens
from dropp.client.errors import ApiError, NotSignedIn, ServerUnavailable

# Refresh this long before the access token runs out, so a request never carries one that
# expires on the way.
REFRESH_MARGIN_SECONDS = 30
# Tries for a request that may be repeated, when the server is unreachable or answers 503.
ATTEMPTS = 4
MAX_BACKOFF_SECONDS = 10.0
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

JsonBody = Mapping[str, Any] | list[Any]


def problem_of(response: httpx.Response) -> dict[str, Any]:
    """The problem body of a refusal; a body that is not one still yields a message."""
    try:
        body = response.json()
    except ValueError:
        return {"detail": f"The server answered {response.status_code}: {response.text[:200]}"}
    return body if isinstance(body, dict) else {"detail": str(body)[:200]}


def retry_after(response: httpx.Response | None, attempt: int) -> float:
    """The server's `Retry-After` when it gives one, else exponential backoff."""
    if response is not None:
        value = response.headers.get("Retry-After", "")
        if value.isdigit():
            return min(float(value), MAX_BACKOFF_SECONDS)
        if value:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, min(when.timestamp() - time.time(), MAX_BACKOFF_SECONDS))
    return float(min(0.5 * 2**attempt, MAX_BACKOFF_SECONDS))


class Api:
    """A signed-in (or anonymous) session with one Dropp server.

    `storage` is a second HTTP client, without Dropp's credentials, for the presigned URLs
    that move bytes straight to and from storage.
    """

    def __init__(
        self,
        server: str,
        store: CredentialStore | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.server = server
        self.store = store
        self._tokens = store.load(server) if store is not None else None
        self._refreshing = asyncio.Lock()
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=16)
        self.http = httpx.AsyncClient(
            base_url=server, timeout=timeout, transport=transport, limits=limits
        )
        self.storage = httpx.AsyncClient(timeout=timeout, limits=limits)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self.http.aclose()
        await self.storage.aclose()

    @property
    def signed_in(self) -> bool:
        return self._tokens is not None

    @property
    def tokens(self) -> Tokens | None:
        return self._tokens

    def adopt(self, tokens: Tokens) -> None:
        """Keep a new session (from `dropp login`), stored before it is used."""
        if self.store is not None:
            self.store.save(self.server, tokens)
        self._tokens = tokens

    def forget(self) -> None:
        if self.store is not None:
            self.store.delete(self.server)
        self._tokens = None

    async def access_token(self, *, refused: bool = False) -> str:
        """A token good for minutes yet, for a connection the Api does not make itself (a
        stream, a socket): refreshed when it is about to run out, or when the server
        `refused` it. NotSignedIn once the session has ended."""
        tokens = self._tokens
        if tokens is None:
            raise NotSignedIn(self.server)
        if refused or tokens.expires_at - REFRESH_MARGIN_SECONDS <= time.time():
            tokens = await self._refresh(tokens)
        return tokens.access_token

    async def _refresh(self, stale: Tokens) -> Tokens:
        async with self._refreshing:
            current = self._tokens
            # Another request refreshed while this one waited: its pair is the one to use.
            if current is not None and current.refresh_token != stale.refresh_token:
                return current
            response = await self._send(
                "POST",
                "/auth/token",
                data={"grant_type": "refresh_token", "refresh_token": stale.refresh_token},
                idempotent=False,
            )
            if response.status_code in (400, 401):
                self.forget()
                raise NotSignedIn(self.server, "Your session has ended")
            if response.status_code != 200:
                raise ApiError(response.status_code, problem_of(response))
            fresh = Tokens.from_answer(response.json())
            # Stored before use: the old refresh token is spent from this moment.
            self.adopt(fresh)
            return fresh

    async def _send(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request, repeated while the server is unreachable or unavailable, if allowed."""
        attempts = ATTEMPTS if idempotent else 1
        for attempt in range(attempts):
            response: httpx.Response | None = None
            try:
                response = await self.http.request(method, path, headers=headers, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout) as error:
                # Nothing reached the server, so even a POST may be tried again.
                if attempt + 1 >= ATTEMPTS:
                    raise ServerUnavailable(
                        f"Cannot reach {self.server}: {error or type(error).__name__}."
                    ) from error
                await asyncio.sleep(retry_after(None, attempt))
                attempts = ATTEMPTS
                continue
            except httpx.TransportError as error:
                if attempt + 1 >= attempts:
                    raise ServerUnavailable(
                        f"The connection to {self.server} failed: {error or type(error).__name__}."
                    ) from error
                await asyncio.sleep(retry_after(None, attempt))
                continue
            if response.status_code == 503 and attempt + 1 < attempts:
                await asyncio.sleep(retry_after(response, attempt))
                continue
            if response.status_code == 503:
                raise ServerUnavailable(f"{self.server} is unavailable: {problem_of(response)}")
            return response
        raise AssertionError("unreachable")

    async def request(
        self,
        method: str,
        path: str,
        *,
        authenticated: bool = True,
        idempotent: bool | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """A request that succeeded (2xx or 3xx); a refusal raises `ApiError`."""
        if idempotent is None:
            idempotent = method in SAFE_METHODS or "Idempotency-Key" in (headers or {})
        merged = dict(headers or {})
        for _ in range(2):
            if authenticated:
                merged["Authorization"] = f"Bearer {await self.access_token()}"
            response = await self._send(
                method, path, idempotent=idempotent, headers=merged, **kwargs
            )
            if response.status_code == 401 and authenticated and self._tokens is not None:
                # The clock here may run ahead of the server's, or the token was revoked:
                # one refresh tells which.
                await self._refresh(self._tokens)
                continue
            break
        if response.status_code == 401 and authenticated:
            self.forget()
            raise NotSignedIn(self.server, "Your session has ended")
        if response.status_code >= 400:
            raise ApiError(response.status_code, problem_of(response))
        return response

    async def get(self, path: str, **kwargs: Any) -> Any:
        return (await self.request("GET", path, **kwargs)).json()

    async def post(self, path: str, json: JsonBody | None = None, **kwargs: Any) -> Any:
        response = await self.request("POST", path, json=json, **kwargs)
        return response.json() if response.content else None

    async def patch(self, path: str, json: JsonBody, **kwargs: Any) -> Any:
        return (await self.request("PATCH", path, json=json, **kwargs)).json()

    async def delete(self, path: str, **kwargs: Any) -> None:
        await self.request("DELETE", path, **kwargs)
