"""Executing attempts directly: timeouts, cancellation and their bookkeeping."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime

from tickwork import TaskRegistry, task
from tickwork.engine.context import RunContext
from tickwork.engine.executors import DEADLINE_GRAIN, Executors

registry = TaskRegistry()


@task("sleepy", registry=registry)
async def sleepy(*, seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "woke"


@task("own_timeout", registry=registry)
async def own_timeout() -> None:
    async with asyncio.timeout(0.01):
        await asyncio.sleep(1)


@task("sync_sleepy", registry=registry, executor="thread")
def sync_sleepy(ctx, *, seconds: float) -> str:  # type: ignore[no-untyped-def]
    ctx.cancelled.wait(seconds)
    return "stopped" if ctx.cancelled.is_set() else "woke"


def ctx_for(name: str, **data: object) -> RunContext:
    return RunContext(
        run_id=f"r-{name}",
        schedule_id=None,
        task=name,
        scheduled_for=datetime.now(UTC),
        attempt=1,
        trigger="manual",
        node="n",
        data=dict(data),
    )


async def test_an_attempt_past_its_timeout_is_stopped_within_one_grain() -> None:
    ex = Executors()
    started = time.monotonic()
    result = await ex.run(registry.require("sleepy"), ctx_for("sleepy", seconds=5), 0.05)
    took = time.monotonic() - started
    assert result.status == "timed_out"
    assert result.error == "timed out after 0.05 s"
    assert 0.05 <= took < 0.05 + DEADLINE_GRAIN + 0.2
    assert ex._deadlines._slots == {}  # the step's timer fired and is gone
    ex.shutdown()


async def test_a_sync_attempt_times_out_and_is_told_to_stop() -> None:
    ex = Executors()
    ctx = ctx_for("sync_sleepy", seconds=5)
    result = await ex.run(registry.require("sync_sleepy"), ctx, 0.05)
    assert result.status == "timed_out"
    assert ctx.cancelled.is_set()
    ex.shutdown()


async def test_a_timeout_raised_by_the_task_itself_is_a_failure() -> None:
    ex = Executors()
    result = await ex.run(registry.require("own_timeout"), ctx_for("own_timeout"), 60)
    assert result.status == "failed"
    assert result.error == "TimeoutError"
    ex.shutdown()


async def test_attempts_within_their_timeout_succeed_and_leave_no_timer() -> None:
    ex = Executors()
    sleepy_task = registry.require("sleepy")
    loop = asyncio.get_running_loop()
    started = loop.time()
    results = await asyncio.gather(
        *(ex.run(sleepy_task, ctx_for("sleepy", seconds=0.001 * (i % 20)), 30) for i in range(500))
    )
    took = loop.time() - started  # at least as long as starting them took
    assert {r.status for r in results} == {"succeeded"}
    assert ex._deadlines.waiting() == 0  # attempts that are over are not watched
    # Deadlines share timers: one per 30 ms step (0.1 % of the timeout) the starts
    # spanned, not one each (a loaded machine may spread the starts over a few steps).
    assert len(ex._deadlines._slots) <= 2 + int(took / 0.03)
    assert len(ex._deadlines._slots) < 50
    ex.shutdown()


async def test_cancelling_an_attempt_is_not_a_timeout() -> None:
    ex = Executors()
    ctx = ctx_for("sleepy", seconds=5)
    attempt = asyncio.ensure_future(ex.run(registry.require("sleepy"), ctx, 30))
    await asyncio.sleep(0.02)
    attempt.cancel()
    try:
        await attempt
    except asyncio.CancelledError:
        pass
    else:
        raise AssertionError("a cancelled attempt must propagate its cancellation")
    assert ctx.cancelled.is_set()
    assert ex._deadlines.waiting() == 0
    ex.shutdown()


def test_ctx_cancelled_is_one_event_whichever_thread_asks_first() -> None:
    ctx = ctx_for("sleepy")
    seen: list[threading.Event] = []
    threads = [threading.Thread(target=lambda: seen.append(ctx.cancelled)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(e) for e in seen}) == 1
    assert ctx.logger.name == "tickwork.task.sleepy"


async def test_attempts_ended_while_the_loop_was_blocked_are_not_timed_out() -> None:
    """Another task blocks the loop past the attempts' deadlines; the attempts themselves
    were done within them (the async one's sleep over, the sync one's thread returned).
    Before: the deadline's cancellation ran before their ends, and both were recorded
    ``timed_out``: one blocking task timed out the innocent runs beside it."""
    ex = Executors()
    try:
        attempts = [
            asyncio.create_task(ex.run(registry.require(name), ctx_for(name, seconds=0.05), 0.2))
            for name in ("sleepy", "sync_sleepy")
        ]
        await asyncio.sleep(0.01)  # both started, their deadlines set
        time.sleep(0.4)  # noqa: ASYNC251 (the blocking task beside them)
        results = await asyncio.gather(*attempts)
    finally:
        ex.shutdown()
    assert [(r.status, r.result) for r in results] == [("succeeded", "woke"), ("succeeded", "woke")]
