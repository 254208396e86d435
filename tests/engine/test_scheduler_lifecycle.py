"""A ``Scheduler`` and a ``SyncScheduler`` as programs use them: in scripts that never
stop them, from threads, from their own callbacks, after they are closed, two on one
file in one process, and an async one used from another event loop than its node's."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tickwork import (
    EngineConfig,
    Event,
    ManualClock,
    RunContext,
    Scheduler,
    StoreUnavailableError,
    SyncScheduler,
    TaskRegistry,
    task,
)

registry = TaskRegistry()
fired: Counter[str] = Counter()


@task("echo", registry=registry)
def echo(**data: object) -> dict[str, object]:
    return data


@task("count", registry=registry)
async def count(ctx: RunContext) -> str:
    fired[ctx.scheduled_for.isoformat()] += 1
    return ctx.node


def test_a_sync_scheduler_called_back_from_its_own_loop_refuses_instead_of_hanging(
    sqlite_url: str,
) -> None:
    with SyncScheduler(sqlite_url, registry=registry, engine=False) as scheduler:
        scheduler.add_schedule("echo", "manual", id="m")
        seen: list[str] = []

        def callback(event: Event) -> None:
            for call in (lambda: scheduler.get_schedule("m").name, scheduler.stop):
                try:
                    seen.append(str(call()))
                except RuntimeError as exc:
                    seen.append(str(exc))

        awaited = threading.Event()

        async def async_callback(event: Event) -> None:
            try:
                seen.append((await scheduler.scheduler.get_schedule("m")).name)
            finally:
                awaited.set()

        scheduler.subscribe(callback)
        scheduler.subscribe(async_callback)
        caller = threading.Thread(target=lambda: scheduler.update_schedule("m", name="new"))
        caller.start()
        caller.join(30)
        assert not caller.is_alive(), "the update waited for its own callback"
        scheduler.get_schedule("m")  # the loop is not stuck either
        # A task of its own, which the update does not wait for: its read may still be
        # in the store when the update returns.
        assert awaited.wait(30), "the async callback never ended"
        assert len(seen) == 3
        assert sum("own event loop" in s and "SyncScheduler.scheduler" in s for s in seen) == 2
        assert "new" in seen  # the async callback awaited the Scheduler


def test_a_sync_scheduler_serves_many_threads_and_restarts_after_stop(sqlite_url: str) -> None:
    scheduler = SyncScheduler(sqlite_url, registry=registry)
    with scheduler:
        scheduler.add_schedule("echo", "manual", id="m")
        results: list[object] = []

        def run(i: int) -> None:
            results.append(scheduler.run_now("m", data={"i": i}, wait=True, timeout=30).result)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(r["i"] for r in results) == list(range(8))  # type: ignore[index]
    with pytest.raises(RuntimeError, match="not started: use 'with SyncScheduler"):
        scheduler.get_schedule("m")
    with scheduler:  # started again, on the same file
        assert len(scheduler.list_runs("m")) == 8


@task("hold", registry=registry)
async def hold() -> None:
    await asyncio.sleep(3600)


@pytest.mark.parametrize("engine", [False, True])
def test_calls_waiting_when_a_sync_scheduler_stops_raise_instead_of_hanging(
    sqlite_url: str, engine: bool
) -> None:
    """Before: a thread waiting in run_now(wait=True) when another stopped the scheduler
    waited forever on the stopped loop (and kept the program from exiting), or got the
    store's 'is not open'. Without a node the runs wait; with one, they are cut short by
    the stop and wait for a retry."""
    scheduler = SyncScheduler(sqlite_url, registry=registry, engine=engine, shutdown_grace=0.1)
    scheduler.start()
    scheduler.add_schedule("hold", "manual", id="m", overlap="allow", max_instances=3)
    raised: list[BaseException] = []

    def wait() -> None:
        try:
            scheduler.run_now("m", wait=True)
        except BaseException as exc:
            raised.append(exc)

    waiters = [threading.Thread(target=wait) for _ in range(3)]
    for t in waiters:
        t.start()

    def waiting() -> bool:
        return len(scheduler.list_runs("m")) == 3

    for _ in range(500):
        if waiting():
            break
        threading.Event().wait(0.01)
    assert waiting()
    scheduler.stop()
    for t in waiters:
        t.join(10)
    assert not any(t.is_alive() for t in waiters), "a call still waits on the stopped loop"
    assert [type(e) for e in raised] == [RuntimeError] * 3, raised
    assert all("stopped while this call was waiting" in str(e) for e in raised)
    with scheduler:  # and it starts again
        assert len(scheduler.list_runs("m")) == 3


def test_a_script_that_never_stops_its_sync_scheduler_stops_it_at_exit(tmp_path: Path) -> None:
    """The node lets the running run finish and records itself stopped, instead of dying
    with the interpreter and leaving the run to be found lost when its lease lapses."""
    url = f"sqlite:///{tmp_path / 't.db'}"
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import time
            from tickwork import SyncScheduler, TaskRegistry, task

            registry = TaskRegistry()

            @task("slow", registry=registry)
            def slow() -> str:
                time.sleep(0.5)
                return "done"

            scheduler = SyncScheduler({url!r}, registry=registry, shutdown_grace=20)
            scheduler.start()
            scheduler.add_schedule("slow", "manual", id="slow")
            run = scheduler.run_now("slow")
            while scheduler.get_run(run.id).status != "running":
                time.sleep(0.01)
            print("exiting", flush=True)
            """
        )
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "exiting\n" and "Traceback" not in proc.stderr
    with SyncScheduler(url, engine=False) as client:
        (run,) = client.list_runs("slow")
        assert (run.status, run.result, len(run.attempts)) == ("succeeded", "done", 1)
        assert client.nodes() == []  # none running
        (node,) = client.nodes(include_stopped=True)
        assert node.stopped_at is not None


