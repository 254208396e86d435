"""Reading ahead and firing ahead: the work of a fire done before its time.

Within ``READ_AHEAD`` of a fire time, the store decodes the schedules due then
(``Store.read_ahead``), so the fire only checks them, and counts them. Then, early
enough for its estimated work (at least ``config.fire_ahead``), the fire itself is
prepared: the store plans, claims and writes, and holds the commit until the fire time
(``Store.fire_and_claim`` with ``hold``). Nothing is visible before the commit and no
task starts before its time; a node that stops meanwhile rolls the fire back. This
module is the whole of that optimisation: with ``read_ahead=0`` and ``fire_ahead=0``
the engine fires at the time, as plainly as it can.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from tickwork.clock import SystemClock, first_of
from tickwork.engine.config import (
    BURST_RUNS,
    DENSE_FIRE_AHEAD,
    DENSE_FIRES,
    FIRE_COST_FIXED,
    FIRE_COST_START,
    READ_AHEAD,
)
from tickwork.engine.core import Core
from tickwork.engine.firing import Firing
from tickwork.errors import StoreError

log = logging.getLogger("tickwork.engine")


class FireAhead:
    """Prepares a node's fires before their time."""

    def __init__(self, core: Core, firing: Firing) -> None:
        self._core = core
        self._firing = firing
        #: Schedules due at the next fire time, as counted when reading ahead.
        self.due_count: tuple[datetime, int] | None = None
        #: Seconds of a fire's work per run (moving average over large fires).
        self._fire_cost = FIRE_COST_START
        #: The time of the last fire prepared ahead (dense fires are held less long).
        self._last_fire_ahead: datetime | None = None
        #: Fires whose work was done ahead and whose commit was then held (a look that
        #: only ticks is not one): what tests and operators can wait on.
        self.prepared = 0
        #: Runs the last prepared fire created.
        self.last_fired = 0
        #: A wake-up time a prepared fire found no schedule due at: a run's due time (a
        #: jittered start, a retry), not a fire's. Not prepared again: the main loop
        #: sleeps until it like any other.
        self._nothing_due_at: datetime | None = None

    def lead(self, due_at: datetime) -> tuple[timedelta, int]:
        """How long before ``due_at`` to prepare its fire, and how many schedules it
        takes: all those due then (as counted when reading ahead, within
        ``config.read_ahead``), started early enough for their estimated work, at
        least ``config.fire_ahead`` (``DENSE_FIRE_AHEAD`` when the last fire was less
        than ``DENSE_FIRES`` before) and at most ``READ_AHEAD`` ahead."""
        config = self._core.config
        floor = max(0.0, config.fire_ahead)
        if floor == 0:
            return timedelta(0), 0
        last = self._last_fire_ahead
        if last is not None and timedelta(0) <= due_at - last < timedelta(seconds=DENSE_FIRES):
            # Dense fires (schedules spread over the second): a fire held 0.1 s ahead of
            # each would keep the write lock nearly all the time; hold it for the work.
            floor = min(floor, DENSE_FIRE_AHEAD)
        batch = max(config.fire_batch, 1)
        counted = self.due_count
        due = counted[1] if counted is not None and counted[0] == due_at else 0
        size = max(batch, min(due, max(config.read_ahead, batch)))
        work = FIRE_COST_FIXED + min(due, size) * self._fire_cost * 1.25
        return timedelta(seconds=min(READ_AHEAD, max(floor, work))), size

    def worth_preparing(self, due_at: datetime) -> bool:
        """Whether a fire at ``due_at`` may have anything to prepare (it had, unless a
        fire prepared for that time found no schedule due then)."""
        return self._nothing_due_at != due_at

    def _count_prepared(self) -> None:
        self.prepared += 1

    def _learn_fire_cost(self, seconds: float, runs: int) -> None:
        if runs >= BURST_RUNS:
            self._fire_cost = 0.7 * self._fire_cost + 0.3 * (seconds / runs)

    async def fire(self, due_at: datetime, size: int) -> int:
        """Fire what is due at ``due_at`` before that instant, its commit held until
        then; the runs start at once after it. Returns the runs created or claimed.

        While the fire waits, SQLite's write lock (PostgreSQL: the due schedules' rows)
        is held until ``due_at``, at most the lead of ``lead``; other writers wait
        that long.
        """
        core = self._core
        free = core.free_slots()
        started = time.perf_counter()
        hold = _Hold(core, due_at, self._count_prepared)
        self._firing.fires += 1
        self._last_fire_ahead = due_at
        fire = asyncio.ensure_future(
            core.db(
                core.store.fire_and_claim,
                due_at,
                self._firing.plan,
                size,
                core.claim_request(due_at, free),
                hold,
                ended=core.ended_runs(),
            )
        )
        try:
            if hold.on_its_own:
                await first_of(fire, core.abandon)
            else:
                # Until the time, or until the store returns without holding (nothing
                # was due then): an injected clock may never reach the time by itself.
                until = asyncio.ensure_future(core.clock.sleep_until(due_at, core.abandon))
                try:
                    await asyncio.wait((fire, until), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    until.cancel()
                hold.release(commit=not core.stopping)
        finally:
            hold.release(commit=False)  # stopped or cancelled first (else: no effect)
        result = await fire
        if hold.prepared_at is None:
            self._nothing_due_at = due_at  # no schedule was due then: nothing held
        if hold.prepared_at is not None:
            self._learn_fire_cost(hold.prepared_at - started, len(result.fired))
        self.last_fired = len(result.fired)
        self._firing.take_fired(result)
        if result.fired and result.more:
            # The main loop's next tick would claim what this fire left to peers.
            await self._firing.leave_to_peers()
        core.waiting = result.more
        return len(result.fired) + len(result.claimed)

    async def read_ahead(self, wake_at: datetime, target: datetime, now: datetime) -> datetime:
        """Before sleeping until ``wake_at`` (a fire time): within ``READ_AHEAD`` of it,
        have the store decode the schedules due by then, so that a burst's fire only
        checks them; earlier, return the instant to look again and do it. Returns the
        instant to sleep until."""
        core = self._core
        if core.config.read_ahead <= 0:
            return target
        ahead = timedelta(seconds=READ_AHEAD)
        if now < wake_at - ahead:
            return min(target, wake_at - ahead)
        try:
            await core.db(core.store.read_ahead, wake_at + ahead, core.config.read_ahead)
            due = await core.db(core.store.count_due, wake_at, core.config.read_ahead)
            self.due_count = (wake_at, due)
        except StoreError as exc:  # only a cache: the fire reads what it needs itself
            log.debug("reading ahead failed: %s", exc)
        except Exception:
            log.exception("reading ahead failed")
        return target


class _Hold:
    """The ``hold`` of a prepared fire (``Store.fire_and_claim``): called on the store
    thread once the fire's work is done, it returns at the fire time, True to commit,
    False to roll back.

    On the real clock the store thread waits for the time itself, a timed wait of its
    own accurate to a fraction of a millisecond, and commits at once; the loop only
    releases it early, when the node stops. Waited on by the loop's timer and then
    handed over, the commit came 1-5 ms late: the loop's timers keep to the
    millisecond, and its thread may wait for the GIL on waking. An injected clock only
    the loop sees move (``ManualClock``) is waited on by the loop, which releases the
    thread at the time.
    """

    def __init__(self, core: Core, due_at: datetime, prepared: Callable[[], None]) -> None:
        self._core = core
        self._due_at = due_at
        self._prepared = prepared
        #: Whether the store thread waits for the time itself (see the class).
        self.on_its_own = type(core.clock) is SystemClock
        self._released = threading.Event()
        self._commit = False
        #: When the fire's work was done (``time.perf_counter``); None: it never was.
        self.prepared_at: float | None = None

    def __call__(self) -> bool:
        """On the store thread."""
        self.prepared_at = time.perf_counter()
        self._prepared()
        if self.on_its_own:
            left = (self._due_at - self._core.clock.now()).total_seconds()
            if left > 0 and self._released.wait(left):
                return False  # released before the time: the node stops
            return not self._core.stopping
        self._released.wait()
        return self._commit

    def release(self, commit: bool) -> None:
        """On the loop: let the store thread go on; the first call decides."""
        if not self._released.is_set():
            self._commit = commit
            self._released.set()
