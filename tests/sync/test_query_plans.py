"""Per-user queries keep a plan fit for the user they run for, however often they run."""

from uuid import UUID

from sqlalchemy import text

from dropp.core.config import Settings
from dropp.core.db import create_engine
from tests.helpers import Account

FEED_HEAD = "SELECT max(id) FROM change WHERE user_id = $1"


async def test_the_feed_head_of_an_older_account_stays_an_index_probe(
    settings: Settings, alice: Account, bob: Account
) -> None:
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            # Alice's changes are all older than the thousands of Bob's that follow them.
            for account in (alice, bob):
                await connection.execute(
                    text(
                        "INSERT INTO change (user_id, node_id, change, node_kind, path) "
                        "SELECT :user_id, gen_random_uuid(), 'created', 'file', '/f' || n "
                        "FROM generate_series(1, :count) AS n"
                    ),
                    {"user_id": account.user_id, "count": 20 if account is alice else 5000},
                )
            await connection.execute(text("ANALYZE change"))
            raw = (await connection.get_raw_connection()).driver_connection
            assert raw is not None
            await raw.execute(f"PREPARE feed_head(uuid) AS {FEED_HEAD}")
            # More runs than PostgreSQL makes before it considers a generic plan.
            for _ in range(8):
                for account in (bob, alice):
                    await raw.fetchval(f"EXECUTE feed_head('{UUID(account.user_id)}')")
            setting = await raw.fetchval("SHOW plan_cache_mode")
            plan = "\n".join(
                row[0] for row in await raw.fetch(f"EXPLAIN EXECUTE feed_head('{alice.user_id}')")
            )
    finally:
        await engine.dispose()

    # A probe of Alice's own key range, not a scan of everyone's ids filtered down to hers.
    assert "Index Cond: (user_id =" in plan, plan
    assert setting == "force_custom_plan"
