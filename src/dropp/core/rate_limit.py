"""Per-IP and per-account rate limits for the sign-in endpoints (the `limits` library).

A route opts in with one dependency, and lists `RateLimited` in `responses=` for the docs:

    from dropp.core.rate_limit import RateLimited, rate_limited

    @router.post(
        "/auth/login",
        dependencies=[rate_limited("login", account_field="email")],
        responses=responses(InvalidCredentials, RateLimited),
    )

- `group` names the counters ("login", "register", "token", "device", "password-reset", ...):
  routes sharing a group share counters, different groups never do.
- Every request is counted against `RATE_LIMIT_PER_IP` for its client address
  (`request.client.host`; behind a proxy, uvicorn's `FORWARDED_ALLOW_IPS` decides whose
  X-Forwarded-For is believed). IPv6 clients are counted per /64, the block one host gets.
- With `account_field`, the request is also counted against `RATE_LIMIT_PER_ACCOUNT` for the
  value of that field in the JSON body or form body (urlencoded or multipart, as OAuth's
  `/auth/token` sends `username`). The value is trimmed and lower-cased, then keyed with an HMAC
  of SECRET_KEY, so no address is stored. A missing or unreadable body or field skips the
  account limit; the route's own validation answers.
- Over a limit: 429 problem+json, code `rate_limited`, with `Retry-After` in seconds. Each
  request counts once per counter, whether its body is valid or not; the counter that refuses it
  does not count it (the address is counted before the account).
- Storage outage (Redis down): the limiter fails open, so sign-in stays up, and logs an ERROR
  for every request it could not count.
"""

import hashlib
import hmac
import importlib.util
import ipaddress
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import Request, params
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisSentinelStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import ConfigurationError, StorageError
from starlette.requests import HTTPConnection

from dropp.core.config import ConfigError, Settings
from dropp.core.errors import DroppError
from dropp.observability.metrics import RATE_LIMITED

logger = logging.getLogger(__name__)

NAMESPACE = "dropp"
GROUP_PATTERN = r"[a-z0-9][a-z0-9-]*"
# A Redis that does not answer must not hold sign-in for long before the limiter fails open.
REDIS_TIMEOUT_SECONDS = 1.0
# Keys in Redis read `dropp-rl:LIMITER/dropp/<group>/<ip|account>/<who>/<amount>/<n>/<unit>`.
REDIS_KEY_PREFIX = "dropp-rl"
REDIS_SCHEMES = ("redis", "rediss", "redis+sentinel")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class RateLimited(DroppError):
    status, code = 429, "rate_limited"


@dataclass(frozen=True)
class RateLimitSettings:
    """RATE_LIMIT_* checked and parsed; `storage_uri` is the async URI `limits` expects."""

    storage_uri: str
    per_ip: tuple[RateLimitItem, ...]
    per_account: tuple[RateLimitItem, ...]
    # Joins of peer-to-peer transfers, per address (P2P_JOIN_RATE): what keeps codes unguessed.
    p2p_join: tuple[RateLimitItem, ...]

    @classmethod
    def of(cls, settings: Settings) -> "RateLimitSettings":
        return cls(
            _storage_uri(settings.rate_limit_storage_url),
            _limits("RATE_LIMIT_PER_IP", settings.rate_limit_per_ip),
            _limits("RATE_LIMIT_PER_ACCOUNT", settings.rate_limit_per_account),
            _limits("P2P_JOIN_RATE", settings.p2p_join_rate),
        )


def _limits(name: str, value: str) -> tuple[RateLimitItem, ...]:
    try:
        items = tuple(parse_many(value))
    except ValueError:
        items = ()
    if not items or any(item.amount < 1 for item in items):
        raise ConfigError(
            f"{name} {value!r} is not a rate limit: use the `limits` notation, such as "
            "'30/minute', '5 per 10 seconds' or '10/minute;100/day'."
        )
    return items


def _storage_uri(url: str) -> str:
    scheme = url.partition("://")[0].lower()
    if scheme == "memory":
        return "async+memory://"
    if scheme not in REDIS_SCHEMES:
        # The scheme only: the rest of the URL may hold a password.
        given = f"{scheme}://" if "://" in url else "no scheme"
        raise ConfigError(
            "RATE_LIMIT_STORAGE_URL must be memory:// or a redis://, rediss:// or "
            f"redis+sentinel:// URL, not {given}."
        )
    if importlib.util.find_spec("redis") is None:
        raise ConfigError(
            "RATE_LIMIT_STORAGE_URL names Redis, but the redis client is not installed: "
            "pip install 'dropp[redis]'."
        )
    return f"async+{url}"


def check_rate_limit_settings(settings: Settings) -> None:
    """Refuse RATE_LIMIT_* values the limiter could not run with."""
    RateLimitSettings.of(settings)


