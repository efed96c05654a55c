"""The embedded stack behind `dropp serve` with no DATABASE_URL: PostgreSQL, SeaweedFS, secrets."""

import asyncio
import fcntl
import json
import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from dropp.core.config import ConfigError, Settings
from dropp.embedded.postgres import async_url, create_database, run_postgres
from dropp.embedded.seaweedfs import run_seaweedfs
from dropp.embedded.stale import prune_handle_pids, stop_stale_postmaster, stop_stale_weed
from dropp.storage.s3 import open_storage

logger = logging.getLogger(__name__)

DATABASE_NAME = "dropp"


def load_or_create_secrets(data_dir: Path) -> dict[str, str]:
    """Secrets generated on first start and kept (mode 0600) so restarts keep sessions and data."""
    path = data_dir / "secrets.json"
    if path.exists():
        stored: dict[str, str] = json.loads(path.read_text())
        return stored
    generated = {
        "secret_key": secrets.token_urlsafe(48),
        "s3_access_key_id": "dropp" + secrets.token_hex(8),
        "s3_secret_access_key": secrets.token_urlsafe(32),
    }
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(generated, handle)
    return generated


def clean_after_crash(data_dir: Path) -> None:
    """Stop what a run killed without cleaning up left in `data_dir` (we hold its lock, so
    nothing running there is another Dropp's), and say so in one line."""
    pgdata, storage_dir = data_dir / "postgres", data_dir / "s3"
    weed = stop_stale_weed(storage_dir, storage_dir / "weed.pid")
    postmaster = stop_stale_postmaster(pgdata)
    dead = prune_handle_pids(pgdata)
    done = []
    if weed:
        done.append(f"killed SeaweedFS (pid {', '.join(map(str, weed))})")
    if postmaster is not None:
        done.append(f"stopped PostgreSQL (pid {postmaster})")
    if dead:
        done.append(f"dropped dead pids {dead} from {pgdata / '.handle_pids.json'}")
    if done:
        logger.warning("cleaned up after an unclean stop in %s: %s", data_dir, "; ".join(done))


class DataDirInUse(ConfigError):
    pass


@contextmanager
def lock_data_dir(data_dir: Path) -> Iterator[None]:
    """Hold the data dir for this process: two servers on one data dir would corrupt it."""
    with (data_dir / ".lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise DataDirInUse(
                f"Another Dropp is running on {data_dir}; stop it or set DROPP_DATA_DIR."
            ) from error
        yield


@contextmanager
def run_embedded_stack(settings: Settings, database: str = DATABASE_NAME) -> Iterator[Settings]:
    """Start what `settings` leaves unconfigured; yield settings that point at it."""
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    update: dict[str, Any] = {"data_dir": data_dir}
    with ExitStack() as stack:
        stack.enter_context(lock_data_dir(data_dir))
        kept = load_or_create_secrets(data_dir)
        if settings.secret_key is None:
            update["secret_key"] = SecretStr(kept["secret_key"])
        clean_after_crash(data_dir)
        postgres = stack.enter_context(run_postgres(data_dir / "postgres"))
        create_database(postgres, database)
        update["database_url"] = async_url(postgres, database)
        if settings.embedded_storage:
            s3 = stack.enter_context(
                run_seaweedfs(
                    data_dir / "s3", kept["s3_access_key_id"], kept["s3_secret_access_key"]
                )
            )
            update |= {
                "s3_endpoint_url": s3.endpoint_url,
                "aws_access_key_id": kept["s3_access_key_id"],
                "aws_secret_access_key": SecretStr(kept["s3_secret_access_key"]),
            }
        yield settings.model_copy(update=update)


async def _prepare_bucket(settings: Settings) -> None:
    async with open_storage(settings) as storage:
        await storage.ensure_bucket()


def prepare_bucket(settings: Settings) -> None:
    """Create the bucket with versioning and CORS (idempotent)."""
    asyncio.run(_prepare_bucket(settings))
