"""`dropp users create-admin` as an operator runs it: a real process on the test database, or on
an embedded stack of its own."""

import asyncio
import os
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.core.config import Settings
from tests.conftest import stack_dir
from tests.embedded.test_serve import CONFIG_VARIABLES, Server
from tests.helpers import PASSWORD, Account, assert_problem, register_account

NEW_PASSWORD = "a brand new passphrase"
COMMAND_TIMEOUT_SECONDS = 180
# Runs the command on a pseudo-terminal of its own, as when an operator types it.
ON_A_TERMINAL = "import pty, sys; sys.exit(pty.spawn(sys.argv[1:]) >> 8)"


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def command_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(CONFIG_VARIABLES)}
    return env | {"LOG_LEVEL": "warning", **values}


@pytest.fixture
def server_env(settings: Settings) -> dict[str, str]:
    """Server mode: DATABASE_URL names the test database."""
    assert settings.database_url is not None
    return command_env(DATABASE_URL=settings.database_url)


@pytest.fixture
async def api(client: httpx.AsyncClient) -> httpx.AsyncClient:
    # `client` also empties the tables after the test, including what the command created.
    return client


async def create_admin(
    env: dict[str, str], cwd: Path, *args: str, stdin: bytes | None = None
) -> Outcome:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dropp",
        "users",
        "create-admin",
        *args,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), COMMAND_TIMEOUT_SECONDS)
    assert process.returncode is not None
    return Outcome(process.returncode, out.decode(), err.decode())


async def user_row(engine: AsyncEngine, email: str) -> dict[str, Any] | None:
    async with engine.connect() as connection:
        row = await connection.execute(
            text(
                "SELECT role, is_active, email_verified_at IS NOT NULL AS verified, "
                "password_hash IS NOT NULL AS has_password FROM user_account WHERE email = :email"
            ),
            {"email": email},
        )
    found = row.mappings().one_or_none()
    return dict(found) if found else None


