"""Attempts that do not succeed are logged at WARNING on the "tickwork" logger with
their run's ids; ``ctx.fence`` grows with every attempt."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from tests.engine import output_tasks
from tests.engine.conftest import T0, eventually
from tickwork import Scheduler
from tickwork.clock import ManualClock
from tickwork.limits import MAX_ERROR_CHARS


@pytest.fixture
async def node(db_url: str) -> AsyncIterator[tuple[Scheduler, ManualClock]]:
    clock = ManualClock(T0)
    async with Scheduler(
        db_url, registry=output_tasks.registry, clock=clock, shutdown_grace=1
    ) as s:
        yield s, clock


def run_records(caplog: pytest.LogCaptureFixture, run_id: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name.startswith("tickwork") and getattr(r, "run_id", None) == run_id
    ]


async def test_failed_and_retried_attempts_are_logged_with_the_run(
    node: tuple[Scheduler, ManualClock], caplog: pytest.LogCaptureFixture
) -> None:
    s, clock = node
    caplog.set_level(logging.INFO)
    await s.add_schedule(
        "fenced",
        "manual",
        id="f",
        data={"fail_times": 5},
        retry={"max_attempts": 2, "delay": 10, "jitter": False},
    )
    run = await s.run_now("f")

    async def logged(n: int) -> bool:
        return len(run_records(caplog, run.id)) >= n

    await eventually(lambda: logged(1), what="the first failure logged")
    clock.advance(10)
    await eventually(lambda: logged(2), what="the second failure logged")
    first, second = run_records(caplog, run.id)
    for record, attempt in ((first, 1), (second, 2)):
        assert record.levelno == logging.WARNING
        assert record.name == "tickwork.runs"
        fields = [getattr(record, k) for k in ("schedule_id", "task", "attempt", "status")]
        assert fields == ["f", "fenced", attempt, "failed"]
        # The error's first line only (the rest is in the run's traceback).
        assert record.error == f"RuntimeError: failure with fence {attempt}"  # type: ignore[attr-defined]
    retry_at = (T0 + timedelta(seconds=10)).isoformat()
    assert first.getMessage() == (
        f"run {run.id} (schedule f, task fenced) attempt 1 failed: "
        f"RuntimeError: failure with fence 1; retrying at {retry_at}"
    )
    assert second.getMessage().endswith(
        "attempt 2 failed: RuntimeError: failure with fence 2; run failed"
    )


async def test_a_timed_out_attempt_is_logged(
    node: tuple[Scheduler, ManualClock], caplog: pytest.LogCaptureFixture
) -> None:
    s, _ = node
    await s.add_schedule(
        "naps", "manual", id="n", data={"seconds": 30}, timeout=0.1, retry={"max_attempts": 1}
    )
    run = await s.run_now("n", wait=True, timeout=10)
    assert run.status == "timed_out"
    await eventually(lambda: asyncio.sleep(0, bool(run_records(caplog, run.id))))
    (record,) = run_records(caplog, run.id)
    assert record.levelno == logging.WARNING and record.status == "timed_out"  # type: ignore[attr-defined]
    assert "attempt 1 timed_out: timed out after 0.1 s; run timed_out" in record.getMessage()


async def test_a_lost_attempt_is_logged_once_with_its_reason(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A run whose node's lease lapsed is taken over: the node that takes it says so once,
    with the reason stored on the attempt ("attempt 1 lost: ..."), not said twice."""
    caplog.set_level(logging.INFO)
    clock = ManualClock(T0)
    async with Scheduler(db_url, registry=output_tasks.registry, clock=clock, engine=False) as c:
        await c.add_schedule(
            "fenced",
            "manual",
            id="g",
            data={"fail_times": 0},
            retry={"max_attempts": 2, "delay": 0},
        )
        run = await c.run_now("g")
        # A node that claims the run and is never heard of again.
        claimed = c.store.claim_runs("ghost", T0, T0 + timedelta(seconds=1), 1, {"fenced"}, {})
        assert [r.id for r in claimed] == [run.id]
    async with Scheduler(db_url, registry=output_tasks.registry, clock=clock) as s:

        async def logged() -> bool:
            clock.advance(5)  # past the lease, then to the node's next maintenance
            return bool(run_records(caplog, run.id))

        await eventually(logged, what="the lost attempt logged")
        (record, *_) = run_records(caplog, run.id)
        reason = f"the lease of node ghost lapsed at {(T0 + timedelta(seconds=1)).isoformat()}"
        assert record.status == "lost"  # type: ignore[attr-defined]
        assert record.error == f"attempt 1 lost: {reason}"  # type: ignore[attr-defined]
        assert record.getMessage().startswith(
            f"run {run.id} (schedule g, task fenced) attempt 1 lost: {reason}; retrying at "
        ), record.getMessage()
        stored = await s.get_run(run.id)
        assert stored.attempts[0].error == f"attempt 1 lost: {reason}"


async def test_the_fence_grows_with_every_attempt(node: tuple[Scheduler, ManualClock]) -> None:
    s, clock = node
    await s.add_schedule(
        "fenced",
        "manual",
        id="f",
        data={"fail_times": 2},
        retry={"max_attempts": 3, "delay": 1, "backoff": 1, "jitter": False},
    )
    run = await s.run_now("f")

    async def attempts(n: int) -> bool:
        clock.advance(1)
        return len((await s.get_run(run.id)).attempts) >= n and (
            (await s.get_run(run.id)).status in ("succeeded", "failed", "retrying")
        )

    await eventually(lambda: attempts(3), what="three attempts")
    final = await s.get_run(run.id)
    assert final.status == "succeeded"
    fences = [a.error for a in final.attempts[:2]] + [str(final.result)]
    assert fences == [
        "RuntimeError: failure with fence 1\nsecond line of the error",
        "RuntimeError: failure with fence 2\nsecond line of the error",
        "3",
    ]


async def test_a_huge_error_with_escapes_is_logged_cut_and_escaped(
    node: tuple[Scheduler, ManualClock], caplog: pytest.LogCaptureFixture
) -> None:
    """The log line of a failed attempt carries its error's first line as the run stores
    it (cut), with control characters escaped: a task's 10 MB message or terminal
    escapes stay out of the node's log."""
    s, _clock = node
    caplog.set_level(logging.WARNING)
    await s.add_schedule(
        "shouts", "manual", id="loud", data={"size": 10_000_000}, retry={"max_attempts": 1}
    )
    run = await s.run_now("loud")

    async def logged() -> bool:
        return bool(run_records(caplog, run.id))

    await eventually(logged, what="the failure logged")
    (record,) = run_records(caplog, run.id)
    message = record.getMessage()
    assert len(message) < MAX_ERROR_CHARS + 1000, len(message)
    assert "\x1b" not in message and "\\x1b[2J" in message
    assert "… [cut: 100000" in message  # the whole line, "ValueError: " and all
    assert len(record.error) < MAX_ERROR_CHARS + 100  # the JSON logs' field too
