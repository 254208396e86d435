"""The engine of one node: fire due schedules, claim due runs, execute them, keep leases.

One loop does the scheduling work; it sleeps until the store's earliest due instant
(``Store.next_wakeup``, an indexed lookup, never a scan) or until woken: by a change
made through this process, a run finishing here, or another process committing a
change (``Store.wait_for_change`` on a watcher thread). Two more loops renew leases
(every third of ``lease_ttl``) and do the maintenance a leader does (lost runs,
retention).

Every transition is one store transaction: the runs of a fire and the schedule's
advance; a claim; an attempt's end with its logs and queue message. A node that dies
between any two of them leaves the database consistent, and its runs are taken over
when its leases lapse (or at once, when the store can tell the process is gone).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, ParamSpec, TypeVar

from tickwork.clock import Clock
from tickwork.engine import tracing
from tickwork.engine.context import RunContext
from tickwork.engine.events import Event, EventBus
from tickwork.engine.executors import AttemptResult, Executors
from tickwork.engine.ids import new_id
from tickwork.engine.registry import TaskRegistry
from tickwork.errors import ScheduleError, StoreError, StoreUnavailableError
from tickwork.models import (
    DEFAULT_TIMEOUT,
    AttemptOutcome,
    FirePlan,
    Node,
    PlannedRun,
    RetryPolicy,
    Run,
    Schedule,
    record_maker,
)
from tickwork.policy import plan_fire, retry_at
from tickwork.schedule import ParsedSchedule
from tickwork.schedule.parse import parse_stored
from tickwork.store.base import ClaimRequest, FinishItem, FireResult, Store

from .storecalls import StoreCalls

log = logging.getLogger("tickwork.engine")
#: Attempts that did not succeed are reported here (a child of the "tickwork" logger).
run_log = logging.getLogger("tickwork.runs")

P = ParamSpec("P")
T = TypeVar("T")

IDLE_RECHECK: Final = 60.0  # seconds; the longest sleep without a wake-up
BLOCKED_RECHECK: Final = 1.0  # due work that cannot be claimed now is retried this often
MIN_BEAT_GAP: Final = 1.0  # seconds between early heartbeats
PEER_CLAIM_SPREAD: Final = 0.01  # seconds; see Engine._tick
FINISH_BATCH: Final = 500  # attempt ends committed per transaction at most
#: Runs fired or claimed in one tick from which the engine counts as working off a burst.
BURST_RUNS: Final = 100
#: The longest an attempt's end waits for a burst of starts to be over (see
#: ``Engine._finish_deferral``).
FINISH_DEFER_MAX: Final = 1.0
#: The longest a stopping node waits for attempt ends to be written (the database may be
#: down; a run whose end is not written is taken over when its lease lapses).
SHUTDOWN_DRAIN: Final = 30.0
#: Schedules the first fire of a burst takes (see ``Engine._tick``).
FIRST_FIRE_BATCH: Final = 100
#: How long before a fire time the engine reads the schedules due then (see
#: ``Engine._read_ahead``), and how far past it that read reaches.
READ_AHEAD: Final = 1.0
#: A prepared fire's work, estimated before it is known: seconds per run (the engine
#: learns the real figure from its fires), and a fixed part for the transaction.
FIRE_COST_START: Final = 50e-6
FIRE_COST_FIXED: Final = 0.01
#: Fires closer together than this (seconds) are dense: each is prepared at most
#: ``DENSE_FIRE_AHEAD`` before its time plus its estimated work, so that other writers
#: find SQLite's write lock free between them (see ``Engine._fire_lead``).
DENSE_FIRES: Final = 0.5
DENSE_FIRE_AHEAD: Final = 0.01
#: The longest a stopping node waits for the main loop's store call in flight.
STOP_MAIN_WAIT: Final = 10.0
_WAKE_ANY: Final = object()  # a wake-up that did not say when its work is due


#: ``AttemptOutcome`` from its fields in order, built as fast as a burst needs.
_outcome = record_maker(
    AttemptOutcome,
    ("status", "result", "error", "traceback", "logs", "retry_at", "finished_at"),
)


def first_line(text: str | None) -> str:
    """The first non-blank line of an error (the rest is in the run's traceback)."""
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
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
            "%s attempt %d %s: %s; not recorded: the lease had lapsed and another node "
            "took the run over",
            where,
            run.attempt,
            status,
            line,
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
        level, "%s attempt %d %s: %s; %s", where, run.attempt, status, line, then, extra=fields
    )


