"""Plain records: what a schedule, a run and an attempt are, and their statuses.

These are frozen values. The store builds them from rows; the engine and the edges
read them. Nothing here talks to a database or reads the clock. Each concern has a
module of its own; every name is imported from here (``from tickwork.models import
Run``):

- ``values``: the words fields take (statuses, policies, triggers) and the defaults;
- ``schedules``: ``Schedule`` and its ``RetryPolicy``;
- ``runs``: ``Run``, its ``Attempt`` s and ``LogRecord`` s;
- ``tasks``: ``TaskSpec``, what a node publishes about a task, and its data check;
- ``operations``: ``Node``, ``AuditEntry``, ``ApiToken``, ``DashboardSession``,
  ``QueueMessage``, ``FeedEvent``, ``TaskStats``;
- ``plans``: what the engine decides and the store applies (``PlannedRun``,
  ``FirePlan``, ``AttemptOutcome``);
- ``records``: fast copies, builds and JSON of records (``record_maker``).
"""

from __future__ import annotations

from tickwork.data_types import ArgType
from tickwork.models.operations import (
    ApiToken,
    AuditEntry,
    DashboardSession,
    FeedEvent,
    Node,
    QueueMessage,
    TaskStats,
)
from tickwork.models.plans import AttemptOutcome, FirePlan, PlannedRun
from tickwork.models.records import record_maker
from tickwork.models.runs import Attempt, LogRecord, Run
from tickwork.models.schedules import RetryPolicy, Schedule
from tickwork.models.tasks import TaskSpec
from tickwork.models.values import (
    ACTIVE_RUN_STATUSES,
    CATCHUP_POLICIES,
    DEFAULT_LEASE_TTL,
    DEFAULT_MAX_CONCURRENT,
    DEFAULT_MISFIRE_GRACE,
    DEFAULT_RETENTION_DAYS,
    DEFAULT_TIMEOUT,
    FINAL_RUN_STATUSES,
    JSON,
    NODE_DEFAULT_FIELDS,
    OVERLAP_POLICIES,
    RUN_STATUSES,
    SCHEDULE_STATUSES,
    AttemptEndStatus,
    AttemptStatus,
    CatchupPolicy,
    OverlapPolicy,
    RunStatus,
    RunTrigger,
    ScheduleStatus,
)

__all__ = [
    "ACTIVE_RUN_STATUSES",
    "CATCHUP_POLICIES",
    "DEFAULT_LEASE_TTL",
    "DEFAULT_MAX_CONCURRENT",
    "DEFAULT_MISFIRE_GRACE",
    "DEFAULT_RETENTION_DAYS",
    "DEFAULT_TIMEOUT",
    "FINAL_RUN_STATUSES",
    "JSON",
    "NODE_DEFAULT_FIELDS",
    "OVERLAP_POLICIES",
    "RUN_STATUSES",
    "SCHEDULE_STATUSES",
    "ApiToken",
    "ArgType",
    "Attempt",
    "AttemptEndStatus",
    "AttemptOutcome",
    "AttemptStatus",
    "AuditEntry",
    "CatchupPolicy",
    "DashboardSession",
    "FeedEvent",
    "FirePlan",
    "LogRecord",
    "Node",
    "OverlapPolicy",
    "PlannedRun",
    "QueueMessage",
    "RetryPolicy",
    "Run",
    "RunStatus",
    "RunTrigger",
    "Schedule",
    "ScheduleStatus",
    "TaskSpec",
    "TaskStats",
    "record_maker",
]
