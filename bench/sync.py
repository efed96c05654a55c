"""The sync feed and folder listings on large accounts, on a throwaway embedded stack.

    python bench/sync.py                 # about 3 minutes
    python bench/sync.py --help

Seeds two accounts straight into PostgreSQL (COPY; no stored objects), one with 10,000 files
and one with 100,000, each in 1,000 folders, then times 1,000-entry pages of each: the change
feed from a cursor in the middle of the account's history, the first page of a snapshot, and a
folder listing (the top level, which holds the 1,000 folders).

Each page is timed two ways: built in this process by the service functions the routes call
(server time without HTTP), and served by `dropp serve`, measured on the client over loopback
with a keep-alive connection, one request at a time (server time plus a loopback round trip,
an upper bound). The six series are interleaved in rounds, so that the VM's drift from minute
to minute falls on every case and both sizes alike. Figures are reported against targets;
nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
from pydantic import BaseModel
from run import (
    embedded_bench_stack,
    login,
    machine_header,
    progress,
    start_dropp,
    table,
    verdict,
)
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from dropp.core.config import Settings
from dropp.core.db import create_engine, create_sessionmaker
from dropp.files import tree
from dropp.sync import cursors
from dropp.sync import service as sync_service
from dropp.sync.service import cursor_key

FOLDERS = 1000
SIZES = (10_000, 100_000)
PAGE = 1000
TARGET_P50_MS = 20.0
# p50 at 100k files within this factor of p50 at 10k counts as flat.
FLAT_RATIO = 1.5
CASES = ("feed page (from the middle)", "snapshot, first page", "folder listing (1,000 folders)")


def connect_options(settings: Settings) -> dict[str, Any]:
    engine = create_async_engine(settings.async_database_url)
    _, options = engine.dialect.create_connect_args(engine.url)
    return dict(options)


async def seed_folders(connection: Any, user_id: uuid.UUID) -> list[uuid.UUID]:
    folders = [uuid.uuid4() for _ in range(FOLDERS)]
    await connection.copy_records_to_table(
        "node",
        # Names of ASCII lower case: each its own folded key.
        records=[
            (f, user_id, None, "folder", f"folder{n:04d}", f"folder{n:04d}")
            for n, f in enumerate(folders)
        ],
        columns=["id", "owner_id", "parent_id", "kind", "name", "name_key"],
    )
    await connection.copy_records_to_table(
        "change",
        records=[
            (user_id, f, "created", "folder", f"/folder{n:04d}") for n, f in enumerate(folders)
        ],
        columns=["user_id", "node_id", "change", "node_kind", "path"],
    )
    return folders


async def seed_files(
    connection: Any, user_id: uuid.UUID, folders: list[uuid.UUID], start: int, stop: int
) -> None:
    """Files number `start` to `stop - 1`, spread over the folders, each with one complete
    revision and its `created` change, as completed uploads leave them."""
    nodes, revisions, changes = [], [], []
    expires = datetime.now(UTC) + timedelta(days=1)
    for n in range(start, stop):
        folder = n % FOLDERS
        node_id, revision_id = uuid.uuid4(), uuid.uuid4()
        name = f"file{n:06d}.txt"
        digest = uuid.uuid4().bytes * 2
        nodes.append((node_id, user_id, folders[folder], "file", name, name))
        revisions.append(
            (
                revision_id,
                node_id,
                f"bench/{revision_id}",
                100,
                100,
                "text/plain",
                digest,
                "complete",
                expires,
                datetime.now(UTC),
            )
        )
        changes.append(
            (
                user_id,
                node_id,
                "created",
                "file",
                f"/folder{folder:04d}/{name}",
                revision_id,
                100,
                f"sha256:{digest.hex()}",
            )
        )
    async with connection.transaction():
        await connection.copy_records_to_table(
            "node",
            records=nodes,
            columns=["id", "owner_id", "parent_id", "kind", "name", "name_key"],
        )
        await connection.copy_records_to_table(
            "file_revision",
            records=revisions,
            columns=[
                "id",
                "node_id",
                "storage_key",
                "declared_size",
                "size",
                "content_type",
                "sha256",
                "state",
                "upload_expires_at",
                "completed_at",
            ],
        )
        await connection.execute(
            """
            UPDATE node SET current_revision_id = file_revision.id, size = file_revision.size
            FROM file_revision
            WHERE file_revision.node_id = node.id AND node.owner_id = $1
              AND node.current_revision_id IS NULL
            """,
            user_id,
        )
        await connection.copy_records_to_table(
            "change",
            records=changes,
            columns=[
                "user_id",
                "node_id",
                "change",
                "node_kind",
                "path",
                "revision_id",
                "size",
                "content_hash",
            ],
        )
    await connection.execute("ANALYZE node; ANALYZE file_revision; ANALYZE change")


async def seed(
    settings: Settings, user_id: uuid.UUID, folders: list[uuid.UUID] | None, start: int, stop: int
) -> list[uuid.UUID]:
    connection = await asyncpg.connect(**connect_options(settings))
    try:
        if folders is None:
            folders = await seed_folders(connection, user_id)
        await seed_files(connection, user_id, folders, start, stop)
        return folders
    finally:
        await connection.close()


async def plans(settings: Settings, user_id: uuid.UUID, middle: int) -> list[tuple[str, str]]:
    """What PostgreSQL does for the feed and snapshot pages: each should be an index scan."""
    connection = await asyncpg.connect(**connect_options(settings))
    try:
        found = []
        for label, query in (
            (
                "feed page",
                f"SELECT * FROM change WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT {PAGE + 1}",
            ),
            (
                "snapshot page",
                "SELECT * FROM node LEFT JOIN file_revision "
                "ON file_revision.id = node.current_revision_id "
                "WHERE node.owner_id = $1 AND node.trashed_at IS NULL "
                "AND (node.kind = 'folder' OR node.current_revision_id IS NOT NULL) "
                f"ORDER BY node.created_at, node.id LIMIT {PAGE + 1}",
            ),
        ):
            arguments = (user_id, middle) if "$2" in query else (user_id,)
            rows = await connection.fetch(f"EXPLAIN {query}", *arguments)
            plan = " / ".join(row[0].strip() for row in rows[:3])
            found.append((label, plan[:110]))
        return found
    finally:
        await connection.close()


async def feed_middle(settings: Settings, user_id: uuid.UUID) -> int:
    connection = await asyncpg.connect(**connect_options(settings))
    try:
        low, high = await connection.fetchrow(
            "SELECT min(id), max(id) FROM change WHERE user_id = $1", user_id
        )
        return int((low + high) // 2)
    finally:
        await connection.close()


@dataclass(frozen=True)
class Account:
    size: int
    user_id: uuid.UUID
    api: httpx.Client
    feed_middle: int
    feed_cursor: str

    def requests(self) -> tuple[tuple[str, dict[str, Any]], ...]:
        """The HTTP request of each case, in the order of CASES."""
        return (
            ("/sync/changes", {"cursor": self.feed_cursor, "limit": PAGE}),
            ("/sync/changes", {"limit": PAGE}),
            ("/folders", {"path": "/", "limit": PAGE}),
        )


Series = tuple[str, int]  # (case, files)


def interleaved(series: Sequence[Series], count: int, rounds: int) -> list[tuple[Series, int]]:
    """The order to take `count` samples of each series in: round by round, every series in
    each round, so that a slow minute of the VM is shared by all of them."""
    per_round = max(1, count // rounds)
    order = []
    taken = dict.fromkeys(series, 0)
    while any(n < count for n in taken.values()):
        for one in series:
            batch = min(per_round, count - taken[one])
            if batch:
                order.append((one, batch))
                taken[one] += batch
    return order


def over_http(
    accounts: Sequence[Account], count: int, warmup: int, rounds: int
) -> dict[Series, tuple[float, float]]:
    calls = {
        (label, account.size): (account.api, path, params)
        for account in accounts
        for label, (path, params) in zip(CASES, account.requests(), strict=True)
    }

    def one(series: Series) -> float:
        api, path, params = calls[series]
        started = time.perf_counter()
        answer = api.get(path, params=params)
        elapsed = (time.perf_counter() - started) * 1000
        if answer.status_code != 200:
            raise RuntimeError(f"GET {path} answered {answer.status_code}: {answer.text[:300]}")
        body = answer.json()
        entries = len(body.get("changes", body.get("items", [])))
        if entries != PAGE:
            raise RuntimeError(f"GET {path} gave {entries} entries, not {PAGE}")
        return elapsed

    samples: dict[Series, list[float]] = {series: [] for series in calls}
    for series in calls:
        for _ in range(warmup):
            one(series)
    for series, batch in interleaved(list(calls), count, rounds):
        samples[series].extend(one(series) for _ in range(batch))
    return {series: percentiles(taken) for series, taken in samples.items()}


async def in_process(
    settings: Settings, accounts: Sequence[Account], count: int, warmup: int, rounds: int
) -> dict[Series, tuple[float, float]]:
    """The same pages built by the service functions the routes call, in this process: the
    database round trips, the page and its JSON, without HTTP, auth or the server's loop."""
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    key = cursor_key(settings)

    def builds(account: Account) -> list[Callable[[AsyncSession], Awaitable[BaseModel]]]:
        user_id = account.user_id
        return [
            lambda session: sync_service.changes_page(
                session, key, user_id, account.feed_cursor, PAGE
            ),
            lambda session: sync_service.changes_page(session, key, user_id, None, PAGE),
            lambda session: tree.list_children(session, user_id, None, cursor=None, limit=PAGE),
        ]

    calls = {
        (label, account.size): build
        for account in accounts
        for label, build in zip(CASES, builds(account), strict=True)
    }

    async def one(series: Series) -> float:
        started = time.perf_counter()
        async with sessionmaker() as session:
            (await calls[series](session)).model_dump_json()
        return (time.perf_counter() - started) * 1000

    # As `dropp serve` does before it serves: what exists by now is never walked again by
    # the cyclic collector's full collections.
    gc.collect()
    gc.freeze()
    samples: dict[Series, list[float]] = {series: [] for series in calls}
    try:
        for series in calls:
            for _ in range(warmup):
                await one(series)
        for series, batch in interleaved(list(calls), count, rounds):
            for _ in range(batch):
                samples[series].append(await one(series))
    finally:
        await engine.dispose()
    return {series: percentiles(taken) for series, taken in samples.items()}


