"""A sync task that never returns does not take a thread for good: when its attempt
ends (timed out), its thread is replaced, logged and counted, and other sync tasks
keep starting."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest

from tests.engine import tasks
from tests.engine.conftest import eventually
from tickwork import Scheduler


@pytest.fixture
def released() -> Iterator[None]:
    tasks.release.clear()
    yield
    tasks.release.set()  # the hung threads end with the test


async def test_hung_sync_tasks_do_not_starve_the_others(
    sqlite_url: str, released: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "tickwork.engine")
    async with Scheduler(
        sqlite_url, registry=tasks.registry, lease_ttl=1.5, shutdown_grace=0.5
    ) as s:
        assert s.engine is not None and s.engine.executors.threads.max_threads == 32
        await s.add_schedule(
            "hang_sync",
            "manual",
            id="hang",
            timeout=0.3,
            retry={"max_attempts": 1},
            # Every thread of the pool hung at once, then 8 more on the threads that
            # replace them (run one at a time, the 40 took 12 s).
            overlap="allow",
            max_instances=32,
        )
        await s.add_schedule("sync_echo", "manual", id="echo")
        hung = [await s.run_now("hang") for _ in range(40)]

        async def all_timed_out() -> bool:
            found = [await s.get_run(r.id) for r in hung]
            return all(r.status == "timed_out" for r in found)

        await eventually(all_timed_out, timeout=15, what="40 hung runs timed out")
        run = await s.run_now("echo", data={"x": 1}, wait=True, timeout=5)
        assert run.status == "succeeded"
        assert s.stuck_threads == 40

        async def reported() -> bool:
            nodes = await s.nodes()
            return [n.stuck_threads for n in nodes] == [40]

        await eventually(reported, timeout=5, what="the heartbeat to report 40 stuck threads")
        replaced = [r for r in caplog.records if "is replaced" in r.getMessage()]
        assert len(replaced) == 40
        tasks.release.set()

        async def gone() -> bool:
            return s.stuck_threads == 0

        await eventually(gone, timeout=5, what="the released threads to end")
    await asyncio.sleep(0)
