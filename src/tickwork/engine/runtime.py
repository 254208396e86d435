"""The engine of one node: fire due schedules, claim due runs, execute them, keep leases.

One loop does the scheduling work (``Engine._main_loop``); it sleeps until the store's
earliest due instant (``Store.next_wakeup``, an indexed lookup, never a scan) or until
woken (``wakeups``): by a change made through this process, a run finishing here, or
another process committing a change. Its parts, each deciding one thing:

- ``config``: the node's settings and the engine's tuning constants;
- ``wakeups``: when the main loop looks at the store again, and the change watcher;
- ``firing``: a look at the store: fire what is due, claim what fits, bursts;
- ``ahead``: reading ahead and firing ahead of a fire time (the one optimisation);
- ``execution``: starting and stopping the attempts of claimed runs;
- ``finisher``: writing attempt ends, many per transaction;
- ``upkeep``: heartbeats (leases), maintenance (lost runs, leadership, retention);
- ``loop_watch``: saying which run blocks the event loop, and where;
- ``store_watch``: saying which store call the database keeps waiting.

Every transition is one store transaction: the runs of a fire and the schedule's
advance; a claim; an attempt's end with its logs and queue message. A node that dies
between any two of them leaves the database consistent, and its runs are taken over
when its leases lapse (or at once, when the store can tell the process is gone).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from datetime import datetime, timedelta

from tickwork.clock import Clock
from tickwork.engine.ahead import FireAhead
from tickwork.engine.config import (
    BLOCKED_RECHECK,
    BURST_RUNS,
    IDLE_RECHECK,
    SHUTDOWN_DRAIN,
    STOP_MAIN_WAIT,
    STORE_RETRY_MAX,
    EngineConfig,
)
from tickwork.engine.core import Core
from tickwork.engine.data_drift import changed_checks, published_specs, warn_misfits
from tickwork.engine.events import EventBus
from tickwork.engine.execution import Execution
from tickwork.engine.executors import Executors
from tickwork.engine.finisher import Finisher, first_line, log_attempt_end
from tickwork.engine.firing import Firing, parsed_schedule
from tickwork.engine.loop_watch import LoopWatch
from tickwork.engine.registry import TaskRegistry
from tickwork.engine.store_watch import StoreCallWatch
from tickwork.engine.storecalls import StoreCalls
from tickwork.engine.upkeep import Upkeep
from tickwork.engine.wakeups import ChangeWatcher, Wakeups
from tickwork.errors import StoreError
from tickwork.models import Node, Run
from tickwork.store.base import Store

__all__ = ["Engine", "EngineConfig", "first_line", "log_attempt_end", "parsed_schedule"]

log = logging.getLogger("tickwork.engine")


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
        self.core = core = Core(store, db, registry, clock, events, config, node_id)
        self.wakeups = Wakeups(core)
        self.finisher = Finisher(core, self.wake)
        self.execution = Execution(core, self.finisher.finish)
        self.finisher.start = self.execution.start  # slots its ends free, refilled
        self.firing = Firing(core, self.execution.start)
        self.ahead = FireAhead(core, self.firing)
        self.upkeep = Upkeep(core, self.execution, self.wake)
        self.watcher = ChangeWatcher(core, self._changed_elsewhere)
        self.loop_watch = LoopWatch(self._run_of)
        slow = config.store_call_slow
        self.store_watch = StoreCallWatch(db, slow, min(slow / 4, 1.0))
        self._loops: list[asyncio.Task[None]] = []
        self._store_failures = 0
        #: How many times the main loop has looked at the store (fire, claim, next wake-up).
        self.ticks = 0

    # -- what the scheduler, the API and tests read ---------------------------------------

    @property
    def store(self) -> Store:
        return self.core.store

    @property
    def config(self) -> EngineConfig:
        return self.core.config

    @property
    def node_id(self) -> str:
        return self.core.node_id

    @property
    def executors(self) -> Executors:
        return self.core.executors

    @property
    def is_leader(self) -> bool:
        return self.upkeep.is_leader

    @property
    def fires(self) -> int:
        """How many fire transactions this node has made."""
        return self.firing.fires

    @property
    def running_count(self) -> int:
        return len(self.core.active)

    def request_cancel(self, run_id: str) -> bool:
        """Stop a run executing here now (its cancellation is already stored)."""
        return self.execution.request_cancel(run_id)

    def wake(self, due_at: datetime | None = None) -> None:
        """Make the main loop look at the store now (thread-safe); see ``Wakeups.wake``."""
        self.wakeups.wake(due_at)

    def _run_of(self, task: asyncio.Task[object]) -> Run | None:
        """The run an asyncio task executes (for the loop watch's thread: the loop is
        blocked, so ``active`` does not change while it is read)."""
        try:
            for active in list(self.core.active.values()):
                if active.task is task:
                    return active.run
        except RuntimeError:  # changed after all: the loop runs again
            pass
        return None

    def _changed_elsewhere(self) -> None:
        self.wakeups.wake()
        self.upkeep.changed_elsewhere()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        core = self.core
        core.loop = asyncio.get_running_loop()
        now = core.clock.now()
        node = Node(
            id=core.node_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=now,
            heartbeat_at=now,
            tasks=tuple(core.registry.names()),
            lease_ttl=core.config.lease_ttl,
        )
        # Watched from the first call: a database that keeps a starting node waiting is
        # said too.
        watching = asyncio.create_task(self.store_watch.run(), name="tickwork-store-watch")
        try:
            specs = [t.spec for t in core.registry]
            published = await core.db(published_specs, core.store, [s.name for s in specs])
            await core.db(core.store.register_node, node, specs)
            # A restart resumes at once: runs of dead processes are taken over now, not
            # after their leases lapse.
            await self.upkeep.maintenance_once()
        except BaseException:
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)
            raise
        self.watcher.start()
        self.loop_watch.start()
        self._loops = [
            asyncio.create_task(self._main_loop(), name="tickwork-main"),
            asyncio.create_task(self.upkeep.heartbeat_loop(), name="tickwork-heartbeat"),
            asyncio.create_task(self.upkeep.maintenance_loop(), name="tickwork-maintenance"),
            asyncio.create_task(self.finisher.run(), name="tickwork-finisher"),
            asyncio.create_task(core.executors.live.run(core.store, core.db), name="tickwork-live"),
            watching,
            asyncio.create_task(
                warn_misfits(core.store, core.db, changed_checks(published, specs)),
                name="tickwork-data-drift",
            ),
        ]
        log.info("node %s started with %d task(s)", core.node_id, len(core.registry))

    async def stop(self, grace: float | None = None) -> None:
        """Stop claiming, let running runs finish within ``grace`` seconds, then cancel
        them (their attempt is recorded and the run retried by a node that is up)."""
        core = self.core
        if core.stopping:
            return
        core.stopping = True
        core.abandon.set()
        self.wake()
        grace = core.config.shutdown_grace if grace is None else grace
        main = self._loops[0] if self._loops else None
        if main is not None:
            # Not cancelled at once: a fire or claim in flight commits runs as running
            # here, and they must be started (and given the grace) rather than dropped.
            _done, late = await asyncio.wait({main}, timeout=STOP_MAIN_WAIT)
            if late:
                main.cancel()
            await asyncio.gather(main, return_exceptions=True)
        await self.finisher.refills_done(STOP_MAIN_WAIT)  # their runs get the grace too
        await self.execution.stop_all(grace)
        await self.finisher.drain(SHUTDOWN_DRAIN)
        for loop_task in self._loops[1:]:
            loop_task.cancel()
        await asyncio.gather(*self._loops[1:], return_exceptions=True)
        await self.watcher.stop()
        self.loop_watch.stop()
        try:
            if self.upkeep.is_leader:
                await core.db(core.store.release_lead, core.node_id)
            if self._loops:  # else it never registered (its start failed)
                await core.db(core.store.deregister_node, core.node_id, core.clock.now())
        except StoreError as exc:
            log.warning("could not deregister node %s: %s", core.node_id, exc)
        core.executors.shutdown()

    def abandon(self) -> None:
        """Stop the threads of a node whose event loop closed before ``stop`` (its tasks
        went with the loop): the change watcher and the loop watch. Runs it had started
        are found lost when their leases lapse, as a dead node's are."""
        self.core.stopping = True
        self.watcher.join(5)
        self.loop_watch.stop()

    # -- the main loop -----------------------------------------------------------------

    async def _main_loop(self) -> None:
        try:
            await self._main_loop_body()
        finally:
            self.core.main_idle.set()  # nothing to defer attempt ends for any more

    async def _main_loop_body(self) -> None:
        core = self.core
        while not core.stopping:
            self.wakeups.looking()
            tick_now = core.clock.now()
            self.ticks += 1
            try:
                if core.can_claim():
                    async with core.look:  # see Core.look
                        moved = await self.firing.tick(tick_now)
                else:  # fires only: nothing to start, the finisher may refill
                    moved = await self.firing.tick(tick_now)
                progressed = moved > 0
                wake_at = None if progressed else await core.db(core.store.next_wakeup)
                self._store_failures = 0
            except Exception as exc:  # StoreError, or a bug: it must not leave a node
                # that heartbeats but never fires again
                core.main_idle.set()
                await self._store_trouble(exc)
                continue
            if progressed:
                # A burst is being worked off: attempt ends may wait (see
                # Finisher.deferral). A trickle of fires is not one: its ends are written
                # as they come, not a second's worth at once.
                if moved >= BURST_RUNS:
                    core.main_idle.clear()
                else:
                    core.main_idle.set()
                continue
            core.main_idle.set()
            now = core.clock.now()
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
                target = await self.ahead.read_ahead(wake_at, target, now)
                ahead, size = self.ahead.lead(wake_at)
                if ahead and core.can_claim() and self.ahead.worth_preparing(wake_at):
                    if now < wake_at - ahead:
                        target = min(target, wake_at - ahead)  # look again then
                    else:
                        try:
                            async with core.look:
                                moved = await self.ahead.fire(wake_at, size)
                        except Exception as exc:  # as a tick's failure, above
                            core.main_idle.set()
                            await self._store_trouble(exc)
                            continue
                        if moved >= BURST_RUNS:
                            core.main_idle.clear()
                        continue
            if self.wakeups.needed(target):
                continue
            await self.wakeups.sleep_until(target)

    async def _store_trouble(self, exc: Exception) -> None:
        """Back off after a failed look at the store (1 s, 2 s, 4 s, then every
        ``STORE_RETRY_MAX``): nothing else wakes a lone node when the database is back."""
        self._store_failures += 1
        delay = min(0.5 * 2 ** min(self._store_failures, 4), STORE_RETRY_MAX)
        if isinstance(exc, StoreError):
            log.warning("store unavailable (%s); retrying in %.1f s", exc, delay)
        else:
            log.error("main loop failed; retrying in %.1f s", delay, exc_info=exc)
        # A change (a schedule added or fixed) ends the wait early.
        self.wakeups.event.clear()
        clock = self.core.clock
        await clock.sleep_until(clock.now() + timedelta(seconds=delay), self.wakeups.event)
