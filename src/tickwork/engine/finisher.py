"""The finisher: writing attempt ends, many per transaction.

An attempt's end is handed over (``finish``) and written with every end waiting at that
moment in one transaction (``Store.finish_attempts``): a burst of endings costs a few
commits. A run keeps its slot, and its lease is renewed, until its end is written.
While the main loop works off a burst with slots to spare, ends wait for it, up to
``FINISH_DEFER_MAX`` (``deferral``). An end the database cannot store is recorded as a
failure saying why; one it cannot reach is retried until the lease has surely lapsed.

The slots a batch of ends frees are refilled in the same trip to the store: the ends'
transaction also claims as many runs as are waiting (``refill``,
``Store.finish_and_claim``), started as soon as the trip returns, instead of a wake-up
of the main loop and a look of its own. Short runs (a burst of them at the default
concurrency) then start one batch after another at the pace of the database, not of
the loop.

A trip writes every end waiting when it leaves (at most ``FINISH_BATCH``): the ends
that come back while it is in the database wait for the next one, so a burst of short
runs sorts itself into trips as large as the database is slow, each one's fixed cost
(its transaction, the claim's reads) shared by as many runs as it can be.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import ParamSpec, TypeVar

from tickwork.engine.config import FINISH_BATCH, FINISH_DEFER_MAX
from tickwork.engine.core import Core
from tickwork.engine.events import Event
from tickwork.engine.executors import AttemptResult
from tickwork.errors import StoreUnavailableError
from tickwork.limits import MAX_ERROR_CHARS, cut_end, visible
from tickwork.models import AttemptOutcome, Run, record_maker
from tickwork.policy import retry_at
from tickwork.store.base import FinishItem

log = logging.getLogger("tickwork.engine")
#: Attempts that did not succeed are reported here (a child of the "tickwork" logger).
run_log = logging.getLogger("tickwork.runs")

P = ParamSpec("P")
T = TypeVar("T")

#: ``AttemptOutcome`` from its fields in order, built as fast as a burst needs.
_outcome = record_maker(
    AttemptOutcome,
    ("status", "result", "error", "traceback", "logs", "retry_at", "finished_at"),
)


def first_line(text: str | None) -> str:
    """The first non-blank line of an error (the rest is in the run's traceback), for a
    log line: cut to ``MAX_ERROR_CHARS`` as the stored error is, and its control
    characters escaped, so a task's megabyte message or its terminal escapes stay in the
    run and out of the node's log."""
    for line in (text or "").splitlines():
        if line.strip():
            return visible(cut_end(line.strip(), MAX_ERROR_CHARS) or "")
    return "no error message"


def log_attempt_end(run: Run, status: str, error: str | None, finished: Run | None) -> None:
    """Say on the ``tickwork`` logger that an attempt did not succeed, with its run's ids
    as record attributes (for JSON logs): at WARNING when it failed, timed out, was lost
    or is retried, at INFO when it was cancelled on request.

    ``finished``: the run as the attempt's end left it (None: this node's lease had
    lapsed, and the end was not recorded).
    """
    where = f"run {run.id} (schedule {run.schedule_id or '-'}, task {run.task})"
    line = first_line(error)
    # A takeover's reason already starts so ("attempt 2 lost: node ... died"): not twice.
    said = line.removeprefix(f"attempt {run.attempt} {status}: ")
    fields = {
        "run_id": run.id,
        "schedule_id": run.schedule_id,
        "task": run.task,
        "attempt": run.attempt,
        "status": status,
        "error": line,
    }
    if finished is None:
        run_log.warning(
            "%s attempt %d %s%s; not recorded: the lease had lapsed and another node "
            "took the run over",
            where,
            run.attempt,
            status,
            "" if status == "succeeded" and error is None else f": {said}",
            extra=fields,
        )
        return
    if finished.status == "retrying":
        due = finished.due_at.isoformat() if finished.due_at is not None else "soon"
        fields["retry_at"] = due
        then = f"retrying at {due}"
    else:
        then = f"run {finished.status}"
    asked = status == "cancelled" and finished.status == "cancelled"
    level = logging.INFO if asked else logging.WARNING
    run_log.log(
        level, "%s attempt %d %s: %s; %s", where, run.attempt, status, said, then, extra=fields
    )


class Finisher:
    """Writes the attempt ends of one node; ``wake`` is called after each batch (slots
    were freed)."""

    def __init__(self, core: Core, wake: Callable[[], None]) -> None:
        self._core = core
        self._wake = wake
        #: Attempt ends handed over and not written yet, with their runs.
        self._pending: list[tuple[FinishItem, Run]] = []
        #: Set when ``_pending`` is empty and nothing is being written.
        self._idle = asyncio.Event()
        self._idle.set()  # nothing to write yet (a node that failed to start must not
        # wait SHUTDOWN_DRAIN for a finisher that never ran)
        self._ready = asyncio.Event()
        #: Starts a run the finisher claimed (``Execution.start``); None: no refill.
        self.start: Callable[[Run], None] | None = None
        #: Runs started by refills since start.
        self.refilled = 0
        self._refill_idle = asyncio.Event()
        self._refill_idle.set()

    def finish(self, run: Run, result: AttemptResult, retry: bool) -> None:
        """Hand an attempt's end over to be written (soon, with others)."""
        core = self._core
        now = core.clock.now()
        when = retry_at(run, core.retry_of(run), now) if retry else None
        if result.status == "cancelled" and when is not None:
            when = now  # interrupted by shutdown: due again at once, on any node
        outcome = _outcome(
            (
                result.status,
                result.result,
                result.error,
                result.traceback,
                result.logs,
                when,
                now,  # finished_at: the write may come later (ends are batched)
            )
        )
        self._pending.append(((run.id, core.node_id, run.attempt, outcome), run))
        if when is None:
            with core.ended_lock:
                core.ended.add(run.id)
        elif when <= now:
            core.waiting = True  # due again at once: its slot may take it
        self._idle.clear()
        self._ready.set()

    async def run(self) -> None:
        """The finisher's loop."""
        core = self._core
        while True:
            if not self._pending:
                self._idle.set()
            await self._ready.wait()
            await self.deferral()
            self._ready.clear()
            while self._pending:
                start = self.start if self._refill_slots(len(self._pending)) else None
                batch = self._pending[:FINISH_BATCH]
                del self._pending[:FINISH_BATCH]
                items = [item for item, _ in batch]
                results: Sequence[Run | None] | None = None
                claimed: Sequence[Run] = ()
                try:
                    if start is not None:
                        # The slots of the batch's runs, held until their ends are written,
                        # go to the runs claimed in the same trip: the main loop counts
                        # them taken all along, so no lock is needed between the two.
                        self._refill_idle.clear()
                        try:
                            results, claimed = await core.db(
                                self._write_and_claim, items, len(batch)
                            )
                        finally:
                            self._refill_idle.set()
                    else:
                        results = await self._write_ends(items)
                except Exception as exc:
                    if start is not None:
                        log.warning(
                            "writing %d attempt end(s) with a claim failed (%s); writing "
                            "them alone",
                            len(items),
                            exc,
                        )
                    try:  # one transaction: nothing was written; written as before
                        results = await self._write_ends(items)
                    except Exception:  # the loop must outlive any surprise
                        log.exception("recording %d attempt end(s) failed", len(batch))
                with core.ended_lock:
                    core.ended.difference_update(item[0] for item in items)
                for index, (item, run) in enumerate(batch):
                    active = core.active.pop(run.id, None)
                    finished = None if results is None else results[index]
                    # A success is said only when it could not be recorded (refused:
                    # another node took the run over while this one was frozen), and
                    # not when a heartbeat already said so.
                    refused = finished is None and bool(results)
                    said = refused and active is not None and active.stop_reason == "lost"
                    if (item[3].status != "succeeded" or refused) and not said:
                        log_attempt_end(run, item[3].status, item[3].error, finished)
                    self._after_finish(run, finished)
                if start is not None and len(claimed) < len(batch):
                    core.waiting = False  # the claim took every run that waited
                # After the batch left ``active``: a run retried at once may be claimed
                # again here, under the same id.
                if claimed and self.start is not None:
                    for run in claimed:
                        self.start(run)
                    self.refilled += len(claimed)
                if len(claimed) < len(batch):
                    self._wake()  # slots left free: the main loop looks for more

    def _refill_slots(self, freed: int) -> bool:
        """Whether the ends' trip to the store also claims runs for the slots they
        free: when runs may wait for them (``Core.waiting``), not when this node is
        stopping or executes no task."""
        core = self._core
        return (
            self.start is not None
            and core.waiting
            and not core.stopping
            and freed > 0
            and len(core.registry) > 0
        )

    def _write_and_claim(
        self, items: Sequence[FinishItem], free: int
    ) -> tuple[Sequence[Run | None], Sequence[Run]]:
        """On a store thread: write the ends and claim up to ``free`` waiting runs, in
        one transaction (raises as ``finish_attempts``: nothing written, and the caller
        writes the ends alone)."""
        core = self._core
        now = core.clock.now()
        return core.store.finish_and_claim(
            items,
            now,
            core.node_id,
            now + timedelta(seconds=core.config.lease_ttl),
            free,
            core.registry.names(),
            core.registry.limits(),
            brief=True,  # see _write_ends
        )

    async def _write_ends(self, items: Sequence[FinishItem]) -> Sequence[Run | None] | None:
        """Write attempt ends together; when the database refuses the batch (not because
        it is unreachable: a value it cannot store, say), write each alone, so one end
        that cannot be written holds back no other (see ``_write_unstorable``)."""
        store, clock = self._core.store, self._core.clock
        try:
            # Brief runs: the finisher reads only their identity and what the end
            # wrote (status, due_at, error, duration), not their attempts nor data.
            return await self.store_retrying(store.finish_attempts, items, clock.now(), brief=True)
        except Exception as exc:  # whatever it is, it must not hold back the other ends
            if len(items) == 1:
                return [await self._write_unstorable(items[0], exc)]
            log.warning(
                "writing %d attempt ends together failed (%s); writing each alone", len(items), exc
            )
        results: list[Run | None] = []
        for item in items:
            try:
                written = await self.store_retrying(
                    store.finish_attempts, [item], clock.now(), brief=True
                )
            except Exception as exc:
                results.append(await self._write_unstorable(item, exc))
                continue
            results.append(None if written is None else written[0])
        return results

    async def _write_unstorable(self, item: FinishItem, exc: Exception) -> Run | None:
        """Record an attempt whose end the database refused as failed, with the
        database's reason instead of its result, logs and traceback. If even that is
        refused, the run is taken over when its lease lapses."""
        run_id, node_id, attempt, outcome = item
        log.error("run %s attempt %d: its end cannot be stored: %s", run_id, attempt, exc)
        replacement = _outcome(
            (
                "failed",
                None,
                f"the end of this attempt ({outcome.status}) could not be stored: {exc}",
                None,
                (),
                outcome.retry_at,
                outcome.finished_at,
            )
        )
        try:
            written = await self.store_retrying(
                self._core.store.finish_attempts,
                [(run_id, node_id, attempt, replacement)],
                self._core.clock.now(),
                brief=True,
            )
        except Exception as again:
            log.error("run %s attempt %d: its failure cannot be stored: %s", run_id, attempt, again)
            return None
        return None if written is None else written[0]

    def _after_finish(self, run: Run, finished: Run | None) -> None:
        events = self._core.events
        if finished is None or not events.has_subscribers:
            return
        kind = "retrying" if finished.status == "retrying" else finished.status
        events.emit(
            Event(
                f"run.{kind}",
                self._core.clock.now(),
                finished.schedule_id,
                finished.id,
                {
                    "task": finished.task,
                    "attempt": run.attempt,
                    "error": finished.error,
                    "duration": finished.duration,
                },
            )
        )

    async def refills_done(self, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) until no refill is in flight: the runs it
        claims are started when it returns."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._refill_idle.wait(), timeout)

    async def drain(self, timeout: float) -> None:
        """Wait until every attempt end handed over is written."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)

    async def deferral(self) -> None:
        """While the main loop works off a burst with slots to spare, let it start what
        is due before attempt ends are written (they share the database and the CPU):
        up to ``FINISH_DEFER_MAX`` seconds. Never while slots are short: finished runs
        hold their slot until their end is written."""
        core = self._core
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FINISH_DEFER_MAX
        while not core.main_idle.is_set():
            if core.free_slots() <= 0:
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(core.main_idle.wait(), timeout=min(remaining, 0.05))

    async def store_retrying(
        self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T | None:
        """Call the store until it answers: an attempt's end must not be dropped because
        the database blinked. Gives up only when the lease has surely lapsed; an error
        other than ``StoreUnavailableError`` is raised at once."""
        core = self._core
        delay = 0.2
        deadline = core.clock.now() + timedelta(seconds=core.config.lease_ttl * 2)
        while True:
            try:
                return await core.db(fn, *args, **kwargs)
            except StoreUnavailableError as exc:  # others are not cured by waiting
                if core.clock.now() > deadline:
                    log.error("giving up on %s: %s", getattr(fn, "__name__", fn), exc)
                    return None
                log.warning("store unavailable (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
