"""Sync tasks start as fast as async ones: jobs handed to the threads in batches, their
ends handed back in batches, and the slots a batch of ends frees refilled in the same
trip to the store."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from datetime import timedelta

from tests.engine import tasks
from tests.engine.conftest import T0, eventually
from tickwork import Scheduler
from tickwork.clock import ManualClock
from tickwork.engine.threads import SyncThreads


class _Counting(SyncThreads):
    """The pool, counting its dispatches to the threads and hand-backs to the loop."""

    def __init__(self, max_threads: int) -> None:
        super().__init__(max_threads)
        self.dispatches = 0
        self.hand_backs = 0

    def _dispatch(self) -> None:
        self.dispatches += 1
        super()._dispatch()

    def _hand_back(self) -> None:
        self.hand_backs += 1
        super()._hand_back()


async def test_jobs_of_one_turn_are_dispatched_together_and_handed_back_together() -> None:
    pool = _Counting(8)
    try:
        jobs = [pool.submit(lambda i=i: i * 2, f"job {i}") for i in range(200)]
        await asyncio.sleep(0)  # the loop's turn ends: the batch goes to the threads
        # The loop busy (blocked on purpose): the threads end every job meanwhile.
        time.sleep(0.2)  # noqa: ASYNC251
        results = await asyncio.gather(*(job.future for job in jobs))
    finally:
        pool.shutdown()
    assert results == [i * 2 for i in range(200)]
    assert pool.dispatches == 1  # one lock and one round of wake-ups for 200 jobs
    assert pool.hand_backs <= 3  # not one loop wake-up per job (200 before)


async def test_a_job_abandoned_before_its_dispatch_never_runs() -> None:
    pool = SyncThreads(2)
    ran: list[int] = []
    try:
        job = pool.submit(lambda: ran.append(1), "dropped")
        assert not pool.abandon(job)  # no thread had it
        other = pool.submit(lambda: ran.append(2), "kept")
        assert await other.future is None
        assert job.future.cancelled()
    finally:
        pool.shutdown()
    assert ran == [2]


async def test_slots_freed_by_short_sync_runs_are_refilled_with_their_ends(
    db_url: str, clock: ManualClock
) -> None:
    """More short sync runs due at once than the node may run: the ends of each batch
    and the claim of the next go in one trip, and no more than max_concurrent run."""
    n, slots = 60, 10
    tasks.most_running = 0
    async with Scheduler(db_url, registry=tasks.registry, clock=clock, max_concurrent=slots) as s:
        assert s.engine is not None
        due = T0 + timedelta(seconds=5)
        for i in range(n):
            await s.add_schedule("sync_counted", due.isoformat(), id=f"r{i}")
        clock.set(due)

        async def all_done() -> bool:
            runs = await s.list_runs(status="succeeded", limit=n + 1)
            return len(runs) == n

        await eventually(all_done, timeout=20, what=f"{n} runs succeeded")
        runs = await s.list_runs(limit=n + 1)
        assert s.engine.finisher.refilled > 0
    assert Counter(r.schedule_id for r in runs) == {f"r{i}": 1 for i in range(n)}
    assert tasks.most_running <= slots


async def test_a_run_retried_at_once_and_claimed_by_a_refill_keeps_its_slot(
    db_url: str, clock: ManualClock
) -> None:
    """Its failed attempt's end frees the slot its next attempt is claimed into, in the
    same trip: the next attempt is tracked (leases, cancellation, slots) like any run."""
    tasks.second_release.clear()
    async with Scheduler(db_url, registry=tasks.registry, clock=clock, max_concurrent=1) as s:
        engine = s.engine
        assert engine is not None
        retry = {"max_attempts": 2, "delay": 0, "jitter": False}
        await s.add_schedule("fails_then_waits", "manual", id="f", retry=retry)
        run = await s.run_now("f")
        try:

            async def second_attempt_running() -> bool:
                # Started here, not only stored: the refill's claim is committed (and
                # can be read) before the finisher is back on the loop to start it.
                here = engine.core.active.get(run.id)
                if here is None or here.run.attempt != 2:
                    return False
                got = await s.get_run(run.id)
                return got.status == "running" and got.attempt == 2

            await eventually(second_attempt_running, timeout=30, what="the second attempt running")
            assert engine.finisher.refilled >= 1  # claimed by the refill
            assert engine.running_count == 1  # and tracked as executing here
            assert engine.request_cancel(run.id)
        finally:
            tasks.second_release.set()

        async def over() -> bool:
            return (await s.get_run(run.id)).status == "cancelled"

        await eventually(over, timeout=30, what="the second attempt cancelled")

        async def slot_free() -> bool:
            return engine.running_count == 0

        # Its end is committed (and can be read) before the finisher frees its slot.
        await eventually(slot_free, timeout=30, what="the second attempt's slot freed")


class _Growing(SyncThreads):
    """The pool, noting which thread starts each of its threads."""

    def __init__(self, max_threads: int) -> None:
        super().__init__(max_threads)
        self.started_from: list[str] = []

    def _grow(self, taking: int = 0) -> threading.Thread | None:
        thread = super()._grow(taking)
        if thread is not None:
            self.started_from.append(threading.current_thread().name)
        return thread


async def _all_run_at_once(pool: SyncThreads, count: int) -> None:
    """Submit ``count`` jobs that block until released; each must be running before any
    is released (a thread each), then the pool is shut down."""
    release = threading.Event()
    inside = threading.Semaphore(0)

    def job() -> None:
        inside.release()
        release.wait(10)

    try:
        jobs = [pool.submit(job, f"job {i}") for i in range(count)]
        for _ in range(count):
            assert await asyncio.to_thread(inside.acquire, True, 10)
        release.set()
        await asyncio.gather(*(j.future for j in jobs))
    finally:
        release.set()
        pool.shutdown()


async def test_the_loop_starts_one_thread_and_each_new_thread_the_next() -> None:
    """``Thread.start`` waits until the new thread runs: 32 of them in a row held the
    loop through the first burst of a fresh node on a busy machine. The loop starts the
    first thread of a batch and, when the queue stalls behind it, the first of the
    spill; each new thread starts the next."""
    pool = _Growing(8)
    await _all_run_at_once(pool, 8)
    loop_thread = threading.current_thread().name
    assert len(pool.started_from) == 8
    assert pool.started_from.count(loop_thread) <= 2


class _WakeCounting(threading.Condition):
    """The pool's condition, noting how many idle threads were woken and not running
    yet, at most, at any time."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = 0
        self.most_in_flight = 0

    def notify(self, n: int = 1) -> None:
        self.in_flight += min(n, len(self._waiters))  # type: ignore[attr-defined]
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        super().notify(n)

    def wait(self, timeout: float | None = None) -> bool:
        woken = super().wait(timeout)
        if woken:
            self.in_flight -= 1
        return woken


