"""The threads sync tasks run in, and what happens to a thread whose task never returns.

A thread cannot be killed. With a plain ``ThreadPoolExecutor`` an attempt that timed out
kept its thread busy for good: after ``max_threads`` of them no sync task started
again, and the interpreter's exit waited for them, so a node that was told to stop
never did. Here a thread whose attempt was given up (timed out, cancelled, or cut by
shutdown) while its task still runs is *abandoned*: it no longer counts against
``max_threads``, a new thread takes its place, and it ends by itself when its task
returns. It is logged, and counted (``stuck``: abandoned threads still running).
Every thread is a daemon, so a stopping process never waits for one.

Jobs are handed to the threads in batches and their ends handed back in batches: the
jobs submitted in one turn of the event loop are queued under one lock with one
wake-up per idle thread needed, and the ends of jobs that finish while the loop is busy
are resolved by one loop callback (one wake-up of the loop, not one per job). A thread
that ends a job takes the next queued one at once.

Threads are started one at a time: the loop starts at most one (``Thread.start`` waits
until the new thread runs, a scheduling delay each on a busy machine), and each new
thread starts the next one while work waits for a thread, before it takes a job. The
first burst of a fresh node no longer holds the loop while 32 threads come up.

A batch wakes a thread only when none is at work: the threads at work take queued
jobs one after the other as they end theirs. More are woken only when the queue stalls:
jobs wait and no thread has taken one for ``STALL`` seconds (a timer of the loop looks,
while jobs wait), because every thread is on a job that takes time. Then the pool
spills: idle threads are woken (and new ones started) one at a time, each woken thread
waking the next while jobs remain, until the queue is empty. Short jobs are worked off
by one thread, as they arrive, without the other threads fighting it and the store's
thread for the GIL (50 jobs of some 20 µs each, on 32 threads woken one after the
other, took some 15 ms where one thread takes 1-2); jobs that block get a thread each,
the first after ``STALL``, the others as fast as threads wake.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from tickwork.engine import forks

log = logging.getLogger("tickwork.engine")

#: Seconds an idle thread waits for work before it ends.
IDLE_EXIT: Final = 60.0
#: Seconds without a job taken, while jobs wait, after which more threads are woken:
#: the interpreter's switch interval, the longest a ready thread waits for the GIL (a
#: thread that waits for it is not stalled).
STALL: Final = 0.005
#: Seconds the ends of jobs may be kept back while their thread goes on to queued jobs.
HAND_BACK_WAIT: Final = 0.001


class ThreadJob:
    """One call handed to the pool; ``future`` resolves on the loop with its outcome."""

    __slots__ = ("abandoned", "fn", "future", "loop", "name", "thread")

    def __init__(self, fn: Callable[[], Any], loop: asyncio.AbstractEventLoop, name: str) -> None:
        self.fn = fn
        self.loop = loop
        self.name = name
        self.future: asyncio.Future[Any] = loop.create_future()
        self.thread: threading.Thread | None = None
        self.abandoned = False


def _resolve(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


class SyncThreads:
    """At most ``max_threads`` threads working for live attempts, plus the abandoned
    ones still running."""

    def __init__(self, max_threads: int, name: str = "tickwork-task", stall: float = STALL) -> None:
        self.max_threads = max(1, max_threads)
        self._name = name
        self.stall = stall
        self._cond = threading.Condition()
        self._queue: deque[ThreadJob] = deque()
        self._workers = 0  # threads counted against max_threads
        self._idle = 0
        #: Idle threads notified and not running yet (at most one: see the docstring).
        self._waking = 0
        #: Threads started and not yet looking for work (counted in ``_workers``).
        self._starting = 0
        self._serial = 0
        self._closed = False
        #: When a thread last took a job (or jobs were queued to an empty queue).
        self._last_take = 0.0
        #: Set while the queue stalled and has not been emptied since: every thread
        #: that takes a job wakes (or starts) the next while jobs remain.
        self._spilling = False
        #: The loop's timer that looks for a stalled queue, while jobs wait.
        self._timer: asyncio.TimerHandle | None = None
        #: Jobs submitted in this turn of the loop, queued together at its end.
        self._batch: list[ThreadJob] = []
        #: Ended jobs, with their outcome, not handed back to their loop yet.
        self._ended: list[tuple[ThreadJob, Any, BaseException | None]] = []
        self._ended_lock = threading.Lock()
        #: When the oldest of ``_ended`` ended.
        self._ended_since = 0.0
        #: Set while a hand-back of ``_ended`` is on its way to the loop.
        self._posted = False
        #: The loop the jobs come from (set at the first dispatch).
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Abandoned threads whose task has not returned yet.
        self.stuck = 0
        #: Threads abandoned since start (each replaced by a new one).
        self.abandoned_total = 0

    def submit(self, fn: Callable[[], Any], name: str = "") -> ThreadJob:
        """Queue ``fn`` (with the other jobs submitted in this turn of the loop)."""
        loop = asyncio.get_running_loop()
        job = ThreadJob(fn, loop, name)
        if not self._batch:
            loop.call_soon(self._dispatch)
        self._batch.append(job)
        return job

    def _dispatch(self) -> None:
        """On the loop: queue the batch; wake (or start) a thread if none is at work."""
        batch = [job for job in self._batch if not job.future.done()]  # not abandoned
        self._batch = []
        if not batch:
            return
        with self._cond:
            if self._closed:
                for job in batch:
                    job.future.cancel()
                return
            self._loop = batch[0].loop
            if not self._queue:
                self._last_take = time.monotonic()  # the stall is counted from now
            self._queue.extend(batch)
            thread = None
            if self._spilling:
                self._wake_next()
                thread = self._grow()
            elif self._workers - self._idle + self._waking == 0:  # no thread at work
                if self._idle > 0:
                    self._wake_next()
                else:
                    thread = self._grow()
        if thread is not None:
            thread.start()
        if self._timer is None:
            self._timer = batch[0].loop.call_later(self.stall, self._look, batch[0].loop)

    def _look(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the loop, every ``stall`` seconds while jobs wait: when no thread took one
        meanwhile, spill (see the module docstring); hand back the ends kept so far."""
        self._timer = None
        with self._cond:
            if self._closed or not self._queue:
                return
            thread = None
            if time.monotonic() - self._last_take >= self.stall:
                self._spilling = True
                self._wake_next()
                thread = self._grow()
        if thread is not None:
            thread.start()
        if self._ended:
            self._hand_back()
        self._timer = loop.call_later(self.stall, self._look, loop)

    def abandon(self, job: ThreadJob) -> bool:
        """Give up on ``job``: a queued one is dropped; a running one's thread leaves the
        pool (replaced when work waits) and ends when its task returns. True when a
        thread was abandoned."""
        with self._cond:
            if job.thread is None:
                with contextlib.suppress(ValueError):
                    self._queue.remove(job)
                if not job.future.done():
                    job.future.cancel()  # not dispatched yet: dropped from its batch
                return False
            if job.abandoned:
                return False
            job.abandoned = True
            self._workers -= 1
            self.stuck += 1
            self.abandoned_total += 1
            stuck = self.stuck
            thread_name = job.thread.name
            thread = self._grow()
        if thread is not None:
            thread.start()
        log.warning(
            "%s: its task still runs in thread %s after the attempt ended; that thread "
            "is replaced and ends when the task returns (%d such thread(s) now)",
            job.name or "a sync attempt",
            thread_name,
            stuck,
        )
        return True

    def shutdown(self) -> None:
        """Let idle threads end; queued work is dropped. Never waits."""
        with self._cond:
            self._closed = True
            dropped = list(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        for job in dropped:
            job.loop.call_soon_threadsafe(job.future.cancel)

    def _wake_next(self) -> None:
        """Under the lock: wake one idle thread when jobs are queued and none is waking
        already (the one woken wakes the next, while jobs remain)."""
        if self._queue and not self._waking and self._idle > 0:
            self._waking = 1
            self._cond.notify(1)

    def _grow(self, taking: int = 0) -> threading.Thread | None:
        """Under the lock: a new thread (to start once the lock is released) when queued
        jobs outnumber the idle threads (and ``taking``, the caller's own), there is room
        under ``max_threads`` and no thread is starting already (it starts the next)."""
        if (
            self._starting
            or self._closed
            or self._workers >= self.max_threads
            or len(self._queue) <= self._idle + taking
        ):
            return None
        self._workers += 1
        self._starting += 1
        self._serial += 1
        return threading.Thread(target=self._work, name=f"{self._name}_{self._serial}", daemon=True)

    def _hand_back(self) -> None:
        """On the loop: resolve the futures of every job ended since the last call."""
        with self._ended_lock:
            ended, self._ended = self._ended, []
            self._posted = False
        for job, value, error in ended:
            _resolve(job.future, value, error)

    def _ended_job(self, job: ThreadJob, value: Any, error: BaseException | None) -> None:
        """In a thread: keep a job's outcome to hand back. The kept ones go to the loop
        now (one wake-up for them all) unless jobs are queued, which this thread takes
        next, and the oldest kept ended less than ``HAND_BACK_WAIT`` ago: whoever takes
        the last queued job, or goes idle, or the loop's timer, hands them back."""
        now = time.monotonic()
        with self._ended_lock:
            if not self._ended:
                self._ended_since = now
            self._ended.append((job, value, error))
            if self._posted or (self._queue and now - self._ended_since < HAND_BACK_WAIT):
                return
            self._posted = True
        self._post(job.loop)

    def _flush(self) -> None:
        """In a thread: hand back the ends kept so far, if any and none is on its way."""
        loop = self._loop
        with self._ended_lock:
            if not self._ended or self._posted or loop is None:
                return
            self._posted = True
        self._post(loop)

    def _post(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            loop.call_soon_threadsafe(self._hand_back)
        except RuntimeError:  # a closed loop: nobody waits
            with self._ended_lock:
                self._ended.clear()
                self._posted = False

    def _work(self) -> None:
        me = threading.current_thread()
        job: ThreadJob | None = None
        with self._cond:
            self._starting -= 1
            thread = self._grow(taking=1) if self._spilling else None
        if thread is not None:
            thread.start()  # the next one, while work waits for a thread
        while True:
            with self._cond:
                if job is not None:
                    job.thread = None
                    if job.abandoned:
                        self.stuck -= 1
                        log.info("thread %s: its abandoned task returned; it ends", me.name)
                        return
                while not self._queue:
                    self._flush()  # nothing left to take: the kept ends go now
                    if self._closed:
                        self._workers -= 1
                        return
                    self._idle += 1
                    woken = self._cond.wait(IDLE_EXIT)
                    self._idle -= 1
                    # The one woken (or, should a notify meet a timeout, one that was
                    # not: then one more may be woken than needed, never none).
                    self._waking = 0
                    if not woken and not self._queue:
                        self._workers -= 1
                        return
                job = self._queue.popleft()
                job.thread = me
                self._last_take = time.monotonic()
                last = not self._queue
                if last:
                    self._spilling = False
                elif self._spilling:
                    self._wake_next()  # jobs remain: one more thread for them
            if last:
                self._flush()  # this job may take long: the kept ends go first
            value: Any = None
            error: BaseException | None = None
            try:
                value = job.fn()
            except BaseException as exc:  # handed to the awaiting attempt
                error = exc
            if forks.forked_run is not None:  # a child the task forked, leaving it
                forks.leave(error)
            self._ended_job(job, value, error)
