"""What the store and the engine hand each other: the planners the engine passes in
(how to fire, when to retry a lost run), a claim's request, a fire's result, a
heartbeat's answer, the gauges of a scrape and the feed's wake-ups. ``store.base``
exports them with ``Store``."""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tickwork.models import AttemptOutcome, FirePlan, Run, Schedule, ScheduleStatus

#: Decides what firing a due schedule does: given the schedule (as locked in the
#: transaction), its runs that are not over yet (pending, running, retrying), and now.
FirePlanner = Callable[[Schedule, Sequence[Run], datetime], FirePlan]

#: Decides when a run whose attempt was lost is retried (None: no retry, the run is lost).
#: The run carries its retry policy (``Run.retry``, ``Run.node_defaults``).
RetryPlanner = Callable[[Run, datetime], datetime | None]

#: One attempt's end, as ``finish_attempts`` takes it: (run_id, node_id, attempt, outcome).
FinishItem = tuple[str, str, int, AttemptOutcome]

#: Computes a schedule's next fire time strictly after an instant (None: never again).
NextFire = Callable[[Schedule, datetime], datetime | None]


@dataclass(frozen=True, slots=True)
class ScheduleFilter:
    """Which schedules a list reads: ``list_schedules``' filters and its page, as one
    value from the REST API down to the SQL (``Store.schedule_revisions``), instead of
    seven keywords repeated at every layer. Frozen and hashable: it also keys what was
    read with it (a kept page, a statement asked for by many requests)."""

    status: ScheduleStatus | None = None
    task: str | None = None
    tag: str | None = None
    owner: str | None = None
    #: A case-insensitive substring of the id, name, description or task.
    q: str | None = None
    #: Only ids after this one (the cursor of an id-ordered page).
    after_id: str | None = None
    #: At most this many (None: every one).
    limit: int | None = None

    def replace(self, **changes: Any) -> ScheduleFilter:
        return dataclasses.replace(self, **changes)


#: Every schedule, in id order.
ALL_SCHEDULES = ScheduleFilter()


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """What a node learns when it renews its leases."""

    #: Runs the node thought it held but no longer does (declared lost, cancelled, deleted).
    lost: frozenset[str]
    #: Runs it holds whose cancellation was requested (``cancel_run``, ``replace``).
    cancel_requested: frozenset[str]


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    """What a node can take, for ``Store.fire_and_claim`` (as ``claim_runs`` takes it)."""

    node_id: str
    lease_until: datetime
    #: Free slots on the node.
    limit: int
    tasks: Collection[str]
    task_limits: Mapping[str, int]
    #: Per task, the part of this fire's claimable runs of that task the node takes at
    #: most (rounded up): below 1 when live peers run the task too and should get their
    #: part of a burst. A task not named is taken whole.
    shares: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FireResult:
    """What ``Store.fire_and_claim`` did."""

    #: Runs the fire created, in all statuses (those claimed as ``claimed`` has them).
    fired: list[Run]
    #: Runs claimed for the node in the same transaction (running, leased, attempt 1).
    claimed: list[Run]
    #: False only when the store knows no other run is waiting for the node: then a
    #: ``claim_runs`` right after would find nothing.
    more: bool = True


@dataclass(frozen=True, slots=True)
class Gauges:
    """The database's state for a metrics scrape (see ``Store.gauges``)."""

    schedules: Mapping[str, int]
    #: pending, running, retrying
    runs_active: Mapping[str, int]
    #: Seconds the oldest run due by now has waited (0 when none waits).
    oldest_due_age: float
    nodes: int
    #: Threads still running a sync task their node gave up on (timed out or
    #: cancelled), summed over the nodes alive (``Node.stuck_threads``).
    stuck_threads: int = 0
    #: Async tasks their node gave up on (they ignored their cancellation) still running,
    #: summed over the nodes alive (``Node.stuck_coroutines``).
    stuck_coroutines: int = 0
    #: Seconds the oldest fire time of an active schedule has passed unfired (0 when
    #: every schedule due was fired): no node fires, or the firing is behind.
    oldest_due_fire_age: float = 0.0


class EventWatch(ABC):
    """Wakes a feed follower when the feed may have grown (PostgreSQL: ``LISTEN``;
    SQLite: the file's change counter). A wake-up is a hint: the follower reads the
    feed either way, so a missed or spurious one costs only latency."""

    @abstractmethod
    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True when something may have changed."""

    @abstractmethod
    def interrupt(self) -> None:
        """Make a blocked ``wait`` return soon."""

    @abstractmethod
    def close(self) -> None:
        """Release the watch's connection. Idempotent."""
