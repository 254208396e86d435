"""A schedule: when a task runs and how, and how its failed attempts are retried."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from tickwork.models.records import fast_replace, jsonable
from tickwork.models.values import (
    DEFAULT_MISFIRE_GRACE,
    DEFAULT_TIMEOUT,
    JSON,
    CatchupPolicy,
    OverlapPolicy,
    ScheduleStatus,
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a failed attempt is retried: ``delay * backoff**(attempt-1)``, capped, jittered.

    ``max_attempts`` counts the first attempt: 3 means one try and two retries.
    ``jitter=True`` is full jitter (a delay drawn in [0, computed]).
    """

    max_attempts: int = 3
    delay: float = 5.0
    backoff: float = 2.0
    max_delay: float = 3600.0
    jitter: bool = True

    def to_dict(self) -> dict[str, Any]:
        # Spelled out: dataclasses.asdict is slow and this runs once per stored run.
        return {
            "max_attempts": self.max_attempts,
            "delay": self.delay,
            "backoff": self.backoff,
            "max_delay": self.max_delay,
            "jitter": self.jitter,
        }


@dataclass(frozen=True, slots=True)
class Schedule:
    """A stored schedule: when a task runs and how."""

    id: str
    task: str
    schedule: str
    name: str = ""
    description: str = ""
    timezone: str = "UTC"
    data: dict[str, JSON] = field(default_factory=dict)
    start_at: datetime | None = None
    end_at: datetime | None = None
    jitter: float = 0.0
    paused: bool = False
    overlap: OverlapPolicy = "skip"
    catchup: CatchupPolicy = "latest"
    catchup_spread: float = 60.0
    misfire_grace: float = DEFAULT_MISFIRE_GRACE
    max_instances: int = 1
    max_executions: int | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float = DEFAULT_TIMEOUT
    priority: int = 0
    result_queue: str | None = None
    error_queue: str | None = None
    tags: tuple[str, ...] = ()
    metadata: dict[str, JSON] = field(default_factory=dict)
    owner: str | None = None
    # read-only, maintained by the store and the engine
    status: ScheduleStatus = "active"
    next_fire_at: datetime | None = None
    last_fire_at: datetime | None = None
    execution_count: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    #: The instant interval steps count from (``start_at`` or the creation time); for a
    #: ``start_at`` written as a wall time in a DST gap, that wall time read with the
    #: offset after the gap, which the steps keep (``schedule.interval.anchor_for_wall``).
    anchor: datetime | None = None
    #: When the schedule was last paused; fires missed while paused are not caught up.
    paused_at: datetime | None = None
    #: The revision of the schedule's settings: 1 when created, +1 with every change a
    #: user makes (update, pause, resume), never with a fire. Runs record the revision
    #: that produced them; the REST API sends it as the ``ETag``.
    version: int = 1
    #: The fields of ``NODE_DEFAULT_FIELDS`` this schedule does not set: each of its runs
    #: takes them from the node that executes it (``Scheduler(default_retry=...,
    #: default_timeout=...)``, ``tickwork worker --default-timeout``). ``retry`` and
    #: ``timeout`` then show the defaults of the process that last wrote the schedule.
    node_defaults: tuple[str, ...] = ()

    def replace(self, **changes: Any) -> Schedule:
        return fast_replace(self, changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: datetimes as ISO-8601 with offset. Spelled out (ten times
        faster than ``dataclasses.asdict``): every add writes one to the audit log."""
        out: dict[str, Any] = {}
        for name in _SCHEDULE_FIELD_NAMES:
            value = getattr(self, name)
            if value is None or type(value) in _PLAIN:
                out[name] = value
            elif isinstance(value, datetime):
                out[name] = value.isoformat()
            elif isinstance(value, RetryPolicy):
                out[name] = value.to_dict()
            else:
                out[name] = jsonable(value)
        return out


_SCHEDULE_FIELD_NAMES: Final = tuple(f.name for f in dataclasses.fields(Schedule))


_PLAIN: Final = frozenset({str, int, float, bool})
