"""The client side of `dropp`: shared options, output and exit codes.

Every client command runs through `run()`, which turns a `ClientError` into its one-line
message and exit code. Output follows the terminal: rich tables and progress bars on a TTY,
plain lines otherwise, JSON with `--json`.

Exit codes: 0 done; 1 an error the message explains; 2 a usage mistake; 3 not signed in (or
the session ended); 4 not found; 5 a conflict, or sync could not converge; 6 sync stopped
before a mass delete; 7 the server is unreachable or unavailable; 130 interrupted.
"""

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console

from dropp.client.api import Api
from dropp.client.config import ClientConfig, config_dir, resolve_server
from dropp.client.credentials import CredentialStore, open_store
from dropp.client.errors import ClientError

CLIENT_PANEL = "Client commands"
EXIT_INTERRUPTED = 130

T = TypeVar("T")

# For Annotated parameters: `server: Annotated[str | None, ServerOption] = None`.
ServerOption = typer.Option(
    "--server", envvar="DROPP_SERVER", help="The Dropp server's URL (saved by login)."
)
JsonOption = typer.Option("--json", help="Print JSON instead of a table.")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def interactive() -> bool:
    """Progress bars and tables only for a person at a terminal; pipes get plain lines."""
    return sys.stdout.isatty()


@dataclass
class ClientContext:
    """What one command needs: this device's directory, its config and the chosen server."""

    server_option: str | None = None

    @cached_property
    def directory(self) -> Path:
        return config_dir()

    @cached_property
    def config(self) -> ClientConfig:
        return ClientConfig.load(self.directory)

    @cached_property
    def store(self) -> CredentialStore:
        return open_store(self.config.device_id, self.directory)

    @property
    def server(self) -> str:
        server = resolve_server(self.server_option, self.config)
        if server is None:
            raise ClientError("No server chosen: run `dropp login --server URL` first.")
        return server

    def api(self, server: str | None = None) -> Api:
        return Api(server or self.server, self.store)


def run(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a command's coroutine; failures become one line on stderr and an exit code."""
    try:
        return asyncio.run(work())
    except ClientError as error:
        err.print(f"dropp: {error}", markup=False, highlight=False)
        raise typer.Exit(error.exit_code) from None
    except KeyboardInterrupt:
        err.print("dropp: interrupted", highlight=False)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")


def human_size(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
