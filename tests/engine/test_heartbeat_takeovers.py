"""The heartbeat tells a run this node ended itself from one another node took over.

Ends are written by the node's finisher, and a run leaves the node's list of runs only
once the finisher is back from the database: a heartbeat in between finds the run no
longer held. The race is driven here: the finisher is held (as while the main loop
works off a burst), the end is written through the store as the finisher writes it,
and the heartbeat renews its leases before the node lets go of the run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from tests.engine.conftest import eventually
from tickwork import RunContext, Scheduler, TaskRegistry, task
from tickwork.clock import ManualClock
from tickwork.engine.core import Active
from tickwork.engine.runtime import Engine
from tickwork.models import AttemptOutcome, Run

registry = TaskRegistry()
#: What each run of ``gated`` waits for, by schedule id.
gates: dict[str, asyncio.Event] = {}
TAKEN_OVER = "taken over by another node"


@task("gated", registry=registry)
async def gated(ctx: RunContext) -> str:
    await gates[ctx.schedule_id].wait()
    return "done"


@pytest.fixture
async def scheduler(pg_url: str, clock: ManualClock) -> AsyncIterator[Scheduler]:
    async with Scheduler(pg_url, registry=registry, clock=clock, shutdown_grace=1) as s:
        yield s


async def _running(s: Scheduler, schedule_id: str) -> Active:
    """A run of ``gated`` started on this node, its task waiting for its gate."""
    engine = s.engine
    assert engine is not None
    gates[schedule_id] = asyncio.Event()
    await s.add_schedule("gated", "manual", id=schedule_id)
    run = await s.run_now(schedule_id)

    async def started() -> bool:
        return run.id in engine.core.active

    await eventually(started, what=f"run {run.id} started")
    return engine.core.active[run.id]


async def _end_here(engine: Engine, active: Active, schedule_id: str) -> None:
    """Let the run's task end while the finisher holds its end (it waits while the
    main loop is not idle): once the loop is asleep, nothing else sets it idle."""

    async def asleep() -> bool:
        return engine.wakeups.sleep_target is not None

    await eventually(asleep, what="the main loop asleep")
    engine.core.main_idle.clear()
    gates[schedule_id].set()

    async def ended() -> bool:
        return active.task.done()

    await eventually(ended, what="the task's end")


def _taken_over(caplog: pytest.LogCaptureFixture, run: Run) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if TAKEN_OVER in r.getMessage() and run.id in r.getMessage()
    ]


async def test_a_run_whose_end_this_node_wrote_is_not_taken_for_taken_over(
    scheduler: Scheduler, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: "run … was taken over by another node; stopping it", for a run that had
    succeeded on this very node."""
    caplog.set_level(logging.WARNING, logger="tickwork")
    engine = scheduler.engine
    assert engine is not None
    active = await _running(scheduler, "own")
    run = active.run
    await _end_here(engine, active, "own")
    try:
        ended = AttemptOutcome("succeeded", result="done", finished_at=clock.now())
        item = (run.id, engine.node_id, run.attempt, ended)
        (written,) = await asyncio.to_thread(engine.store.finish_attempts, [item], clock.now())
        assert written is not None and written.status == "succeeded"
        await engine.upkeep.beat()
        assert engine.core.active.get(run.id) is active  # the race: not let go of yet
    finally:
        engine.core.main_idle.set()
    assert _taken_over(caplog, run) == []

    async def let_go() -> bool:
        return run.id not in engine.core.active

    await eventually(let_go, what="the finisher letting go of the run")
    stored = await scheduler.get_run(run.id)
    assert stored.status == "succeeded" and stored.node == engine.node_id


async def test_a_run_really_taken_over_is_still_said_so(
    scheduler: Scheduler, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Whether its task was still running here, or had ended and its end was waiting
    to be written (and can no longer be)."""
    caplog.set_level(logging.WARNING, logger="tickwork")
    engine = scheduler.engine
    assert engine is not None
    executing = await _running(scheduler, "executing")
    finished = await _running(scheduler, "finished")
    await _end_here(engine, finished, "finished")
    try:
        # Another node finds their leases lapsed: a minute later by its clock.
        later = clock.now() + timedelta(seconds=engine.config.lease_ttl * 2)
        recovered = await asyncio.to_thread(
            engine.store.recover_lost, later, [], lambda run, now: now + timedelta(hours=1)
        )
        assert {r.id for r in recovered} == {executing.run.id, finished.run.id}
        await engine.upkeep.beat()
        assert engine.core.active.get(finished.run.id) is finished  # not let go of yet
    finally:
        engine.core.main_idle.set()
    assert len(_taken_over(caplog, executing.run)) == 1
    assert len(_taken_over(caplog, finished.run)) == 1

    async def let_go() -> bool:
        return finished.run.id not in engine.core.active

    await eventually(let_go, what="the finisher letting go of the run")
    # Said once, by the heartbeat: not again as the finisher's end is refused.
    assert [m for m in _said(caplog, finished.run) if "not recorded" in m] == [
        m for m in _taken_over(caplog, finished.run)
    ]
    assert executing.stop_reason == "lost"
    await eventually(lambda: _done(executing.task), what="the taken-over task stopped")


def _said(caplog: pytest.LogCaptureFixture, run: Run) -> list[str]:
    return [r.getMessage() for r in caplog.records if run.id in r.getMessage()]


async def _done(t: asyncio.Task[None]) -> bool:
    return t.done()


async def test_a_success_the_finisher_can_no_longer_record_is_said(
    scheduler: Scheduler, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A node frozen past its lease while its task ended (a SIGSTOP, a suspended
    host): when it resumes, its finisher may write the end before any heartbeat tells
    it the run was taken over. The database refuses the end, as it should. Before, a
    success refused so was not said at all (a failure was): the node's log showed a
    run that succeeded here and nothing of its result being dropped."""
    caplog.set_level(logging.WARNING, logger="tickwork")
    engine = scheduler.engine
    assert engine is not None
    active = await _running(scheduler, "frozen")
    run = active.run
    await _end_here(engine, active, "frozen")
    try:
        later = clock.now() + timedelta(seconds=engine.config.lease_ttl * 2)
        (taken,) = await asyncio.to_thread(
            engine.store.recover_lost, later, [], lambda run, now: now + timedelta(hours=1)
        )
        assert taken.id == run.id
    finally:
        engine.core.main_idle.set()  # the finisher goes first, no heartbeat between

    async def let_go() -> bool:
        return run.id not in engine.core.active

    await eventually(let_go, what="the finisher letting go of the run")
    said = [r.getMessage() for r in caplog.records if run.id in r.getMessage()]
    assert any("succeeded" in m and "not recorded" in m for m in said), said
    stored = await scheduler.get_run(run.id)
    assert stored.status == "retrying" and stored.attempts[0].status == "lost"
