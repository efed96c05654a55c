"""Concurrent clients over real TCP with keep-alive, and what each request got."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx


@dataclass
class Answer:
    status: int
    code: str | None
    retry_after: str | None
    content_type: str
    seconds: float
    tag: str = ""


@dataclass
class Load:
    answers: list[Answer] = field(default_factory=list)
    # Requests that got no HTTP answer at all (connection closed, reset, timed out).
    failures: list[str] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def statuses(self) -> set[int]:
        return {answer.status for answer in self.answers}

    def unavailable(self) -> list[Answer]:
        return [answer for answer in self.answers if answer.status == 503]


Request = Callable[[httpx.AsyncClient, int], Awaitable[tuple[httpx.Response, str]]]


async def _worker(base_url: str, request: Request, load: Load) -> None:
    # One keep-alive connection per worker: a server that closes it after an error shows up
    # as a failure of the next request or of this one.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        number = 0
        while not load.stop.is_set():
            number += 1
            started = time.monotonic()
            try:
                response, tag = await request(client, number)
            except httpx.HTTPError as error:
                load.failures.append(repr(error))
                continue
            body = (
                response.json() if response.headers.get("content-type", "").endswith("json") else {}
            )
            load.answers.append(
                Answer(
                    response.status_code,
                    body.get("code") if isinstance(body, dict) else None,
                    response.headers.get("retry-after"),
                    response.headers.get("content-type", ""),
                    time.monotonic() - started,
                    tag,
                )
            )
            await asyncio.sleep(0.02)


async def run_load(
    base_url: str, request: Request, workers: int, scenario: Callable[[], Awaitable[None]]
) -> Load:
    """Keep `workers` clients sending `request` while `scenario` runs."""
    load = Load()
    tasks = [asyncio.create_task(_worker(base_url, request, load)) for _ in range(workers)]
    try:
        await scenario()
    finally:
        load.stop.set()
        await asyncio.gather(*tasks)
    return load


async def until_ok(base_url: str, path: str, headers: dict[str, str], within: float) -> float:
    """Seconds until `path` answers 200 again."""
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        while True:
            try:
                response = await client.get(path, headers=headers)
                if response.status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            assert time.monotonic() - started < within, f"{path} not back within {within} s"
            await asyncio.sleep(0.2)
