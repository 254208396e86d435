"""A node whose store call the database keeps waiting says so while it waits, and once
more when the call returns; the wait is real (another connection holds SQLite's write
lock), the thresholds are the watch's."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading

import pytest
from fastapi import FastAPI

from tests.engine import tasks
from tickwork import Scheduler
from tickwork.api.engine_status import engine_state
from tickwork.engine.config import READ_AHEAD, EngineConfig
from tickwork.engine.store_watch import StoreCallWatch
from tickwork.engine.storecalls import StoreCalls


def _said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "tickwork.engine"]


async def test_a_store_call_held_by_another_connections_lock_is_said_while_it_waits(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = sqlite_url.removeprefix("sqlite:///")
    async with Scheduler(sqlite_url, registry=tasks.registry, shutdown_grace=1) as s:
        assert s.engine is not None
        watch = s.engine.store_watch
        watch.slow_after, watch.every = 0.3, 0.05
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with caplog.at_level(logging.WARNING, logger="tickwork.engine"):
                # Maintenance begins with a write (try_lead): it waits for the lock.
                maintaining = asyncio.create_task(s.engine.upkeep.maintenance_once())
                loop = asyncio.get_running_loop()
                deadline = loop.time() + 5
                while not any("store call try_lead has waited" in m for m in _said(caplog)):
                    assert loop.time() < deadline, _said(caplog)
                    await asyncio.sleep(0.02)
                assert not maintaining.done()  # said while it waits, not after
                (said,) = [m for m in _said(caplog) if "store call try_lead" in m]
                assert "for the database" in said
                # What /metrics reports of an engine in this process.
                assert engine_state(FastAPI(), s).store_call_oldest >= 0.3
                holder.execute("COMMIT")
                await asyncio.wait_for(maintaining, 10)
                while watch.slow_since is not None:
                    assert loop.time() < deadline + 5
                    await asyncio.sleep(0.02)
                assert engine_state(FastAPI(), s).store_call_oldest == 0.0
        finally:
            holder.close()
    returned = [m for m in _said(caplog) if m.startswith("store call try_lead returned after")]
    assert len(returned) == 1, _said(caplog)


async def test_a_call_is_said_at_each_doubling_of_its_wait_and_its_return_once() -> None:
    """Not every look: a call hung for an hour is said about a dozen times."""
    calls = StoreCalls(1)
    watch = StoreCallWatch(calls, slow_after=1.0, every=3600)
    release = threading.Event()
    try:
        waiting = asyncio.ensure_future(calls(release.wait, 10))
        while not calls.out:
            await asyncio.sleep(0.001)
        (call,) = calls.out.values()
        assert call.name == "wait"
        told: list[float | None] = []
        watch.on_slow = told.append
        counts = []
        for after in (0.5, 0.99, 1.0, 1.5, 1.99, 2.0, 3.0, 3.9, 4.0, 7.9, 8.0):
            watch.look(now=call.started + after)
            counts.append(watch.warnings)
            if after == 0.99:
                assert told == [] and watch.slow_since is None
        assert counts == [0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 4]
        assert len(told) == 1 and told[0] == watch.slow_since is not None  # once per call
        release.set()
        assert await waiting is True
        assert calls.out == {}
        assert calls.oldest() == 0.0
        watch.look()
        assert told[1:] == [None] and watch.slow_since is None
    finally:
        release.set()
        calls.shutdown()


async def test_a_call_that_returns_in_time_is_never_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = StoreCalls(1)
    watch = StoreCallWatch(calls, slow_after=1.0, every=3600)
    with caplog.at_level(logging.WARNING, logger="tickwork.engine"):
        assert await calls(sum, [1, 2]) == 3
        watch.look()
    calls.shutdown()
    assert watch.warnings == 0
    assert _said(caplog) == []


@pytest.mark.parametrize(
    ("lease_ttl", "slow"), [(0.5, 2.0), (6, 2.0), (12, 2.0), (18, 3.0), (30, 5.0), (600, 5.0)]
)
def test_the_threshold_is_a_sixth_of_the_lease_within_bounds(lease_ttl: float, slow: float) -> None:
    assert EngineConfig(lease_ttl=lease_ttl).store_call_slow == slow
    # A fire prepared ahead holds its store call until its time: that is never said.
    assert EngineConfig(lease_ttl=lease_ttl).store_call_slow > READ_AHEAD