async def _idle_pool(size: int) -> tuple[SyncThreads, _WakeCounting]:
    """A pool whose ``size`` threads are all up and idle."""
    pool = SyncThreads(size)
    cond = _WakeCounting()
    pool._cond = cond
    release = threading.Event()
    inside = threading.Semaphore(0)

    def hold() -> None:
        inside.release()
        release.wait(10)

    jobs = [pool.submit(hold, f"warm {i}") for i in range(size)]
    await asyncio.sleep(0)
    for _ in range(size):
        assert await asyncio.to_thread(inside.acquire, True, 10)
    release.set()
    await asyncio.gather(*(j.future for j in jobs))
    deadline = time.monotonic() + 10
    while pool._idle < size and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert pool._idle == size
    cond.most_in_flight = 0
    return pool, cond


async def test_idle_threads_are_woken_one_at_a_time() -> None:
    """A batch of jobs wakes one idle thread, and each thread that takes a job the
    next while jobs remain: short jobs are worked off by the threads that are up, not
    by every thread of the pool fighting for the GIL (32 woken for 50 jobs of a few
    microseconds each cost some 60 µs of CPU per job)."""
    pool, cond = await _idle_pool(8)
    try:
        jobs = [pool.submit(lambda i=i: i, f"job {i}") for i in range(100)]
        assert await asyncio.gather(*(j.future for j in jobs)) == list(range(100))
        assert cond.most_in_flight == 1  # (8 before: all idle threads at once)
    finally:
        pool.shutdown()


