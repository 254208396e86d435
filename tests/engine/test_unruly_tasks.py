"""A task that breaks the rules of an attempt ends its own run, and only that: one that
raises what is no ``Exception`` (``sys.exit()``, ``KeyboardInterrupt``...), or an async
task that ignores its cancellation (given up ``stop_grace`` after its timeout, a cancel
request or the node's shutdown). The node goes on with the other runs."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from tests.engine import tasks
from tests.engine.conftest import eventually
from tickwork import EngineConfig, Scheduler
from tickwork.clock import ManualClock
from tickwork.models import Run

#: What the stored error of each exception starts with.
ERRORS = {
    "SystemExit": "SystemExit: 3",
    "KeyboardInterrupt": "KeyboardInterrupt",
    "GeneratorExit": "GeneratorExit",
    "_OwnBaseException": "_OwnBaseException: not an Exception",
}


@pytest.mark.parametrize("task", ["raise_base", "raise_base_sync"])
@pytest.mark.parametrize("name", sorted(ERRORS))
async def test_a_base_exception_fails_its_run_and_the_node_goes_on(
    db_url: str, task: str, name: str
) -> None:
    """Before: SystemExit and KeyboardInterrupt stopped the node's event loop (a worker
    exited without a word, its run left ``running``); the others left the run executing
    for good, its slot taken and its lease renewed."""
    async with Scheduler(db_url, registry=tasks.registry, shutdown_grace=1) as s:
        await s.add_schedule(
            task, "manual", id="bad", data={"name": name}, retry={"max_attempts": 1}
        )
        await s.add_schedule("add", "manual", id="good", data={"a": 1, "b": 2})
        bad = await s.run_now("bad", wait=True, timeout=10)
        assert bad.status == "failed"
        assert bad.error == ERRORS[name]
        assert bad.traceback is not None and name in bad.traceback
        good = await s.run_now("good", wait=True, timeout=10)
        assert (good.status, good.result) == ("succeeded", 3)


@pytest.mark.parametrize(
    "task", ["raise_unprintable", "raise_unprintable_sync", "raise_unprintable_process"]
)
@pytest.mark.parametrize("name", sorted(tasks.UNPRINTABLE))
async def test_an_exception_without_text_fails_its_run_with_its_type(
    db_url: str, task: str, name: str
) -> None:
    """An exception whose ``__str__`` raises or returns no string. Before: the attempt
    ended with the error of describing it (``tickwork could not execute it:
    RuntimeError(...)``), the process executor's with ``the task process exited with code
    1 without a result``; one whose ``__repr__`` failed too left its run ``running`` for
    good, its slot taken."""
    async with Scheduler(db_url, registry=tasks.registry, shutdown_grace=1) as s:
        await s.add_schedule(
            task, "manual", id="bad", data={"name": name}, retry={"max_attempts": 1}
        )
        await s.add_schedule("add", "manual", id="good", data={"a": 1, "b": 2})
        bad = await s.run_now("bad", wait=True, timeout=10)
        assert (bad.status, bad.error) == ("failed", f"{name}: <exception str() failed>")
        assert bad.traceback is not None and "raise UNPRINTABLE[name]" in bad.traceback
        good = await s.run_now("good", wait=True, timeout=10)
        assert (good.status, good.result) == ("succeeded", 3)


@pytest.mark.parametrize(
    ("task", "how"),
    [("raise_cancelled", "raise"), ("raise_cancelled", "await"), ("raise_cancelled_sync", "raise")],
)
async def test_a_cancelled_error_of_the_tasks_own_fails_its_run(
    db_url: str, task: str, how: str
) -> None:
    """Nothing stopped the run: the task raised ``CancelledError`` itself, or awaited a
    future something else cancelled. Before: the attempt was recorded ``cancelled``,
    ``interrupted: the node shut down before the run finished``, and never retried."""
    async with Scheduler(db_url, registry=tasks.registry, shutdown_grace=1) as s:
        await s.add_schedule(
            task, "manual", id="bad", data={"how": how}, retry={"max_attempts": 2, "delay": 0}
        )
        bad = await s.run_now("bad", wait=True, timeout=10)
        assert [a.status for a in bad.attempts] == ["failed", "failed"]
        text = "given up on the upstream" if how == "raise" else ""
        assert (bad.status, bad.error) == ("failed", f"CancelledError{': ' if text else ''}{text}")
        assert bad.traceback is not None and "CancelledError" in bad.traceback
        await s.add_schedule("add", "manual", id="good", data={"a": 1, "b": 2})
        good = await s.run_now("good", wait=True, timeout=10)
        assert (good.status, good.result) == ("succeeded", 3)


async def test_a_task_cancelling_its_own_asyncio_task_fails_its_run(db_url: str) -> None:
    """``asyncio.current_task().cancel()`` in the task's code (a library's cancel scope
    letting it out, say). Before: the attempt was recorded ``cancelled``, ``interrupted:
    the node shut down before the run finished``, and never retried."""
    async with Scheduler(db_url, registry=tasks.registry, shutdown_grace=1) as s:
        await s.add_schedule(
            "raise_cancelled",
            "manual",
            id="bad",
            data={"how": "cancel_itself"},
            retry={"max_attempts": 2, "delay": 0},
        )
        bad = await s.run_now("bad", wait=True, timeout=10)
        assert [a.status for a in bad.attempts] == ["failed", "failed"]
        assert bad.error == (
            "CancelledError: the run's asyncio task was cancelled, not by the node"
        )
        await s.add_schedule("add", "manual", id="good", data={"a": 1, "b": 2})
        assert (await s.run_now("good", wait=True, timeout=10)).status == "succeeded"


@pytest.fixture
async def deaf_node(sqlite_url: str) -> AsyncIterator[Scheduler]:
    """A node with one slot and a short ``stop_grace``: a slot held by a task that
    ignores its cancellation would hold back every other run."""
    tasks.deaf_release.clear()
    config = EngineConfig(max_concurrent=1, stop_grace=0.3, shutdown_grace=0.1)
    async with Scheduler(sqlite_url, registry=tasks.registry, config=config) as s:
        await s.add_schedule("add", "manual", id="good", data={"a": 2, "b": 2})
        yield s
        tasks.deaf_release.set()


async def _status(s: Scheduler, run: Run, *statuses: str) -> None:
    async def reached() -> bool:
        return (await s.get_run(run.id)).status in statuses

    await eventually(reached, timeout=5, what=f"run {run.id} {'/'.join(statuses)}")


async def test_an_async_task_ignoring_its_timeout_is_given_up(
    deaf_node: Scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: the attempt never ended; the node's one slot stayed taken."""
    s = deaf_node
    await s.add_schedule("deaf", "manual", id="deaf", timeout=0.2, retry={"max_attempts": 1})
    with caplog.at_level(logging.WARNING, logger="tickwork"):
        started = time.monotonic()
        deaf = await s.run_now("deaf")
        await _status(s, deaf, "timed_out")
        assert time.monotonic() - started < 3
        run = await s.get_run(deaf.id)
        assert run.error == (
            "timed out after 0.2 s; the task ignored its cancellation for 0.3 s and was "
            "left running"
        )
        assert [a.status for a in run.attempts] == ["timed_out"]
        good = await s.run_now("good", wait=True, timeout=5)  # the slot is free again
        assert good.status == "succeeded"
        assert s.engine is not None and s.engine.execution.given_up == 1

        # When it ends at last, its outcome is ignored: the run stays as recorded.
        tasks.deaf_release.set()

        async def forgotten() -> bool:
            assert s.engine is not None
            return s.engine.execution.given_up == 0

        await eventually(forgotten, timeout=5, what="the given-up task's end")
        run = await s.get_run(deaf.id)
        assert (run.status, [a.status for a in run.attempts]) == ("timed_out", ["timed_out"])
    said = [r.getMessage() for r in caplog.records]
    assert any("did not stop within 0.3 s of its timeout" in m for m in said), said
    assert any("ended after it was given up; its outcome is ignored" in m for m in said), said


