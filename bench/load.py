"""A small closed-loop HTTP/1.1 load generator: N keep-alive connections, one request in flight
on each, for a warm-up and then a measured window.

It is deliberately bare (asyncio streams, pre-encoded request bytes, a status line and a
Content-Length to parse) because on a small machine it shares the cores with the server it
measures: an httpx-based client would spend more CPU per request than the API does.

Prints JSON lines on stdout: {"event": "measuring"} when the measured window opens,
{"event": "done"} when it closes, then one result object. `run.py` reads them to sample the
server's CPU over exactly that window.

    python bench/load.py --url http://127.0.0.1:8000/upload/ --method POST \
        --header 'Authorization: Bearer ...' --body '{"filename": "f-{n}.txt", "size": 1024}'

`{n}` in the body is replaced by a counter that is unique within the run.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import resource
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

CONTENT_LENGTH = b"\r\ncontent-length:"
HEAD_END = b"\r\n\r\n"


class ProtocolError(Exception):
    pass


@dataclass
class Window:
    start: float
    end: float


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)


def request_builder(
    method: str, target: str, host: str, headers: list[str], body: str | None
) -> Callable[[], bytes]:
    """A function returning the next request's bytes; only the body's counter varies."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", *headers]
    if body is None:
        fixed = ("\r\n".join(lines) + "\r\n\r\n").encode()
        return lambda: fixed
    if not any(line.lower().startswith("content-type:") for line in headers):
        lines.append("Content-Type: application/json")
    head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode()
    before, placeholder, after = body.partition("{n}")
    prefix, suffix = before.encode(), after.encode()
    if not placeholder:
        fixed = head + str(len(prefix)).encode() + HEAD_END + prefix
        return lambda: fixed
    counter = itertools.count()

    def build() -> bytes:
        payload = prefix + str(next(counter)).encode() + suffix
        return head + str(len(payload)).encode() + HEAD_END + payload

    return build


def content_length(head: bytes) -> int:
    lowered = head.lower()
    at = lowered.find(CONTENT_LENGTH)
    if at < 0:
        # Every server measured here answers JSON with a length; anything else is a surprise
        # worth counting as an error rather than a reason to grow a chunked parser.
        raise ProtocolError("response without Content-Length")
    start = at + len(CONTENT_LENGTH)
    return int(lowered[start : lowered.index(b"\r\n", start)])


async def connection(
    host: str, port: int, build: Callable[[], bytes], window: Window, tally: Tally
) -> None:
    perf_counter = time.perf_counter
    writer: asyncio.StreamWriter | None = None
    reader: asyncio.StreamReader | None = None
    try:
        while perf_counter() < window.end:
            try:
                if writer is None or reader is None:
                    reader, writer = await asyncio.open_connection(host, port)
                request = build()
                started = perf_counter()
                writer.write(request)
                head = await reader.readuntil(HEAD_END)
                status = int(head[9:12])
                length = content_length(head)
                if length:
                    await reader.readexactly(length)
                finished = perf_counter()
            except (OSError, EOFError, asyncio.IncompleteReadError, ValueError, ProtocolError) as e:
                if window.start <= perf_counter() < window.end:
                    tally.transport_errors[f"{type(e).__name__}: {e}"[:120]] += 1
                if writer is not None:
                    writer.close()
                writer = reader = None
                # A refused connect would otherwise spin the loop.
                await asyncio.sleep(0.01)
                continue
            if window.start <= finished < window.end:
                tally.latencies.append(finished - started)
                tally.statuses[status] += 1
    finally:
        if writer is not None:
            writer.close()


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def emit(message: dict[str, Any]) -> None:
    print(json.dumps(message), flush=True)


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[rank]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    url = urlsplit(args.url)
    host = url.hostname or "127.0.0.1"
    port = url.port or 80
    target = (url.path or "/") + (f"?{url.query}" if url.query else "")
    build = request_builder(args.method, target, url.netloc, args.header, args.body)
    now = time.perf_counter()
    window = Window(start=now + args.warmup, end=now + args.warmup + args.duration)
    tally = Tally()
    workers = [
        asyncio.create_task(connection(host, port, build, window, tally))
        for _ in range(args.concurrency)
    ]

    await asyncio.sleep(max(0.0, window.start - time.perf_counter()))
    emit({"event": "measuring"})
    cpu_before = cpu_seconds()
    await asyncio.sleep(max(0.0, window.end - time.perf_counter()))
    cpu_after = cpu_seconds()
    emit({"event": "done"})
    await asyncio.gather(*workers)

    ordered = sorted(tally.latencies)
    completed = len(ordered)
    wrong_status = sum(n for status, n in tally.statuses.items() if status != args.expect)
    return {
        "requests": completed,
        "duration_s": args.duration,
        "rps": completed / args.duration,
        "p50_ms": percentile(ordered, 0.50) * 1000,
        "p90_ms": percentile(ordered, 0.90) * 1000,
        "p99_ms": percentile(ordered, 0.99) * 1000,
        "max_ms": (ordered[-1] if ordered else 0.0) * 1000,
        "statuses": {str(status): n for status, n in sorted(tally.statuses.items())},
        "errors": wrong_status + tally.transport_errors.total(),
        "transport_errors": dict(tally.transport_errors.most_common(5)),
        "cpu": (cpu_after - cpu_before) / args.duration,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--method", default="GET")
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    parser.add_argument("--body", help="request body; {n} becomes a per-request counter")
    parser.add_argument("--expect", type=int, default=200, help="the status that is a success")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds, not measured")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    return parser.parse_args(argv)


def event_loop_runner() -> Callable[[Coroutine[Any, Any, dict[str, Any]]], dict[str, Any]]:
    try:
        import uvloop  # optional, as it is for uvicorn
    except ImportError:
        return asyncio.run
    return uvloop.run


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    emit(event_loop_runner()(run(args)))


if __name__ == "__main__":
    main()
