"""Firing: turning due schedules into runs, and claiming the runs this node can start.

A look at the store fires what is due and claims what fits in one transaction
(``Store.fire_and_claim``); a burst of more than the first fire takes is fired batch
after batch on a store thread (``fire_burst``); runs left waiting (retries, manual runs,
what limits held back) are claimed after it (``Store.claim_runs``). What a schedule's
fire makes of it (its runs, skips, next time) is ``policy.plan_fire``'s decision,
called by the store inside the fire's transaction (``plan``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from tickwork.engine.config import FIRST_FIRE_BATCH, PEER_HEAD_START
from tickwork.engine.core import Core
from tickwork.engine.events import Event
from tickwork.engine.ids import new_id
from tickwork.errors import ScheduleError
from tickwork.models import FirePlan, PlannedRun, Run, Schedule
from tickwork.policy import plan_fire
from tickwork.schedule import ParsedSchedule
from tickwork.schedule.parse import parse_stored
from tickwork.store.base import FireResult

log = logging.getLogger("tickwork.engine")


def parsed_schedule(schedule: Schedule) -> ParsedSchedule:
    """The parsed expression of a stored schedule (cached: parsing is not free)."""
    return parse_stored(
        schedule.schedule, schedule.timezone, schedule.start_at, schedule.id, schedule.anchor
    )


class Firing:
    """Fires and claims for one node; ``start`` starts each run claimed."""

    def __init__(self, core: Core, start: Callable[[Run], None]) -> None:
        self._core = core
        self._start = start
        #: How many fire transactions this node has made (a burst makes several per look).
        self.fires = 0

    async def tick(self, now: datetime) -> int:
        """Fire what is due and claim what fits. Returns how many runs it created or
        claimed (0: nothing happened).

        Runs a fire makes due at once are claimed in the fire's own transaction;
        ``claim_runs`` follows only when runs may still wait for this node. When more is
        due than the first fire took, the rest is a burst (``fire_burst``).
        """
        core = self._core
        free = core.free_slots()
        can_claim = free > 0 and len(core.registry) > 0
        size = min(FIRST_FIRE_BATCH, max(core.config.fire_batch, 1))
        self.fires += 1
        if can_claim:
            result = await core.db(
                core.store.fire_and_claim,
                now,
                self.plan,
                size,
                core.claim_request(now, free),
                ended=core.ended_runs(),
            )
        else:
            fired = await core.db(
                core.store.fire_due, now, self.plan, size, ended=core.ended_runs()
            )
            result = FireResult(fired, [])
        self.take_fired(result)
        moved = len(result.fired) + len(result.claimed)
        free -= len(result.claimed)
        more = result.more
        if len(result.fired) >= size and can_claim and not more and free > 0:
            core.main_idle.clear()  # attempt ends wait for the burst (Finisher.deferral)
            burst_moved, more = await core.db(self.fire_burst, size, free)
            moved += burst_moved
            free = core.free_slots()  # all started by now
        if more and free > 0 and len(core.registry) and not core.stopping:
            if result.fired:
                await self.leave_to_peers()
            now = core.clock.now()
            late = await core.db(
                core.store.claim_runs,
                core.node_id,
                now,
                now + timedelta(seconds=core.config.lease_ttl),
                free,
                core.registry.names(),
                core.registry.limits(),
            )
            for run in late:
                self._start(run)
            moved += len(late)
            more = len(late) >= free
        if can_claim:  # else it did not look for waiting runs
            core.waiting = more
        return moved

    async def leave_to_peers(self) -> None:
        """After a fire that left runs waiting, before this node claims them: with
        peers, a head start for them (``PEER_HEAD_START``). The node that fires is
        awake and would otherwise always claim first and take every run; the pause lets
        peers woken by the same fire time or change (NOTIFY) take their part, so work
        spreads over the nodes. Runs no peer takes start that much later.

        Meanwhile the finisher does not refill this node's slots from waiting runs (the
        caller sets ``Core.waiting`` after).
        """
        core = self._core
        if core.shares:  # a peer runs some task of this node
            core.waiting = False
            await asyncio.sleep(PEER_HEAD_START)

    def take_fired(self, result: FireResult) -> None:
        """On the loop: announce what a fire recorded without running, start what it
        claimed."""
        for run in result.fired:
            self._emit_created(run)
        for run in result.claimed:
            self._start(run)

    def fire_burst(self, size: int, free: int) -> tuple[int, bool]:
        """On a store thread: fire batch after batch while more is due and slots are
        free, handing each to the loop as it commits. The store thread does not wait for
        the loop between batches (the loop is busy starting the last one, and the
        database works without holding the GIL), so a burst costs the time of its fires.
        Batches double up to ``config.fire_batch``: small first ones start the first
        runs soon, larger ones cost fewer transactions. Returns the runs created or
        claimed, and whether runs may still wait for this node."""
        core = self._core
        loop = core.loop
        assert loop is not None
        moved = 0
        while free > 0 and not core.stopping:
            size = min(size * 2, max(core.config.fire_batch, 1))
            now = core.clock.now()
            self.fires += 1
            result = core.store.fire_and_claim(
                now, self.plan, size, core.claim_request(now, free), ended=core.ended_runs()
            )
            # Handed over before this returns: the loop starts every run claimed here
            # before it sees the burst end (callbacks run in order).
            loop.call_soon_threadsafe(self.take_fired, result)
            moved += len(result.fired) + len(result.claimed)
            free -= len(result.claimed)
            if result.more or len(result.fired) < size:
                return moved, result.more
        return moved, False

    def plan(self, schedule: Schedule, active: Sequence[Run], now: datetime) -> FirePlan:
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
            self._core.events.emit(
                Event(
                    f"run.{run.status}",
                    self._core.clock.now(),
                    run.schedule_id,
                    run.id,
                    {"scheduled_for": run.scheduled_for.isoformat(), "reason": run.error},
                )
            )