async def sign_in(api: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await api.post("/auth/login", json={"email": email, "password": password})


async def can_administer(api: httpx.AsyncClient, signed_in: httpx.Response) -> bool:
    token = signed_in.json()["access_token"]
    listed = await api.get("/admin/users", headers={"Authorization": f"Bearer {token}"})
    return listed.status_code == 200


ADMIN = {"role": "admin", "is_active": True, "verified": True}


# --- server mode (DATABASE_URL) -----------------------------------------------------------------


async def test_creates_an_admin_with_a_password_from_stdin(
    api: httpx.AsyncClient, engine: AsyncEngine, server_env: dict[str, str], tmp_path: Path
) -> None:
    done = await create_admin(
        server_env, tmp_path, "  Root@Example.COM ", "--password-stdin", stdin=b"s3cret-pass\n"
    )

    assert done.returncode == 0, done.stderr
    assert "Created admin account root@example.com" in done.stdout
    assert await user_row(engine, "root@example.com") == {**ADMIN, "has_password": True}
    signed_in = await sign_in(api, "root@example.com", "s3cret-pass")
    assert signed_in.status_code == 200, signed_in.text
    assert await can_administer(api, signed_in)


async def test_without_a_terminal_or_the_flag_the_account_has_no_password(
    api: httpx.AsyncClient, engine: AsyncEngine, server_env: dict[str, str], tmp_path: Path
) -> None:
    done = await create_admin(server_env, tmp_path, "root@example.com")

    assert done.returncode == 0, done.stderr
    assert "Google" in done.stdout
    assert "--password-stdin" in done.stdout
    assert await user_row(engine, "root@example.com") == {**ADMIN, "has_password": False}
    assert_problem(await sign_in(api, "root@example.com", ""), 401, "invalid_credentials")


async def test_promotes_a_verified_member_and_keeps_its_password_and_sessions(
    api: httpx.AsyncClient,
    engine: AsyncEngine,
    server_env: dict[str, str],
    tmp_path: Path,
    alice: Account,
) -> None:
    done = await create_admin(server_env, tmp_path, alice.email)

    assert done.returncode == 0, done.stderr
    assert f"Made {alice.email} an admin" in done.stdout
    assert "password is unchanged" in done.stdout
    assert await user_row(engine, alice.email) == {**ADMIN, "has_password": True}
    refreshed = await api.post("/auth/refresh", json={"refresh_token": alice.refresh_token})
    assert refreshed.status_code == 200, refreshed.text
    assert await can_administer(api, await sign_in(api, alice.email, PASSWORD))


async def test_a_password_from_stdin_replaces_the_old_one_and_signs_out(
    api: httpx.AsyncClient, server_env: dict[str, str], tmp_path: Path, alice: Account
) -> None:
    done = await create_admin(
        server_env, tmp_path, alice.email, "--password-stdin", stdin=NEW_PASSWORD.encode()
    )

    assert done.returncode == 0, done.stderr
    assert_problem(await sign_in(api, alice.email, PASSWORD), 401, "invalid_credentials")
    assert (await sign_in(api, alice.email, NEW_PASSWORD)).status_code == 200
    stale = await api.post("/auth/refresh", json={"refresh_token": alice.refresh_token})
    assert_problem(stale, 401, "invalid_refresh_token")


async def test_an_unverified_account_loses_the_password_someone_else_may_have_set(
    api: httpx.AsyncClient, engine: AsyncEngine, server_env: dict[str, str], tmp_path: Path
) -> None:
    # Anyone could have registered the address before the operator vouched for it.
    squatter = await register_account(api, "boss@example.com")

    done = await create_admin(server_env, tmp_path, "boss@example.com")

    assert done.returncode == 0, done.stderr
    assert "never been verified" in done.stdout
    assert await user_row(engine, "boss@example.com") == {**ADMIN, "has_password": False}
    assert_problem(await sign_in(api, squatter.email, PASSWORD), 401, "invalid_credentials")
    stale = await api.post("/auth/refresh", json={"refresh_token": squatter.refresh_token})
    assert_problem(stale, 401, "invalid_refresh_token")


async def test_running_it_again_is_harmless(
    api: httpx.AsyncClient, engine: AsyncEngine, server_env: dict[str, str], tmp_path: Path
) -> None:
    first = await create_admin(
        server_env, tmp_path, "root@example.com", "--password-stdin", stdin=b"s3cret-pass"
    )
    again = await create_admin(server_env, tmp_path, "root@example.com")

    assert (first.returncode, again.returncode) == (0, 0), again.stderr
    assert "already an admin" in again.stdout
    assert await user_row(engine, "root@example.com") == {**ADMIN, "has_password": True}
    assert (await sign_in(api, "root@example.com", "s3cret-pass")).status_code == 200


@pytest.mark.parametrize(
    ("email", "stdin", "complaint"),
    [
        pytest.param("root@example.com", b"short\n", "at least 8", id="short-password"),
        pytest.param("root@example.com", b"", "at least 8", id="empty-stdin"),
        pytest.param("not-an-address", b"s3cret-pass\n", "email", id="bad-email"),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_stored(
    api: httpx.AsyncClient,
    engine: AsyncEngine,
    server_env: dict[str, str],
    tmp_path: Path,
    email: str,
    stdin: bytes,
    complaint: str,
) -> None:
    done = await create_admin(server_env, tmp_path, email, "--password-stdin", stdin=stdin)

    assert done.returncode != 0
    assert done.stderr.startswith("dropp: ")
    assert complaint in done.stderr
    async with engine.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM user_account")) == 0


async def test_an_unreachable_database_is_reported(tmp_path: Path) -> None:
    env = command_env(DATABASE_URL=f"postgresql://nobody@/dropp?host={tmp_path}")

    done = await create_admin(env, tmp_path, "root@example.com")

    assert done.returncode != 0
    assert done.stderr.startswith("dropp: ")
    assert "DATABASE_URL" in done.stderr


async def test_an_unmigrated_database_is_reported(settings: Settings, tmp_path: Path) -> None:
    assert settings.database_url is not None
    # The server's maintenance database exists but holds none of Dropp's tables.
    url = settings.database_url.replace("/dropp_test?", "/postgres?")

    done = await create_admin(command_env(DATABASE_URL=url), tmp_path, "root@example.com")

    assert done.returncode != 0
    assert 'relation "user_account" does not exist' in done.stderr
    assert "dropp migrate" in done.stderr


# --- on a terminal: the password is prompted for, twice ----------------------------------------


async def read_until(stream: asyncio.StreamReader, marker: bytes) -> bytes:
    seen = b""
    while marker not in seen:
        chunk = await asyncio.wait_for(stream.read(4096), COMMAND_TIMEOUT_SECONDS)
        assert chunk, f"the command ended before printing {marker!r}: {seen!r}"
        seen += chunk
    return seen


async def prompted(env: dict[str, str], cwd: Path, email: str, answers: list[bytes]) -> Outcome:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        ON_A_TERMINAL,
        sys.executable,
        "-m",
        "dropp",
        "users",
        "create-admin",
        email,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    transcript = b""
    # getpass discards what was typed before its prompt, so answer each prompt as it appears.
    for prompt, answer in zip((b"Password (", b"again"), answers, strict=True):
        transcript += await read_until(process.stdout, prompt)
        process.stdin.write(answer + b"\n")
        await process.stdin.drain()
    process.stdin.close()
    rest = await asyncio.wait_for(process.stdout.read(), COMMAND_TIMEOUT_SECONDS)
    await process.wait()
    assert process.returncode is not None
    return Outcome(process.returncode, (transcript + rest).decode(errors="replace"), "")


async def test_on_a_terminal_the_password_is_asked_twice(
    api: httpx.AsyncClient, engine: AsyncEngine, server_env: dict[str, str], tmp_path: Path
) -> None:
    secret = b"typed at the prompt"

    done = await prompted(server_env, tmp_path, "root@example.com", [secret, secret])

    assert done.returncode == 0, done.stdout
    assert secret.decode() not in done.stdout, "the password must not be echoed"
    assert await user_row(engine, "root@example.com") == {**ADMIN, "has_password": True}
    assert (await sign_in(api, "root@example.com", secret.decode())).status_code == 200


async def test_on_a_terminal_mismatched_passwords_store_nothing(
    api: httpx.AsyncClient, engine: AsyncEngine, server_env: dict[str, str], tmp_path: Path
) -> None:
    done = await prompted(
        server_env, tmp_path, "root@example.com", [b"first passphrase", b"second passphrase"]
    )

    assert done.returncode != 0
    assert "do not match" in done.stdout
    assert await user_row(engine, "root@example.com") is None


# --- embedded mode (no DATABASE_URL) ------------------------------------------------------------


@pytest.fixture
def embedded_server() -> Iterator[Server]:
    with stack_dir() as parent:
        server = Server(parent / "data")
        server.data_dir.mkdir()
        yield server
        server.kill()
        for leftover in server.stack_processes():
            leftover.kill()


async def test_on_the_embedded_stack_the_admin_can_sign_in_to_the_server(
    embedded_server: Server,
) -> None:
    env = command_env(DROPP_DATA_DIR=str(embedded_server.data_dir))

    done = await create_admin(
        env,
        embedded_server.data_dir.parent,
        "root@example.com",
        "--password-stdin",
        stdin=b"s3cret-pass\n",
    )

    assert done.returncode == 0, done.stderr
    assert "Created admin account root@example.com" in done.stdout
    # The command stopped the stack it started.
    assert psutil.wait_procs(embedded_server.stack_processes(), timeout=15)[1] == []
    await asyncio.to_thread(embedded_server.start)
    async with httpx.AsyncClient(base_url=embedded_server.base_url, timeout=30) as api:
        signed_in = await sign_in(api, "root@example.com", "s3cret-pass")
        assert signed_in.status_code == 200, signed_in.text
        assert await can_administer(api, signed_in)
        assert signed_in.json()["access_token"]
    assert await asyncio.to_thread(embedded_server.stop) in (0, 128 + signal.SIGTERM)