async def test_two_schedulers_on_one_file_in_one_process_fire_each_time_once(
    sqlite_url: str,
) -> None:
    fired.clear()
    clock = ManualClock(datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC))
    # Leases longer than the clock's steps: a step of a minute past the lease made the
    # other node look dead until its next heartbeat, and its run was taken for lost
    # (then the next fire skipped) when the maintenance woken by the step came first.
    config = EngineConfig(lease_ttl=600)
    async with (
        Scheduler(sqlite_url, registry=registry, clock=clock, config=config) as a,
        Scheduler(sqlite_url, registry=registry, clock=clock, config=config) as b,
    ):
        assert a.node_id != b.node_id
        await a.add_schedule("count", "* * * * *", id="c")
        for minute in range(1, 6):
            clock.advance(60)
            deadline = asyncio.get_running_loop().time() + 30
            while True:
                runs = await b.list_runs("c")
                if len(runs) == minute and all(r.done for r in runs):
                    break
                assert asyncio.get_running_loop().time() < deadline, runs
                await asyncio.sleep(0.01)
        runs = await a.list_runs("c")
        assert [r.status for r in runs] == ["succeeded"] * 5
        assert sorted(fired.values()) == [1] * 5
        manual = await b.run_now("c", wait=True, timeout=10)
        assert manual.status == "succeeded" and manual.node in (a.node_id, b.node_id)


def test_a_node_used_from_another_event_loop_is_refused(sqlite_url: str) -> None:
    scheduler = Scheduler(sqlite_url, registry=registry)
    asyncio.run(scheduler.start())  # the node's loop ends with this asyncio.run
    with pytest.raises(RuntimeError, match="runs on the event loop it was started on"):
        asyncio.run(scheduler.add_schedule("echo", "manual", id="m"))
    asyncio.run(scheduler.stop())  # releases the store; its node's loop is gone
    with pytest.raises(RuntimeError, match="not started"):
        asyncio.run(scheduler.list_schedules())

    async def in_one_loop() -> tuple[list[str], list[str]]:
        async with Scheduler(sqlite_url, registry=registry, engine=False) as again:
            live = [n.id for n in await again.nodes()]
            return [s.id for s in await again.list_schedules()], live

    schedules, live_nodes = asyncio.run(in_one_loop())
    assert schedules == []  # nothing was stored by the refused call
    assert live_nodes == []  # the abandoned node is recorded stopped


async def test_a_failed_start_leaves_nothing_open_and_may_be_tried_again(tmp_path: Path) -> None:
    missing = tmp_path / "not-yet"
    scheduler = Scheduler(f"sqlite:///{missing / 't.db'}", registry=registry)

    def store_threads() -> int:
        return sum(t.name.startswith("tickwork-db") for t in threading.enumerate())

    before = store_threads()
    for _ in range(3):
        with pytest.raises(StoreUnavailableError, match="does not exist"):
            await scheduler.start()
    assert store_threads() == before
    missing.mkdir()
    async with scheduler:  # the same object, once the directory exists
        await scheduler.add_schedule("echo", "manual", id="m")
        assert (await scheduler.run_now("m", wait=True, timeout=10)).status == "succeeded"
