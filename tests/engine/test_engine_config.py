"""The engine's settings (``EngineConfig``) and the upkeep a ``ManualClock`` drives."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from tests.engine import tasks
from tests.engine.conftest import T0, eventually
from tickwork import Scheduler
from tickwork.clock import ManualClock
from tickwork.engine import runtime
from tickwork.engine.config import EngineConfig
from tickwork.errors import NotFoundError, ValidationError


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_concurrent", 0),
        ("max_concurrent", 1.5),
        ("lease_ttl", 0),
        ("lease_ttl", "30"),
        ("shutdown_grace", -1),
        ("retention_days", 0),
        ("cleanup_interval", -5),
        ("default_timeout", 0),
        ("maintenance_interval", 0),
        ("max_threads", 0),
        ("fire_batch", 0),
        ("read_ahead", -1),
        ("fire_ahead", -0.1),
        ("fire_ahead", 5),
        ("fire_ahead", True),
        ("stop_grace", 0),
        ("stop_grace", "5"),
        ("stop_grace", float("inf")),
        ("lease_ttl", 1e300),
        ("cleanup_interval", float("nan")),
        ("retention_days", 1e9),
        ("default_retry", {"max_attempts": 2}),
    ],
)
def test_a_bad_value_is_refused_naming_its_field(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as info:
        EngineConfig(**{field: value})  # type: ignore[arg-type]
    assert info.value.field == field
    assert field in str(info.value)


def test_the_config_is_frozen_and_importable_from_the_runtime() -> None:
    config = EngineConfig(fire_ahead=0)
    with pytest.raises(AttributeError):
        config.fire_batch = 8  # type: ignore[misc]
    assert runtime.EngineConfig is EngineConfig


async def test_fire_ahead_0_through_the_scheduler_fires_at_the_time(
    db_url: str, clock: ManualClock
) -> None:
    tasks.calls.clear()
    config = EngineConfig(fire_ahead=0)
    async with Scheduler(db_url, registry=tasks.registry, clock=clock, config=config) as s:
        engine = s.engine
        assert engine is not None and engine.config.fire_ahead == 0
        due = T0 + timedelta(seconds=5)
        assert engine.ahead.lead(due) == (timedelta(0), 0)  # nothing prepared ahead
        await s.add_schedule("noop", due.isoformat(), id="once")
        clock.set(due)

        async def ran() -> bool:
            return len(await s.list_runs("once", status="succeeded")) == 1

        await eventually(ran, what="the run fired at its time")


async def test_a_keyword_and_a_config_disagreeing_is_refused(db_url: str) -> None:
    with pytest.raises(ValidationError) as info:
        Scheduler(db_url, max_concurrent=5, config=EngineConfig(max_concurrent=7))
    assert info.value.field == "max_concurrent"
    same = Scheduler(db_url, max_concurrent=7, config=EngineConfig(max_concurrent=7))
    assert same._config.max_concurrent == 7


async def test_heartbeats_follow_the_injected_clock(db_url: str, clock: ManualClock) -> None:
    async with Scheduler(db_url, registry=tasks.registry, clock=clock, lease_ttl=30) as s:
        await asyncio.sleep(0.1)  # the heartbeat loop waits for the clock
        clock.advance(11)  # past a third of the lease

        async def beaten() -> bool:
            [node] = await s.nodes()
            return bool(node.heartbeat_at == T0 + timedelta(seconds=11))

        await eventually(beaten, what="a heartbeat at the clock's time")


async def test_maintenance_follows_the_injected_clock(db_url: str, clock: ManualClock) -> None:
    # retention 0.001 day = 86.4 s, applied every 600 s of the clock.
    async with Scheduler(
        db_url, registry=tasks.registry, clock=clock, retention_days=0.001, cleanup_interval=600
    ) as s:
        await s.add_schedule("noop", "manual", id="m")
        run = await s.run_now("m", wait=True, timeout=10)
        clock.advance(601)

        async def deleted() -> bool:
            try:
                await s.get_run(run.id)
            except NotFoundError:
                return True
            return False

        await eventually(deleted, what="retention applied by the maintenance loop")
