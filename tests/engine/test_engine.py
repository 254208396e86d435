"""The engine on a real SQLite file, driven by a ManualClock."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from tests.engine import tasks
from tests.engine.conftest import T0, eventually
from tickwork import (
    ConflictError,
    Event,
    NotFoundError,
    ScheduleError,
    Scheduler,
    UnknownTaskError,
    ValidationError,
)
from tickwork.clock import ManualClock
from tickwork.engine.registry import TaskRegistry
from tickwork.limits import MAX_JSON_DEPTH, MAX_RESULT_BYTES


async def runs_of(s: Scheduler, schedule_id: str, status: str | None = None) -> list:
    return await s.list_runs(schedule_id, status=status, limit=1000)  # type: ignore[arg-type]


class TestCreate:
    async def test_unknown_task_is_refused_with_the_known_ones(self, scheduler: Scheduler) -> None:
        with pytest.raises(UnknownTaskError) as err:
            await scheduler.add_schedule("nope", "* * * * *")
        assert "unknown task 'nope'" in str(err.value)
        assert "add" in str(err.value) and "noop" in str(err.value)

    async def test_data_not_fitting_the_signature_is_refused(self, scheduler: Scheduler) -> None:
        with pytest.raises(ValidationError, match="takes no argument 'c'"):
            await scheduler.add_schedule("add", "* * * * *", data={"a": 1, "c": 2})
        with pytest.raises(ValidationError, match="needs data for 'a'"):
            await scheduler.add_schedule("add", "* * * * *", data={"b": 1})

    async def test_bad_expression_and_fields_name_the_problem(self, scheduler: Scheduler) -> None:
        with pytest.raises(ScheduleError):
            await scheduler.add_schedule("noop", "61 * * * *")
        with pytest.raises(ScheduleError, match="Mars/Base"):
            await scheduler.add_schedule("noop", "* * * * *", timezone="Mars/Base")
        with pytest.raises(ValidationError, match="overlap 'sometimes'"):
            await scheduler.add_schedule("noop", "* * * * *", overlap="sometimes")
        with pytest.raises(ValidationError, match="unknown field"):
            await scheduler.add_schedule("noop", "* * * * *", colour="red")
        with pytest.raises(ValidationError, match="retry has unknown field"):
            await scheduler.add_schedule("noop", "* * * * *", retry={"tries": 3})

    async def test_duplicate_id_conflicts(self, scheduler: Scheduler) -> None:
        await scheduler.add_schedule("noop", "* * * * *", id="x")
        with pytest.raises(ConflictError, match="already exists"):
            await scheduler.add_schedule("noop", "* * * * *", id="x")

    async def test_defaults_and_partial_retry_merge(self, scheduler: Scheduler) -> None:
        s = await scheduler.add_schedule("noop", "0 2 * * *", retry={"max_attempts": 5})
        assert (s.overlap, s.catchup, s.misfire_grace, s.max_instances) == ("skip", "latest", 30, 1)
        assert (s.retry.max_attempts, s.retry.delay, s.retry.backoff) == (5, 5.0, 2.0)
        assert s.retry.max_delay == 3600 and s.retry.jitter is True
        assert s.timeout == 300 and s.status == "active"
        assert s.next_fire_at == T0.replace(day=3, hour=2)

    async def test_task_defaults_apply_unless_overridden(self, scheduler: Scheduler) -> None:
        s = await scheduler.add_schedule("flaky", "@daily", data={"fail_times": 0})
        assert s.retry.max_attempts == 3  # retries=2 on the task
        s2 = await scheduler.add_schedule(
            "flaky", "@daily", data={"fail_times": 0}, retry={"max_attempts": 1}
        )
        assert s2.retry.max_attempts == 1

    async def test_one_time_schedule_in_the_past_is_refused(self, scheduler: Scheduler) -> None:
        with pytest.raises(ValidationError, match="in the past"):
            await scheduler.add_schedule("noop", "2020-01-01T00:00:00Z")


class TestWakeUps:
    async def test_adding_work_due_later_does_not_make_the_engine_look_again(
        self, scheduler: Scheduler, clock: ManualClock
    ) -> None:
        engine = scheduler.engine
        assert engine is not None
        await scheduler.add_schedule("noop", "0 10 * * *", id="soon")  # due in an hour
        await asyncio.sleep(0.05)  # the loop settles, asleep until then
        before = engine.ticks
        for i in range(50):  # while it sleeps
            await scheduler.add_schedule("noop", "0 3 * * *", id=f"later{i}")
        await asyncio.sleep(0.2)
        # Not one look per add. On SQLite the change watcher (polling the file every
        # 50 ms) cannot tell this process's commits from another's: a look per poll
        # that saw some.
        assert engine.ticks - before <= 3
        before = engine.ticks
        engine.wake()  # a look for another reason ...
        while engine.ticks == before:
            await asyncio.sleep(0)
        for _ in range(20):  # ... and, while the loop is busy with it, work due later
            engine.wake(T0 + timedelta(hours=5))
        await asyncio.sleep(0.1)
        assert engine.ticks == before + 1

    async def test_work_due_sooner_than_the_loop_would_wake_is_fired(
        self, scheduler: Scheduler, clock: ManualClock
    ) -> None:
        await scheduler.add_schedule("noop", "0 3 * * *", id="late")
        for i in range(20):  # some adds land while the loop is busy, not asleep
            await scheduler.add_schedule("noop", "0 4 * * *", id=f"busy{i}")
        await scheduler.add_schedule("noop", f"{(T0 + timedelta(seconds=1)).isoformat()}", id="now")
        clock.advance(2)

        async def fired() -> bool:
            return len(await runs_of(scheduler, "now", "succeeded")) == 1

        await eventually(fired, what="the one-time run added last")


class TestFiring:
    async def test_cron_fires_at_its_time_and_records_the_result(
        self, scheduler: Scheduler, clock: ManualClock
    ) -> None:
        s = await scheduler.add_schedule("add", "*/5 * * * *", id="five", data={"a": 2, "b": 3})
        assert s.next_fire_at == T0
        clock.advance(0.5)
        scheduler.engine.wake()  # type: ignore[union-attr]

        async def done() -> bool:
            return len(await runs_of(scheduler, "five", "succeeded")) == 1

        await eventually(done, what="the 09:00 run")
        (run,) = await runs_of(scheduler, "five")
        assert run.result == 5 and run.scheduled_for == T0 and run.trigger == "schedule"
        assert run.attempt == 1 and len(run.attempts) == 1
        assert run.attempts[0].status == "succeeded"
        assert run.node == scheduler.node_id
        after = await scheduler.get_schedule("five")
        assert after.next_fire_at == T0 + timedelta(minutes=5)
        assert after.last_fire_at == T0 and after.execution_count == 1

    async def test_interval_fires_at_creation_then_every_step(
        self, scheduler: Scheduler, clock: ManualClock
    ) -> None:
        await scheduler.add_schedule("noop", "every 10s", id="iv")

        async def count(n: int) -> bool:
            return len(await runs_of(scheduler, "iv", "succeeded")) == n

        await eventually(lambda: count(1), what="first interval run")
        for n in (2, 3):
            clock.advance(10)
            await eventually(lambda n=n: count(n), what=f"interval run {n}")  # type: ignore[misc]
        runs = await runs_of(scheduler, "iv")
        times = sorted(r.scheduled_for for r in runs)
        assert times == [T0, T0 + timedelta(seconds=10), T0 + timedelta(seconds=20)]

    async def test_catchup_latest_after_downtime(self, sqlite_url: str, clock: ManualClock) -> None:
        async with Scheduler(sqlite_url, registry=tasks.registry, clock=clock, engine=False) as s:
            await s.add_schedule("noop", "* * * * *", id="m", catchup="latest")
        clock.advance(minutes=10, seconds=40)  # nobody ran for ten minutes
        async with Scheduler(sqlite_url, registry=tasks.registry, clock=clock) as s:

            async def settled() -> bool:
                return len(await runs_of(s, "m", "succeeded")) == 1

            await eventually(settled, what="the caught-up run")
            runs = await runs_of(s, "m")
            assert sorted(r.status for r in runs).count("missed") == 10
            (ok,) = [r for r in runs if r.status == "succeeded"]
            assert ok.scheduled_for == T0 + timedelta(minutes=10) and ok.trigger == "catchup"

    async def test_a_start_at_long_past_records_no_fire_from_before_the_schedule(
        self, scheduler: Scheduler, clock: ManualClock
    ) -> None:
        # every 1s from a day back: not 86,400 missed runs, the first fire within the grace
        clock.advance(seconds=0.5)
        await scheduler.add_schedule(
            "noop",
            "every 1s",
            id="old",
            start_at=T0 - timedelta(days=1),
            misfire_grace=2,
            overlap="allow",
            max_instances=2,
        )

        async def ran() -> bool:
            return len(await runs_of(scheduler, "old", "succeeded")) == 2

        await eventually(ran, what="the fires within the grace")
        runs = await runs_of(scheduler, "old")
        assert sorted(r.scheduled_for for r in runs) == [T0 - timedelta(seconds=1), T0]
        assert {r.status for r in runs} == {"succeeded"}

    async def test_max_executions_finishes(self, scheduler: Scheduler, clock: ManualClock) -> None:
        await scheduler.add_schedule("noop", "every 1s", id="m", max_executions=2)

        async def first_done() -> bool:
            return len(await runs_of(scheduler, "m", "succeeded")) == 1

        await eventually(first_done, what="the first run")
        clock.advance(1)

        async def finished() -> bool:
            return (await scheduler.get_schedule("m")).status == "finished"

        await eventually(finished, what="finished")
        clock.advance(5)
        await asyncio.sleep(0.05)
        assert len(await runs_of(scheduler, "m")) == 2

    async def test_pause_stops_fires_and_resume_does_not_catch_up(
        self, scheduler: Scheduler, clock: ManualClock
    ) -> None:
        clock.advance(1)  # the first fire is 09:01
        await scheduler.add_schedule("noop", "* * * * *", id="p")
        await scheduler.pause("p")
        assert (await scheduler.get_schedule("p")).status == "paused"
        clock.advance(minutes=5, seconds=1)
        scheduler.engine.wake()  # type: ignore[union-attr]
        await asyncio.sleep(0.05)
        assert await runs_of(scheduler, "p") == []
        (resumed,) = await scheduler.resume("p")
        assert resumed.status == "active"
        assert resumed.next_fire_at == T0 + timedelta(minutes=6)
        assert await runs_of(scheduler, "p") == []

    async def test_overlap_skip_records_skipped(
        self, scheduler: Scheduler, clock: ManualClock
    ) -> None:
        await scheduler.add_schedule(
            "slow_async", "every 1s", id="o", data={"seconds": 30}, overlap="skip"
        )

        async def started() -> bool:
            return len(await runs_of(scheduler, "o", "running")) == 1

        await eventually(started, what="first run running")
        clock.advance(1)

        async def skipped() -> bool:
            return len(await runs_of(scheduler, "o", "skipped")) == 1

        await eventually(skipped, what="a skipped run")
        (run,) = await runs_of(scheduler, "o", "skipped")
        assert "overlap=skip" in (run.error or "")


class TestExecution:
    async def test_retries_with_backoff_in_one_run(
        self, scheduler: Scheduler, clock: ManualClock
    ) -> None:
        await scheduler.add_schedule(
            "flaky",
            "manual",
            id="f",
            data={"fail_times": 2},
            retry={"max_attempts": 3, "delay": 10, "jitter": False},
        )
        run = await scheduler.run_now("f")

        async def status(want: str) -> bool:
            return (await scheduler.get_run(run.id)).status == want

        await eventually(lambda: status("retrying"), what="first retry")
        r = await scheduler.get_run(run.id)
        assert r.due_at == r.attempts[0].finished_at + timedelta(seconds=10)  # type: ignore[operator]
        clock.advance(10)
        await eventually(lambda: r_attempts(scheduler, run.id, 2), what="second attempt")
        clock.advance(20)  # backoff 2.0
        await eventually(lambda: status("succeeded"), what="success on the third attempt")
        final = await scheduler.get_run(run.id)
        assert final.attempt == 3 and final.result == "ok on attempt 3"
        assert [a.status for a in final.attempts] == ["failed", "failed", "succeeded"]
        assert "failure on attempt 1" in (final.attempts[0].error or "")
        assert len(await runs_of(scheduler, "f")) == 1  # retries never add a run

    async def test_final_failure_keeps_error_and_traceback(self, scheduler: Scheduler) -> None:
        await scheduler.add_schedule(
            "always_fails", "manual", id="x", retry={"max_attempts": 1}, error_queue="errs"
        )
        run = await scheduler.run_now("x", wait=True, timeout=5)
        assert run.status == "failed" and run.error == "ValueError: boom"
        assert "Traceback" in (run.traceback or "") and "boom" in (run.traceback or "")
        (msg,) = await scheduler.read_queue("errs")
        assert msg.run_id == run.id and msg.kind == "error"
        assert await scheduler.read_queue("errs") == []

    async def test_result_goes_to_the_result_queue(self, scheduler: Scheduler) -> None:
        await scheduler.add_schedule("add", "manual", id="q", data={"a": 1}, result_queue="out")
        run = await scheduler.run_now("q", data={"b": 41}, wait=True, timeout=5)
        assert run.result == 42 and run.data == {"a": 1, "b": 41}
        peek = await scheduler.read_queue("out", consume=False)
        assert len(peek) == 1 and peek[0].payload["result"] == 42
        assert len(await scheduler.read_queue("out")) == 1

    async def test_logs_are_captured_with_the_run(self, scheduler: Scheduler) -> None:
        await scheduler.add_schedule("sync_echo", "manual", id="l", data={"k": 1})
        run = await scheduler.run_now("l", wait=True, timeout=5)
        assert run.status == "succeeded", run.error
        full = await scheduler.get_run(run.id)
        messages = [(r.level, r.logger, r.message) for r in full.logs]
        assert ("INFO", "tickwork.task.sync_echo", "echoing ['k']") in messages
        assert ("WARNING", "some.library", "library says hi") in messages

    async def test_a_result_that_is_not_json_fails_clearly(self, scheduler: Scheduler) -> None:
        await scheduler.add_schedule("not_json", "manual", id="nj", retry={"max_attempts": 1})
        run = await scheduler.run_now("nj", wait=True, timeout=5)
        assert run.status == "failed"
        assert "not JSON" in (run.error or "")

    @pytest.mark.parametrize("task", ["big_result", "big_result_process"])
    async def test_a_result_over_the_limit_fails_its_attempt(
        self, scheduler: Scheduler, task: str
    ) -> None:
        """A result is stored whole or not at all: over ``MAX_RESULT_BYTES`` the attempt
        fails with the size named, and a result just under the limit is stored."""
        sid = f"{task}-limit"
        await scheduler.add_schedule(
            task, "manual", id=sid, data={"size": 0}, retry={"max_attempts": 1}
        )
        over = await scheduler.run_now(sid, data={"size": MAX_RESULT_BYTES}, wait=True, timeout=20)
        assert over.status == "failed" and over.result is None
        assert f"at most {MAX_RESULT_BYTES} are stored" in (over.error or ""), over.error
        under = MAX_RESULT_BYTES - 100
        ok = await scheduler.run_now(sid, data={"size": under}, wait=True, timeout=20)
        assert ok.status == "succeeded", ok.error
        assert ok.result == {"text": "x" * under}

    async def test_a_result_nested_too_deep_fails_its_attempt(self, scheduler: Scheduler) -> None:
        await scheduler.add_schedule("big_result", "manual", id="deep", retry={"max_attempts": 1})
        run = await scheduler.run_now(
            "deep", data={"depth": MAX_JSON_DEPTH + 5}, wait=True, timeout=10
        )
        assert run.status == "failed"
        assert f"deeper than {MAX_JSON_DEPTH} levels" in (run.error or ""), run.error

    async def test_an_integer_too_long_for_json_fails_its_attempt(
        self, scheduler: Scheduler
    ) -> None:
        """Python writes no integer of more than 4300 digits as text. Before: the attempt
        succeeded, and its end failed to be stored (costing its batch of ends a second
        trip), ``the end of this attempt (succeeded) could not be stored``."""
        await scheduler.add_schedule(
            "big_result", "manual", id="digits", data={"digits": 5000}, retry={"max_attempts": 1}
        )
        run = await scheduler.run_now("digits", wait=True, timeout=10)
        assert run.status == "failed"
        assert (run.error or "").startswith(
            "the task returned a value that is not JSON: Exceeds the limit (4300 digits)"
        ), run.error
        ok = await scheduler.run_now("digits", data={"digits": 4300}, wait=True, timeout=10)
        assert (ok.status, ok.result) == ("succeeded", 10**4299)

    async def test_a_result_its_process_cannot_send_fails_with_the_reason(
        self, scheduler: Scheduler
    ) -> None:
        """Before: the task's process died sending it, and the attempt failed with
        ``the task process exited with code 1 without a result``."""
        await scheduler.add_schedule(
            "unpicklable_result_process", "manual", id="unpicklable", retry={"max_attempts": 1}
        )
        run = await scheduler.run_now("unpicklable", wait=True, timeout=20)
        assert run.status == "failed"
        assert (run.error or "").startswith(
            "the task's result cannot be sent to its node: AttributeError: Can't pickle local "
            "object '_text_of_its_own.<locals>.Text'"
        ), run.error

    async def test_async_timeout_cancels(self, scheduler: Scheduler) -> None:
        await scheduler.add_schedule(
            "slow_async", "manual", id="t", timeout=0.2, retry={"max_attempts": 1}
        )
        run = await scheduler.run_now("t", wait=True, timeout=5)
        assert run.status == "timed_out"
        assert "timed out after 0.2 s" in (run.error or "")

    async def test_process_executor_kills_on_timeout(
        self, scheduler: Scheduler, tmp_path: Path
    ) -> None:
        marker = tmp_path / "pid"
        await scheduler.add_schedule(
            "spin_forever",
            "manual",
            id="k",
            data={"marker": str(marker)},
            timeout=3,
            retry={"max_attempts": 1},
        )
        run = await scheduler.run_now("k", wait=True, timeout=20)
        assert run.status == "timed_out", run.error
        pid = int(marker.read_text())
        with pytest.raises(ProcessLookupError):
            import os

            os.kill(pid, 0)

    async def test_process_executor_returns_result_and_logs(self, scheduler: Scheduler) -> None:
        await scheduler.add_schedule("process_square", "manual", id="ps", data={"x": 7})
        run = await scheduler.run_now("ps", wait=True, timeout=20)
        assert run.status == "succeeded", run.error
        import os

        assert run.result["square"] == 49 and run.result["pid"] != os.getpid()
        full = await scheduler.get_run(run.id)
        assert any("squaring 7" in r.message for r in full.logs)

    async def test_cancel_a_running_run(self, scheduler: Scheduler) -> None:
        await scheduler.add_schedule("slow_async", "manual", id="c", data={"seconds": 30})
        run = await scheduler.run_now("c")

        async def running() -> bool:
            return (await scheduler.get_run(run.id)).status == "running"

        await eventually(running, what="running")
        await scheduler.cancel_run(run.id)
        # the node learns it at its next heartbeat (lease_ttl / 3)
        final = await scheduler.wait_for_run(run.id, timeout=15)
        assert final.status == "cancelled"

    async def test_a_run_stopped_before_its_task_first_ran_ends_and_frees_its_slot(
        self, scheduler: Scheduler
    ) -> None:
        """A cancellation that reaches the node in the turn of the loop that started the
        run (a claim and a cancel back from the store together), before its asyncio task
        first ran: an asyncio task cancelled then never runs its coroutine at all, and
        the attempt was never recorded, the run left running and its slot taken for good."""
        engine = scheduler.engine
        assert engine is not None
        asked: list[bool] = []

        def cancel_at_start(event: Event) -> None:
            if event.type == "run.started":  # called by the start, the task not run yet
                asked.append(engine.request_cancel(str(event.run_id)))

        scheduler.subscribe(cancel_at_start)
        await scheduler.add_schedule("slow_async", "manual", id="c0", data={"seconds": 30})
        run = await scheduler.run_now("c0")
        final = await scheduler.wait_for_run(run.id, timeout=30)
        assert asked == [True]
        assert final.status == "cancelled"
        assert final.attempts[-1].status == "cancelled"

        async def slot_free() -> bool:
            return engine.running_count == 0

        await eventually(slot_free, timeout=30, what="the run's slot freed")

    async def test_events_are_delivered(self, scheduler: Scheduler) -> None:
        seen: list[Event] = []
        scheduler.subscribe(seen.append)
        await scheduler.add_schedule("noop", "manual", id="e")
        run = await scheduler.run_now("e", wait=True, timeout=5)
        kinds = [(e.type, e.run_id) for e in seen]
        assert ("schedule.created", None) in kinds
        assert ("run.started", run.id) in kinds

        async def ended() -> bool:
            return ("run.succeeded", run.id) in [(e.type, e.run_id) for e in seen]

        # The wait reads the stored run: its end can be seen committed a moment before
        # the finisher, back on the loop, tells the subscribers.
        await eventually(ended, what="the run.succeeded event")


class TestClientMode:
    async def test_an_update_that_pauses_or_resumes_says_so(self, sqlite_url: str) -> None:
        """update_schedule(paused=...) pauses as pause() does: subscribers hear
        ``schedule.paused`` / ``schedule.resumed``, after ``schedule.updated`` when
        other settings changed with it, alone when not (as the event stream of serve)."""
        async with Scheduler(sqlite_url, engine=False, registry=tasks.registry) as client:
            await client.add_schedule("noop", "every 1h", id="u")
            seen: list[Event] = []
            client.subscribe(seen.append)
            await client.update_schedule("u", paused=True, description="maintenance")
            await client.update_schedule("u", paused=False)
            await client.update_schedule("u", description="back")
            assert [(e.type, e.schedule_id) for e in seen] == [
                ("schedule.updated", "u"),
                ("schedule.paused", "u"),
                ("schedule.resumed", "u"),
                ("schedule.updated", "u"),
            ]

    async def test_the_waiting_runs_of_a_deleted_schedule_are_cancelled_events(
        self, sqlite_url: str
    ) -> None:
        """Deleting a schedule cancels its waiting runs in this process: subscribers
        hear each ``run.cancelled``, then ``schedule.deleted`` (the order of the event
        stream of serve)."""
        async with Scheduler(sqlite_url, engine=False, registry=tasks.registry) as client:
            await client.add_schedule("noop", "manual", id="d", overlap="queue")
            waiting = {(await client.run_now("d")).id for _ in range(2)}  # no node runs them
            seen: list[Event] = []
            client.subscribe(seen.append)
            await client.delete_schedule("d")
            assert {e.run_id for e in seen[:2]} == waiting
            assert [e.type for e in seen] == ["run.cancelled"] * 2 + ["schedule.deleted"]

    async def test_a_waiting_run_cancelled_is_an_event(self, sqlite_url: str) -> None:
        """A waiting run ends in the process that cancels it: its subscribers hear
        ``run.cancelled`` as they do for a running run, which its node ends."""
        async with Scheduler(sqlite_url, engine=False, registry=tasks.registry) as client:
            seen: list[Event] = []
            client.subscribe(seen.append)
            await client.add_schedule("noop", "manual", id="w")
            run = await client.run_now("w")  # no node: it waits
            assert run.status == "pending"
            await client.cancel_run(run.id)
            cancelled = [e for e in seen if e.type == "run.cancelled"]
            assert [(e.schedule_id, e.run_id) for e in cancelled] == [("w", run.id)]
            assert cancelled[0].data["task"] == "noop"

    async def test_client_run_now_waits_for_the_node(self, sqlite_url: str) -> None:
        async with (
            Scheduler(sqlite_url, registry=tasks.registry),
            Scheduler(sqlite_url, engine=False) as client,
        ):
            await client.add_schedule("add", "manual", id="c", data={"a": 1})
            run = await client.run_now("c", data={"b": 2}, wait=True, timeout=5)
            assert run.status == "succeeded" and run.result == 3

    async def test_client_refuses_tasks_no_node_published(self, sqlite_url: str) -> None:
        # Its own empty registry: other tests import task modules into the global one.
        async with Scheduler(sqlite_url, engine=False, registry=TaskRegistry()) as client:
            with pytest.raises(UnknownTaskError, match="known tasks: none"):
                await client.add_schedule("add", "manual")

    async def test_not_found(self, sqlite_url: str) -> None:
        async with Scheduler(sqlite_url, engine=False) as client:
            with pytest.raises(NotFoundError, match="schedule 'zz' not found"):
                await client.get_schedule("zz")
            with pytest.raises(NotFoundError):
                await client.run_now("zz")


async def r_attempts(s: Scheduler, run_id: str, n: int) -> bool:
    run = await s.get_run(run_id)
    return run.attempt >= n and run.status in ("retrying", "succeeded")


async def test_cancel_from_another_process_reaches_the_node_quickly(sqlite_url: str) -> None:
    """A client cancels; the node learns it from the change wake-up, not the 10 s beat."""
    async with Scheduler(sqlite_url, registry=tasks.registry) as node:
        await node.add_schedule("slow_async", "manual", id="c", data={"seconds": 30})
        run = await node.run_now("c")

        async def running() -> bool:
            return (await node.get_run(run.id)).status == "running"

        await eventually(running, what="running")
        async with Scheduler(sqlite_url, engine=False) as client:
            await client.cancel_run(run.id)
            final = await client.wait_for_run(run.id, timeout=5)
        assert final.status == "cancelled"
        assert final.attempts[-1].status == "cancelled"


class _FailingLimits(TaskRegistry):
    """The test tasks, with ``limits()`` failing its first calls as a bug would."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        for name in tasks.registry.names():
            self.add(tasks.registry.require(name))
        self.failures = failures

    def limits(self) -> dict[str, int]:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("a bug")
        return super().limits()


