"""`dropp serve` killed with SIGKILL, then started again on the same data dir."""

import json
import signal

import httpx
import psutil

from tests.conftest import stack_dir
from tests.embedded.test_serve import Server, _sign_in, _upload, _verify_from_log
from tests.helpers import PASSWORD


def _s3_port(server: Server) -> int:
    port: int = json.loads((server.data_dir / "s3" / "ports.json").read_text())["s3.port"]
    return port


def _orphans_gone(server: Server, timeout: float) -> list[psutil.Process]:
    """What still runs in the data dir once `timeout` has passed."""
    return psutil.wait_procs(server.stack_processes(), timeout=timeout)[1]


def test_sigkilled_twice_restarts_on_the_same_endpoint_and_leaves_nothing_running() -> None:
    with stack_dir() as parent:
        server = Server(parent / "crashed")
        try:
            server.start()
            email = "crash@example.com"
            registered = httpx.post(
                f"{server.base_url}/auth/register", json={"email": email, "password": PASSWORD}
            )
            assert registered.status_code == 201
            _verify_from_log(server)
            headers = _sign_in(server.base_url, email)
            file_id = _upload(server.base_url, headers, b"handed out before the crash")
            signed = httpx.get(f"{server.base_url}/download/{file_id}", headers=headers)
            url = signed.json()["url"]
            port = _s3_port(server)

            for _ in range(2):
                server.process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
                server.process.wait()  # type: ignore[union-attr]
                # SeaweedFS dies with Dropp; PostgreSQL, which pg_ctl detached, is stopped
                # by its watchdog.
                assert _orphans_gone(server, 20) == []
                server.start()
                assert _s3_port(server) == port
            assert httpx.get(url).content == b"handed out before the crash"
            cleaned = [line for line in server.log_tail().splitlines() if "unclean stop" in line]
            assert cleaned, server.log_tail()

            assert server.stop() in (0, 128 + signal.SIGTERM)
            assert _orphans_gone(server, 20) == []
        finally:
            server.kill()
            for leftover in server.stack_processes():
                leftover.kill()


def test_a_postgres_left_running_by_a_crash_is_stopped_on_the_next_start() -> None:
    with stack_dir() as parent:
        server = Server(parent / "orphaned")
        try:
            server.start()
            assert server.process is not None
            dropp = psutil.Process(server.process.pid)
            # The OOM killer or `kill -9` of every Dropp process: the watchdog goes too, and
            # the postmaster pg_ctl detached keeps running.
            for child in dropp.children():
                if child.cmdline()[1:2] == ["-c"]:
                    child.kill()
            server.process.kill()
            server.process.wait()
            postmaster = int(
                (server.data_dir / "postgres" / "postmaster.pid").read_text().split()[0]
            )
            assert psutil.pid_exists(postmaster)

            server.start()

            assert not psutil.pid_exists(postmaster)
            cleaned = [line for line in server.log_tail().splitlines() if "unclean stop" in line]
            assert len(cleaned) == 1
            assert f"stopped PostgreSQL (pid {postmaster})" in cleaned[0]
            assert server.stop() in (0, 128 + signal.SIGTERM)
            assert _orphans_gone(server, 20) == []
        finally:
            server.kill()
            for leftover in server.stack_processes():
                leftover.kill()
