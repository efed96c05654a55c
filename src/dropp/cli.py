"""The `dropp` command: serve, migrate, init-storage, sweep, users."""

import argparse
import asyncio
import gc
import getpass
import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType

import uvicorn
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from dropp.admin import service as admin_service
from dropp.admin.schemas import AdminCreate
from dropp.admin.service import PasswordChange
from dropp.auth import passwords
from dropp.core import log_redaction, migrations
from dropp.core.config import ConfigError, Settings
from dropp.core.db import create_engine, create_sessionmaker
from dropp.embedded.stack import prepare_bucket, run_embedded_stack
from dropp.main import create_app
from dropp.sweeper.runner import sweep_once

logger = logging.getLogger("dropp")


class CommandError(Exception):
    """The command cannot do what was asked; the message says why."""


def _exit_on_sigterm(signum: int, _: FrameType | None) -> None:
    # SystemExit unwinds the embedded stack's context managers, so children are stopped.
    raise SystemExit(128 + signum)


def _trusted_proxies(settings: Settings) -> list[str] | str | None:
    # uvicorn trusts everyone only for "*" on its own; None leaves the middleware unused.
    if "*" in settings.forwarded_allow_ips:
        return "*"
    return list(settings.forwarded_allow_ips) or None


def _run(settings: Settings, host: str, port: int) -> None:
    app = create_app(settings)
    # Everything imported and built so far lives as long as the server. Frozen, the cyclic
    # collector stops walking it on every full collection: those took 60-110 ms each under
    # a 1,000-entry listing's garbage, the p99 of every route; frozen, about 3 ms.
    gc.collect()
    gc.freeze()
    # Kept through uvicorn's logging setup, which configures this logger but keeps its filters.
    log_redaction.install()
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=settings.log_level,
        # X-Forwarded-* is believed only from the proxies FORWARDED_ALLOW_IPS names (none by
        # default). Passed explicitly: left unset, uvicorn would trust loopback, and anyone on
        # the machine could choose the address rate limits count.
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=_trusted_proxies(settings),
        server_header=False,
    )


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
        _run(settings, host, port)
        return
    with run_embedded_stack(settings) as embedded:
        migrations.upgrade(embedded)
        if settings.embedded_storage:
            prepare_bucket(embedded)
        logger.info("embedded stack ready (data in %s)", embedded.data_dir)
        _run(embedded, host, port)


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
        with run_embedded_stack(settings) as embedded:
            migrations.upgrade(embedded)
            grant = asyncio.run(_grant_admin(embedded, request))
    else:
        grant = asyncio.run(_grant_admin(settings, request))
    sys.stdout.write(_describe(grant) + "\n")


def sweep(settings: Settings) -> None:
    """Sweep once, as every API process does every SWEEP_INTERVAL_SECONDS, and say what
    was done."""
    if settings.embedded:
        with run_embedded_stack(settings) as embedded:
            migrations.upgrade(embedded)
            if settings.embedded_storage:
                prepare_bucket(embedded)
            summary = asyncio.run(sweep_once(embedded))
    else:
        settings.require_database()
        summary = asyncio.run(sweep_once(settings))
    sys.stdout.write(f"Sweep done: {summary.describe()}.\n")
    if summary.errors:
        raise CommandError(f"{summary.errors} sweep task(s) failed; see the log above.")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="dropp", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser(
        "serve", help="run the API (on an embedded stack when DATABASE_URL is unset)"
    )
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=8000)
    migrate_parser = commands.add_parser("migrate", help="apply migrations to DATABASE_URL")
    migrate_parser.add_argument("--revision", default="head")
    commands.add_parser(
        "init-storage", help="create AWS_S3_BUCKET with versioning and CORS (idempotent)"
    )
    commands.add_parser(
        "sweep",
        help="clean up once: expired uploads and files, stale multipart uploads, "
        "unreferenced objects, old sign-in rows",
    )
    users_parser = commands.add_parser("users", help="manage accounts")
    users_commands = users_parser.add_subparsers(dest="users_command", required=True)
    create_admin_parser = users_commands.add_parser(
        "create-admin",
        help="create an admin account with a verified email, or make an existing account admin",
        description="Without --password-stdin, prompts for a password on a terminal; with no "
        "terminal, the account gets no password and signs in with Google only.",
    )
    create_admin_parser.add_argument("email")
    create_admin_parser.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    args = parser.parse_args(argv)

    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        if args.command == "serve":
            serve(settings, args.host, args.port)
        elif args.command == "migrate":
            settings.require_database()
            migrations.upgrade(settings, args.revision)
        elif args.command == "init-storage":
            prepare_bucket(settings)
        elif args.command == "sweep":
            sweep(settings)
        elif args.command == "users" and args.users_command == "create-admin":
            create_admin(settings, args.email, args.password_stdin)
    except (ConfigError, CommandError) as error:
        sys.exit(f"dropp: {error}")
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
