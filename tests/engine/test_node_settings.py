"""Node settings the engine applies: retention and how often it is applied."""

from __future__ import annotations

import pytest

from tests.engine import tasks
from tickwork import Scheduler
from tickwork.clock import ManualClock
from tickwork.errors import NotFoundError


async def test_retention_runs_every_cleanup_interval(db_url: str, clock: ManualClock) -> None:
    # retention 0.001 day = 86.4 s; the leader deletes older runs every 600 s (its first
    # maintenance pass, when the node starts, counts as one).
    async with Scheduler(
        db_url, registry=tasks.registry, clock=clock, retention_days=0.001, cleanup_interval=600
    ) as s:
        assert s.engine is not None
        await s.add_schedule("noop", "manual", id="m")
        run = await s.run_now("m", wait=True, timeout=10)
        clock.advance(100)
        await s.engine._maintenance_once()  # older than retention, but no cleanup yet
        assert (await s.get_run(run.id)).status == "succeeded"
        clock.advance(500)
        await s.engine._maintenance_once()  # 600 s after the last cleanup: cleans
        with pytest.raises(NotFoundError):
            await s.get_run(run.id)
