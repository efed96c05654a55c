"""The connection pool's use, read at every scrape: one collector for the process, over the
engine of each app it runs (one in production; tests run several)."""

from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine


class PoolCollector(Collector):
    def __init__(self) -> None:
        self._engines: list[AsyncEngine] = []

    @contextmanager
    def tracking(self, engine: AsyncEngine) -> Iterator[None]:
        self._engines.append(engine)
        try:
            yield
        finally:
            self._engines.remove(engine)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        in_use = idle = 0
        for engine in self._engines:
            pool = engine.sync_engine.pool
            checked_out, checked_in = (
                getattr(pool, "checkedout", None),
                getattr(pool, "checkedin", None),
            )
            if callable(checked_out) and callable(checked_in):
                in_use += checked_out()
                idle += checked_in()
        family = GaugeMetricFamily(
            "dropp_db_pool_connections", "Database pool connections, by state.", labels=["state"]
        )
        family.add_metric(["in_use"], in_use)
        family.add_metric(["idle"], idle)
        yield family


POOLS = PoolCollector()
REGISTRY.register(POOLS)
