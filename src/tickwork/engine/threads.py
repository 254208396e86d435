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

Idle threads are woken the same way, one at a time: a batch wakes one, and a thread
that takes a job wakes the next while jobs remain queued (at most one woken and not
yet running at any time). Short jobs are then worked off by the few threads that are
up (a burst of 50 jobs of a few microseconds each woke 32 threads, which fought for the
GIL with the store's thread: some 60 µs of CPU per job); long ones still get a thread
each, one wake-up after the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Final

log = logging.getLogger("tickwork.engine")

#: Seconds an idle thread waits for work before it ends.
IDLE_EXIT: Final = 60.0


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

    def __init__(self, max_threads: int, name: str = "tickwork-task") -> None:
        self.max_threads = max(1, max_threads)
        self._name = name
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
        #: Jobs submitted in this turn of the loop, queued together at its end.
        self._batch: list[ThreadJob] = []
        #: Ended jobs, with their outcome, not handed back to their loop yet.
        self._ended: list[tuple[ThreadJob, Any, BaseException | None]] = []
        self._ended_lock = threading.Lock()
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
        """On the loop: queue the batch; wake the idle threads it needs, start more up to
        ``max_threads``."""
        batch = [job for job in self._batch if not job.future.done()]  # not abandoned
        self._batch = []
        if not batch:
            return
        with self._cond:
            if self._closed:
                for job in batch:
                    job.future.cancel()
                return
            self._queue.extend(batch)
            self._wake_next()
            thread = self._grow()
        if thread is not None:
            thread.start()

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
        for job, value, error in ended:
            _resolve(job.future, value, error)

    def _ended_job(self, job: ThreadJob, value: Any, error: BaseException | None) -> None:
        """In a thread: hand a job's outcome back; the first of a batch wakes the loop."""
        with self._ended_lock:
            first = not self._ended
            self._ended.append((job, value, error))
        if first:
            try:
                job.loop.call_soon_threadsafe(self._hand_back)
            except RuntimeError:  # a closed loop: nobody waits
                with self._ended_lock:
                    self._ended.clear()

    def _work(self) -> None:
        me = threading.current_thread()
        job: ThreadJob | None = None
        with self._cond:
            self._starting -= 1
            thread = self._grow(taking=1)
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
                self._wake_next()  # jobs remain: one more thread for them
            value: Any = None
            error: BaseException | None = None
            try:
                value = job.fn()
            except BaseException as exc:  # handed to the awaiting attempt
                error = exc
            self._ended_job(job, value, error)
