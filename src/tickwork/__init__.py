"""tickwork: a durable job scheduler for Python.

Schedules (cron, interval, one-time, manual) and every run with its attempts, result,
error and logs live in a database (SQLite by default, PostgreSQL for many nodes).
"""

from __future__ import annotations

from tickwork.engine.context import RunContext
from tickwork.engine.events import Event
from tickwork.engine.registry import REGISTRY, TaskRegistry, task
from tickwork.engine.scheduler import Scheduler
from tickwork.engine.sync import SyncScheduler
from tickwork.errors import (
    ConflictError,
    NotFoundError,
    RunTimeoutError,
    ScheduleError,
    StoreError,
    StoreUnavailableError,
    TickworkError,
    UnknownTaskError,
    ValidationError,
)
from tickwork.models import Attempt, LogRecord, RetryPolicy, Run, Schedule
from tickwork.schedule import ParsedSchedule, parse_schedule

__version__ = "0.1.0"

__all__ = [
    "REGISTRY",
    "Attempt",
    "ConflictError",
    "Event",
    "LogRecord",
    "NotFoundError",
    "ParsedSchedule",
    "RetryPolicy",
    "Run",
    "RunContext",
    "RunTimeoutError",
    "Schedule",
    "ScheduleError",
    "Scheduler",
    "StoreError",
    "StoreUnavailableError",
    "SyncScheduler",
    "TaskRegistry",
    "TickworkError",
    "UnknownTaskError",
    "ValidationError",
    "__version__",
    "parse_schedule",
    "task",
]