def percentiles(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50, help="measured requests per case")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured requests per case")
    parser.add_argument(
        "--rounds", type=int, default=10, help="rounds the requests are spread over"
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    print(machine_header(), flush=True)
    with contextlib.ExitStack() as stack:
        workdir, settings = embedded_bench_stack(stack, "dropp-bench-sync-")
        dropp = start_dropp(stack, settings, workdir)
        key = cursor_key(settings)
        accounts = []
        for size in SIZES:
            token = login(dropp, f"sync-{size}@example.com")
            api = stack.enter_context(
                httpx.Client(
                    base_url=dropp.base_url,
                    timeout=60,
                    headers={"Authorization": f"Bearer {token}"},
                )
            )
            user_id = uuid.UUID(api.get("/me").json()["id"])
            progress(f"seeding an account with {size:,} files in {FOLDERS:,} folders")
            started = time.perf_counter()
            asyncio.run(seed(settings, user_id, None, 0, size))
            progress(f"seeded in {time.perf_counter() - started:.1f} s")
            middle = asyncio.run(feed_middle(settings, user_id))
            feed_cursor = cursors.encode(key, user_id, cursors.FeedCursor(middle))
            accounts.append(Account(size, user_id, api, middle, feed_cursor))

        progress(f"in process: {args.requests} requests per case, in {args.rounds} rounds")
        served = asyncio.run(
            in_process(settings, accounts, args.requests, args.warmup, args.rounds)
        )
        progress(f"over HTTP: {args.requests} requests per case, in {args.rounds} rounds")
        fetched = over_http(accounts, args.requests, args.warmup, args.rounds)
        largest = accounts[-1]
        plan_rows = asyncio.run(plans(settings, largest.user_id, largest.feed_middle))

        rows = []
        for label in CASES:
            for size in SIZES:
                p50, p99 = fetched[label, size]
                own50, own99 = served[label, size]
                rows.append(
                    [label, f"{size:,}", f"{p50:.1f}", f"{p99:.1f}", f"{own50:.1f}", f"{own99:.1f}"]
                )
        print()
        print(
            table(
                f"Sync pages of {PAGE:,} entries, {args.requests} requests each, ms on loopback",
                ["case", "files", "HTTP p50", "HTTP p99", "in-process p50", "in-process p99"],
                rows,
            )
        )
        verdicts = []
        small_size, large_size = SIZES
        for label in CASES:
            small, large = served[label, small_size][0], served[label, large_size][0]
            verdicts.append(
                [
                    label,
                    f"{large:.1f}",
                    verdict(max(small, large) <= TARGET_P50_MS),
                    f"{large / small:.2f}x",
                    verdict(large <= small * FLAT_RATIO),
                ]
            )
        print()
        print(
            table(
                f"Targets: p50 <= {TARGET_P50_MS:.0f} ms, 100k/10k p50 <= {FLAT_RATIO}x",
                ["case", "in-process p50 at 100k", "p50 target (10k and 100k)", "growth", "flat"],
                verdicts,
            )
        )
        print()
        print(table("Query plans at 100k files (first lines)", ["query", "plan"], plan_rows))
        progress("stopping")


def main(argv: Sequence[str] | None = None) -> int:
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
