"""What a task sees of its run (``RunContext``) and how its log records are captured.

A logging handler on the root logger routes each record to the run whose context is
current (a ``ContextVar``, which asyncio tasks and ``copy_context`` threads inherit), so
records from any logger the task uses are stored with the run.
"""

from __future__ import annotations

import logging
import threading
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Final

from tickwork.models import LogRecord

MAX_LOG_RECORDS: Final = 1000
MAX_LOG_MESSAGE: Final = 8000


class LogCapture:
    """Collects the log records of one attempt (bounded, thread-safe)."""

    def __init__(self, attempt: int) -> None:
        self.attempt = attempt
        self.records: list[LogRecord] = []
        self.dropped = 0
        self._lock = threading.Lock()

    def add(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break the task
            message = str(record.msg)
        if record.exc_info and record.exc_info[0] is not None:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
        if len(message) > MAX_LOG_MESSAGE:
            message = message[:MAX_LOG_MESSAGE] + "… [truncated]"
        with self._lock:
            if len(self.records) >= MAX_LOG_RECORDS:
                self.dropped += 1
                return
            self.records.append(
                LogRecord(
                    at=datetime.fromtimestamp(record.created, UTC),
                    level=record.levelname,
                    logger=record.name,
                    message=message,
                    attempt=self.attempt,
                )
            )

    def result(self) -> tuple[LogRecord, ...]:
        with self._lock:
            records = list(self.records)
            if self.dropped:
                last = records[-1]
                records.append(
                    LogRecord(
                        at=last.at,
                        level="WARNING",
                        logger="tickwork",
                        message=f"{self.dropped} more log records dropped "
                        f"(limit {MAX_LOG_RECORDS} per attempt)",
                        attempt=self.attempt,
                    )
                )
            return tuple(records)


current_capture: ContextVar[LogCapture | None] = ContextVar("tickwork_log_capture", default=None)


class _CaptureHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        capture = current_capture.get()
        if capture is not None:
            capture.add(record)


_installed = False
_install_lock = threading.Lock()


def install_log_capture() -> None:
    """Attach the capturing handler to the root logger once per process."""
    global _installed
    with _install_lock:
        if _installed:
            return
        logging.getLogger().addHandler(_CaptureHandler(level=logging.DEBUG))
        # Task loggers pass INFO and above even when the root logger is at WARNING.
        logging.getLogger("tickwork.task").setLevel(logging.INFO)
        _installed = True


_CREATE_LOCK: Final = threading.Lock()


class RunContext:
    """Passed as ``ctx`` to tasks that ask for it; use ``run_id``/``scheduled_for``/
    ``attempt`` to stay idempotent (execution is at-least-once).

    ``logger`` and ``cancelled`` are made on first use: a burst starts thousands of runs
    and most never touch them.
    """

    __slots__ = (
        "_cancelled",
        "_logger",
        "attempt",
        "data",
        "node",
        "run_id",
        "schedule_id",
        "scheduled_for",
        "task",
        "trace_id",
        "trigger",
    )

    def __init__(
        self,
        run_id: str,
        schedule_id: str | None,
        task: str,
        scheduled_for: datetime,
        attempt: int,
        trigger: str,
        node: str,
        data: dict[str, Any],
        trace_id: str | None = None,
    ) -> None:
        self.run_id = run_id
        self.schedule_id = schedule_id
        self.task = task
        self.scheduled_for = scheduled_for
        self.attempt = attempt
        self.trigger = trigger
        self.node = node
        self.data = data
        self.trace_id = trace_id
        self._logger: logging.Logger | None = None
        self._cancelled: threading.Event | None = None

    @property
    def logger(self) -> logging.Logger:
        """``tickwork.task.<task name>``; what it logs is stored with the run."""
        if self._logger is None:
            self._logger = logging.getLogger(f"tickwork.task.{self.task}")
        return self._logger

    @property
    def cancelled(self) -> threading.Event:
        """Set when the run should stop (cancelled, timed out, node shutting down); sync
        tasks on the thread executor can poll ``ctx.cancelled.is_set()``."""
        event = self._cancelled
        if event is None:
            with _CREATE_LOCK:  # the task's thread and the loop may ask at once
                event = self._cancelled
                if event is None:
                    event = self._cancelled = threading.Event()
        return event

    def __repr__(self) -> str:
        return (
            f"RunContext(run_id={self.run_id!r}, schedule_id={self.schedule_id!r}, "
            f"task={self.task!r}, scheduled_for={self.scheduled_for.isoformat()!r}, "
            f"attempt={self.attempt}, trigger={self.trigger!r}, node={self.node!r})"
        )
