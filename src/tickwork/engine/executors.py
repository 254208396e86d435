"""Executing one attempt of a run: on the event loop, in a thread, or in a child process.

``async`` tasks run on the loop and are cancelled on timeout. Sync tasks run in a
thread; a thread cannot be killed, so on timeout the attempt is recorded ``timed_out``,
``ctx.cancelled`` is set, and a thread still running is replaced and left to finish on
its own (``threads``): it neither holds a slot nor keeps the process from exiting. Tasks that must
really stop use ``executor="process"``: each attempt gets a fresh process, killed on
timeout or cancellation, with the processes it started (``task_process``).

Every executor stores with the attempt the log records its code emits, from any logger,
and what it prints (``context``).
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import traceback as tb
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from tickwork.engine import forks
from tickwork.engine.context import (
    LogCapture,
    RunContext,
    current_capture,
    install_log_capture,
    route_print_output,
)
from tickwork.engine.live_logs import LiveLogs
from tickwork.engine.registry import TaskDef
from tickwork.engine.task_process import check_json, run_in_process
from tickwork.engine.task_process import describe as _describe
from tickwork.engine.threads import SyncThreads, ThreadJob
from tickwork.models import JSON, AttemptEndStatus, LogRecord, record_maker


@dataclass(frozen=True, slots=True)
class AttemptResult:
    status: AttemptEndStatus
    result: JSON = None
    error: str | None = None
    traceback: str | None = None
    logs: tuple[LogRecord, ...] = ()


#: ``AttemptResult("succeeded", result=, logs=)``, built as fast as a burst needs.
_succeeded = record_maker(AttemptResult, ("status", "result", "logs"))


def _args(task: TaskDef, ctx: RunContext) -> tuple[tuple[Any, ...], dict[str, Any]]:
    # No copy of the data: ``fn(**data)`` makes the task its own dict.
    return ((ctx,) if task.takes_ctx else ()), ctx.data


def in_a_task() -> bool:
    """Whether the caller runs in a task of a running loop (not in the ``close()`` of
    a coroutine the garbage collector finalizes)."""
    try:
        return asyncio.current_task() is not None
    except RuntimeError:  # no running loop
        return False


#: Timeouts of async and thread attempts are checked in steps of this many seconds, or
#: of ``DEADLINE_STEP_SHARE`` of the timeout when that is longer.
DEADLINE_GRAIN: Final = 0.01
DEADLINE_STEP_SHARE: Final = 0.001


class _Deadline:
    __slots__ = ("ctx", "expired", "slot", "task")

    def __init__(self, task: asyncio.Task[Any], slot: tuple[float, int], ctx: RunContext) -> None:
        self.task = task
        self.slot = slot
        self.ctx = ctx
        self.expired = False


class _Deadlines:
    """Cancels attempts that run past their timeout, with one loop timer per step of
    deadlines instead of one ``asyncio.timeout`` per attempt: a burst starts thousands of
    attempts at once, and a timer each was a fifth of the cost of starting one.

    The step is ``DEADLINE_GRAIN`` or ``DEADLINE_STEP_SHARE`` of the timeout, whichever is
    longer, so an attempt times out at most that late (3.6 s for an hour) and at most a
    thousand steps per distinct timeout wait at any time. A step emptied by attempts
    that ended keeps its timer until it fires, for the attempts that start after them.
    """

    def __init__(self) -> None:
        self._slots: dict[tuple[float, int], set[_Deadline]] = {}
        #: Told of each attempt cancelled for its timeout (see ``Executors.on_timeout``).
        self.on_expired: Callable[[RunContext], None] | None = None

    def add(self, seconds: float, ctx: RunContext) -> _Deadline:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        step = max(DEADLINE_GRAIN, seconds * DEADLINE_STEP_SHARE)
        slot = (step, math.ceil((loop.time() + seconds) / step))
        entry = _Deadline(task, slot, ctx)
        entries = self._slots.get(slot)
        if entries is None:
            self._slots[slot] = {entry}
            loop.call_at(slot[1] * step, self._expire, slot)
        else:
            entries.add(entry)
        return entry

    def remove(self, entry: _Deadline) -> None:
        entries = self._slots.get(entry.slot)
        if entries is not None:
            entries.discard(entry)

    def waiting(self) -> int:
        """Attempts whose deadline is being watched."""
        return sum(len(entries) for entries in self._slots.values())

    def _expire(self, slot: tuple[float, int]) -> None:
        if not self._slots.get(slot):
            self._slots.pop(slot, None)
            return
        # After one more turn of the loop: an attempt whose end is due already (its sleep
        # was over, its thread had handed its value back) ends rather than times out.
        # Due together only when the loop was held past both (another task blocked it):
        # the cancellation, run first, took the end of an attempt within its timeout.
        asyncio.get_running_loop().call_soon(self._expire_now, slot)

    def _expire_now(self, slot: tuple[float, int]) -> None:
        for entry in self._slots.pop(slot, ()):
            entry.expired = True
            entry.task.cancel()
            if self.on_expired is not None:
                self.on_expired(entry.ctx)


class Executors:
    """Runs attempts. One per engine; owns the thread pool."""

    def __init__(self, max_threads: int = 32) -> None:
        install_log_capture()
        self.threads = SyncThreads(max_threads)
        self._deadlines = _Deadlines()
        self.live = LiveLogs()

    def shutdown(self) -> None:
        self.threads.shutdown()

    @property
    def on_timeout(self) -> Callable[[RunContext], None] | None:
        """Called with an attempt's context when its timeout cancels it: an async task
        can ignore the cancellation, and the caller then gives it up (``Execution``)."""
        return self._deadlines.on_expired

    @on_timeout.setter
    def on_timeout(self, hook: Callable[[RunContext], None] | None) -> None:
        self._deadlines.on_expired = hook

    async def run(self, task: TaskDef, ctx: RunContext, timeout: float) -> AttemptResult:
        """Execute one attempt; never raises except ``CancelledError`` (propagated after
        the attempt was stopped)."""
        capture = LogCapture(ctx.attempt, ctx.run_id)
        token = current_capture.set(capture)
        route_print_output()
        self.live.started(capture)
        try:
            if task.executor == "process":
                return await self._run_process(task, ctx, timeout, capture)
            args, kwargs = _args(task, ctx)
            job: ThreadJob | None = None
            if task.executor == "async":
                awaitable: asyncio.Future[Any] | Any = task.fn(*args, **kwargs)
            else:
                call_ctx = contextvars.copy_context()
                job = self.threads.submit(
                    lambda: call_ctx.run(task.fn, *args, **kwargs),
                    f"run {ctx.run_id} ({ctx.task}) attempt {ctx.attempt}",
                )
                awaitable = job.future
            deadline = self._deadlines.add(timeout, ctx)
            try:
                value = await awaitable
            except asyncio.CancelledError as exc:
                current = asyncio.current_task()
                if not deadline.expired and current is not None and not current.cancelling():
                    # Not a stop: the task raised it (or awaited what someone else
                    # cancelled). Its failure, not a shutdown's interruption.
                    return AttemptResult(
                        "failed",
                        error=_describe(exc),
                        traceback=tb.format_exc(),
                        logs=capture.result(),
                    )
                ctx.cancelled.set()
                if job is not None:
                    self.threads.abandon(job)  # its thread must not hold a slot for good
                if not deadline.expired:
                    raise
                if current is not None:
                    current.uncancel()
                return AttemptResult(
                    "timed_out",
                    error=f"timed out after {timeout:g} s",
                    logs=capture.result(),
                )
            except BaseException as exc:  # SystemExit, KeyboardInterrupt...: the task's own
                # doing (the node's signals never reach a task), and not the node's end:
                # left alone, asyncio would stop the loop with it, or leave the run
                # executing for good.
                if isinstance(exc, GeneratorExit) and not in_a_task():
                    raise  # this coroutine is being closed, not run: it must let go
                if forks.forked_run is not None:  # a child the task forked, leaving it
                    forks.leave(exc)
                return AttemptResult(
                    "failed",
                    error=_describe(exc),
                    traceback=tb.format_exc(),
                    logs=capture.result(),
                )
            finally:
                self._deadlines.remove(deadline)
            if forks.forked_run is not None:  # a child the task forked, leaving it
                forks.leave()
            reason = check_json(value)
            if reason is not None:
                return AttemptResult("failed", error=reason, logs=capture.result())
            return _succeeded(("succeeded", value, capture.result()))
        finally:
            current_capture.reset(token)
            self.live.ended(capture)

    async def _run_process(
        self, task: TaskDef, ctx: RunContext, timeout: float, capture: LogCapture
    ) -> AttemptResult:
        message = await run_in_process(task, ctx, timeout, capture)
        return AttemptResult(
            message["status"],
            result=message.get("result"),
            error=message.get("error"),
            traceback=message.get("traceback"),
            logs=message["logs"],
        )