async def test_an_async_task_ignoring_a_cancel_request_is_given_up(deaf_node: Scheduler) -> None:
    s = deaf_node
    await s.add_schedule("deaf", "manual", id="deaf", retry={"max_attempts": 3})
    deaf = await s.run_now("deaf")
    await _status(s, deaf, "running")
    await s.cancel_run(deaf.id)
    await _status(s, deaf, "cancelled")
    run = await s.get_run(deaf.id)
    assert run.error == (
        "cancelled on request; the task ignored its cancellation for 0.3 s and was left running"
    )
    assert (await s.run_now("good", wait=True, timeout=5)).status == "succeeded"


async def test_a_given_up_coroutine_is_reported_until_it_ends(
    db_url: str, clock: ManualClock
) -> None:
    """A given-up task still running shows in ``Scheduler.stuck_coroutines``, in its
    node's row from the next heartbeat on (the clock's: every ``lease_ttl / 3``), and in
    the gauges of the nodes alive; all go back to 0 once it ends. Before: it was only
    logged."""
    tasks.deaf_release.clear()
    config = EngineConfig(max_concurrent=1, stop_grace=0.3, shutdown_grace=0.1, lease_ttl=30)
    beat = timedelta(seconds=10)
    try:
        async with Scheduler(db_url, registry=tasks.registry, clock=clock, config=config) as s:

            async def reported() -> tuple[int, int]:
                (node,) = await s.nodes()
                now = clock.now()
                gauges = await asyncio.to_thread(s.store.gauges, now, now - 3 * beat)
                return node.stuck_coroutines, gauges.stuck_coroutines

            await s.add_schedule("deaf", "manual", id="deaf", retry={"max_attempts": 1})
            deaf = await s.run_now("deaf")
            await _status(s, deaf, "running")
            await s.cancel_run(deaf.id)
            await _status(s, deaf, "cancelled")  # given up, stop_grace after the request
            assert s.stuck_coroutines == 1
            assert await reported() == (0, 0)  # no heartbeat since
            clock.advance(beat.total_seconds())

            async def beaten(count: int) -> bool:
                return await reported() == (count, count)

            await eventually(lambda: beaten(1), what="the heartbeat to report 1 coroutine")
            tasks.deaf_release.set()

            async def ended() -> bool:
                return s.stuck_coroutines == 0

            await eventually(ended, what="the given-up task's end")
            clock.advance(beat.total_seconds())
            await eventually(lambda: beaten(0), what="the heartbeat to report none")
    finally:
        tasks.deaf_release.set()


