"""Upkeep: what keeps a node's claims valid and the database tidy.

Heartbeats renew the leases of the runs executing here every third of ``lease_ttl``
(sooner when another process changed something: it may have cancelled one of them) and
learn which runs were taken over or cancelled. Maintenance, every half lease on every
node, takes over the runs of dead nodes; the leader also applies retention. Their
waits go through the injected ``Clock``: a ``ManualClock`` drives them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

from tickwork.engine.config import MIN_BEAT_GAP, STORE_RETRY_MAX
from tickwork.engine.core import Active, Core
from tickwork.engine.events import Event
from tickwork.engine.execution import Execution
from tickwork.engine.finisher import log_attempt_end
from tickwork.errors import StoreError
from tickwork.models import Run
from tickwork.policy import retry_at

log = logging.getLogger("tickwork.engine")


class Upkeep:
    """Heartbeats and maintenance of one node."""

    def __init__(self, core: Core, execution: Execution, wake: Callable[[], None]) -> None:
        self._core = core
        self._execution = execution
        self._wake = wake
        self.is_leader = False
        #: Set to renew leases (and learn of cancellations) before the next interval.
        self.beat_now = asyncio.Event()
        self._never = asyncio.Event()  # a wait that only the clock ends
        self._last_cleanup: datetime | None = None
        #: One pass at a time: a pass asked for while the clock's one runs waits for it,
        #: so when it returns, what that pass decided (a cleanup) is committed.
        self._maintaining = asyncio.Lock()

    @property
    def beat_interval(self) -> timedelta:
        return timedelta(seconds=self._core.config.lease_ttl / 3)

    def changed_elsewhere(self) -> None:
        """Another process committed a change (thread-safe): while runs execute here,
        beat soon, as it may have cancelled one of them."""
        loop = self._core.loop
        if self._core.active and loop is not None:
            loop.call_soon_threadsafe(self.beat_now.set)

    async def heartbeat_loop(self) -> None:
        clock = self._core.clock
        # After a failed beat, the next comes sooner: leases run out meanwhile.
        retry = min(self.beat_interval, timedelta(seconds=STORE_RETRY_MAX))
        beaten = True
        while True:
            # Every third of the lease, or sooner when asked, but at most once a second.
            wait = self.beat_interval if beaten else retry
            await clock.sleep_until(clock.now() + wait, self.beat_now)
            if self.beat_now.is_set():
                await clock.sleep_until(clock.now() + timedelta(seconds=MIN_BEAT_GAP), self._never)
            self.beat_now.clear()
            beaten = await self.beat()

    async def beat(self) -> bool:
        """Renew this node's leases; stop the runs taken over, cancel those asked.
        False when the store could not be reached."""
        core = self._core
        now = core.clock.now()
        try:
            beat = await core.db(
                core.store.heartbeat,
                core.node_id,
                now,
                now + timedelta(seconds=core.config.lease_ttl),
                list(core.active),
                core.executors.threads.stuck,
                self._execution.given_up,
            )
        except StoreError as exc:
            log.warning("heartbeat failed: %s", exc)
            return False
        except Exception:  # the loop must outlive any surprise, or leases lapse
            log.exception("heartbeat failed")
            return False
        ended: list[Active] = []
        for run_id in beat.lost:
            active = core.active.get(run_id)
            if active is not None and (active.task.done() or active.given_up):
                ended.append(active)  # no task to stop: its end is the finisher's
            else:
                self._execution.stop_lost(run_id)
        for run_id in beat.cancel_requested:
            self._execution.request_cancel(run_id)
        for active in ended:
            if await self._taken_over(active.run):
                active.stop_reason = "lost"  # said here: the finisher need not say it again
                log.warning(
                    "run %s was taken over by another node; the end of its attempt %d "
                    "here is not recorded",
                    active.run.id,
                    active.run.attempt,
                )
        return True

    async def _taken_over(self, run: Run) -> bool:
        """Whether a run whose attempt ended here, and that this node no longer holds,
        was taken over (its attempt recorded ``lost``), not ended by this node's own
        end: the finisher writes it, and lets go of the run only once back from the
        database, so a heartbeat in between no longer holds the run either."""
        core = self._core
        try:
            stored = await core.db(core.store.get_run, run.id)
        except Exception:  # cannot tell: said, as for a takeover
            return True
        if stored is None:
            return False  # deleted (with its schedule, or by retention)
        for attempt in stored.attempts:
            if attempt.number == run.attempt:
                return attempt.status == "lost"
        return True

    async def maintenance_loop(self) -> None:
        clock = self._core.clock
        every = timedelta(seconds=self._core.config.maintenance_every)
        while True:
            await clock.sleep_until(clock.now() + every, self._never)
            try:
                await self.maintenance_once()
            except StoreError as exc:
                log.warning("maintenance failed: %s", exc)
            except Exception:
                log.exception("maintenance failed")

    async def maintenance_once(self) -> None:
        """Take over the runs of dead nodes (every node does, so a dead leader's runs
        are not stranded until its leadership lapses: the store's locks make concurrent
        takeovers safe), and, as leader, apply retention."""
        async with self._maintaining:
            await self._maintain()

    async def _maintain(self) -> None:
        core = self._core
        now = core.clock.now()
        lease_until = now + timedelta(seconds=core.config.lease_ttl)
        try:
            self.is_leader = await core.db(core.store.try_lead, core.node_id, now, lease_until)
        except StoreError:
            self.is_leader = False  # fail closed
        dead = await core.db(core.store.dead_nodes, now, timedelta(seconds=core.config.lease_ttl))
        # This node is alive, whatever its heartbeat says: after a jump of the clock (a
        # suspended host) it is older than the lease, and the runs executing here would
        # be taken over (the beat below renews it and their leases).
        dead = [node for node in dead if node != core.node_id]
        nodes = await core.db(core.store.list_nodes)
        mine = set(core.registry.names())
        running_it = Counter(
            task
            for n in nodes
            if n.stopped_at is None and n.id not in dead
            for task in set(n.tasks) & mine
        )
        core.shares = {task: 1.0 / count for task, count in running_it.items() if count > 1}
        async with core.look:
            if core.active:
                # Renew first: the clock may have jumped past a heartbeat (a ManualClock,
                # a suspended host), and a run claimed here must not be taken for lost.
                await self.beat()
                now = core.clock.now()
            recovered = await core.db(core.store.recover_lost, now, dead, self._plan_lost_retry)
        for run in recovered:
            lost = run.attempts[-1] if run.attempts else None
            why = (lost.error if lost is not None else None) or run.error or "its node died"
            log_attempt_end(run, "lost", why, run)
            kind = "retrying" if run.status == "retrying" else run.status
            core.events.emit(Event(f"run.{kind}", now, run.schedule_id, run.id, {"lost": True}))
        if recovered:
            self._wake()
        every = timedelta(seconds=core.config.cleanup_interval)
        if self.is_leader and (self._last_cleanup is None or now - self._last_cleanup >= every):
            self._last_cleanup = now
            cutoff = now - timedelta(days=core.config.retention_days)
            deleted = await core.db(core.store.delete_runs_before, cutoff)
            if deleted:
                log.info("retention: deleted %d run(s) finished before %s", deleted, cutoff)

    def _plan_lost_retry(self, run: Run, now: datetime) -> datetime | None:
        return retry_at(run, self._core.retry_of(run), now)
