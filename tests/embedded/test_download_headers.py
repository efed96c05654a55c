"""Form fields the upload policy does not mention cannot change what a download does."""

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import complete, register_account, start_upload


async def test_headers_injected_through_the_upload_form_are_not_served(
    client: httpx.AsyncClient, web: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    account = await register_account(client, "injector@example.com", engine=engine)
    data = b"<script>alert(1)</script>"
    started = await start_upload(client, account, "page.txt", size=len(data))
    # SeaweedFS stores form fields the signed policy does not cover and serves them on GET.
    injected = {
        **started["upload"]["fields"],
        "Cache-Control": "public, max-age=31536000",
        "Content-Disposition": "inline",
        "Content-Type": started["upload"]["fields"].get("Content-Type", "text/plain"),
    }
    posted = await web.post(
        started["upload"]["url"], data=injected, files={"file": ("page.txt", data)}
    )
    assert posted.status_code in (200, 201, 204), posted.text
    assert (await complete(client, account, started["file_id"])).status_code == 200

    signed = await client.get(f"/download/{started['file_id']}", headers=account.headers)
    downloaded = await web.get(signed.json()["url"])

    assert downloaded.content == data
    assert downloaded.headers["cache-control"] == "private, no-store"
    assert downloaded.headers["content-disposition"].startswith("attachment;")
    assert downloaded.headers["content-type"].startswith("text/plain")
