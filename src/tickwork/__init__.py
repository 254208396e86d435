"""tickwork: a durable job scheduler for Python.

Schedules (cron, interval, one-time, manual) and every run with its attempts, result,
error and logs live in a database (SQLite by default, PostgreSQL for many nodes).

Every name of ``__all__`` is imported from here (``from tickwork import Scheduler``),
but only when first asked for: ``import tickwork`` alone loads nothing else, so a
command that needs one part (``tickwork stats``) does not pay for the engine, the
executors or the REST API.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from tickwork.clock import Clock, ManualClock, SystemClock
    from tickwork.engine.config import EngineConfig
    from tickwork.engine.context import RunContext
    from tickwork.engine.events import Event
    from tickwork.engine.registry import REGISTRY, TaskRegistry, task
    from tickwork.engine.scheduler import Scheduler
    from tickwork.engine.sync import SyncScheduler
    from tickwork.errors import (
        ConflictError,
        NotFoundError,
        PreconditionFailedError,
        RunTimeoutError,
        ScheduleError,
        StoreError,
        StoreUnavailableError,
        TickworkError,
        UnknownTaskError,
        ValidationError,
    )
    from tickwork.models import (
        ApiToken,
        Attempt,
        AuditEntry,
        LogRecord,
        Node,
        QueueMessage,
        RetryPolicy,
        Run,
        RunStatus,
        Schedule,
        ScheduleStatus,
        TaskSpec,
        TaskStats,
    )
    from tickwork.schedule import ParsedSchedule, parse_schedule

__version__ = "0.1.0"

#: Where each public name lives: the module imported the first time it is asked for.
_WHERE: Final[dict[str, str]] = {
    "Clock": "tickwork.clock",
    "ManualClock": "tickwork.clock",
    "SystemClock": "tickwork.clock",
    "RunContext": "tickwork.engine.context",
    "Event": "tickwork.engine.events",
    "REGISTRY": "tickwork.engine.registry",
    "TaskRegistry": "tickwork.engine.registry",
    "task": "tickwork.engine.registry",
    "EngineConfig": "tickwork.engine.config",
    "Scheduler": "tickwork.engine.scheduler",
    "SyncScheduler": "tickwork.engine.sync",
    "ConflictError": "tickwork.errors",
    "NotFoundError": "tickwork.errors",
    "PreconditionFailedError": "tickwork.errors",
    "RunTimeoutError": "tickwork.errors",
    "ScheduleError": "tickwork.errors",
    "StoreError": "tickwork.errors",
    "StoreUnavailableError": "tickwork.errors",
    "TickworkError": "tickwork.errors",
    "UnknownTaskError": "tickwork.errors",
    "ValidationError": "tickwork.errors",
    "ApiToken": "tickwork.models",
    "Attempt": "tickwork.models",
    "AuditEntry": "tickwork.models",
    "LogRecord": "tickwork.models",
    "Node": "tickwork.models",
    "QueueMessage": "tickwork.models",
    "RetryPolicy": "tickwork.models",
    "Run": "tickwork.models",
    "RunStatus": "tickwork.models",
    "Schedule": "tickwork.models",
    "ScheduleStatus": "tickwork.models",
    "TaskSpec": "tickwork.models",
    "TaskStats": "tickwork.models",
    "ParsedSchedule": "tickwork.schedule",
    "parse_schedule": "tickwork.schedule",
}

__all__ = [
    "REGISTRY",
    "ApiToken",
    "Attempt",
    "AuditEntry",
    "Clock",
    "ConflictError",
    "EngineConfig",
    "Event",
    "LogRecord",
    "ManualClock",
    "Node",
    "NotFoundError",
    "ParsedSchedule",
    "PreconditionFailedError",
    "QueueMessage",
    "RetryPolicy",
    "Run",
    "RunContext",
    "RunStatus",
    "RunTimeoutError",
    "Schedule",
    "ScheduleError",
    "ScheduleStatus",
    "Scheduler",
    "StoreError",
    "StoreUnavailableError",
    "SyncScheduler",
    "SystemClock",
    "TaskRegistry",
    "TaskSpec",
    "TaskStats",
    "TickworkError",
    "UnknownTaskError",
    "ValidationError",
    "__version__",
    "parse_schedule",
    "task",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'tickwork' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