async def test_short_jobs_are_worked_off_by_one_thread_while_it_keeps_up() -> None:
    """A thread at work takes the queued jobs one after the other; no other thread is
    woken while it keeps taking them (the other threads would only fight it and the
    store's thread for the GIL)."""
    pool, _cond = await _idle_pool(8)
    pool.stall = 10.0  # the queue never counts as stalled here, however busy the machine
    ran_in: set[str] = set()

    def job(i: int) -> int:
        ran_in.add(threading.current_thread().name)
        return i

    try:
        jobs = [pool.submit(lambda i=i: job(i), f"job {i}") for i in range(200)]
        assert await asyncio.gather(*(j.future for j in jobs)) == list(range(200))
    finally:
        pool.shutdown()
    assert len(ran_in) == 1  # (up to 8 when each thread taking a job woke the next)


async def test_a_job_queued_behind_a_blocked_thread_gets_a_thread_of_its_own() -> None:
    """The only thread at work is on a job that blocks: the queue stalls, and the next
    job is given another thread instead of waiting for that job's end."""
    pool = SyncThreads(4, stall=0.01)
    release = threading.Event()
    inside = threading.Event()

    def block() -> None:
        inside.set()
        release.wait(10)

    try:
        blocker = pool.submit(block, "blocker")
        assert await asyncio.to_thread(inside.wait, 10)
        quick = pool.submit(lambda: 1, "quick")
        assert await asyncio.wait_for(quick.future, 5) == 1
        assert not blocker.future.done()
    finally:
        release.set()
        pool.shutdown()


async def test_idle_threads_woken_one_at_a_time_all_run_long_jobs_at_once() -> None:
    """Jobs that block get a thread each all the same: the chain of wake-ups reaches
    every idle thread."""
    pool, _cond = await _idle_pool(8)
    await _all_run_at_once(pool, 8)


async def test_a_refilling_trip_writes_every_end_waiting_when_it_leaves(
    db_url: str, clock: ManualClock
) -> None:
    """The ends that come back while a trip is in the database all go in the next one
    (not a part of them, the rest a trip later): the first run ends alone and its trip
    is held until the other runs of the slots have ended; the next trip writes all of
    them and refills their slots."""
    n, slots = 20, 10
    tasks.quick_started = tasks.quick_ended = 0
    async with Scheduler(db_url, registry=tasks.registry, clock=clock, max_concurrent=slots) as s:
        engine = s.engine
        assert engine is not None
        store = engine.store
        trips: list[int] = []
        original = store.finish_and_claim

        def held(items, *args, **kwargs):  # type: ignore[no-untyped-def]
            trips.append(len(items))
            if len(trips) == 1:  # on a store thread: the other runs end meanwhile
                deadline = time.monotonic() + 10
                while tasks.quick_ended < slots and time.monotonic() < deadline:
                    time.sleep(0.005)
            return original(items, *args, **kwargs)

        store.finish_and_claim = held  # type: ignore[method-assign]
        due = T0 + timedelta(seconds=5)
        for i in range(n):
            await s.add_schedule("sync_first_quick", due.isoformat(), id=f"q{i}")
        clock.set(due)

        async def all_done() -> bool:
            return len(await s.list_runs(status="succeeded", limit=n + 1)) == n

        await eventually(all_done, timeout=20, what=f"{n} runs succeeded")
    assert trips[:2] == [1, slots - 1]
    assert engine.finisher.refilled == n - slots
