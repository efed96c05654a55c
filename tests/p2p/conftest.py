"""Signaling and the fallback routes over real sockets: Dropp served by uvicorn on loopback,
peers speaking the protocol as raw WebSocket clients do."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.asyncio.client import ClientConnection

from dropp.core.config import Settings
from tests.conftest import TABLES
from tests.helpers import Account, register_account, serve_dropp

OFFER = {"name": "notes.txt", "size": 11, "sha256": "ab" * 32}


@pytest.fixture(scope="session")
def p2p_url(settings: Settings) -> Iterator[str]:
    with serve_dropp(
        settings,
        name="dropp-p2p-tests",
        p2p_join_rate="1000/minute",
        p2p_max_open_transfers=3,
        p2p_max_message_bytes=8192,
    ) as url:
        yield url


@pytest.fixture
async def sender(p2p_url: str, engine: AsyncEngine, sockets: "Sockets") -> AsyncIterator[Account]:
    async with httpx.AsyncClient(base_url=p2p_url, timeout=30) as api:
        yield await register_account(api, f"p2p-{uuid.uuid4().hex[:12]}@example.com", engine=engine)
    await sockets.close_all()
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))


def socket_url(http_url: str) -> str:
    return http_url.replace("http://", "ws://", 1) + "/p2p"


class Sockets:
    """Every socket a test opens, closed after it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.opened: list[ClientConnection] = []

    async def close_all(self) -> None:
        for socket in self.opened:
            await socket.close()
        self.opened.clear()
        await self.settled()

    async def settled(self) -> None:
        """Once the server has recorded every closed peer's leaving."""
        # The server records each peer's leaving; the rows may go only once it has.
        for _ in range(100):
            async with self.engine.connect() as connection:
                busy = await connection.scalar(
                    text("SELECT count(*) FROM p2p_transfer WHERE finished_at IS NULL")
                )
            if not busy:
                break
            await asyncio.sleep(0.05)

    async def connect(self, http_url: str) -> ClientConnection:
        socket = await websockets.connect(socket_url(http_url), max_size=None)
        self.opened.append(socket)
        return socket

    async def opened_by(
        self, p2p_url: str, account: Account, **offer: Any
    ) -> tuple[ClientConnection, dict[str, Any]]:
        """A sender's socket, with the `opened` answer."""
        socket = await self.connect(p2p_url)
        message = {"type": "open", "token": account.access_token, "file": {**OFFER, **offer}}
        await say(socket, message)
        answer = await hear(socket)
        assert answer["type"] == "opened", answer
        return socket, answer

    async def joined(
        self, p2p_url: str, sender_socket: ClientConnection, code: str
    ) -> tuple[ClientConnection, dict[str, Any]]:
        """A receiver's socket, with the `joined` answer; the sender has heard of it."""
        socket = await self.connect(p2p_url)
        await say(socket, {"type": "join", "code": code})
        answer = await hear(socket)
        assert answer["type"] == "joined", answer
        assert (await hear(sender_socket)) == {"type": "peer_joined"}
        return socket, answer


@pytest.fixture
async def sockets(engine: AsyncEngine) -> AsyncIterator["Sockets"]:
    held = Sockets(engine)
    yield held
    await held.close_all()


async def say(socket: ClientConnection, message: dict[str, Any]) -> None:
    await socket.send(json.dumps(message))


async def hear(socket: ClientConnection, within: float = 10) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), within))
    return message


async def refusal(socket: ClientConnection) -> tuple[str, int | None]:
    """The code of the error the server ends with, and the socket's close code."""
    message = await hear(socket)
    assert message["type"] == "error", message
    assert message["detail"]
    await asyncio.wait_for(socket.wait_closed(), 10)
    return message["code"], socket.close_code