def parsed_schedule(schedule: Schedule) -> ParsedSchedule:
    """The parsed expression of a stored schedule (cached: parsing is not free)."""
    return parse_stored(
        schedule.schedule, schedule.timezone, schedule.start_at, schedule.id, schedule.anchor
    )


@dataclass
class EngineConfig:
    max_concurrent: int = 100
    lease_ttl: float = 30.0
    shutdown_grace: float = 30.0
    retention_days: float = 30.0
    #: Seconds between two deletions of runs older than ``retention_days`` (by the leader).
    cleanup_interval: float = 3600.0
    #: For runs of schedules that set no timeout / retry policy (``Run.node_defaults``).
    default_timeout: float = DEFAULT_TIMEOUT
    default_retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: How often the leader runs maintenance (lost runs, retention).
    maintenance_interval: float | None = None
    max_threads: int = 32
    #: Schedules fired per transaction at most; a burst of more is fired in batches,
    #: each committed while the previous one's tasks start.
    fire_batch: int = 2000
    #: Schedules decoded ahead of their fire at most (0: none): a fire then only checks
    #: that they are unchanged (``Store.read_ahead``).
    read_ahead: int = 20_000
    #: Seconds before a fire time at which its fire is prepared, its commit held until
    #: that time (0: fire at the time; see ``Engine._fire_ahead``).
    fire_ahead: float = 0.1


@dataclass(slots=True)
class _Active:
    run: Run
    ctx: RunContext
    task: asyncio.Task[None]
    #: Why we stopped it, if we did: "cancel" (asked), "lost" (lease gone), "shutdown".
    stop_reason: str | None = None


