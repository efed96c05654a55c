"""One folder of 100,000 files, listed in every order the web app and `GET /folders` offer.

    python bench/listing.py                 # about a minute and a half
    python bench/listing.py --help

Seeds an account straight into PostgreSQL (COPY; no stored objects) with 100,000 files in
one folder, each with a size and a modified time of its own, then times pages of it built
in this process by the function the route calls (`tree.list_children`: the statement, the
page and its JSON): the first page and a page from the middle (by its keyset cursor), 100
entries as the web app shows them and 1,000 as the API's largest page, in each order. The
baseline is the same page by name, upward: the order listings had before the others, in the
same run. Series are interleaved in rounds; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import random
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import asyncpg  # type: ignore[import-untyped]
from run import embedded_bench_stack, machine_header, progress, table
from sync import connect_options, interleaved, percentiles

from dropp.core.config import Settings
from dropp.core.db import create_engine, create_sessionmaker
from dropp.files import tree
from dropp.files.schemas import ChildOrder, Direction

FILES = 100_000
ORDERS = (
    (ChildOrder.NAME, Direction.ASC),
    (ChildOrder.NAME, Direction.DESC),
    (ChildOrder.SIZE, Direction.ASC),
    (ChildOrder.SIZE, Direction.DESC),
    (ChildOrder.MODIFIED, Direction.ASC),
    (ChildOrder.MODIFIED, Direction.DESC),
)
PAGES = (100, 1000)


async def seed(settings: Settings) -> tuple[uuid.UUID, uuid.UUID]:
    """An account and its one folder of FILES files, as completed uploads leave them."""
    connection = await asyncpg.connect(**connect_options(settings))
    user_id, folder_id = uuid.uuid4(), uuid.uuid4()
    shuffle = random.Random(7)
    now = datetime.now(UTC)
    nodes, revisions = [], []
    for n in range(FILES):
        node_id, revision_id = uuid.uuid4(), uuid.uuid4()
        size = shuffle.randrange(1, 1 << 30)
        modified = now - timedelta(seconds=shuffle.randrange(365 * 86_400))
        name = f"file{n:06d}.txt"
        nodes.append((node_id, user_id, folder_id, "file", name, name, modified, size))
        revisions.append(
            (
                revision_id,
                node_id,
                f"bench/{revision_id}",
                size,
                size,
                "text/plain",
                "complete",
                now,
                now,
            )
        )
    try:
        async with connection.transaction():
            await connection.execute(
                "INSERT INTO user_account (id, email, password_hash) VALUES ($1, $2, 'x')",
                user_id,
                "listing@example.com",
            )
            await connection.execute(
                "INSERT INTO node (id, owner_id, kind, name, name_key) "
                "VALUES ($1, $2, 'folder', 'Big', 'big')",
                folder_id,
                user_id,
            )
            await connection.copy_records_to_table(
                "node",
                records=nodes,
                # Names of ASCII lower case: each its own folded key.
                columns=[
                    "id",
                    "owner_id",
                    "parent_id",
                    "kind",
                    "name",
                    "name_key",
                    "updated_at",
                    "size",
                ],
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
                    "state",
                    "upload_expires_at",
                    "completed_at",
                ],
            )
            await connection.execute(
                "UPDATE node SET current_revision_id = file_revision.id FROM file_revision "
                "WHERE file_revision.node_id = node.id AND node.owner_id = $1",
                user_id,
            )
        await connection.execute("ANALYZE node; ANALYZE file_revision")
    finally:
        await connection.close()
    return user_id, folder_id


Series = tuple[ChildOrder, Direction, int, str]  # order, direction, page size, where


async def measure(
    settings: Settings, user_id: uuid.UUID, folder_id: uuid.UUID, count: int, rounds: int
) -> dict[Series, tuple[float, float]]:
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    try:
        cursors: dict[tuple[ChildOrder, Direction, int], str | None] = {}
        for order, direction in ORDERS:
            for page in PAGES:
                # The cursor half way down: walked to once, by the route's own pages.
                cursor = None
                for _ in range(FILES // 2 // page):
                    async with sessionmaker() as session:
                        cursor = (
                            await tree.list_children(
                                session,
                                user_id,
                                folder_id,
                                cursor=cursor,
                                limit=page,
                                order=order,
                                direction=direction,
                            )
                        ).next_cursor
                cursors[order, direction, page] = cursor
        series = [
            (order, direction, page, where)
            for order, direction in ORDERS
            for page in PAGES
            for where in ("first page", "middle page")
        ]

        async def one(taken: Series) -> float:
            order, direction, page, where = taken
            cursor = cursors[order, direction, page] if where == "middle page" else None
            started = time.perf_counter()
            async with sessionmaker() as session:
                listed = await tree.list_children(
                    session,
                    user_id,
                    folder_id,
                    cursor=cursor,
                    limit=page,
                    order=order,
                    direction=direction,
                )
                listed.model_dump_json()
            if len(listed.items) != page:
                raise RuntimeError(f"{taken}: {len(listed.items)} entries, not {page}")
            return (time.perf_counter() - started) * 1000

        gc.collect()
        gc.freeze()
        samples: dict[Series, list[float]] = {taken: [] for taken in series}
        for taken in series:
            await one(taken)
        for taken, batch in interleaved(series, count, rounds):
            for _ in range(batch):
                samples[taken].append(await one(taken))
        return {taken: percentiles(values) for taken, values in samples.items()}
    finally:
        await engine.dispose()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=30, help="measured pages per series")
    parser.add_argument("--rounds", type=int, default=5, help="rounds the series share")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(machine_header(), flush=True)
    with contextlib.ExitStack() as stack:
        _, settings = embedded_bench_stack(stack, "dropp-bench-listing-")
        progress(f"seeding one folder with {FILES:,} files")
        user_id, folder_id = asyncio.run(seed(settings))
        progress(f"timing {args.requests} pages per series, in {args.rounds} rounds")
        figures = asyncio.run(measure(settings, user_id, folder_id, args.requests, args.rounds))
        rows = []
        for (order, direction, page, where), (p50, p99) in figures.items():
            base50 = figures[ChildOrder.NAME, Direction.ASC, page, where][0]
            rows.append(
                [
                    f"{order.value} {direction.value}, {where}",
                    f"{page:,}",
                    f"{p50:.1f}",
                    f"{p99:.1f}",
                    f"{base50:.1f}",
                    f"{p50 / base50:.2f}x",
                ]
            )
        print()
        print(
            table(
                f"A folder of {FILES:,} files: pages by order, in process, ms",
                ["order, page", "entries", "p50", "p99", "by name asc p50", "ratio"],
                rows,
            )
        )
        progress("stopping")
    return 0


if __name__ == "__main__":
    sys.exit(main())
