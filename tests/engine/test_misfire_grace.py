"""``misfire_grace=0``: the strictest grace still counts a fire handled by a healthy
node, milliseconds after its time, as on time; a fire a node handles seconds late is
late and meets the catch-up policy."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.engine import tasks
from tests.engine.conftest import T0, eventually
from tickwork import ManualClock, Scheduler


@pytest.mark.parametrize("expression", ["every 1h", "now"])
async def test_a_first_fire_handled_milliseconds_late_runs(
    tmp_path: Path, clock: ManualClock, expression: str
) -> None:
    url = f"sqlite:///{tmp_path / 'tickwork.db'}"
    async with Scheduler(url, registry=tasks.registry, clock=clock, engine=False) as client:
        await client.add_schedule("noop", expression, id="strict", misfire_grace=0, catchup="none")
    clock.advance(0.005)  # the node looks 5 ms after the schedule's first fire time
    async with Scheduler(url, registry=tasks.registry, clock=clock, shutdown_grace=1) as node:

        async def ended() -> bool:
            runs = await node.list_runs("strict")
            return bool(runs) and runs[0].status in ("succeeded", "missed")

        await eventually(ended, what="the first fire")
        (run,) = await node.list_runs("strict")
        assert (run.status, run.trigger, run.scheduled_for) == ("succeeded", "schedule", T0)


async def test_a_fire_handled_seconds_late_is_late(tmp_path: Path, clock: ManualClock) -> None:
    url = f"sqlite:///{tmp_path / 'tickwork.db'}"
    async with Scheduler(url, registry=tasks.registry, clock=clock, engine=False) as client:
        await client.add_schedule("noop", "every 1h", id="strict", misfire_grace=0, catchup="none")
    clock.advance(timedelta(seconds=5))
    async with Scheduler(url, registry=tasks.registry, clock=clock, shutdown_grace=1) as node:

        async def ended() -> bool:
            return bool(await node.list_runs("strict"))

        await eventually(ended, what="the first fire")
        (run,) = await node.list_runs("strict")
        assert (run.status, run.trigger) == ("missed", "catchup")