class RateLimiter:
    """Moving-window counters per endpoint group, per client address and per account."""

    def __init__(self, storage: Storage, config: RateLimitSettings, secret: bytes) -> None:
        self.storage = storage
        self.config = config
        self._strategy = MovingWindowRateLimiter(storage)
        # A key of its own, so account keys say nothing about tokens signed with SECRET_KEY.
        self._account_key = hmac.new(secret, b"dropp rate-limit accounts", hashlib.sha256).digest()

    def account_key(self, account: str) -> str:
        normalized = account.strip().lower()
        return hmac.new(self._account_key, normalized.encode(), hashlib.sha256).hexdigest()

    async def check(
        self,
        group: str,
        client: str,
        account: str | None = None,
        *,
        per_ip: tuple[RateLimitItem, ...] | None = None,
    ) -> None:
        """Count one request; raise `RateLimited` if a limit is already reached. `per_ip`
        replaces RATE_LIMIT_PER_IP for a group with a limit of its own."""
        limits = self.config.per_ip if per_ip is None else per_ip
        counters = [(item, "ip", client) for item in limits]
        if account is not None:
            who = self.account_key(account)
            counters += [(item, "account", who) for item in self.config.per_account]
        for item, kind, who in counters:
            identifiers = (NAMESPACE, group, kind, who)
            try:
                allowed = await self._strategy.hit(item, *identifiers)
            except (StorageError, OSError) as error:
                logger.error(
                    "rate limit storage failed, %s request allowed uncounted: %r", group, error
                )
                return
            if not allowed:
                RATE_LIMITED.labels(group).inc()
                retry_after = await self._retry_after(item, identifiers)
                logger.info("rate limit %s reached for %s on %s", item, kind, group)
                raise RateLimited(
                    _refusal(kind, retry_after),
                    headers={"Retry-After": str(retry_after)},
                    retry_after=retry_after,
                )

    async def _retry_after(self, item: RateLimitItem, identifiers: tuple[str, ...]) -> int:
        """Whole seconds until the oldest hit leaves the window and frees a slot."""
        window = item.get_expiry()
        try:
            stats = await self._strategy.get_window_stats(item, *identifiers)
        except (StorageError, OSError):
            return window
        return min(window, max(1, math.ceil(stats.reset_time - time.time())))


def _refusal(kind: str, retry_after: int) -> str:
    subject = "from this address" if kind == "ip" else "for this account"
    return f"Too many requests {subject}. Try again in {retry_after} seconds."


def _open_storage(config: RateLimitSettings) -> Storage:
    uri = config.storage_uri
    if uri == "async+memory://":
        return MemoryStorage()
    # redis-py rather than limits' default coredis: one Redis client library for the project.
    options: dict[str, Any] = {
        "wrap_exceptions": True,
        "implementation": "redispy",
        "key_prefix": REDIS_KEY_PREFIX,
        "socket_timeout": REDIS_TIMEOUT_SECONDS,
        "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
    }
    try:
        if uri.startswith("async+redis+sentinel://"):
            timeouts: dict[str, float | str | bool] = {
                "socket_timeout": REDIS_TIMEOUT_SECONDS,
                "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
            }
            return RedisSentinelStorage(uri, sentinel_kwargs=timeouts, **options)
        return RedisStorage(uri, **options)
    except ConfigurationError as error:
        raise ConfigError(f"RATE_LIMIT_STORAGE_URL cannot be used: {error}") from error


async def _close_storage(storage: Storage) -> None:
    # limits leaves the Redis clients it made open; close their connection pools here.
    if not isinstance(storage, RedisStorage):
        return
    bridge: Any = storage.bridge
    if isinstance(storage, RedisSentinelStorage):
        await bridge.storage.aclose()
        await bridge.storage_replica.aclose()
        await bridge.sentinel.aclose()
    else:
        await bridge.storage.aclose()


@asynccontextmanager
async def open_rate_limiter(settings: Settings) -> AsyncIterator[RateLimiter]:
    """The app's limiter, for the lifespan; a storage that does not answer yet is logged."""
    config = RateLimitSettings.of(settings)
    assert settings.secret_key is not None
    storage = _open_storage(config)
    try:
        if not await storage.check():
            logger.error(
                "rate limit storage does not answer; sign-in stays open, uncounted, until it does"
            )
        yield RateLimiter(storage, config, settings.secret_key.get_secret_value().encode())
    finally:
        await _close_storage(storage)


def client_address(request: HTTPConnection) -> str:
    """The client's address as counted: IPv4 as is, IPv6 by its /64."""
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


async def _body_field(request: Request, field: str) -> str | None:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    try:
        if media_type in FORM_TYPES:
            # FastAPI has parsed (and cached) the form already on form routes; max_files=0
            # keeps a parse of our own from spooling uploads nobody would close.
            data: object = await request.form(max_files=0)
        else:
            # Starlette keeps what `request.json()` parsed, and FastAPI parses JSON bodies
            # through it before dependencies run: the body is parsed once, not here again.
            data = await request.json() if await request.body() else None
    except Exception:
        # An unreadable body is the route's to refuse, with its own validation error.
        return None
    value = data.get(field) if isinstance(data, Mapping) else None
    if not isinstance(value, str) or not value.strip():
        return None
    return value


def rate_limited(group: str, *, account_field: str | None = None) -> params.Depends:
    """A route dependency counting requests per IP, and per account when `account_field`
    names the body field that identifies it."""
    if not re.fullmatch(GROUP_PATTERN, group):
        raise ValueError(f"rate limit group {group!r} must match {GROUP_PATTERN}")

    async def limit(request: Request) -> None:
        limiter: RateLimiter = request.state.rate_limiter
        account = await _body_field(request, account_field) if account_field else None
        await limiter.check(group, client_address(request), account)

    limit.__name__ = f"rate_limit_{group.replace('-', '_')}"
    return params.Depends(limit)
