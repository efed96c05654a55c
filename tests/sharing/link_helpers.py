"""Factories for share-link tests: links, anonymous visitors, and what the database holds."""

from typing import Any
from uuid import UUID

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import Account

# What a desktop browser sends when it follows a link.
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
LINK_PASSWORD = "open sesame 42"


async def make_link(client: httpx.AsyncClient, account: Account, **body: Any) -> dict[str, Any]:
    made = await client.post("/shares", json=body, headers=account.headers)
    assert made.status_code == 201, made.text
    created: dict[str, Any] = made.json()
    return created


def visitor(app: FastAPI, ip: str = "203.0.113.7") -> httpx.AsyncClient:
    """Someone holding a link: no account, their own cookies, their own address."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(ip, 4321)), base_url="http://dropp.test"
    )


async def link_row(engine: AsyncEngine, link_id: str) -> dict[str, Any]:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text("SELECT * FROM share_link WHERE id = :id"), {"id": UUID(link_id)}
            )
        ).one()
    return dict(row._mapping)


async def set_link(engine: AsyncEngine, link_id: str, assignment: str) -> None:
    """Change a link as time or an operator would, such as `expires_at = now() - interval '1s'`."""
    async with engine.begin() as connection:
        await connection.execute(
            text(f"UPDATE share_link SET {assignment} WHERE id = :id"), {"id": UUID(link_id)}
        )


async def download_rows(engine: AsyncEngine, link_id: str) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT * FROM download WHERE link_id = :id ORDER BY id"), {"id": UUID(link_id)}
        )
        return [dict(row._mapping) for row in rows]


def token_of(link: dict[str, Any]) -> str:
    token: str = link["token"]
    return token
