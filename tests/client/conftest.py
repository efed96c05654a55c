"""The desktop client against a real Dropp on a loopback port, as people run it: the `dropp`
command in processes of its own, one config directory per device."""

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.core.config import Settings
from tests.conftest import TABLES
from tests.helpers import PASSWORD, Account, register_account, serve_dropp

# Generous: a command moving hundreds of MiB on a loaded 2-core machine.
COMMAND_TIMEOUT = 600


@pytest.fixture(scope="session")
def dropp_url(settings: Settings) -> Iterator[str]:
    """Dropp served by uvicorn on 127.0.0.1, for clients in other processes."""
    with serve_dropp(settings, name="dropp-client-tests", longpoll_max_seconds=30) as url:
        yield url


@pytest.fixture
async def account(dropp_url: str, engine: AsyncEngine) -> AsyncIterator[Account]:
    """A fresh member with a verified address; every row is gone after the test."""
    async with httpx.AsyncClient(base_url=dropp_url, timeout=30) as api:
        yield await register_account(
            api, f"desk-{uuid.uuid4().hex[:12]}@example.com", engine=engine
        )
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))


@dataclass
class Device:
    """One desktop: its own config directory (so its own session and device id), running
    the real `dropp` command."""

    name: str
    home: Path
    server: str
    env: dict[str, str] = field(default_factory=dict)

    @property
    def config_dir(self) -> Path:
        return self.home / "config"

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "DROPP_CONFIG_DIR": str(self.config_dir),
            "DROPP_SERVER": self.server,
            # No keyring here (headless); the file store is what such a machine uses.
            "DROPP_CREDENTIALS": "file",
            # The OS trash of this device (send2trash follows the XDG spec on Linux).
            "XDG_DATA_HOME": str(self.home / "data"),
            "COLUMNS": "200",
            **self.env,
        }

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "dropp.cli", *args]

    def run(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = COMMAND_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            self.command(*args),
            input=input,
            capture_output=True,
            text=True,
            env=self.environment(),
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"dropp {' '.join(args)} exited {done.returncode}\n"
                f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
            )
        return done

    def start(self, *args: str) -> subprocess.Popen[str]:
        """The command in the background (to kill it, or to watch)."""
        return subprocess.Popen(
            self.command(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.environment(),
        )

    def login(self, account: Account, password: str = PASSWORD) -> None:
        self.run("login", "--email", account.email, "--password-stdin", input=password + "\n")


@pytest.fixture
def make_device(tmp_path: Path, dropp_url: str) -> "DeviceFactory":
    return DeviceFactory(tmp_path, dropp_url)


@dataclass
class DeviceFactory:
    root: Path
    server: str

    def __call__(self, name: str, account: Account | None = None) -> Device:
        device = Device(name, self.root / name, self.server)
        device.home.mkdir(parents=True)
        if account is not None:
            device.login(account)
        return device


def argv(*parts: str | Path) -> Sequence[str]:
    return [str(part) for part in parts]
