"""Node settings the engine applies: retention and how often it is applied."""

from __future__ import annotations

import asyncio

import pytest

from tests.engine import tasks
from tests.engine.conftest import eventually
from tickwork import Scheduler
from tickwork.clock import ManualClock
from tickwork.errors import NotFoundError, ValidationError
from tickwork.models import Run


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
        await s.engine.upkeep.maintenance_once()  # older than retention, but no cleanup yet
        assert (await s.get_run(run.id)).status == "succeeded"
        clock.advance(500)
        await s.engine.upkeep.maintenance_once()  # 600 s after the last cleanup: cleans
        with pytest.raises(NotFoundError):
            await s.get_run(run.id)


async def test_a_schedule_without_timeout_or_retry_takes_the_executing_nodes(
    db_url: str,
) -> None:
    # A client with tickwork's defaults creates the schedules; the node has its own.
    async with Scheduler(db_url, engine=False, registry=tasks.registry) as client:
        plain = await client.add_schedule("slow_async", "manual", id="plain", data={"seconds": 10})
        assert plain.node_defaults == ("retry", "timeout")
        assert plain.timeout == 300 and plain.retry.max_attempts == 3  # the client's view
        own = await client.add_schedule(
            "slow_async", "manual", id="own", data={"seconds": 0.01}, timeout=5
        )
        assert own.node_defaults == ("retry",)
        # A task's own defaults are set by the schedule (flaky: retries=2).
        flaky = await client.add_schedule("flaky", "manual", id="fl", data={"fail_times": 0})
        assert flaky.node_defaults == ("timeout",) and flaky.retry.max_attempts == 3
    async with Scheduler(
        db_url,
        registry=tasks.registry,
        default_timeout=0.3,
        default_retry={"max_attempts": 1},
        shutdown_grace=1,
    ) as node:
        timed_out = await node.run_now("plain", wait=True, timeout=10)
        assert timed_out.status == "timed_out" and timed_out.attempt == 1
        assert timed_out.node_defaults == ("retry", "timeout")
        assert (await node.run_now("own", wait=True, timeout=10)).status == "succeeded"
        # Setting a value makes it the schedule's own; None gives it back to the node.
        updated = await node.update_schedule("plain", timeout=2, data={"seconds": 0.5})
        assert updated.node_defaults == ("retry",) and updated.timeout == 2
        assert (await node.run_now("plain", wait=True, timeout=10)).status == "succeeded"
        back = await node.update_schedule("plain", timeout=None)
        assert back.node_defaults == ("retry", "timeout") and back.timeout == 0.3
        assert (await node.get_schedule("plain")).node_defaults == ("retry", "timeout")


async def test_the_nodes_default_retry_policy(db_url: str) -> None:
    async with Scheduler(
        db_url,
        registry=tasks.registry,
        default_retry={"max_attempts": 2, "delay": 0, "jitter": False},
        shutdown_grace=1,
    ) as node:
        created = await node.add_schedule("always_fails", "manual", id="f")
        assert created.retry.max_attempts == 2  # this process's default, shown
        run = await node.run_now("f", wait=True, timeout=10)
        assert run.status == "failed" and [a.status for a in run.attempts] == ["failed"] * 2
        explicit = await node.update_schedule("f", retry={"max_attempts": 1})
        assert explicit.node_defaults == ("timeout",)
        run = await node.run_now("f", wait=True, timeout=10)
        assert len(run.attempts) == 1


async def test_node_defaults_are_checked() -> None:
    with pytest.raises(ValidationError, match="default_timeout"):
        Scheduler("sqlite:///x.db", default_timeout=0)
    with pytest.raises(ValidationError, match=r"retry\.backoff"):
        Scheduler("sqlite:///x.db", default_retry={"backoff": 0.5})


async def test_fired_runs_carry_the_schedules_node_defaults(
    db_url: str, clock: ManualClock
) -> None:
    async with Scheduler(
        db_url, registry=tasks.registry, clock=clock, default_timeout=0.2, shutdown_grace=1
    ) as node:
        await node.add_schedule(
            "slow_async", "* * * * *", id="minutely", data={"seconds": 10}, retry=1
        )
        clock.advance(60)
        runs: list[Run] = []

        async def fired_and_over() -> bool:
            runs[:] = await node.list_runs(schedule_id="minutely", status="timed_out")
            return bool(runs)

        await eventually(fired_and_over, what="the fired run to time out")
        assert runs[0].trigger == "schedule" and runs[0].node_defaults == ("timeout",)
        assert runs[0].attempt == 1


async def test_a_maintenance_pass_asked_for_waits_for_the_one_running(
    db_url: str, clock: ManualClock
) -> None:
    """Two passes at once (the clock's and one asked for): the first to return has
    finished the cleanup, rather than skipping it because the other one started it."""
    async with Scheduler(
        db_url, registry=tasks.registry, clock=clock, retention_days=0.001, cleanup_interval=600
    ) as s:
        assert s.engine is not None
        await s.add_schedule("noop", "manual", id="m")
        run = await s.run_now("m", wait=True, timeout=10)
        clock.advance(700)
        upkeep = s.engine.upkeep
        passes = {asyncio.ensure_future(upkeep.maintenance_once()) for _ in range(2)}
        _done, pending = await asyncio.wait(passes, return_when=asyncio.FIRST_COMPLETED)
        with pytest.raises(NotFoundError):
            await s.get_run(run.id)
        await asyncio.gather(*pending)
