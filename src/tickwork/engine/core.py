"""What the parts of one node's engine share: the store and its thread pool, the
registry, the clock, the settings, and the runs executing here.

Each part (``wakeups``, ``firing``, ``ahead``, ``execution``, ``finisher``, ``upkeep``)
decides one thing and reads the rest from here; ``runtime.Engine`` composes them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from tickwork.clock import Clock
from tickwork.engine.config import EngineConfig
from tickwork.engine.context import RunContext
from tickwork.engine.events import EventBus
from tickwork.engine.executors import Executors
from tickwork.engine.registry import TaskRegistry
from tickwork.engine.storecalls import StoreCalls
from tickwork.models import RetryPolicy, Run
from tickwork.store.base import ClaimRequest, Store


@dataclass(slots=True)
class Active:
    """A run executing on this node."""

    run: Run
    ctx: RunContext
    task: asyncio.Task[None]
    #: Why we stopped it, if we did: "cancel" (asked), "lost" (lease gone), "shutdown".
    stop_reason: str | None = None
    #: Set when its task did not end within ``stop_grace`` of being cancelled: its
    #: attempt was recorded without it, and whatever it does later is ignored.
    given_up: bool = False


class Core:
    """The state of one node's engine that more than one of its parts reads."""

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
        self.loop: asyncio.AbstractEventLoop | None = None
        #: Runs executing here, by id; a run keeps its slot until its end is written.
        self.active: dict[str, Active] = {}
        #: Runs whose task ended here for good (no retry follows) and whose end is not
        #: written yet: over for this node's fires (``Store.fire_due``, ``ended``). Changed
        #: on the loop; read from a store thread by a burst, hence the lock.
        self.ended: set[str] = set()
        self.ended_lock = threading.Lock()
        #: Set while the main loop is not working off a burst (asleep, failing, stopped,
        #: or handling fewer than ``BURST_RUNS`` runs per tick).
        self.main_idle = asyncio.Event()
        self.stopping = False
        #: Set on stop: a fire prepared ahead of its time is rolled back.
        self.abandon = asyncio.Event()
        #: Held while the main loop fires and claims (until what it claimed has started)
        #: and while maintenance looks for lost runs: a run claimed but not started yet
        #: is not taken for lost, whatever the clock did meanwhile.
        self.look = asyncio.Lock()
        #: Whether runs may wait for a free slot of this node (the last look left some,
        #: or an attempt ended to be retried at once): the finisher then refills the
        #: slots its ends free; else it spares the database a claim that finds nothing.
        self.waiting = False
        #: Per task of this node that live peers run too: the part of a fire's runs of
        #: it this node takes (1 / the live nodes running it, this one included), seen
        #: at maintenance. Empty when no peer runs any of them.
        self.shares: Mapping[str, float] = {}

    def free_slots(self) -> int:
        """Slots this node may fill now (a run holds its slot until its end is written)."""
        return self.config.max_concurrent - len(self.active)

    def can_claim(self) -> bool:
        return self.free_slots() > 0 and len(self.registry) > 0

    def ended_runs(self) -> frozenset[str]:
        """The runs this node's next fire counts as over although the database still
        says ``running`` (see ``ended``)."""
        if not self.ended:
            return frozenset()
        with self.ended_lock:
            return frozenset(self.ended)

    def claim_request(self, now: datetime, free: int) -> ClaimRequest:
        return ClaimRequest(
            node_id=self.node_id,
            lease_until=now + timedelta(seconds=self.config.lease_ttl),
            limit=free,
            tasks=self.registry.names(),
            task_limits=self.registry.limits(),
            # With peers, take a fair part of a burst and leave them the rest.
            shares=self.shares,
        )

    def timeout_of(self, run: Run) -> float:
        """The run's timeout: its schedule's, or this node's default when it sets none."""
        return self.config.default_timeout if "timeout" in run.node_defaults else run.timeout

    def retry_of(self, run: Run) -> RetryPolicy:
        """The run's retry policy: its schedule's, or this node's default when it sets none."""
        return self.config.default_retry if "retry" in run.node_defaults else run.retry
