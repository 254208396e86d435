"""A lone node on PostgreSQL resumes within seconds of the database's return, however
long it was away: its main loop backs off at most ``STORE_RETRY_MAX``, and its change
watcher wakes it when it listens again. The database of the test refuses connections
(``ALLOW_CONNECTIONS false``); the server itself keeps running."""

from __future__ import annotations

import logging
from functools import partial

import psycopg
import pytest

from tests.conftest import PG_URL
from tests.engine import tasks
from tests.engine.conftest import T0, eventually
from tickwork import Scheduler
from tickwork.clock import ManualClock
from tickwork.engine.config import STORE_RETRY_MAX
from tickwork.errors import StoreError

#: Failed looks in a row before the database comes back: the old back-off (1, 2, 4, 8,
#: 16, then 30 s) had reached its longest wait by then.
FAILED_LOOKS = 7


async def test_a_lone_node_fires_within_seconds_of_the_database_return(
    pg_url: str, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: the loop slept out a 30 s back-off (nothing else woke it), so a fire due
    meanwhile started up to 30 s after the database was back."""
    caplog.set_level(logging.WARNING, logger="tickwork")
    db = pg_url.rsplit("/", 1)[1]
    admin = psycopg.connect(PG_URL, autocommit=True)  # another database: only db closes
    url = pg_url + "?pool_timeout=0.3"  # a call fails after 0.3 s while it is down
    try:
        async with Scheduler(url, registry=tasks.registry, clock=clock, shutdown_grace=1) as s:
            await s.add_schedule("noop", "every 1m", id="tick")

            async def fired(count: int) -> bool:
                return len(await s.list_runs("tick", status="succeeded")) >= count

            async def failed_looks(count: int) -> bool:
                return sum(1 for r in caplog.records if r.funcName == "_store_trouble") >= count

            await eventually(lambda: fired(1), what="the first run")
            admin.execute(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS false')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (db,),
            )
            # Each failed look costs 0.3 s of real time; the clock then ends its
            # back-off, whatever its length, until the loop has failed FAILED_LOOKS times.
            for n in range(1, FAILED_LOOKS + 1):
                await eventually(partial(failed_looks, n), timeout=10, what=f"failed look {n}")
                if n < FAILED_LOOKS:
                    clock.advance(30)
            down_at = clock.now()
            admin.execute(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS true')

            async def answers() -> bool:
                try:
                    await s.get_schedule("tick")
                except StoreError:
                    return False
                return True

            await eventually(answers, timeout=10, what="the database's return")
            # The loop looks again within STORE_RETRY_MAX of the clock (or at once,
            # woken by the watcher) and catches the fire due meanwhile up.
            clock.advance(STORE_RETRY_MAX)
            await eventually(lambda: fired(2), timeout=5, what="a fire after the outage")
            latest = max(r.scheduled_for for r in await s.list_runs("tick"))
            assert latest > T0 and latest <= down_at
    finally:
        admin.execute(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS true')
        admin.close()
