"""`dropp serve` killed with SIGKILL, then started again on the same data dir."""

import json
import signal
from collections.abc import Iterator

import httpx
import psutil
import pytest

from tests.conftest import stack_dir
from tests.embedded.test_serve import Server, _signed_up, _upload


@pytest.fixture
def server() -> Iterator[Server]:
    with stack_dir() as parent:
        server = Server(parent / "crashed")
        try:
            yield server
        finally:
            server.kill_all()


def _s3_port(server: Server) -> int:
    port: int = json.loads((server.data_dir / "s3" / "ports.json").read_text())["s3.port"]
    return port


def _orphans_gone(server: Server, timeout: float) -> list[psutil.Process]:
    """What still runs in the data dir once `timeout` has passed."""
    return psutil.wait_procs(server.stack_processes(), timeout=timeout)[1]


def _assert_stops_cleanly(server: Server) -> None:
    assert server.stop() in (0, 128 + signal.SIGTERM)
    assert _orphans_gone(server, 20) == []


def test_sigkilled_twice_restarts_on_the_same_endpoint_and_leaves_nothing_running(
    server: Server,
) -> None:
    server.start()
    headers = _signed_up(server, "crash@example.com")
    file_id = _upload(server.base_url, headers, b"handed out before the crash")
    signed = httpx.get(f"{server.base_url}/download/{file_id}", headers=headers)
    url = signed.json()["url"]
    port = _s3_port(server)

    for _ in range(2):
        server.process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        server.process.wait()  # type: ignore[union-attr]
        # SeaweedFS dies with Dropp; PostgreSQL, which pg_ctl detached, is stopped by its
        # watchdog.
        assert _orphans_gone(server, 20) == []
        server.start()
        assert _s3_port(server) == port
    assert httpx.get(url).content == b"handed out before the crash"
    cleaned = [line for line in server.log_tail().splitlines() if "unclean stop" in line]
    assert cleaned, server.log_tail()

    _assert_stops_cleanly(server)


def test_a_postgres_left_running_by_a_crash_is_stopped_on_the_next_start(
    server: Server,
) -> None:
    server.start()
    assert server.process is not None
    dropp = psutil.Process(server.process.pid)
    # The OOM killer or `kill -9` of every Dropp process: the watchdog goes too, and the
    # postmaster pg_ctl detached keeps running.
    for child in dropp.children():
        if child.cmdline()[1:2] == ["-c"]:
            child.kill()
    server.process.kill()
    server.process.wait()
    postmaster = int((server.data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
    assert psutil.pid_exists(postmaster)

    server.start()

    assert not psutil.pid_exists(postmaster)
    cleaned = [line for line in server.log_tail().splitlines() if "unclean stop" in line]
    assert len(cleaned) == 1
    assert f"stopped PostgreSQL (pid {postmaster})" in cleaned[0]
    _assert_stops_cleanly(server)