async def test_an_async_task_ignoring_the_shutdown_is_given_up(sqlite_url: str) -> None:
    """Before: the node's stop waited 10 s for the task, then left the run ``running``
    until its lease lapsed."""
    tasks.deaf_release.clear()
    config = EngineConfig(stop_grace=0.3, shutdown_grace=0.1)
    try:
        async with Scheduler(sqlite_url, registry=tasks.registry, config=config) as s:
            await s.add_schedule("deaf", "manual", id="deaf", retry={"max_attempts": 3})
            deaf = await s.run_now("deaf")
            await _status(s, deaf, "running")
            started = time.monotonic()
            await s.stop()
            assert time.monotonic() - started < 3
        async with Scheduler(sqlite_url, engine=False) as client:
            run = await client.get_run(deaf.id)
        assert run.status == "retrying"  # interrupted by the shutdown: retried by a node up
        assert run.error == (
            "interrupted: the node shut down before the run finished; the task ignored its "
            "cancellation for 0.3 s and was left running"
        )
    finally:
        tasks.deaf_release.set()
        await asyncio.sleep(0.05)  # its loop is this test's: let it end here


async def test_a_task_blocking_the_event_loop_is_named_with_its_line(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing can preempt it; what the node can do is say which run, and where."""
    async with Scheduler(sqlite_url, registry=tasks.registry, shutdown_grace=1) as s:
        assert s.engine is not None
        watch = s.engine.loop_watch
        watch.blocked_after, watch.every = 0.3, 0.05
        await s.add_schedule("block_loop", "manual", id="blk", data={"seconds": 0.8})
        await s.add_schedule("add", "manual", id="good", data={"a": 1})
        with caplog.at_level(logging.WARNING, logger="tickwork.engine"):
            run = await s.run_now("blk", wait=True, timeout=10)
            assert (await s.run_now("good", wait=True, timeout=10)).status == "succeeded"
        assert watch.blocks == 1
    said = [r.getMessage() for r in caplog.records if r.name == "tickwork.engine"]
    named = [m for m in said if f"by run {run.id} (task block_loop)" in m]
    assert len(named) == 1, said
    assert "tasks.py" in named[0] and "time.sleep(seconds)" in named[0]
    assert any(m.startswith("the event loop runs again after 0.") for m in said), said


async def test_a_block_is_counted_once_however_slowly_its_end_is_logged(
    sqlite_url: str,
) -> None:
    """Saying that the loop runs again may take a while (a slow log stream): the watch
    must not take the stamp from before the block for a second block meanwhile."""

    class SlowStream(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("the event loop runs again"):
                time.sleep(0.2)  # the watch looks 4 times meanwhile

    slow = SlowStream(logging.WARNING)
    engine_log = logging.getLogger("tickwork.engine")
    engine_log.addHandler(slow)
    try:
        async with Scheduler(sqlite_url, registry=tasks.registry, shutdown_grace=1) as s:
            assert s.engine is not None
            watch = s.engine.loop_watch
            watch.blocked_after, watch.every = 0.3, 0.05
            await s.add_schedule("block_loop", "manual", id="blk", data={"seconds": 0.6})
            await s.run_now("blk", wait=True, timeout=10)
            await asyncio.sleep(0.3)  # looks after the end was said
            assert watch.blocks == 1
    finally:
        engine_log.removeHandler(slow)
