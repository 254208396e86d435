"""Bursts: more schedules due at once than one fire takes, and stopping in the middle."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from tests.engine import tasks
from tests.engine.conftest import T0, eventually
from tickwork import Scheduler
from tickwork.clock import ManualClock
from tickwork.engine.config import READ_AHEAD, EngineConfig
from tickwork.store.sql import SqlStore


async def add_one_time(s: Scheduler, n: int) -> None:
    due = (T0 + timedelta(seconds=1)).isoformat()
    for i in range(n):
        await s.add_schedule("noop", due, id=f"b{i}")


async def all_runs(s: Scheduler, n: int) -> list:
    runs = []
    for i in range(n):
        runs += await s.list_runs(f"b{i}", limit=10)
    return runs


async def test_a_burst_is_fired_in_batches_each_run_once(db_url: str, clock: ManualClock) -> None:
    tasks.calls.clear()
    config = EngineConfig(fire_batch=8)  # 1, 2, 4, 8, 8 ... schedules per fire
    async with Scheduler(db_url, registry=tasks.registry, clock=clock, config=config) as s:
        assert s.engine is not None
        await add_one_time(s, 60)
        fires = s.engine.fires
        clock.advance(2)

        async def done() -> bool:
            runs = await all_runs(s, 60)
            return len(runs) == 60 and all(r.status == "succeeded" for r in runs)

        await eventually(done, what="60 runs succeeded")
        assert s.engine.fires - fires >= 60 // 8  # batches, not one fire
        runs = await all_runs(s, 60)
    assert Counter(r.schedule_id for r in runs) == {f"b{i}": 1 for i in range(60)}
    assert {r.status for r in runs} == {"succeeded"}
    assert len(tasks.calls) == 60


async def test_stopping_while_a_fire_is_in_flight_starts_what_it_claimed(
    db_url: str, clock: ManualClock
) -> None:
    """The fire commits its runs as running on this node: stop must start them (and
    give them the grace), not drop them to be found lost later."""
    tasks.calls.clear()
    n = 1500
    config = EngineConfig(max_concurrent=n, fire_batch=n)
    async with Scheduler(db_url, registry=tasks.registry, clock=clock, config=config) as s:
        engine = s.engine
        assert engine is not None
        await add_one_time(s, n)
        await asyncio.sleep(0.1)  # the loop settles, asleep until the due time
        ticks = engine.ticks
        clock.advance(2)
        while engine.ticks == ticks:  # the loop woke and asked the store to fire
            await asyncio.sleep(0)
        await s.stop()
    async with Scheduler(db_url, registry=tasks.registry, clock=clock, engine=False) as c:
        statuses = Counter(r.status for r in await all_runs(c, n))
    assert statuses.get("running", 0) == 0, statuses
    assert statuses.get("lost", 0) == 0, statuses
    # What was fired before the stop ran; the rest waits for the next start.
    assert sum(statuses.values()) == statuses.get("succeeded", 0) > 0, statuses


async def test_schedules_are_read_ahead_of_their_fire(db_url: str, clock: ManualClock) -> None:
    """READ_AHEAD before a fire time (not earlier) the engine has the store decode what
    is due then; the fire only checks the revisions, and runs every schedule once."""
    tasks.calls.clear()
    async with Scheduler(db_url, registry=tasks.registry, clock=clock) as s:
        assert s.engine is not None
        store = s.engine.store
        assert isinstance(store, SqlStore)
        due = (T0 + timedelta(seconds=30)).isoformat()
        for i in range(30):
            await s.add_schedule("noop", due, id=f"b{i}")
        await asyncio.sleep(0.1)
        assert not store._known  # 30 s ahead: not yet
        clock.advance(30 - READ_AHEAD + 0.1)

        async def read() -> bool:
            return len(store._known) == 30

        await eventually(read, what="30 schedules read ahead")
        clock.advance(1)

        async def done() -> bool:
            runs = await all_runs(s, 30)
            return len(runs) == 30 and all(r.status == "succeeded" for r in runs)

        await eventually(done, what="30 runs succeeded")
        assert (store.cache_hits, store.cache_misses) == (30, 0)
        assert not store._known  # one-time schedules are done with
    assert len(tasks.calls) == 30
