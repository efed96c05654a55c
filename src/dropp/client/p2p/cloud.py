"""The cloud fallback's two halves: the sender's upload to the transfer's own key in
storage, and the receiver's download from the link the server hands it once."""

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx

from dropp.client.api import Api, retry_after
from dropp.client.errors import ServerUnavailable
from dropp.client.hashing import MIB
from dropp.client.p2p.landing import PartFile

# The form is built and sent, with retries, as every other upload's: one code for both.
from dropp.client.transfers import TransferError, download_refused, post_form

ATTEMPTS = 4


async def upload(
    api: Api, transfer_id: str, source: Path, size: int, advance: Callable[[int], None]
) -> None:
    """Post the file to storage with the form the server signs for exactly its size and
    SHA-256, then tell the server it is stored (the server checks, and sends the link)."""
    form = await api.post(f"/p2p/transfers/{transfer_id}/upload")
    await post_form(api, source, size, form, advance)
    await api.post(f"/p2p/transfers/{transfer_id}/stored")


async def download(url: str, part: PartFile, advance: Callable[[int], None]) -> None:
    """The stored copy into `part`, continued with a Range request when the connection
    drops (the link lives minutes; it is not asked for again)."""
    failures = 0
    async with httpx.AsyncClient(timeout=60) as storage:
        while not part.complete:
            headers = {"Range": f"bytes={part.received}-"} if part.received else {}
            try:
                async with storage.stream("GET", url, headers=headers) as response:
                    if response.status_code >= 300:
                        await response.aread()
                        failures = await download_refused(response, failures, ATTEMPTS)
                        continue
                    if response.status_code == 200 and part.received:
                        # Storage ignored the range: the whole file again.
                        advance(-part.received)
                        part.reset()
                    async for chunk in response.aiter_bytes(MIB):
                        await asyncio.to_thread(part.write, chunk)
                        advance(len(chunk))
            except httpx.TransportError as error:
                failures += 1
                if failures >= ATTEMPTS:
                    raise ServerUnavailable(
                        f"Storage could not be reached: {error or type(error).__name__}."
                    ) from error
                await asyncio.sleep(retry_after(None, failures))
                continue
            if not part.complete:
                failures += 1
                if failures >= ATTEMPTS:
                    raise TransferError("Storage sent less than the file's size.")
