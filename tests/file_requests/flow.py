"""What an owner and an anonymous uploader do with a file request, as plain async helpers."""

from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import Account

STORED = (200, 201, 204)
# What every answer about a link says, so the link goes nowhere else.
PRIVATE = {
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "x-robots-tag": "noindex, nofollow",
}


async def open_request(client: httpx.AsyncClient, account: Account, **body: Any) -> dict[str, Any]:
    body = {"folder_path": "/inbox", "title": "Send me your files", **body}
    created = await client.post("/file-requests", json=body, headers=account.headers)
    assert created.status_code == 201, created.text
    answer: dict[str, Any] = created.json()
    return answer


async def start_drop(
    client: httpx.AsyncClient, token: str, filename: str, size: int, **fields: Any
) -> httpx.Response:
    return await client.post(
        f"/r/{token}/uploads", json={"filename": filename, "size": size, **fields}
    )


async def post_bytes(
    web: httpx.AsyncClient, started: dict[str, Any], data: bytes
) -> httpx.Response:
    form = started["upload"]
    return await web.post(form["url"], data=form["fields"], files={"file": ("f.bin", data)})


async def complete_drop(client: httpx.AsyncClient, token: str, upload_id: str) -> httpx.Response:
    return await client.post(f"/r/{token}/uploads/{upload_id}/complete")


async def drop(
    client: httpx.AsyncClient, web: httpx.AsyncClient, token: str, filename: str, data: bytes
) -> dict[str, Any]:
    """The whole anonymous flow: start, POST the bytes to storage, complete."""
    started = await start_drop(client, token, filename, len(data))
    assert started.status_code == 201, started.text
    body: dict[str, Any] = started.json()
    assert (await post_bytes(web, body, data)).status_code in STORED
    completed = await complete_drop(client, token, body["upload_id"])
    assert completed.status_code == 200, completed.text
    return body


async def folder_items(
    client: httpx.AsyncClient, account: Account, path: str
) -> dict[str, dict[str, Any]]:
    """The folder's children by name, as its owner sees them."""
    listed = await client.get("/folders", params={"path": path}, headers=account.headers)
    assert listed.status_code == 200, listed.text
    return {item["name"]: item for item in listed.json()["items"]}


async def run_sql(engine: AsyncEngine, statement: str, **parameters: Any) -> Any:
    async with engine.begin() as connection:
        result = await connection.execute(text(statement), parameters)
        return result.scalar() if result.returns_rows else None


async def request_row(engine: AsyncEngine, request_id: str) -> Any:
    async with engine.connect() as connection:
        return (
            await connection.execute(
                text("SELECT * FROM file_request WHERE id = :id"), {"id": UUID(request_id)}
            )
        ).one()
