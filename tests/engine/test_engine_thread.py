"""``Scheduler(engine_thread=True)``: the engine on a loop of its own, as ``serve`` runs it,
so a main loop busy with other work (HTTP requests) does not hold up fires."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from tests.engine import tasks
from tickwork import Scheduler


async def test_a_blocked_main_loop_does_not_delay_a_fire(sqlite_url: str) -> None:
    tasks.calls.clear()
    async with Scheduler(sqlite_url, registry=tasks.registry, engine_thread=True) as s:
        due = datetime.now(UTC) + timedelta(seconds=0.5)
        await s.add_schedule("noop", due.isoformat(), id="soon")
        # The main loop is stuck for 2 s, past the fire time: on the same loop the run
        # could only start after; on its own loop it starts on time.
        time.sleep(2.0)  # noqa: ASYNC251 - blocking the loop is the point
        assert tasks.calls == [{"task": "noop"}], "the fire waited for the main loop"
        run = (await s.list_runs("soon"))[0]
        assert run.started_at is not None and run.started_at < due + timedelta(seconds=1)
        # The facade still works across the loops: a manual run, waited for, and a cancel.
        done = await s.run_now("soon", wait=True, timeout=10)
        assert done.status == "succeeded"
    assert s.engine is None


async def test_the_engine_thread_stops_with_the_scheduler(sqlite_url: str) -> None:
    s = Scheduler(sqlite_url, registry=tasks.registry, engine_thread=True)
    await s.start()
    engine_loop = s._engine_loop
    assert engine_loop is not None and engine_loop.loop is not asyncio.get_running_loop()
    await s.stop(1)
    assert engine_loop.loop.is_closed()
