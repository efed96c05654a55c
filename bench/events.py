"""How soon a client hears of a change: the push stream (`GET /events`) next to the long-poll
(`GET /sync/longpoll`), on a throwaway embedded stack.

    python bench/events.py                 # about a minute
    python bench/events.py --help

One account, one `dropp serve`. Each sample creates a folder (`POST /folders`, a change in the
feed) and times, on the client, from sending that request to hearing of it: a `changes` event
on an open stream, or the answer of a long-poll waiting on the feed's cursor. The request's own
round trip (its answer comes after the commit) is the baseline in the same run: a client can
hear of a change before the change's own answer reaches its author. Samples alternate between
the two ways, so the machine's drift falls on both. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Sequence

import httpx
from run import embedded_bench_stack, login, machine_header, progress, start_dropp, table
from sync import percentiles


async def _events(api: httpx.AsyncClient) -> AsyncIterator[str]:
    """The event names of one stream, as they come."""
    async with api.stream("GET", "/events", timeout=httpx.Timeout(30, read=None)) as answer:
        answer.raise_for_status()
        async for line in answer.aiter_lines():
            if line.startswith("event: "):
                yield line.removeprefix("event: ")


async def _change(api: httpx.AsyncClient, n: int) -> float:
    """Create a folder; returns when the request was sent."""
    sent = time.perf_counter()
    answer = await api.post("/folders", json={"path": f"/bench-{n}"})
    answer.raise_for_status()
    return sent


async def measure(base_url: str, token: str, samples: int) -> dict[str, list[float]]:
    headers = {"Authorization": f"Bearer {token}"}
    timings: dict[str, list[float]] = {"round trip": [], "stream": [], "long-poll": []}
    async with (
        httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as api,
        httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as waiter,
    ):
        events = _events(waiter)
        assert await anext(events) == "ready"
        cursor = (await api.get("/sync/changes")).json()["cursor"]
        for n in range(samples):
            # The stream: one connection, open throughout.
            sent = await _change(api, 2 * n)
            done = time.perf_counter()
            while await anext(events) != "changes":
                pass
            timings["stream"].append(time.perf_counter() - sent)
            timings["round trip"].append(done - sent)
            cursor = (await api.get("/sync/changes", params={"cursor": cursor})).json()["cursor"]
            # The long-poll: waiting on the cursor when the change is made.
            poll = asyncio.ensure_future(
                api.get("/sync/longpoll", params={"cursor": cursor, "timeout": 30})
            )
            await asyncio.sleep(0.05)
            sent = await _change(api, 2 * n + 1)
            answer = await poll
            timings["long-poll"].append(time.perf_counter() - sent)
            assert answer.json()["changes"] is True
            cursor = (await api.get("/sync/changes", params={"cursor": cursor})).json()["cursor"]
        await events.aclose()
    return timings


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=200, help="changes timed per way")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    print(machine_header(), flush=True)
    with contextlib.ExitStack() as stack:
        workdir, settings = embedded_bench_stack(stack, "dropp-bench-events-")
        dropp = start_dropp(stack, settings, workdir)
        token = login(dropp)
        progress(f"timing {args.samples} changes each way")
        timings = asyncio.run(measure(dropp.base_url, token, args.samples))
    baseline = percentiles(timings["round trip"])
    rows = []
    for name in ("round trip", "stream", "long-poll"):
        p50, p99 = percentiles(timings[name])
        rows.append(
            [
                {
                    "round trip": "POST /folders answered (baseline)",
                    "stream": "GET /events: `changes` heard",
                    "long-poll": "GET /sync/longpoll answered",
                }[name],
                f"{p50 * 1000:.1f}",
                f"{p99 * 1000:.1f}",
                f"{p50 / baseline[0]:.2f}x",
            ]
        )
    print(
        table(
            f"From sending a change to hearing of it, {args.samples} changes each, one client",
            ["", "p50 ms", "p99 ms", "p50 vs baseline"],
            rows,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
