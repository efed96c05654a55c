"""A real SMTP server on loopback, and the API started to send its mail there."""

import re
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import TABLES, api_client

LINK = re.compile(r"https?://\S+")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Inbox:
    """Collects every message the SMTP server accepts (called from the server's thread)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    def last_link(self, address: str) -> str:
        """The path and query of the link in the last message to `address`."""
        messages = self.to(address)
        assert messages, f"no mail to {address}"
        body = messages[-1].get_body(preferencelist=("plain",))
        assert body is not None
        match = LINK.search(body.get_content())
        assert match is not None, body.get_content()
        link = urlsplit(match.group())
        return f"{link.path}?{link.query}"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def inbox(smtp: tuple[Inbox, int]) -> Inbox:
    return smtp[0]


@pytest.fixture
async def fresh_rows(engine: AsyncEngine) -> AsyncIterator[None]:
    """For tests that start their own app: every row they made is gone afterwards."""
    yield
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))


@pytest.fixture
async def mail_app(
    smtp: tuple[Inbox, int],
    app_with: Callable[..., AbstractAsyncContextManager[FastAPI]],
    fresh_rows: None,
) -> AsyncIterator[FastAPI]:
    """The API sending its mail to the loopback SMTP server."""
    async with app_with(smtp_host="127.0.0.1", smtp_port=smtp[1], smtp_security="none") as app:
        yield app


@pytest.fixture
async def mail_client(mail_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(mail_app) as api:
        yield api
