"""Execution: starting a claimed run's attempt on this node and stopping it early.

Each run gets an asyncio task that runs its attempt through ``Executors`` (on the
loop, in a thread, or in a child process) and hands the outcome to the ``Finisher``.
A run is stopped early when asked (``request_cancel``), when another node took it over
(``stop_lost``), or when the node shuts down; its attempt is recorded accordingly.

Stopping an async task is asking it: it is cancelled, and a coroutine may catch
``CancelledError`` and go on. One that has not ended ``EngineConfig.stop_grace`` seconds
after its cancellation (its timeout's included) is *given up* (``_give_up``): its
attempt is recorded as the stop meant it (timed out, cancelled, interrupted), its slot
freed, and whatever it does later ignored. It goes on running on the loop: nothing can
stop it there.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import traceback as tb
from collections.abc import Callable

from tickwork.engine import tracing
from tickwork.engine.context import RunContext
from tickwork.engine.core import Active, Core
from tickwork.engine.events import Event
from tickwork.engine.executors import AttemptResult, in_a_task
from tickwork.engine.task_process import describe
from tickwork.models import Run

log = logging.getLogger("tickwork.engine")

#: Receives an attempt's end: the run, its result, and whether a retry may follow.
FinishFn = Callable[[Run, AttemptResult, bool], None]

#: The context ``_give_up`` runs in: no run's (see ``_watch``).
_NO_RUN = contextvars.Context()
_INTERRUPTED = "interrupted: the node shut down before the run finished"
#: What stopped a run, by ``Active.stop_reason`` (and "timeout"), for the log.
_STOPS = {
    "timeout": "timeout",
    "cancel": "cancellation on request",
    "lost": "takeover by another node",
    "shutdown": "interruption by the node's shutdown",
}


class Execution:
    """Starts and stops the attempts of runs claimed by this node."""

    def __init__(self, core: Core, finish: FinishFn) -> None:
        self._core = core
        self._finish = finish
        core.executors.on_timeout = self._timed_out
        #: The tasks given up and still running, with their run ids.
        self._given_up: dict[asyncio.Task[None], str] = {}

    def start(self, run: Run) -> None:
        core = self._core
        ctx = RunContext(
            run.id,
            run.schedule_id,
            run.task,
            run.scheduled_for,
            run.attempt,
            run.trigger,
            core.node_id,
            dict(run.data),
            run.trace_id,
        )
        loop = core.loop
        assert loop is not None
        # Unnamed: naming costs a string per run; the run id is in every log line.
        task = loop.create_task(self._execute(run, ctx))
        core.active[run.id] = Active(run, ctx, task)
        if core.events.has_subscribers:
            core.events.emit(
                Event(
                    "run.started",
                    core.clock.now(),
                    run.schedule_id,
                    run.id,
                    {"task": run.task, "attempt": run.attempt, "node": core.node_id},
                )
            )

    async def _execute(self, run: Run, ctx: RunContext) -> None:
        core = self._core
        task = core.registry.require(run.task)
        try:
            timeout = core.timeout_of(run)
            if tracing.ENABLED and tracing.wanted(run):
                with tracing.attempt_span(run, core.node_id) as span:
                    result = await core.executors.run(task, ctx, timeout)
                    tracing.end_span(span, result.status, result.error)
            else:
                result = await core.executors.run(task, ctx, timeout)
        except asyncio.CancelledError as exc:
            if not self._ours(run):
                return
            active = core.active.get(run.id)
            if active is not None and active.stop_reason is None and not core.stopping:
                # No stop of the node's: the task's code cancelled the run's asyncio task.
                error = f"{describe(exc)}: the run's asyncio task was cancelled, not by the node"
                result = AttemptResult("failed", error=error, traceback=tb.format_exc())
                self._finish(run, result, True)
                return
            reason = active.stop_reason if active else "shutdown"
            if reason == "lost":
                core.active.pop(run.id, None)
                return
            message = "cancelled on request" if reason == "cancel" else _INTERRUPTED
            self._finish(run, AttemptResult("cancelled", error=message), reason == "shutdown")
            return
        except Exception as exc:  # the engine's own failure: the run must still end
            log.exception("run %s (task %s): executing its attempt failed", run.id, run.task)
            error = f"tickwork could not execute it: {describe(exc)}"
            result = AttemptResult("failed", error=error)
        except BaseException as exc:
            # A sync task's GeneratorExit: thrown into this coroutine from its thread's
            # future, it closes the executor's frame on the way (PEP 380) and lands here.
            if not in_a_task():
                raise  # this coroutine is being closed, not run: it must let go
            result = AttemptResult("failed", error=describe(exc), traceback=tb.format_exc())
        if self._ours(run):
            self._finish(run, result, result.status in ("failed", "timed_out"))

    def _ours(self, run: Run) -> bool:
        """Whether the current task's attempt still counts: not if it was given up (its
        end is recorded, and the run may be executing again here, as a retry)."""
        if not self._given_up:
            return True
        if asyncio.current_task() not in self._given_up:
            return True
        log.warning(
            "run %s (task %s) attempt %d ended after it was given up; its outcome is ignored",
            run.id,
            run.task,
            run.attempt,
        )
        return False

    def _forget_given_up(self, task: asyncio.Task[None]) -> None:
        self._given_up.pop(task, None)

    @property
    def given_up(self) -> int:
        """Async tasks given up (they ignored their cancellation) and still running."""
        return len(self._given_up)

    def _timed_out(self, ctx: RunContext) -> None:
        """Told by the executors that an attempt's timeout cancelled it."""
        active = self._core.active.get(ctx.run_id)
        if active is not None and active.ctx is ctx:
            self._watch(active, "timeout")

    def _watch(self, active: Active, reason: str) -> None:
        """Give the cancelled attempt ``stop_grace`` seconds to end."""
        loop = self._core.loop
        assert loop is not None
        # In a context of its own: a deadline's timer runs in the context of the attempt
        # that created it, whose log capture must not take another run's lines.
        loop.call_later(
            self._core.config.stop_grace, self._give_up, active, reason, context=_NO_RUN
        )

    def _give_up(self, active: Active, reason: str) -> None:
        """Record the attempt of a task that ignored its cancellation as the stop meant
        it, and free its slot; the task runs on, ignored (see ``_ours``)."""
        core = self._core
        run = active.run
        if active.task.done() or core.active.get(run.id) is not active or active.given_up:
            return
        active.given_up = True
        self._given_up[active.task] = run.id
        # Counted until it ends, whichever way (``_ours`` is not reached when the
        # coroutine is closed rather than run to its end).
        active.task.add_done_callback(self._forget_given_up)
        grace = core.config.stop_grace
        log.error(
            "run %s (task %s) attempt %d did not stop within %g s of its %s: the task "
            "ignores asyncio.CancelledError; it is given up, and left running on the event "
            "loop",
            run.id,
            run.task,
            run.attempt,
            grace,
            _STOPS[reason],
        )
        if reason == "lost":  # another node has the run: nothing to record here
            core.active.pop(run.id, None)
            return
        ignored = f"; the task ignored its cancellation for {grace:g} s and was left running"
        if reason == "timeout":
            timeout = core.timeout_of(run)
            result = AttemptResult("timed_out", error=f"timed out after {timeout:g} s{ignored}")
        elif reason == "cancel":
            result = AttemptResult("cancelled", error=f"cancelled on request{ignored}")
        else:
            result = AttemptResult("cancelled", error=f"{_INTERRUPTED}{ignored}")
        self._finish(run, result, reason != "cancel")

    def request_cancel(self, run_id: str) -> bool:
        """Stop a run executing here now (its cancellation is already stored)."""
        active = self._core.active.get(run_id)
        if active is None or active.stop_reason is not None:
            return False
        self._stop(active, "cancel")
        return True

    def stop_lost(self, run_id: str) -> None:
        """Stop a run another node took over (this node's lease on it lapsed)."""
        active = self._core.active.get(run_id)
        if active is not None:
            log.warning("run %s was taken over by another node; stopping it", run_id)
            self._stop(active, "lost")

    async def stop_all(self, grace: float) -> None:
        """Let the runs executing here finish within ``grace`` seconds, then cancel them
        (their attempt is recorded and the run retried by a node that is up)."""
        pending = [a.task for a in self._core.active.values()]
        if not pending:
            return
        log.info("waiting up to %.0f s for %d running run(s)", grace, len(pending))
        _done, still = await asyncio.wait(pending, timeout=grace)
        for active in list(self._core.active.values()):
            if active.task in still:
                self._stop(active, "shutdown")
        if still:  # each ends, or is given up after stop_grace
            await asyncio.wait(still, timeout=self._core.config.stop_grace + 1)

    def _stop(self, active: Active, reason: str) -> None:
        active.stop_reason = reason
        active.ctx.cancelled.set()
        task = active.task
        coro = task.get_coro()
        if inspect.iscoroutine(coro) and inspect.getcoroutinestate(coro) == inspect.CORO_CREATED:
            # Started in this turn of the loop and not run yet: cancelled now, its
            # coroutine would never run, and the attempt never end. Cancelled after its
            # first step instead (already queued, so it runs before this).
            loop = self._core.loop
            assert loop is not None
            loop.call_soon(task.cancel)
        else:
            task.cancel()
        self._watch(active, reason)
