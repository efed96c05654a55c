"""Plain async factories: accounts, uploads, and the storage side a desktop client talks to."""

from dataclasses import dataclass
from typing import Any

import httpx

PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Account:
    email: str
    user_id: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


async def register_account(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD
) -> Account:
    registered = await client.post("/auth/register", json={"email": email, "password": password})
    assert registered.status_code == 201, registered.text
    tokens = await client.post("/auth/login", json={"email": email, "password": password})
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    return Account(email, registered.json()["id"], body["access_token"], body["refresh_token"])


async def start_upload(
    client: httpx.AsyncClient, account: Account, filename: str, **fields: Any
) -> dict[str, Any]:
    started = await client.post(
        "/upload/", json={"filename": filename, **fields}, headers=account.headers
    )
    assert started.status_code == 201, started.text
    body: dict[str, Any] = started.json()
    return body


async def post_form(
    web: httpx.AsyncClient,
    upload: dict[str, Any],
    data: bytes,
    *,
    fields: dict[str, str] | None = None,
    url: str | None = None,
) -> httpx.Response:
    """POST `data` to a presigned form exactly as `curl -F` would."""
    form = upload["upload"]
    return await web.post(
        url or form["url"],
        data=fields if fields is not None else form["fields"],
        files={"file": ("upload.bin", data)},
    )


async def complete(
    client: httpx.AsyncClient, account: Account, file_id: str, **body: Any
) -> httpx.Response:
    return await client.post(
        f"/upload/{file_id}/complete", json=body or None, headers=account.headers
    )


async def upload_file(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    account: Account,
    filename: str,
    data: bytes,
    **fields: Any,
) -> dict[str, Any]:
    """The whole desktop flow: init, POST the bytes to storage, complete."""
    started = await start_upload(client, account, filename, size=len(data), **fields)
    posted = await post_form(web, started, data)
    assert posted.status_code in (200, 201, 204), posted.text
    completed = await complete(client, account, started["file_id"])
    assert completed.status_code == 200, completed.text
    body: dict[str, Any] = completed.json()
    return body


async def download_bytes(
    client: httpx.AsyncClient, web: httpx.AsyncClient, account: Account, file_id: str
) -> httpx.Response:
    signed = await client.get(f"/download/{file_id}", headers=account.headers)
    assert signed.status_code == 200, signed.text
    return await web.get(signed.json()["url"])
