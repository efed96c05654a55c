"""What the peer-to-peer tests share: a signed-in Api for a test's own account, a watcher
that records what a transfer shows, the bucket's contents, `dropp send` running in the
background with its JSON lines read as they come, and signaling the way a browser does."""

import asyncio
import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from dropp.client.api import Api
from dropp.client.credentials import Tokens
from dropp.storage.s3 import Storage
from tests.helpers import Account

# For a line a command prints, on a loaded 2-core machine.
WAIT_SECONDS = 60.0


class MemoryStore:
    """A CredentialStore holding one session in memory (an in-process client)."""

    name = "memory"

    def __init__(self, server: str, tokens: Tokens) -> None:
        self.sessions = {server: tokens}

    def load(self, server: str) -> Tokens | None:
        return self.sessions.get(server)

    def save(self, server: str, tokens: Tokens) -> None:
        self.sessions[server] = tokens

    def delete(self, server: str) -> None:
        self.sessions.pop(server, None)


def signed_in(server: str, account: Account) -> Api:
    tokens = Tokens(account.access_token, account.refresh_token, time.time() + 600)
    return Api(server, MemoryStore(server, tokens))


@dataclass
class Watched:
    """A Watcher that keeps what it is shown; `code` is set once the code exists."""

    statuses: list[str] = field(default_factory=list)
    code_shown: "asyncio.Future[str] | None" = None

    def __post_init__(self) -> None:
        self.code_shown = asyncio.get_running_loop().create_future()

    def code(self, code: str, expires_at: str | None) -> None:
        assert self.code_shown is not None
        self.code_shown.set_result(code)

    def status(self, text: str) -> None:
        self.statuses.append(text)

    async def wait_for_code(self) -> str:
        assert self.code_shown is not None
        return await asyncio.wait_for(self.code_shown, WAIT_SECONDS)


@dataclass(frozen=True)
class Bucket:
    """What the bucket holds: object versions (bytes) and delete markers, as (key, id)."""

    objects: frozenset[tuple[str, str]]
    markers: frozenset[tuple[str, str]]

    def names(self) -> set[str]:
        return {key for key, _ in self.objects | self.markers}


async def bucket_contents(storage: Storage) -> Bucket:
    objects: set[tuple[str, str]] = set()
    markers: set[tuple[str, str]] = set()
    paginator = storage.client.get_paginator("list_object_versions")
    async for page in paginator.paginate(Bucket=storage.bucket):
        for version in page.get("Versions", []):
            objects.add((version.get("Key", ""), version.get("VersionId", "null")))
        for marker in page.get("DeleteMarkers", []):
            markers.add((marker.get("Key", ""), marker.get("VersionId", "null")))
    return Bucket(frozenset(objects), frozenset(markers))


def write_random(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


class Running:
    """A command in the background: its stdout lines and its stderr, read in threads."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        assert process.stderr is not None
        self.process = process
        self.out: list[str] = []
        self.err: list[str] = []
        self._arrived = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(process.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(process.stderr, self.err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: IO[str], into: list[str]) -> None:
        for line in stream:
            with self._arrived:
                into.append(line)
                self._arrived.notify_all()
        stream.close()

    def first_json(self) -> dict[str, Any]:
        """The first line of stdout, as JSON (blocks until it comes)."""
        with self._arrived:
            arrived = self._arrived.wait_for(
                lambda: bool(self.out) or self.process.poll() is not None, WAIT_SECONDS
            )
            if not arrived or not self.out:
                raise AssertionError(f"no line on stdout; stderr:\n{''.join(self.err)}")
            line: dict[str, Any] = json.loads(self.out[0])
            return line

    def finish(self) -> tuple[int, list[str], str]:
        """(exit status, stdout lines, stderr) once it ends."""
        try:
            code = self.process.wait(WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"still running; stderr:\n{''.join(self.err)}") from None
        for reader in self._readers:
            reader.join(WAIT_SECONDS)
        return code, self.out, "".join(self.err)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def json_lines(lines: list[str]) -> list[dict[str, Any]]:
    """Every stdout line is one JSON object (nothing else is printed with --json)."""
    return [json.loads(line) for line in lines]


# --- a browser's way: candidates trickled after the description --------------------------


def split_candidates(sdp: str) -> tuple[str, list[str]]:
    """The SDP without its candidates, and the candidates as a browser's `icecandidate`
    events give them (`candidate:...`)."""
    lines = sdp.splitlines()
    candidates = [line[2:] for line in lines if line.startswith("a=candidate:")]
    kept = [
        line
        for line in lines
        if not line.startswith("a=candidate:") and line != "a=end-of-candidates"
    ]
    return "\r\n".join(kept) + "\r\n", candidates


async def send_trickled(socket: Any, description: Any) -> list[str]:
    """Signal `description` as a browser does: the SDP, then each candidate, then the end."""
    sdp, candidates = split_candidates(description.sdp)
    messages: list[dict[str, Any]] = [{"sdp": {"type": description.type, "sdp": sdp}}]
    messages += [{"ice": {"candidate": c, "sdpMid": "0", "sdpMLineIndex": 0}} for c in candidates]
    messages.append({"ice": None})
    for data in messages:
        await socket.send(json.dumps({"type": "signal", "data": data}))
    return candidates


async def next_of(socket: Any, kind: str) -> dict[str, Any]:
    """The next message of this type, skipping others (progress, ...)."""
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            message: dict[str, Any] = json.loads(await socket.recv())
            assert message["type"] != "error", message
            if message["type"] == kind:
                return message