async def test_the_main_loop_outlives_an_unexpected_error(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An error that is not the store's (a bug) is logged with its traceback and the
    loop tries again after a back-off; it used to end the loop and leave a node that
    heartbeats and never fires."""
    clock = ManualClock(T0)
    registry = _FailingLimits(failures=1)
    # Added before the engine starts: the change watcher, which notices the add's commit
    # when it next polls, would otherwise wake the loop in the back-off on a busy machine.
    async with Scheduler(sqlite_url, registry=registry, clock=clock, engine=False) as admin:
        await admin.add_schedule("noop", (T0 + timedelta(seconds=10)).isoformat(), id="once")
    # A lease long enough that no heartbeat (which follows the clock) falls in the
    # back-off: its write would wake the loop before the back-off is over.
    async with Scheduler(sqlite_url, registry=registry, clock=clock, lease_ttl=60) as s:
        clock.advance(10)

        async def logged() -> bool:
            return "main loop failed" in caplog.text and "a bug" in caplog.text

        await eventually(logged, what="the failure logged")
        assert await runs_of(s, "once") == []
        clock.advance(5)  # past the back-off

        async def fired() -> bool:
            return len(await runs_of(s, "once", "succeeded")) == 1

        await eventually(fired, what="the run after the back-off")


async def test_a_node_never_takes_itself_for_dead(db_url: str, clock: ManualClock) -> None:
    """After a jump of its clock (a suspended host, a paused VM), a node's own heartbeat is
    older than the lease when its maintenance looks for dead nodes: the node does not
    take over its own runs (they still execute here), nor mark itself stopped."""
    async with Scheduler(db_url, registry=tasks.registry, clock=clock, shutdown_grace=0.5) as s:
        engine = s.engine
        assert engine is not None
        await s.add_schedule("slow_async", "manual", id="m", data={"seconds": 30})
        run = await s.run_now("m")

        async def running() -> bool:
            return (await s.get_run(run.id)).status == "running"

        await eventually(running, what="the run executing")
        # The node's last heartbeat as the jump leaves it: an hour before the clock.
        await asyncio.to_thread(
            engine.store.heartbeat, engine.node_id, T0 - timedelta(hours=1), T0, [], 0
        )
        await engine.upkeep.maintenance_once()
        got = await s.get_run(run.id)
        assert (got.status, got.attempt, got.node) == ("running", 1, engine.node_id)
        assert [a.status for a in got.attempts] == ["running"]
        (node,) = [n for n in await s.nodes() if n.id == engine.node_id]
        assert node.stopped_at is None
        assert engine.running_count == 1