class Engine:
    """Fires, claims and executes for one node. Created and driven by ``Scheduler``."""

    def __init__(
        self,
        store: Store,
        db: StoreCalls,
        registry: TaskRegistry,
        clock: Clock,
        events: EventBus,
        config: EngineConfig,
        node_id: str,
    ) -> None:
        self.store = store
        self.db = db
        self.registry = registry
        self.clock = clock
        self.events = events
        self.config = config
        self.node_id = node_id
        self.executors = Executors(max_threads=config.max_threads)
        self.is_leader = False
        self._wake = asyncio.Event()
        #: The earliest due instant announced by wake-ups since the loop last looked.
        self._wake_hint: datetime | object | None = None
        #: Live nodes sharing the database (this one included), seen at maintenance.
        self._peers = 1
        #: When the main loop is asleep, the instant it will wake at by itself.
        self._sleep_target: datetime | None = None
        #: Attempt ends handed to the finisher and not written yet, with their runs.
        self._finishing: list[tuple[FinishItem, Run]] = []
        #: Set when ``_finishing`` is empty and nothing is being written.
        self._finish_idle = asyncio.Event()
        self._finish_idle.set()  # nothing to write yet (a node that failed to start
        # must not wait SHUTDOWN_DRAIN for a finisher that never ran)
        self._finish_ready = asyncio.Event()
        #: Runs whose task ended here for good (no retry follows) and whose end is not
        #: written yet: over for this node's fires (``Store.fire_due``, ``ended``). Changed
        #: on the loop; read from a store thread by a burst, hence the lock.
        self._ended: set[str] = set()
        self._ended_lock = threading.Lock()
        #: Set while the main loop is not working off a burst (asleep, failing, stopped,
        #: or handling fewer than ``BURST_RUNS`` runs per tick).
        self._main_idle = asyncio.Event()
        #: Set to renew leases (and learn of cancellations) before the next interval.
        self._beat_now = asyncio.Event()
        self._stopping = False
        #: Set on stop: a fire prepared ahead of its time is rolled back.
        self._abandon = asyncio.Event()
        #: Schedules due at the next fire time, as counted when reading ahead.
        self._due_count: tuple[datetime, int] | None = None
        #: Seconds of a fire's work per run (moving average over large fires).
        self._fire_cost = FIRE_COST_START
        #: The time of the last fire prepared ahead (dense fires are held less long).
        self._last_fire_ahead: datetime | None = None
        self._active: dict[str, _Active] = {}
        self._loops: list[asyncio.Task[None]] = []
        self._watcher: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._store_failures = 0
        #: How many times the main loop has looked at the store (fire, claim, next wake-up).
        self.ticks = 0
        #: How many fire transactions it has made (a burst makes several per look).
        self.fires = 0

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        now = self.clock.now()
        node = Node(
            id=self.node_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=now,
            heartbeat_at=now,
            tasks=tuple(self.registry.names()),
        )
        await self.db(self.store.register_node, node, [t.spec for t in self.registry])
        # A restart resumes at once: runs of dead processes are taken over now, not
        # after their leases lapse.
        await self._maintenance_once()
        self._watcher = threading.Thread(
            target=self._watch_changes, name="tickwork-watch", daemon=True
        )
        self._watcher.start()
        self._loops = [
            asyncio.create_task(self._main_loop(), name="tickwork-main"),
            asyncio.create_task(self._heartbeat_loop(), name="tickwork-heartbeat"),
            asyncio.create_task(self._maintenance_loop(), name="tickwork-maintenance"),
            asyncio.create_task(self._finisher_loop(), name="tickwork-finisher"),
        ]
        log.info("node %s started with %d task(s)", self.node_id, len(self.registry))

    async def stop(self, grace: float | None = None) -> None:
        """Stop claiming, let running runs finish within ``grace`` seconds, then cancel
        them (their attempt is recorded and the run retried by a node that is up)."""
        if self._stopping:
            return
        self._stopping = True
        self._abandon.set()
        self.wake()
        grace = self.config.shutdown_grace if grace is None else grace
        main = self._loops[0] if self._loops else None
        if main is not None:
            # Not cancelled at once: a fire or claim in flight commits runs as running
            # here, and they must be started (and given the grace) rather than dropped.
            _done, late = await asyncio.wait({main}, timeout=STOP_MAIN_WAIT)
            if late:
                main.cancel()
            await asyncio.gather(main, return_exceptions=True)
        pending = [a.task for a in self._active.values()]
        if pending:
            log.info("waiting up to %.0f s for %d running run(s)", grace, len(pending))
            _done, still = await asyncio.wait(pending, timeout=grace)
            for active in list(self._active.values()):
                if active.task in still:
                    active.stop_reason = "shutdown"
                    active.ctx.cancelled.set()
                    active.task.cancel()
            if still:
                await asyncio.wait(still, timeout=10)
        await self._drain_finishes(SHUTDOWN_DRAIN)
        for loop_task in self._loops[1:]:
            loop_task.cancel()
        await asyncio.gather(*self._loops[1:], return_exceptions=True)
        self.store.interrupt_wait()
        if self._watcher is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._watcher.join, 5)
        try:
            if self.is_leader:
                await self.db(self.store.release_lead, self.node_id)
            if self._loops:  # else it never registered (its start failed)
                await self.db(self.store.deregister_node, self.node_id, self.clock.now())
        except StoreError as exc:
            log.warning("could not deregister node %s: %s", self.node_id, exc)
        self.executors.shutdown()

    def wake(self, due_at: datetime | None = None) -> None:
        """Make the main loop look at the store now (thread-safe).

        ``due_at``: the change only adds work due then. When the loop will look at the
        store by then anyway (asleep until an earlier instant, or busy and about to
        sleep until one), it is not woken: adding many schedules one after another
        does not cost a tick each.
        """
        target = self._sleep_target
        if due_at is not None and target is not None and due_at >= target:
            return
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._note_wake(due_at)
        else:
            loop.call_soon_threadsafe(self._note_wake, due_at)

    def _note_wake(self, due_at: datetime | None) -> None:
        """On the loop: remember the earliest work the wake-ups since the last look
        announced (``_WAKE_ANY``: unknown, look again in any case)."""
        hint = self._wake_hint
        if due_at is None or hint is _WAKE_ANY:
            self._wake_hint = _WAKE_ANY
        elif not isinstance(hint, datetime) or due_at < hint:
            self._wake_hint = due_at
        self._wake.set()

    def _wake_needed(self, target: datetime) -> bool:
        """Whether a wake-up received while busy needs a new look before sleeping until
        ``target`` (it does unless all it announced is due at ``target`` or later)."""
        if not self._wake.is_set():
            return False
        hint = self._wake_hint
        if isinstance(hint, datetime) and hint >= target:
            self._wake.clear()
            self._wake_hint = None
            return False
        return True

    @property
    def running_count(self) -> int:
        return len(self._active)

    # -- the main loop -----------------------------------------------------------------

    async def _main_loop(self) -> None:
        try:
            await self._main_loop_body()
        finally:
            self._main_idle.set()  # nothing to defer attempt ends for any more

    async def _main_loop_body(self) -> None:
        while not self._stopping:
            self._wake.clear()
            self._wake_hint = None
            tick_now = self.clock.now()
            self.ticks += 1
            try:
                moved = await self._tick(tick_now)
                progressed = moved > 0
                wake_at = None if progressed else await self.db(self.store.next_wakeup)
                self._store_failures = 0
            except Exception as exc:  # StoreError, or a bug: it must not leave a node
                # that heartbeats but never fires again
                self._main_idle.set()
                await self._store_trouble(exc)
                continue
            if progressed:
                # A burst is being worked off: attempt ends may wait (see
                # _finish_deferral). A trickle of fires is not one: its ends are written
                # as they come, not a second's worth at once.
                if moved >= BURST_RUNS:
                    self._main_idle.clear()
                else:
                    self._main_idle.set()
                continue
            self._main_idle.set()
            now = self.clock.now()
            if wake_at is not None and tick_now < wake_at <= now:
                continue  # became due while we were working
            if wake_at is None:
                target = now + timedelta(seconds=IDLE_RECHECK)
            elif wake_at <= now:
                # Due but not claimable now (limits, overlap, unknown task): wait for a
                # change or recheck soon.
                target = now + timedelta(seconds=BLOCKED_RECHECK)
            else:
                target = min(wake_at, now + timedelta(seconds=IDLE_RECHECK))
                target = await self._read_ahead(wake_at, target, now)
                ahead, size = self._fire_lead(wake_at)
                if ahead and self._can_claim():
                    if now < wake_at - ahead:
                        target = min(target, wake_at - ahead)  # look again then
                    else:
                        try:
                            moved = await self._fire_ahead(wake_at, size)
                        except Exception as exc:  # as a tick's failure, above
                            self._main_idle.set()
                            await self._store_trouble(exc)
                            continue
                        if moved >= BURST_RUNS:
                            self._main_idle.clear()
                        continue
            if self._wake_needed(target):
                continue
            self._sleep_target = target
            try:
                await self.clock.sleep_until(target, self._wake)
            finally:
                self._sleep_target = None

    def _can_claim(self) -> bool:
        return self.config.max_concurrent > len(self._active) and len(self.registry) > 0

    def _fire_lead(self, due_at: datetime) -> tuple[timedelta, int]:
        """How long before ``due_at`` to prepare its fire, and how many schedules it
        takes: all those due then (as counted when reading ahead, within
        ``config.read_ahead``), started early enough for their estimated work, at
        least ``config.fire_ahead`` (``DENSE_FIRE_AHEAD`` when the last fire was less
        than ``DENSE_FIRES`` before) and at most ``READ_AHEAD`` ahead."""
        floor = max(0.0, self.config.fire_ahead)
        if floor == 0:
            return timedelta(0), 0
        last = self._last_fire_ahead
        if last is not None and timedelta(0) <= due_at - last < timedelta(seconds=DENSE_FIRES):
            # Dense fires (schedules spread over the second): a fire held 0.1 s ahead of
            # each would keep the write lock nearly all the time; hold it for the work.
            floor = min(floor, DENSE_FIRE_AHEAD)
        batch = max(self.config.fire_batch, 1)
        counted = self._due_count
        due = counted[1] if counted is not None and counted[0] == due_at else 0
        size = max(batch, min(due, max(self.config.read_ahead, batch)))
        work = FIRE_COST_FIXED + min(due, size) * self._fire_cost * 1.25
        return timedelta(seconds=min(READ_AHEAD, max(floor, work))), size

    def _learn_fire_cost(self, seconds: float, runs: int) -> None:
        if runs >= BURST_RUNS:
            self._fire_cost = 0.7 * self._fire_cost + 0.3 * (seconds / runs)

    async def _fire_ahead(self, due_at: datetime, size: int) -> int:
        """Fire what is due at ``due_at`` before that instant: the store plans, claims and
        writes now, then holds the commit until ``due_at`` (``hold``), and the runs
        start at once after it. A fire's work then costs no lag. Nothing is visible
        before the commit and no task starts before its time; a node that stops
        meanwhile rolls the fire back. Returns the runs created or claimed.

        While the fire waits, SQLite's write lock (PostgreSQL: the due schedules' rows)
        is held until ``due_at``, at most the lead of ``_fire_lead``; other writers wait
        that long.
        """
        free = self.config.max_concurrent - len(self._active)
        come = threading.Event()
        commit = False
        started = time.perf_counter()
        prepared: list[float] = []

        def hold() -> bool:
            prepared.append(time.perf_counter())
            come.wait()
            return commit

        self.fires += 1
        self._last_fire_ahead = due_at
        fire = asyncio.ensure_future(
            self.db(
                self.store.fire_and_claim,
                due_at,
                self._plan,
                size,
                self._claim_request(due_at, free),
                hold,
                ended=self._ended_runs(),
            )
        )
        try:
            await self.clock.sleep_until(due_at, self._abandon)
            commit = not self._stopping
        finally:
            come.set()
        result = await fire
        if prepared:
            self._learn_fire_cost(prepared[0] - started, len(result.fired))
        self._take_fired(result)
        return len(result.fired) + len(result.claimed)

    async def _read_ahead(self, wake_at: datetime, target: datetime, now: datetime) -> datetime:
        """Before sleeping until ``wake_at`` (a fire time): within ``READ_AHEAD`` of it,
        have the store decode the schedules due by then, so that a burst's fire only
        checks them; earlier, return the instant to look again and do it. Returns the
        instant to sleep until."""
        if self.config.read_ahead <= 0:
            return target
        ahead = timedelta(seconds=READ_AHEAD)
        if now < wake_at - ahead:
            return min(target, wake_at - ahead)
        try:
            await self.db(self.store.read_ahead, wake_at + ahead, self.config.read_ahead)
            due = await self.db(self.store.count_due, wake_at, self.config.read_ahead)
            self._due_count = (wake_at, due)
        except StoreError as exc:  # only a cache: the fire reads what it needs itself
            log.debug("reading ahead failed: %s", exc)
        except Exception:
            log.exception("reading ahead failed")
        return target

    async def _tick(self, now: datetime) -> int:
        """Fire what is due and claim what fits. Returns how many runs it created or
        claimed (0: nothing happened).

        Runs a fire makes due at once are claimed in the fire's own transaction
        (``Store.fire_and_claim``); ``claim_runs`` follows only when runs may still wait
        for this node (retries, manual runs, what limits held back). When more is due
        than the first fire took, the rest is a burst (``_fire_burst``).
        """
        free = self.config.max_concurrent - len(self._active)
        can_claim = free > 0 and len(self.registry) > 0
        size = min(FIRST_FIRE_BATCH, max(self.config.fire_batch, 1))
        self.fires += 1
        if can_claim:
            result = await self.db(
                self.store.fire_and_claim,
                now,
                self._plan,
                size,
                self._claim_request(now, free),
                ended=self._ended_runs(),
            )
        else:
            fired = await self.db(
                self.store.fire_due, now, self._plan, size, ended=self._ended_runs()
            )
            result = FireResult(fired, [])
        self._take_fired(result)
        moved = len(result.fired) + len(result.claimed)
        free -= len(result.claimed)
        more = result.more
        if len(result.fired) >= size and can_claim and not more and free > 0:
            self._main_idle.clear()  # attempt ends wait for the burst (_finish_deferral)
            burst_moved, more = await self.db(self._fire_burst, size, free)
            moved += burst_moved
            free = self.config.max_concurrent - len(self._active)  # all started by now
        if more and free > 0 and len(self.registry) and not self._stopping:
            if result.fired and self._peers > 1:
                # The node that fires would otherwise always claim first and take every
                # run; a short random pause lets peers woken by the same change (NOTIFY)
                # take their part, so work spreads over the nodes.
                await asyncio.sleep(random.uniform(0, PEER_CLAIM_SPREAD))
            now = self.clock.now()
            late = await self.db(
                self.store.claim_runs,
                self.node_id,
                now,
                now + timedelta(seconds=self.config.lease_ttl),
                free,
                self.registry.names(),
                self.registry.limits(),
            )
            for run in late:
                self._start(run)
            moved += len(late)
        return moved

    def _take_fired(self, result: FireResult) -> None:
        """On the loop: announce what a fire recorded without running, start what it
        claimed."""
        for run in result.fired:
            self._emit_created(run)
        for run in result.claimed:
            self._start(run)

    def _fire_burst(self, size: int, free: int) -> tuple[int, bool]:
        """On a store thread: fire batch after batch while more is due and slots are
        free, handing each to the loop as it commits. The store thread does not wait for
        the loop between batches (the loop is busy starting the last one, and the
        database works without holding the GIL), so a burst costs the time of its fires.
        Batches double up to ``config.fire_batch``: small first ones start the first
        runs soon, larger ones cost fewer transactions. Returns the runs created or
        claimed, and whether runs may still wait for this node."""
        loop = self._loop
        assert loop is not None
        moved = 0
        while free > 0 and not self._stopping:
            size = min(size * 2, max(self.config.fire_batch, 1))
            now = self.clock.now()
            self.fires += 1
            result = self.store.fire_and_claim(
                now, self._plan, size, self._claim_request(now, free), ended=self._ended_runs()
            )
            # Handed over before this returns: the loop starts every run claimed here
            # before it sees the burst end (callbacks run in order).
            loop.call_soon_threadsafe(self._take_fired, result)
            moved += len(result.fired) + len(result.claimed)
            free -= len(result.claimed)
            if result.more or len(result.fired) < size:
                return moved, result.more
        return moved, False

    def _ended_runs(self) -> frozenset[str]:
        """The runs this node's next fire counts as over although the database still
        says ``running`` (see ``_ended``)."""
        if not self._ended:
            return frozenset()
        with self._ended_lock:
            return frozenset(self._ended)

    def _claim_request(self, now: datetime, free: int) -> ClaimRequest:
        return ClaimRequest(
            node_id=self.node_id,
            lease_until=now + timedelta(seconds=self.config.lease_ttl),
            limit=free,
            tasks=self.registry.names(),
            task_limits=self.registry.limits(),
            # With peers, take a fair part of a burst and leave them the rest.
            share=1.0 if self._peers <= 1 else 1.0 / self._peers,
        )

    def _plan(self, schedule: Schedule, active: Sequence[Run], now: datetime) -> FirePlan:
        """Called by the store inside the fire transaction."""
        try:
            parsed = parsed_schedule(schedule)
        except ScheduleError as exc:
            # A stored expression that no longer parses (e.g. a zone removed from the
            # system): stop firing it and say why, instead of failing every tick.
            log.error("schedule %s cannot be parsed any more: %s", schedule.id, exc)
            fire = schedule.next_fire_at or now
            return FirePlan(
                runs=(
                    PlannedRun(
                        new_id(), fire, fire, status="missed", error=f"schedule invalid: {exc}"
                    ),
                ),
                next_fire_at=None,
                last_fire_at=schedule.last_fire_at,
                execution_count=schedule.execution_count,
                status="paused",
            )
        return plan_fire(schedule, parsed, active, now, new_id)

    def _emit_created(self, run: Run) -> None:
        if run.status in ("skipped", "missed"):
            self.events.emit(
                Event(
                    f"run.{run.status}",
                    self.clock.now(),
                    run.schedule_id,
                    run.id,
                    {"scheduled_for": run.scheduled_for.isoformat(), "reason": run.error},
                )
            )

    # -- execution ---------------------------------------------------------------------

    def _start(self, run: Run) -> None:
        ctx = RunContext(
            run.id,
            run.schedule_id,
            run.task,
            run.scheduled_for,
            run.attempt,
            run.trigger,
            self.node_id,
            dict(run.data),
            run.trace_id,
        )
        loop = self._loop
        assert loop is not None
        # Unnamed: naming costs a string per run; the run id is in every log line.
        task = loop.create_task(self._execute(run, ctx))
        self._active[run.id] = _Active(run, ctx, task)
        if self.events.has_subscribers:
            self.events.emit(
                Event(
                    "run.started",
                    self.clock.now(),
                    run.schedule_id,
                    run.id,
                    {"task": run.task, "attempt": run.attempt, "node": self.node_id},
                )
            )

    async def _execute(self, run: Run, ctx: RunContext) -> None:
        task = self.registry.require(run.task)
        try:
            timeout = self.timeout_of(run)
            if tracing.ENABLED:
                with tracing.attempt_span(run, self.node_id) as span:
                    result = await self.executors.run(task, ctx, timeout)
                    tracing.end_span(span, result.status, result.error)
            else:
                result = await self.executors.run(task, ctx, timeout)
        except asyncio.CancelledError:
            active = self._active.get(run.id)
            reason = active.stop_reason if active else "shutdown"
            if reason == "lost":
                self._active.pop(run.id, None)
                return
            message = (
                "cancelled on request"
                if reason == "cancel"
                else "interrupted: the node shut down before the run finished"
            )
            result = AttemptResult("cancelled", error=message)
            self._finish(run, result, retry=reason == "shutdown")
            return
        self._finish(run, result, retry=result.status in ("failed", "timed_out"))

    def _finish(self, run: Run, result: AttemptResult, *, retry: bool) -> None:
        """Hand an attempt's end to the finisher, which commits every end waiting at that
        moment in one transaction (a burst of endings costs a few commits). The run keeps
        its slot, and its lease is renewed, until its end is written."""
        now = self.clock.now()
        when = retry_at(run, self.retry_of(run), now) if retry else None
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
        self._finishing.append(((run.id, self.node_id, run.attempt, outcome), run))
        if when is None:
            with self._ended_lock:
                self._ended.add(run.id)
        self._finish_idle.clear()
        self._finish_ready.set()

    async def _finisher_loop(self) -> None:
        while True:
            if not self._finishing:
                self._finish_idle.set()
            await self._finish_ready.wait()
            await self._finish_deferral()
            self._finish_ready.clear()
            while self._finishing:
                batch = self._finishing[:FINISH_BATCH]
                del self._finishing[:FINISH_BATCH]
                results: Sequence[Run | None] | None = None
                try:
                    results = await self._write_ends([item for item, _ in batch])
                except Exception:  # the loop must outlive any surprise
                    log.exception("recording %d attempt end(s) failed", len(batch))
                with self._ended_lock:
                    self._ended.difference_update(item[0] for item, _ in batch)
                for index, (item, run) in enumerate(batch):
                    self._active.pop(run.id, None)
                    finished = None if results is None else results[index]
                    if item[3].status != "succeeded":
                        log_attempt_end(run, item[3].status, item[3].error, finished)
                    self._after_finish(run, finished)
                self.wake()

    async def _write_ends(self, items: Sequence[FinishItem]) -> Sequence[Run | None] | None:
        """Write attempt ends together; when the database refuses the batch (not because
        it is unreachable: a value it cannot store, say), write each alone, so one end
        that cannot be written holds back no other (see ``_write_unstorable``)."""
        try:
            return await self._store_retrying(self.store.finish_attempts, items, self.clock.now())
        except Exception as exc:  # whatever it is, it must not hold back the other ends
            if len(items) == 1:
                return [await self._write_unstorable(items[0], exc)]
            log.warning(
                "writing %d attempt ends together failed (%s); writing each alone", len(items), exc
            )
        results: list[Run | None] = []
        for item in items:
            try:
                written = await self._store_retrying(
                    self.store.finish_attempts, [item], self.clock.now()
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
            written = await self._store_retrying(
                self.store.finish_attempts,
                [(run_id, node_id, attempt, replacement)],
                self.clock.now(),
            )
        except Exception as again:
            log.error("run %s attempt %d: its failure cannot be stored: %s", run_id, attempt, again)
            return None
        return None if written is None else written[0]

    def _after_finish(self, run: Run, finished: Run | None) -> None:
        if finished is None or not self.events.has_subscribers:
            return
        kind = "retrying" if finished.status == "retrying" else finished.status
        self.events.emit(
            Event(
                f"run.{kind}",
                self.clock.now(),
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

    async def _drain_finishes(self, timeout: float) -> None:
        """Wait until every attempt end handed to the finisher is written."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._finish_idle.wait(), timeout)

    async def _finish_deferral(self) -> None:
        """While the main loop works off a burst with slots to spare, let it start what
        is due before attempt ends are written (they share the database and the CPU):
        up to ``FINISH_DEFER_MAX`` seconds. Never while slots are short: finished runs
        hold their slot until their end is written."""
        deadline = asyncio.get_running_loop().time() + FINISH_DEFER_MAX
        while not self._main_idle.is_set():
            if self.config.max_concurrent - len(self._active) <= 0:
                return
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._main_idle.wait(), timeout=min(remaining, 0.05))

    async def _store_retrying(
        self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T | None:
        """Call the store until it answers: an attempt's end must not be dropped because
        the database blinked. Gives up only when the lease has surely lapsed; an error
        other than ``StoreUnavailableError`` is raised at once."""
        delay = 0.2
        deadline = self.clock.now() + timedelta(seconds=self.config.lease_ttl * 2)
        while True:
            try:
                return await self.db(fn, *args, **kwargs)
            except StoreUnavailableError as exc:  # others are not cured by waiting
                if self.clock.now() > deadline:
                    log.error("giving up on %s: %s", getattr(fn, "__name__", fn), exc)
                    return None
                log.warning("store unavailable (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    # -- leases and maintenance ----------------------------------------------------------

    def request_cancel(self, run_id: str) -> bool:
        """Stop a run executing here now (its cancellation is already stored)."""
        active = self._active.get(run_id)
        if active is None or active.stop_reason is not None:
            return False
        active.stop_reason = "cancel"
        active.ctx.cancelled.set()
        active.task.cancel()
        return True

    async def _heartbeat_loop(self) -> None:
        interval = self.config.lease_ttl / 3
        while True:
            # Beat every third of the lease, or sooner when another process changed
            # something while runs execute here (it may have cancelled one of them),
            # but not more than once a second.
            try:
                await asyncio.wait_for(self._beat_now.wait(), timeout=interval)
                await asyncio.sleep(MIN_BEAT_GAP)
            except TimeoutError:
                pass
            self._beat_now.clear()
            now = self.clock.now()
            try:
                beat = await self.db(
                    self.store.heartbeat,
                    self.node_id,
                    now,
                    now + timedelta(seconds=self.config.lease_ttl),
                    list(self._active),
                    self.executors.threads.stuck,
                )
            except StoreError as exc:
                log.warning("heartbeat failed: %s", exc)
                continue
            except Exception:  # the loop must outlive any surprise, or leases lapse
                log.exception("heartbeat failed")
                continue
            for run_id in beat.lost:
                active = self._active.get(run_id)
                if active is not None:
                    log.warning("run %s was taken over by another node; stopping it", run_id)
                    active.stop_reason = "lost"
                    active.ctx.cancelled.set()
                    active.task.cancel()
            for run_id in beat.cancel_requested:
                self.request_cancel(run_id)

    async def _maintenance_loop(self) -> None:
        interval = self.config.maintenance_interval or max(self.config.lease_ttl / 2, 0.5)
        while True:
            await asyncio.sleep(interval)
            try:
                await self._maintenance_once()
            except StoreError as exc:
                log.warning("maintenance failed: %s", exc)
            except Exception:
                log.exception("maintenance failed")

    _last_cleanup: datetime | None = None

    async def _maintenance_once(self) -> None:
        """Take over the runs of dead nodes (every node does, so a dead leader's runs
        are not stranded until its leadership lapses: the store's locks make concurrent
        takeovers safe), and, as leader, apply retention."""
        now = self.clock.now()
        lease_until = now + timedelta(seconds=self.config.lease_ttl)
        try:
            self.is_leader = await self.db(self.store.try_lead, self.node_id, now, lease_until)
        except StoreError:
            self.is_leader = False  # fail closed
        dead = await self.db(self.store.dead_nodes, now, timedelta(seconds=self.config.lease_ttl))
        nodes = await self.db(self.store.list_nodes)
        self._peers = max(1, sum(1 for n in nodes if n.stopped_at is None and n.id not in dead))
        recovered = await self.db(self.store.recover_lost, now, dead, self._plan_lost_retry)
        for run in recovered:
            lost = run.attempts[-1] if run.attempts else None
            why = (lost.error if lost is not None else None) or run.error or "its node died"
            log_attempt_end(run, "lost", why, run)
            kind = "retrying" if run.status == "retrying" else run.status
            self.events.emit(Event(f"run.{kind}", now, run.schedule_id, run.id, {"lost": True}))
        if recovered:
            self.wake()
        every = timedelta(seconds=self.config.cleanup_interval)
        if self.is_leader and (self._last_cleanup is None or now - self._last_cleanup >= every):
            self._last_cleanup = now
            cutoff = now - timedelta(days=self.config.retention_days)
            deleted = await self.db(self.store.delete_runs_before, cutoff)
            if deleted:
                log.info("retention: deleted %d run(s) finished before %s", deleted, cutoff)

    def _plan_lost_retry(
        self, run: Run, schedule: Schedule | None, now: datetime
    ) -> datetime | None:
        return retry_at(run, self.retry_of(run), now)

    def timeout_of(self, run: Run) -> float:
        """The run's timeout: its schedule's, or this node's default when it sets none."""
        return self.config.default_timeout if "timeout" in run.node_defaults else run.timeout

    def retry_of(self, run: Run) -> RetryPolicy:
        """The run's retry policy: its schedule's, or this node's default when it sets none."""
        return self.config.default_retry if "retry" in run.node_defaults else run.retry

    # -- wake-ups from other processes ----------------------------------------------------

    def _watch_changes(self) -> None:
        while not self._stopping:
            try:
                changed = self.store.wait_for_change(1.0)
            except StoreError:
                changed = False
                threading.Event().wait(1.0)
            if changed and not self._stopping:
                self.wake()
                if self._active and self._loop is not None:
                    self._loop.call_soon_threadsafe(self._beat_now.set)

    async def _store_trouble(self, exc: Exception) -> None:
        """Back off after a failed look at the store (longer after each in a row)."""
        self._store_failures += 1
        delay = min(0.5 * 2 ** min(self._store_failures, 6), 30.0)
        if isinstance(exc, StoreError):
            log.warning("store unavailable (%s); retrying in %.1f s", exc, delay)
        else:
            log.error("main loop failed; retrying in %.1f s", delay, exc_info=exc)
        # A change (a schedule added or fixed) ends the wait early.
        self._wake.clear()
        await self.clock.sleep_until(self.clock.now() + timedelta(seconds=delay), self._wake)
