"""A run: one occurrence of a schedule, with its attempts and the log lines its task
emitted."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tickwork.models.records import fast_replace, json_dict
from tickwork.models.schedules import RetryPolicy
from tickwork.models.values import (
    DEFAULT_TIMEOUT,
    FINAL_RUN_STATUSES,
    JSON,
    AttemptStatus,
    RunStatus,
    RunTrigger,
)


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One log line a task emitted during an attempt."""

    at: datetime
    level: str
    logger: str
    message: str
    attempt: int = 1

    def to_dict(self) -> dict[str, Any]:
        return json_dict(dataclasses.asdict(self))


@dataclass(frozen=True, slots=True)
class Attempt:
    """One execution of a run on one node."""

    number: int
    status: AttemptStatus
    started_at: datetime
    finished_at: datetime | None = None
    node: str | None = None
    error: str | None = None
    traceback: str | None = None

    @property
    def duration(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        d = json_dict(dataclasses.asdict(self))
        d["duration"] = self.duration
        return d


@dataclass(frozen=True, slots=True)
class Run:
    """One occurrence of a schedule: the task for one scheduled time, with its attempts."""

    id: str
    schedule_id: str | None
    task: str
    scheduled_for: datetime
    trigger: RunTrigger = "schedule"
    data: dict[str, JSON] = field(default_factory=dict)
    status: RunStatus = "pending"
    attempt: int = 0
    attempts: tuple[Attempt, ...] = ()
    #: When the run may start: ``scheduled_for`` plus jitter, or the retry time.
    due_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: JSON = None
    error: str | None = None
    traceback: str | None = None
    node: str | None = None
    trace_id: str | None = None
    #: The span id (16 hex digits) of the caller's span that triggered the run, from
    #: its ``traceparent``: the parent of every attempt's span.
    parent_span_id: str | None = None
    #: The caller's W3C trace flags from its ``traceparent`` (1: sampled), so that a
    #: parent-based sampler records the attempts only if the caller recorded its span.
    #: None: no caller's trace, or a run stored before tickwork kept them (sampled).
    trace_flags: int | None = None
    logs: tuple[LogRecord, ...] = ()
    priority: int = 0
    lease_until: datetime | None = None
    cancel_requested: bool = False
    created_at: datetime | None = None
    #: Copied from the schedule when the run is created, so every node executes the
    #: run with the same settings even if the schedule changes meanwhile.
    timeout: float = DEFAULT_TIMEOUT
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: The schedule's ``version`` (its settings' revision) that produced the run.
    schedule_version: int | None = None
    #: Copied from the schedule: which of ``retry`` and ``timeout`` the executing node's
    #: defaults replace.
    node_defaults: tuple[str, ...] = ()

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def done(self) -> bool:
        return self.status in FINAL_RUN_STATUSES

    def replace(self, **changes: Any) -> Run:
        return fast_replace(self, changes)

    def to_dict(self) -> dict[str, Any]:
        d = json_dict(dataclasses.asdict(self))
        d["duration"] = self.duration
        d["attempts"] = [a.to_dict() for a in self.attempts]
        return d
