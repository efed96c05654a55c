"""The `dropp` command: serve, migrate, init-storage."""

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType

import uvicorn

from dropp.core import migrations
from dropp.core.config import ConfigError, Settings
from dropp.embedded.stack import prepare_bucket, run_embedded_stack
from dropp.main import create_app

logger = logging.getLogger("dropp")


def _exit_on_sigterm(signum: int, _: FrameType | None) -> None:
    # SystemExit unwinds the embedded stack's context managers, so children are stopped.
    raise SystemExit(128 + signum)


def _run(settings: Settings, host: str, port: int) -> None:
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=settings.log_level,
        # Which proxies may set X-Forwarded-*: uvicorn's FORWARDED_ALLOW_IPS (default loopback).
        proxy_headers=True,
        server_header=False,
    )


def serve(settings: Settings, host: str, port: int) -> None:
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
    except ConfigError as error:
        sys.exit(f"dropp: {error}")
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
