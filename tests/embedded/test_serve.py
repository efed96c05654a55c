"""`dropp serve` as a user runs it: a real process on its embedded stack."""

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from dropp.embedded.seaweedfs import free_port
from tests.conftest import stack_dir
from tests.helpers import PASSWORD

START_TIMEOUT_SECONDS = 120
VERIFY_LINK = re.compile(r"(?P<base>http://[0-9.:]+)/auth/verify-email\?token=(?P<token>[\w-]+)")
CONFIG_VARIABLES = ("DATABASE_URL", "SECRET_KEY", "S3_", "AWS_", "DROPP_")


class Server:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"{data_dir.name}.log"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(CONFIG_VARIABLES)}
        env |= {"DROPP_DATA_DIR": str(self.data_dir), "LOG_LEVEL": "warning"}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dropp", "serve", "--port", str(self.port)],
                cwd=self.data_dir.parent,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"dropp serve exited:\n{self.log_tail()}"
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise AssertionError(f"dropp serve did not become ready:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def kill_all(self) -> None:
        """The server and whatever of its stack still runs, as a failed test may leave them."""
        self.kill()
        for leftover in self.stack_processes():
            leftover.kill()

    def stack_processes(self) -> list[psutil.Process]:
        """PostgreSQL and SeaweedFS processes working in this server's data dir."""
        found = []
        for process in psutil.process_iter(["cmdline"]):
            cmdline = " ".join(process.info["cmdline"] or [])
            if str(self.data_dir) in cmdline and process.pid != os.getpid():
                found.append(process)
        return found


@pytest.fixture
def servers() -> Iterator[tuple[Server, Server]]:
    with stack_dir() as parent:
        pair = (Server(parent / "first"), Server(parent / "second"))
        yield pair
        for server in pair:
            server.kill_all()


def _verify_from_log(server: Server) -> None:
    """With no SMTP server, `dropp serve` logs the verification link; follow it as a person."""
    deadline = time.monotonic() + 10
    while (found := VERIFY_LINK.search(server.log.read_text(errors="replace"))) is None:
        assert time.monotonic() < deadline, f"no verification link logged:\n{server.log_tail()}"
        time.sleep(0.1)
    assert found["base"] == server.base_url
    verified = httpx.post(f"{server.base_url}/auth/verify-email", data={"token": found["token"]})
    assert verified.status_code == 200, verified.text


def _sign_in(base_url: str, email: str) -> dict[str, str]:
    tokens = httpx.post(f"{base_url}/auth/login", json={"email": email, "password": PASSWORD})
    assert tokens.status_code == 200, tokens.text
    return {"Authorization": f"Bearer {tokens.json()['access_token']}"}


def _signed_up(server: Server, email: str) -> dict[str, str]:
    """Register, verify as a person does, sign in: the headers of the new account."""
    registered = httpx.post(
        f"{server.base_url}/auth/register", json={"email": email, "password": PASSWORD}
    )
    assert registered.status_code == 201, registered.text
    _verify_from_log(server)
    return _sign_in(server.base_url, email)


def _upload(base_url: str, headers: dict[str, str], data: bytes) -> str:
    started = httpx.post(
        f"{base_url}/upload/", json={"filename": "kept.txt", "size": len(data)}, headers=headers
    ).json()
    form = started["upload"]
    posted = httpx.post(form["url"], data=form["fields"], files={"file": ("kept.txt", data)})
    assert posted.status_code == 204, posted.text
    completed = httpx.post(f"{base_url}/upload/{started['file_id']}/complete", headers=headers)
    assert completed.status_code == 200, completed.text
    file_id: str = started["file_id"]
    return file_id


def _download(base_url: str, headers: dict[str, str], file_id: str) -> bytes:
    signed = httpx.get(f"{base_url}/download/{file_id}", headers=headers).json()
    return httpx.get(signed["url"]).content


def test_two_servers_run_side_by_side_stop_cleanly_and_keep_data(
    servers: tuple[Server, Server],
) -> None:
    first, second = servers
    first.start()
    second.start()
    email = "keeper@example.com"
    file_id = _upload(first.base_url, _signed_up(first, email), b"survives restarts")
    assert first.stack_processes(), "the embedded stack should run in the data dir"

    exit_code = first.stop()

    assert exit_code in (0, 128 + signal.SIGTERM)
    assert psutil.wait_procs(first.stack_processes(), timeout=15)[1] == []
    assert httpx.get(f"{second.base_url}/readyz").status_code == 200
    first.start()
    headers = _sign_in(first.base_url, email)
    assert _download(first.base_url, headers, file_id) == b"survives restarts"
    assert second.stop() in (0, 128 + signal.SIGTERM)
