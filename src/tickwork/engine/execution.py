"""Execution: starting a claimed run's attempt on this node and stopping it early.

Each run gets an asyncio task that runs its attempt through ``Executors`` (on the
loop, in a thread, or in a child process) and hands the outcome to the ``Finisher``.
A run is stopped early when asked (``request_cancel``), when another node took it over
(``stop_lost``), or when the node shuts down; its attempt is recorded accordingly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from tickwork.engine import tracing
from tickwork.engine.context import RunContext
from tickwork.engine.core import Active, Core
from tickwork.engine.events import Event
from tickwork.engine.executors import AttemptResult
from tickwork.models import Run

log = logging.getLogger("tickwork.engine")

#: Receives an attempt's end: the run, its result, and whether a retry may follow.
FinishFn = Callable[[Run, AttemptResult, bool], None]


class Execution:
    """Starts and stops the attempts of runs claimed by this node."""

    def __init__(self, core: Core, finish: FinishFn) -> None:
        self._core = core
        self._finish = finish

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
        except asyncio.CancelledError:
            active = core.active.get(run.id)
            reason = active.stop_reason if active else "shutdown"
            if reason == "lost":
                core.active.pop(run.id, None)
                return
            message = (
                "cancelled on request"
                if reason == "cancel"
                else "interrupted: the node shut down before the run finished"
            )
            result = AttemptResult("cancelled", error=message)
            self._finish(run, result, reason == "shutdown")
            return
        self._finish(run, result, result.status in ("failed", "timed_out"))

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
        if still:
            await asyncio.wait(still, timeout=10)

    @staticmethod
    def _stop(active: Active, reason: str) -> None:
        active.stop_reason = reason
        active.ctx.cancelled.set()
        active.task.cancel()
