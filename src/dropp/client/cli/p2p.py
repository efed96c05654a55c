"""`dropp send` and `dropp receive`: one file between two machines, peer to peer when they
can reach each other, through the server's storage otherwise (docs/p2p.md).

`send` prints a code and waits; `receive CODE` on the other machine takes the file. With
`--json` each prints one JSON object a line: `send` its `{"code": ...}` as soon as the code
exists, and both the outcome at the end (`{"via": "p2p" | "cloud", "sha256": ...}`), so a
script can read the code while the command still runs. Notices then go to stderr.
"""

import asyncio
import contextlib
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from dropp.client.cli.app import (
    ClientContext,
    ServerOption,
    err,
    human_size,
    interactive,
    out,
    run,
)
from dropp.client.config import normalize_server, resolve_server
from dropp.client.errors import ClientError
from dropp.client.p2p import require
from dropp.client.p2p.protocol import (
    DEFAULT_P2P_TIMEOUT,
    HOST_ADDRESSES_ENV,
    Outcome,
    Route,
    Via,
    host_addresses,
    normalize_code,
)
from dropp.client.progress import BarProgress, LineProgress, open_progress

JsonLinesOption = typer.Option(
    "--json", help="Print JSON, one object a line: the code (send), then the outcome."
)


def _json_line(value: dict[str, Any]) -> None:
    # Flushed at once: a script reads the code while the command still waits.
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
    sys.stdout.flush()


class _Shown:
    """The code and each turn of the transfer: for a person on stdout, or, with --json,
    the code as a JSON line and the turns on stderr."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def code(self, code: str, expires_at: str | None) -> None:
        if self.as_json:
            _json_line({"code": code, "expires_at": expires_at})
            return
        until = ""
        if expires_at:
            with contextlib.suppress(ValueError):
                until = f", until {datetime.fromisoformat(expires_at).astimezone():%H:%M}"
        self._say(f"Code: {code}")
        self._say(f"On the other machine: dropp receive {code}  (it works once{until})")

    def status(self, text: str) -> None:
        self._say(text)

    def _say(self, text: str) -> None:
        (err if self.as_json else out).print(text, markup=False, highlight=False)


class _Bars:
    """Progress bars on a terminal, opened with the first byte (not while the code waits)."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self.stack = stack
        self.bars: BarProgress | LineProgress | None = None

    def add(self, name: str, total: int) -> int:
        if self.bars is None:
            self.bars = self.stack.enter_context(open_progress(out, bars=True, total=total))
        return self.bars.add(name, total)

    def advance(self, task: int, amount: int) -> None:
        if self.bars is not None:
            self.bars.advance(task, amount)

    def done(self, task: int) -> None:
        if self.bars is not None:
            self.bars.done(task)


def _host_addresses() -> list[str] | None:
    return host_addresses(os.environ.get(HOST_ADDRESSES_ENV))


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ClientError(f"{folder}: {error.strerror or error}") from error


def _finished(outcome: Outcome, as_json: bool, what: str, checked: str) -> None:
    if as_json:
        _json_line(outcome.as_json())
        return
    how = "peer to peer" if outcome.via == Via.P2P else "through the cloud"
    text = f"{what} ({human_size(outcome.size)}) {how}; {checked}."
    out.print(text, markup=False, highlight=False)


def send(
    path: Annotated[Path, typer.Argument(metavar="PATH", help="The file to send.")],
    via: Annotated[
        Route,
        typer.Option(
            "--via",
            case_sensitive=False,
            help="auto: peer to peer, else through the cloud; p2p: only peer to peer; "
            "cloud: only through the cloud.",
        ),
    ] = Route.AUTO,
    p2p_timeout: Annotated[
        float,
        typer.Option(
            "--p2p-timeout",
            min=0,
            help="Seconds to wait for a direct connection before the cloud takes over.",
        ),
    ] = DEFAULT_P2P_TIMEOUT,
    server: Annotated[str | None, ServerOption] = None,
    as_json: Annotated[bool, JsonLinesOption] = False,
) -> None:
    """Send a file to whoever types the code this prints: peer to peer when possible."""
    context = ClientContext(server)
    shown = _Shown(as_json)

    async def work() -> Outcome:
        require()
        # Here, not at the top: it imports aiortc, which `dropp --help` does without.
        from dropp.client.p2p.sender import SendOptions, describe, send_file

        options = SendOptions(via, p2p_timeout, _host_addresses())
        file = await describe(path)
        with contextlib.ExitStack() as stack:
            bars = _Bars(stack) if interactive() and not as_json else None
            async with context.api() as api:
                return await send_file(
                    api, path, file, options=options, watcher=shown, progress=bars
                )

    outcome = run(work)
    _finished(outcome, as_json, f"Sent {outcome.name}", "the receiver verified its SHA-256")


def receive(
    code: Annotated[
        str,
        typer.Argument(metavar="CODE", help="The code the sender shows, e.g. 4821-0937-5562."),
    ],
    folder: Annotated[
        Path, typer.Argument(metavar="DIR", help="Where to save the file (default: here).")
    ] = Path("."),
    server: Annotated[str | None, ServerOption] = None,
    as_json: Annotated[bool, JsonLinesOption] = False,
) -> None:
    """Receive a file someone sends with `dropp send`; no account needed, only the code."""
    typed = normalize_code(code)
    if typed is None:
        raise typer.BadParameter(
            f"{code!r} is not a transfer code: 12 digits, such as 4821-0937-5562.",
            param_hint="CODE",
        )
    shown = _Shown(as_json)

    async def work() -> Outcome:
        require()
        from dropp.client.p2p.receiver import receive_file  # imports aiortc

        # Anyone with the code may receive: only the server is needed, not a session.
        chosen = normalize_server(server) if server else None
        chosen = chosen or resolve_server(None, ClientContext().config)
        if chosen is None:
            raise ClientError("No server chosen: give --server URL (or set DROPP_SERVER).")
        await asyncio.to_thread(_make_folder, folder)
        with contextlib.ExitStack() as stack:
            bars = _Bars(stack) if interactive() and not as_json else None
            return await receive_file(
                chosen,
                typed,
                folder,
                host_addresses=_host_addresses(),
                watcher=shown,
                progress=bars,
            )

    outcome = run(work)
    _finished(outcome, as_json, f"Received {outcome.path}", f"SHA-256 {outcome.sha256} verified")


def register(app: typer.Typer, panel: str) -> None:
    app.command(rich_help_panel=panel)(send)
    app.command(rich_help_panel=panel)(receive)
