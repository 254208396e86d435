"""Adding schedules one after another: the same checks, on a file other threads and
processes write too, without ever holding up the event loop.

On SQLite ``add_schedule`` commits on the loop's thread when nothing is in the way
(``SQLiteStore.try_add_schedule``) and through a store thread otherwise; these tests
put something in the way (the engine firing, another process) and check both.
"""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.engine import tasks
from tests.engine.conftest import T0, eventually
from tickwork import Scheduler, SyncScheduler
from tickwork.engine.runtime import parsed_schedule
from tickwork.errors import ConflictError, TickworkError
from tickwork.models import NODE_DEFAULT_FIELDS, RetryPolicy, Schedule
from tickwork.store import sqlite
from tickwork.validation import build_schedule, new_schedule

ROOT = Path(__file__).resolve().parents[2]

#: Holds the file's write lock from another process until told to let go.
LOCK_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
"""

#: Another process adding schedules to the same file: ``ADDER url prefix count``.
ADDER = """
import asyncio, json, sys
from tests.engine import tasks
from tickwork import Scheduler
from tickwork.errors import ConflictError

async def main(url, prefix, count):
    added = conflicts = 0
    async with Scheduler(url, engine=False, registry=tasks.registry) as s:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        for i in range(count):
            await s.add_schedule("noop", "0 3 * * *", id=f"{prefix}{i}")
            try:
                await s.add_schedule("noop", "0 3 * * *", id=f"shared{i}")
                added += 1
            except ConflictError:
                conflicts += 1
    print(json.dumps({"added": added, "conflicts": conflicts}), flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


class Ticker:
    """A task that takes a turn of the loop as often as it can, noting the longest wait.

    Two measures of a wait: wall time (what a blocked loop costs, a wait on a lock
    included, which uses no CPU) and the loop thread's own CPU time (the work done on the
    loop between two turns, whatever else the machine is doing: a loaded CI machine can
    leave a process off the CPU for longer than any pause of the code under test).
    """

    def __init__(self) -> None:
        self.turns = 0
        self._longest = 0.0
        self._longest_cpu = 0.0
        self._last = time.monotonic()
        self._last_cpu = time.thread_time()

    @property
    def longest(self) -> float:
        """The longest wait for a turn so far, the one going on included."""
        return max(self._longest, time.monotonic() - self._last)

    @property
    def longest_cpu(self) -> float:
        """The most CPU the loop's thread spent between two turns, the wait going on included."""
        return max(self._longest_cpu, time.thread_time() - self._last_cpu)

    async def run(self) -> None:
        self._last = time.monotonic()
        self._last_cpu = time.thread_time()
        while True:
            await asyncio.sleep(0)
            now, cpu = time.monotonic(), time.thread_time()
            self._longest = max(self._longest, now - self._last)
            self._longest_cpu = max(self._longest_cpu, cpu - self._last_cpu)
            self.turns += 1
            self._last, self._last_cpu = now, cpu


@asynccontextmanager
async def ticking() -> AsyncIterator[Ticker]:
    ticker = Ticker()
    task = asyncio.create_task(ticker.run())
    await asyncio.sleep(0)
    try:
        yield ticker
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def start_lock_holder(db: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    return holder


def start_adder(url: str, prefix: str, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", ADDER, url, prefix, str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def let_go(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()


def reap(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


BAD_CHANGES: list[dict[str, Any]] = [
    {"task": "noop", "schedule": "61 * * * *"},
    {"task": "noop", "schedule": ""},
    {"task": " ", "schedule": "* * * * *"},
    {"schedule": "* * * * *"},
    {"task": "noop"},
    {"task": "noop", "schedule": "* * * * *", "colour": "red"},
    {"task": "noop", "schedule": "* * * * *", "timezone": "Mars/Base"},
    {"task": "noop", "schedule": "* * * * *", "timezone": 3},
    {"task": "noop", "schedule": "* * * * *", "overlap": "sometimes"},
    {"task": "noop", "schedule": "* * * * *", "retry": {"tries": 3}},
    {"task": "noop", "schedule": "* * * * *", "retry": {"delay": -1}},
    {"task": "noop", "schedule": "* * * * *", "priority": 1.5},
    {"task": "noop", "schedule": "* * * * *", "data": [1]},
    {"task": "noop", "schedule": "* * * * *", "data": {"x": float("nan")}},
    {"task": "noop", "schedule": "* * * * *", "start_at": "tomorrow"},
    {
        "task": "noop",
        "schedule": "* * * * *",
        "start_at": "2026-03-03T00:00",
        "end_at": "2026-03-02T00:00",
    },
    {"task": "noop", "schedule": "* * * * *", "jitter": "a lot", "max_instances": 0},
]

GOOD_CHANGES: list[dict[str, Any]] = [
    {"task": " noop ", "schedule": " */5 * * * * "},
    {"task": "noop", "schedule": "every 90s", "timezone": "Europe/Paris", "paused": True},
    {
        "task": "add",
        "schedule": "0 H 2 * *",
        "start_at": "2026-04-01T08:00",
        "end_at": "2027-01-01T00:00Z",
        "timezone": "America/New_York",
        "data": '{"a": 1}',
        "retry": {"max_attempts": 5},
        "tags": ["a", "b", "a"],
        "name": None,
        "owner": "",
        "max_executions": None,
        "metadata": {"k": [1, 2]},
    },
    {"task": "noop", "schedule": "in 10m", "retry": RetryPolicy(max_attempts=2)},
]


def built_the_old_way(changes: dict[str, Any]) -> Schedule:
    """How ``add_schedule`` built a new record before ``new_schedule``."""
    # A new schedule leaves retry and timeout to the node until it sets them.
    base = Schedule(
        id="x", task="", schedule="", created_at=T0, anchor=T0, node_defaults=NODE_DEFAULT_FIELDS
    )
    return build_schedule(base, changes, T0).replace(updated_at=T0)


@pytest.mark.parametrize("changes", BAD_CHANGES)
def test_new_schedules_are_refused_as_build_schedule_refuses_them(
    changes: dict[str, Any],
) -> None:
    with pytest.raises(TickworkError) as old:
        built_the_old_way(changes)
    with pytest.raises(TickworkError) as new:
        new_schedule("x", changes, T0)
    assert type(new.value) is type(old.value)
    assert str(new.value) == str(old.value)
    assert getattr(new.value, "field", None) == getattr(old.value, "field", None)


@pytest.mark.parametrize("changes", GOOD_CHANGES)
def test_new_schedules_are_the_records_build_schedule_makes(changes: dict[str, Any]) -> None:
    record, parsed = new_schedule("x", changes, T0)
    assert record == built_the_old_way(changes)
    assert parsed.next_after(T0) == parsed_schedule(record).next_after(T0)


@pytest.mark.parametrize("through_a_thread", ["every INLINE_RUN adds", "never"])
async def test_adds_one_after_another_let_the_loop_run(
    sqlite_url: str, through_a_thread: str
) -> None:
    count = 5000
    # A full collection late in the suite walks every object the earlier tests left
    # (a pause of 100+ ms that is not the adds'): keep those out of the collector.
    gc.collect()
    gc.freeze()
    try:
        async with Scheduler(sqlite_url, registry=tasks.registry) as s, ticking() as ticker:
            if through_a_thread == "never":  # then only Scheduler's own pauses let the loop run
                assert isinstance(s.store, sqlite.SQLiteStore)
                s.store.inline_run_limit = 10**9
            started = time.thread_time()
            for i in range(count):
                await s.add_schedule("noop", f"{i % 60} {i % 24} * * *", id=f"k{i}")
            spent = time.thread_time() - started
            assert spent > 0.2  # the adds take seconds of the loop's CPU in all
            assert ticker.longest_cpu < 0.05, ticker.longest_cpu  # yet it had a turn every ms
            assert len(await s.list_schedules()) == count
    finally:
        gc.unfreeze()


async def test_an_add_waits_off_the_loop_while_another_process_writes(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with Scheduler(sqlite_url, registry=tasks.registry) as s:
        holder = start_lock_holder(tmp_path / "tickwork.db")
        try:
            async with ticking() as ticker:
                adding = asyncio.create_task(s.add_schedule("noop", "0 3 * * *", id="late"))
                await asyncio.sleep(0.5)
                assert not adding.done()  # waiting for the lock, on a store thread
                # Waiting on the loop, the add would stop it for the whole wait (0.5 s
                # and more); a busy machine may delay a turn by some 0.1 s.
                assert ticker.longest < 0.3 and ticker.turns > 10
                let_go(holder)
                stored = await asyncio.wait_for(adding, 10)
        finally:
            reap(holder)
        assert stored.id == "late"
        assert (await s.get_schedule("late")).next_fire_at == stored.next_fire_at


async def test_adds_while_the_engine_fires_each_fire_once(sqlite_url: str) -> None:
    tasks.calls.clear()
    count = 300
    async with Scheduler(sqlite_url, registry=tasks.registry) as s:
        for i in range(count):  # an interval fires at once, then in an hour
            await s.add_schedule("noop", "1h", id=f"i{i}")

        async def all_ran() -> bool:
            runs = await s.list_runs(status="succeeded", limit=10_000)
            return len(runs) >= count

        await eventually(all_ran, timeout=30, what="a run per schedule")
        runs = await s.list_runs(limit=10_000)
        assert sorted(r.schedule_id or "" for r in runs) == sorted(f"i{i}" for i in range(count))
        for sched in await s.list_schedules():
            assert sched.execution_count == 1
            assert sched.next_fire_at is not None and sched.last_fire_at is not None
            assert sched.next_fire_at - sched.last_fire_at == timedelta(hours=1)


async def test_processes_adding_to_one_file(sqlite_url: str) -> None:
    count = 300
    workers: list[subprocess.Popen[str]] = []
    try:
        async with Scheduler(sqlite_url, registry=tasks.registry) as s:
            # Started once the file exists: processes creating it at once are another test.
            workers = [start_adder(sqlite_url, prefix, count) for prefix in ("a", "b")]
            for w in workers:
                assert w.stdout is not None
                line = await asyncio.get_running_loop().run_in_executor(None, w.stdout.readline)
                assert line.strip() == "ready", w.stderr and w.stderr.read()
            for w in workers:
                let_go(w)
            added = conflicts = 0
            for i in range(count):
                await s.add_schedule("noop", "0 3 * * *", id=f"c{i}")
                try:
                    await s.add_schedule("noop", "0 3 * * *", id=f"shared{i}")
                    added += 1
                except ConflictError:
                    conflicts += 1
            outcomes = [await read_outcome(w) for w in workers]
            ids = {x.id for x in await s.list_schedules()}
    finally:
        for w in workers:
            reap(w)
    assert added + conflicts == count
    assert added + sum(o["added"] for o in outcomes) == count  # each id added once
    assert all(o["added"] + o["conflicts"] == count for o in outcomes)
    expected = {f"{p}{i}" for p in ("a", "b", "c", "shared") for i in range(count)}
    assert ids == expected


async def read_outcome(proc: subprocess.Popen[str]) -> dict[str, int]:
    assert proc.stdout is not None
    line = await asyncio.get_running_loop().run_in_executor(None, proc.stdout.readline)
    assert line, proc.stderr and proc.stderr.read()
    outcome: dict[str, int] = json.loads(line)
    return outcome


def test_sync_scheduler_adds(sqlite_url: str) -> None:
    with SyncScheduler(sqlite_url, registry=tasks.registry) as s:
        for i in range(200):
            s.add_schedule("noop", "0 3 * * *", id=f"s{i}")
        with pytest.raises(ConflictError, match="schedule 's0' already exists"):
            s.add_schedule("noop", "0 3 * * *", id="s0")
        assert len(s.list_schedules()) == 200


def test_sync_scheduler_adds_while_another_process_writes(sqlite_url: str, tmp_path: Path) -> None:
    with SyncScheduler(sqlite_url, registry=tasks.registry) as s:
        holder = start_lock_holder(tmp_path / "tickwork.db")
        try:
            timer = _later(0.3, lambda: let_go(holder))
            started = time.monotonic()
            s.add_schedule("noop", "0 3 * * *", id="late")
            assert time.monotonic() - started >= 0.25  # it waited for the other process
            timer.join(5)
        finally:
            reap(holder)
        assert s.get_schedule("late").id == "late"


def _later(delay: float, fn: Callable[[], None]) -> Any:
    import threading

    timer = threading.Timer(delay, fn)
    timer.start()
    return timer
