"""What the client tests set up and check on the server over HTTP, as the account itself."""

from typing import Any

import httpx

from tests.helpers import Account, upload_file


async def upload(server: str, account: Account, path: str, data: bytes) -> dict[str, Any]:
    """A file at `path` (its folders created), uploaded the way any client does."""
    folder, _, name = path.rpartition("/")
    async with httpx.AsyncClient(base_url=server, timeout=30) as api, httpx.AsyncClient() as web:
        return await upload_file(api, web, account, name, data, folder=folder or "/")


async def get(server: str, account: Account, route: str, **params: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server, timeout=30) as api:
        return await api.get(route, params=params, headers=account.headers)


async def folder_names(server: str, account: Account, path: str) -> list[str]:
    listed = await get(server, account, "/folders", path=path)
    assert listed.status_code == 200, listed.text
    return [item["name"] for item in listed.json()["items"]]


async def current_bytes(server: str, account: Account, file_id: str) -> bytes:
    signed = await get(server, account, f"/download/{file_id}")
    assert signed.status_code == 200, signed.text
    async with httpx.AsyncClient() as web:
        fetched = await web.get(signed.json()["url"])
    assert fetched.status_code == 200
    return fetched.content
