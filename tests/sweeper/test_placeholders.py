"""Files that no upload ever completed leave the tree once their uploads have all ended."""

from uuid import UUID

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from dropp.core.config import Settings
from dropp.storage.s3 import Storage
from dropp.sweeper.service import sweep
from tests.helpers import Account, start_upload, upload_file
from tests.sweeper.conftest import end_window


async def feed_of(engine: AsyncEngine, file_id: str) -> list[str]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT change FROM change WHERE node_id = :id ORDER BY id"),
            {"id": UUID(file_id)},
        )
    return [row.change for row in rows]


async def test_a_file_whose_only_upload_expired_is_removed_and_the_feed_says_so(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    storage: Storage,
    now_settings: Settings,
    alice: Account,
) -> None:
    abandoned = await start_upload(client, alice, "abandoned.txt", size=5)
    kept = await upload_file(client, web, alice, "kept.txt", b"kept")
    newer = await start_upload(client, alice, "kept.txt", size=3)
    waiting = await start_upload(client, alice, "waiting.txt", size=3)
    for upload in (abandoned, newer):
        await end_window(engine, upload["upload_id"])

    await sweep(sessionmaker, storage, now_settings)
    # The first sweep expires the uploads; a late complete still learns that. The next one,
    # past the grace, removes what has nothing to serve.
    still = await client.get(f"/files/{abandoned['file_id']}", headers=alice.headers)
    await sweep(sessionmaker, storage, now_settings)

    assert still.json()["status"] == "expired"
    gone = await client.get(f"/files/{abandoned['file_id']}", headers=alice.headers)
    assert gone.status_code == 404
    listed = await client.get("/list/", params={"status": "all"}, headers=alice.headers)
    names = sorted(f["name"] for f in listed.json()["files"])
    assert names == ["kept.txt", "waiting.txt"]
    assert await feed_of(engine, abandoned["file_id"]) == ["deleted"]
    assert (await client.get(f"/files/{kept['file_id']}", headers=alice.headers)).json()[
        "status"
    ] == "complete"
    assert waiting["file_id"] in {f["file_id"] for f in listed.json()["files"]}
