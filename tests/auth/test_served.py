"""What only a real `dropp serve` shows: which X-Forwarded-For it believes, and what its access
log prints. Each server is the `dropp` command in its own process, on the test database and
storage, spoken to over loopback HTTP."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from dropp.core.config import Settings
from tests.auth.conftest import free_port

LIMIT = 3
STARTUP_SECONDS = 60
SERVE = (sys.executable, "-m", "dropp.cli", "serve", "--host", "127.0.0.1")


@dataclass
class Served:
    base_url: str
    log: Path
    process: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _environment(settings: Settings, **more: str) -> dict[str, str]:
    assert settings.secret_key is not None
    assert settings.aws_secret_access_key is not None
    assert settings.database_url is not None
    assert settings.s3_endpoint_url is not None
    # Only what the command needs (and the code under test): none of the shell's own Dropp
    # settings leaks in.
    names = ("PATH", "HOME", "LANG", "PYTHONPATH")
    kept = {name: os.environ[name] for name in names if name in os.environ}
    return {
        **kept,
        "DATABASE_URL": settings.database_url,
        "S3_ENDPOINT_URL": settings.s3_endpoint_url,
        "AWS_S3_BUCKET": settings.aws_s3_bucket,
        "AWS_ACCESS_KEY_ID": settings.aws_access_key_id or "",
        "AWS_SECRET_ACCESS_KEY": settings.aws_secret_access_key.get_secret_value(),
        "SECRET_KEY": settings.secret_key.get_secret_value(),
        "SWEEP_INTERVAL_SECONDS": "0",
        "RATE_LIMIT_PER_IP": f"{LIMIT}/minute",
        "RATE_LIMIT_PER_ACCOUNT": "1000/minute",
        "LOG_LEVEL": "info",
        **more,
    }


def _start(settings: Settings, directory: Path, **more: str) -> Served:
    port = free_port()
    log = directory / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*SERVE, "--port", str(port)],
            cwd=directory,
            env=_environment(settings, **more),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    return Served(f"http://127.0.0.1:{port}", log, process)


def _wait_ready(served: Served) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            pytest.fail(f"dropp serve exited:\n{served.log_text()}")
        try:
            if httpx.get(f"{served.base_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"dropp serve did not start:\n{served.log_text()}")


@pytest.fixture(scope="module")
def servers(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Served, Served]]:
    """Two servers: one as shipped, one told to trust a proxy on loopback."""
    plain = _start(settings, tmp_path_factory.mktemp("plain"))
    behind_proxy = _start(
        settings, tmp_path_factory.mktemp("proxied"), FORWARDED_ALLOW_IPS="127.0.0.1"
    )
    try:
        _wait_ready(plain)
        _wait_ready(behind_proxy)
        yield plain, behind_proxy
    finally:
        for served in (plain, behind_proxy):
            served.process.terminate()
        for served in (plain, behind_proxy):
            served.process.wait(timeout=30)


def _logins_from_spoofed_addresses(served: Served) -> list[int]:
    answers = []
    for number in range(LIMIT + 1):
        answer = httpx.post(
            f"{served.base_url}/auth/login",
            json={"email": f"nobody{number}@example.com", "password": "wrong password"},
            headers={"X-Forwarded-For": f"198.51.100.{number + 1}"},
        )
        answers.append(answer.status_code)
    return answers


def test_a_forwarded_for_header_does_not_choose_the_rate_limit_key(
    servers: tuple[Served, Served],
) -> None:
    plain, _ = servers

    answers = _logins_from_spoofed_addresses(plain)

    # Every attempt is counted under 127.0.0.1, whatever address it claims.
    assert answers == [401] * LIMIT + [429]


def test_a_configured_proxy_is_believed(servers: tuple[Served, Served]) -> None:
    _, behind_proxy = servers

    answers = _logins_from_spoofed_addresses(behind_proxy)

    # The proxy on loopback names a new client each time: each has its own counter.
    assert answers == [401] * (LIMIT + 1)


SECRETS = {
    "share": "ShareLinkSecretTokenAAAAAAAAAAAAAAAAAAAAAA1",
    "request": "FileRequestSecretTokenBBBBBBBBBBBBBBBBBBBB2",
    "verify": "EmailVerificationSecretCCCCCCCCCCCCCCCCCCC3",
    "code": "AuthorizationCodeSecretDDDDDDDDDDDDDDDDDDD4",
    "state": "SignInStateSecretEEEEEEEEEEEEEEEEEEEEEEEEE5",
    "encoded": "EncodedNameSecretFFFFFFFFFFFFFFFFFFFFFFFFF6",
}


def test_the_access_log_prints_no_url_secrets(servers: tuple[Served, Served]) -> None:
    served, _ = servers
    paths = [
        f"/s/{SECRETS['share']}",
        f"/s/{SECRETS['share']}/download?redirect=false",
        f"/r/{SECRETS['request']}",
        f"/auth/verify-email?token={SECRETS['verify']}",
        f"/auth/google/callback?code={SECRETS['code']}&state={SECRETS['state']}",
        f"/auth/password-reset/confirm?tok%65n={SECRETS['encoded']}",
    ]
    with httpx.Client(base_url=served.base_url) as browser:
        for path in paths:
            browser.get(path)
        # A marker after them all: once it is logged, so are they.
        browser.get("/healthz?marker=done")
    deadline = time.monotonic() + 10
    while "marker=done" not in served.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)

    log = served.log_text()
    assert "marker=done" in log
    for secret in SECRETS.values():
        assert secret not in log
    assert '"GET /s/… HTTP/1.1"' in log
    assert '"GET /s/…/download?redirect=false HTTP/1.1"' in log
    assert '"GET /r/… HTTP/1.1"' in log
    assert '"GET /auth/verify-email?token=… HTTP/1.1"' in log
    assert '"GET /auth/google/callback?code=…&state=… HTTP/1.1"' in log
    assert '"GET /auth/password-reset/confirm?tok%65n=… HTTP/1.1"' in log
