"""Many small files on a throwaway embedded stack: the single upload routes against the batch
routes, counting API requests and wall time.

    python bench/batch.py              # about 1 minute
    python bench/batch.py --rtt-ms 20  # as if the API were 20 ms away
    python bench/batch.py --help

Each flow uploads --files random files of --size-kib (1,000 of 4 KiB by default), each with its
SHA-256 declared, as a desktop client does, under new names each run:

- single: per file `POST /upload/`, the form POST to storage, `POST /upload/{id}/complete`,
  --parallel files at a time;
- batch: per 100 files `POST /upload/batch`, the form POSTs (--parallel at a time), then
  `POST /upload/batch/complete`.

--rtt-ms delays every API request by that much before it is sent (storage is not delayed: both
flows send it the same requests). The flows run --repeats times each, interleaved; the table
shows the median wall time. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from run import embedded_bench_stack, login, machine_header, progress, start_dropp, table

BATCH_ITEMS = 100
STORED = {200, 201, 204}


@dataclass
class Counted:
    """An API client and a storage client that count what they send."""

    api: httpx.AsyncClient
    web: httpx.AsyncClient
    api_requests: int = 0
    storage_requests: int = 0
    # Wall time by phase, for the batch flow: where the files' time goes.
    phases: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - started


def check(answer: httpx.Response, expected: int) -> dict[str, Any]:
    if answer.status_code != expected:
        raise RuntimeError(
            f"{answer.request.method} {answer.request.url} answered "
            f"{answer.status_code}: {answer.text}"
        )
    body: dict[str, Any] = answer.json()
    return body


async def post_form(counted: Counted, upload: dict[str, Any], data: bytes) -> None:
    form = upload["upload"]
    posted = await counted.web.post(form["url"], data=form["fields"], files={"file": ("f", data)})
    if posted.status_code not in STORED:
        raise RuntimeError(f"storage answered {posted.status_code}: {posted.text}")


def item(name: str, data: bytes) -> dict[str, Any]:
    return {
        "filename": name,
        "folder": "/bench",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


async def bounded(parallel: int, jobs: Sequence[Callable[[], Awaitable[None]]]) -> None:
    gate = asyncio.Semaphore(parallel)

    async def one(job: Callable[[], Awaitable[None]]) -> None:
        async with gate:
            await job()

    await asyncio.gather(*(one(job) for job in jobs))


async def single_flow(counted: Counted, files: dict[str, bytes], parallel: int) -> None:
    async def one(name: str, data: bytes) -> None:
        started = check(await counted.api.post("/upload/", json=item(name, data)), 201)
        await post_form(counted, started, data)
        check(await counted.api.post(f"/upload/{started['file_id']}/complete"), 200)

    await bounded(parallel, [lambda n=n, d=d: one(n, d) for n, d in files.items()])


async def batch_flow(counted: Counted, files: dict[str, bytes], parallel: int) -> None:
    names = list(files)
    for start in range(0, len(names), BATCH_ITEMS):
        chunk = names[start : start + BATCH_ITEMS]
        body = {"items": [item(name, files[name]) for name in chunk]}
        with counted.phase("init"):
            answers = check(await counted.api.post("/upload/batch", json=body), 200)["items"]
        if any(answer["status"] != 201 for answer in answers):
            raise RuntimeError(f"POST /upload/batch refused items: {answers}")
        uploads = [answer["upload"] for answer in answers]
        with counted.phase("storage"):
            await bounded(
                parallel,
                [
                    lambda u=u, n=n: post_form(counted, u, files[n])
                    for u, n in zip(uploads, chunk, strict=True)
                ],
            )
        body = {"items": [{"file_id": upload["file_id"]} for upload in uploads]}
        with counted.phase("complete"):
            done = check(await counted.api.post("/upload/batch/complete", json=body), 200)["items"]
        if any(answer["status"] != 200 for answer in done):
            raise RuntimeError(f"POST /upload/batch/complete refused items: {done}")


Flow = Callable[[Counted, dict[str, bytes], int], Awaitable[None]]
FLOWS: dict[str, Flow] = {"single routes": single_flow, "batch routes": batch_flow}
PHASES = ("init", "storage", "complete")


@dataclass
class Run:
    api_requests: int
    storage_requests: int
    seconds: float
    phases: dict[str, float]


async def measure(
    base_url: str, token: str, flow: Flow, files: dict[str, bytes], args: argparse.Namespace
) -> Run:
    counted = Counted(
        api=httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
            limits=httpx.Limits(max_connections=args.parallel),
        ),
        web=httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=args.parallel)),
    )

    async def api_request(_: httpx.Request) -> None:
        counted.api_requests += 1
        if args.rtt_ms:
            await asyncio.sleep(args.rtt_ms / 1000)

    async def storage_request(_: httpx.Request) -> None:
        counted.storage_requests += 1

    counted.api.event_hooks["request"] = [api_request]
    counted.web.event_hooks["request"] = [storage_request]
    async with counted.api, counted.web:
        started = time.perf_counter()
        await flow(counted, files, args.parallel)
        seconds = time.perf_counter() - started
    return Run(counted.api_requests, counted.storage_requests, seconds, counted.phases)


def run(args: argparse.Namespace) -> None:
    print(machine_header(), flush=True)
    with contextlib.ExitStack() as stack:
        workdir, settings = embedded_bench_stack(stack, "dropp-bench-batch-")
        dropp = start_dropp(stack, settings, workdir)
        token = login(dropp)
        runs: dict[str, list[Run]] = {label: [] for label in FLOWS}
        for repeat in range(args.repeats):
            for label, flow in FLOWS.items():
                prefix = f"{label.split()[0]}-{repeat}"
                files = {
                    f"{prefix}-{n:05}.bin": os.urandom(args.size_kib * 1024)
                    for n in range(args.files)
                }
                progress(f"{label}, run {repeat + 1} of {args.repeats}")
                runs[label].append(asyncio.run(measure(dropp.base_url, token, flow, files, args)))
        rows = []
        for label, done in runs.items():
            seconds = statistics.median(r.seconds for r in done)
            rows.append(
                [
                    label,
                    f"{done[0].api_requests:,}",
                    f"{done[0].storage_requests:,}",
                    f"{seconds:.2f}",
                    f"{args.files / seconds:,.0f}",
                    *(
                        f"{statistics.median(r.phases[name] for r in done):.2f}"
                        if name in done[0].phases
                        else "-"
                        for name in PHASES
                    ),
                ]
            )
        single, batch = (statistics.median(r.seconds for r in runs[label]) for label in FLOWS)
        print()
        print(
            table(
                f"{args.files:,} files of {args.size_kib} KiB, {args.parallel} in parallel, "
                f"API round trip +{args.rtt_ms:g} ms, median of {args.repeats}",
                [
                    "flow",
                    "API requests",
                    "storage requests",
                    "wall s",
                    "files/s",
                    *(f"{name} s" for name in PHASES),
                ],
                rows,
            ),
            flush=True,
        )
        print(f"batch / single wall time: {batch / single:.2f}x", flush=True)
        progress("stopping")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000, help="files per run")
    parser.add_argument("--size-kib", type=int, default=4, help="size of each file")
    parser.add_argument("--parallel", type=int, default=8, help="requests in flight at once")
    parser.add_argument("--rtt-ms", type=float, default=0.0, help="added to each API request")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each flow")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
