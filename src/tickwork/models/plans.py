"""Records that pass decisions from the engine to the store: the engine decides (with
``policy.py``); the store applies the decision in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tickwork.models.runs import LogRecord
from tickwork.models.values import JSON, AttemptEndStatus, RunStatus, RunTrigger, ScheduleStatus


@dataclass(frozen=True, slots=True)
class PlannedRun:
    """A run the engine decided to create for one fire time of a schedule.

    ``status`` is ``pending`` for a run to execute, or ``skipped``/``missed`` for a fire
    that is only recorded (``error`` then says why).
    """

    id: str
    scheduled_for: datetime
    due_at: datetime
    trigger: RunTrigger = "schedule"
    status: RunStatus = "pending"
    error: str | None = None
    data: dict[str, JSON] | None = None


@dataclass(frozen=True, slots=True)
class FirePlan:
    """What firing one due schedule changes, applied atomically by ``Store.fire_due``."""

    runs: tuple[PlannedRun, ...]
    next_fire_at: datetime | None
    last_fire_at: datetime | None
    execution_count: int
    status: ScheduleStatus
    #: Running runs to cancel (``replace`` overlap policy).
    cancel_run_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """How an attempt ended, reported by the node that ran it.

    ``retry_at`` set means the run goes to ``retrying`` and becomes due again then;
    ``None`` means ``status`` is the run's final status. ``finished_at`` is when the
    attempt ended; ``None``: when it is recorded (ends are written in batches, so the
    write may come later than the end).
    """

    status: AttemptEndStatus
    result: JSON = None
    error: str | None = None
    traceback: str | None = None
    logs: tuple[LogRecord, ...] = ()
    retry_at: datetime | None = None
    finished_at: datetime | None = None
