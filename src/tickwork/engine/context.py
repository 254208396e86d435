"""What a task sees of its run (``RunContext``) and how its output is captured.

A logging handler on the root logger routes each record to the run whose context is
current (a ``ContextVar``, which asyncio tasks and ``copy_context`` threads inherit), so
records from any logger the task uses are stored with the run, and two runs executing
at once never get each other's records. ``sys.stdout`` and ``sys.stderr`` are replaced
by routers that do the same with what a task prints (one record per line, logger
``stdout`` or ``stderr``); outside a run they write to the streams they replaced.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from tickwork.models import LogRecord

MAX_LOG_RECORDS: Final = 1000
MAX_LOG_MESSAGE: Final = 8000


class LogCapture:
    """Collects the log records and printed lines of one attempt (bounded, thread-safe).

    ``run_id``, when given, is stamped on the log records it sees (``record.run_id``),
    so a node's own log handlers can say which run a task's record came from.
    """

    __slots__ = ("_lock", "_partial", "attempt", "dropped", "records", "remote", "run_id")

    def __init__(self, attempt: int, run_id: str | None = None) -> None:
        self.attempt = attempt
        self.run_id = run_id
        self.records: list[LogRecord] = []
        self.dropped = 0
        self._lock = threading.Lock()
        #: Printed text not ended by a newline yet, per stream ("stdout", "stderr"); made
        #: on the first print (most attempts print nothing).
        self._partial: dict[str, str] | None = None
        #: Lines the attempt's own process sent before its end (``executor="process"``),
        #: shown live; its final message carries them again.
        self.remote: list[LogRecord] = []

    def add(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break the task
            message = _unformatted(record.msg)
        if record.exc_info and record.exc_info[0] is not None:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
        if self.run_id is not None and "run_id" not in record.__dict__:
            record.run_id = self.run_id
        self._append(record.created, record.levelname, record.name, message)

    def _append(self, created: float, level: str, logger: str, message: str) -> None:
        if len(message) > MAX_LOG_MESSAGE:
            message = message[:MAX_LOG_MESSAGE] + "… [truncated]"
        with self._lock:
            if len(self.records) >= MAX_LOG_RECORDS:
                self.dropped += 1
                return
            self.records.append(
                LogRecord(
                    at=datetime.fromtimestamp(created, UTC),
                    level=level,
                    logger=logger,
                    message=message,
                    attempt=self.attempt,
                )
            )

    def write(self, stream: str, text: str) -> None:
        """Text the task printed on ``stream``: each complete line becomes a record
        (INFO for stdout, WARNING for stderr)."""
        with self._lock:
            partial = self._partial
            if partial is None:
                partial = self._partial = {}
            joined = partial.get(stream, "") + text
            if "\n" not in text:  # the line goes on (print writes its end apart)
                partial[stream] = _unfinished(joined)
                return
            *lines, rest = joined.split("\n")
            partial[stream] = _unfinished(rest)
        now = time.time()
        level = "INFO" if stream == "stdout" else "WARNING"
        for line in lines:
            self._append(now, level, stream, line.rstrip("\r"))

    def _flush_partial(self) -> None:
        with self._lock:
            partial, self._partial = self._partial or {}, None
        for stream, rest in partial.items():
            rest = rest.rstrip("\r")
            if rest:
                self._append(time.time(), "INFO" if stream == "stdout" else "WARNING", stream, rest)

    def since(self, local: int, remote: int) -> tuple[list[LogRecord], list[LogRecord]]:
        """The lines captured here after the first ``local`` and received from the
        attempt's process after the first ``remote`` (for the live lines' writer)."""
        with self._lock:
            return self.records[local:], self.remote[remote:]

    def add_remote(self, records: Sequence[LogRecord]) -> None:
        with self._lock:
            self.remote.extend(records)

    def result(self) -> tuple[LogRecord, ...]:
        if self._partial:
            self._flush_partial()
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


def _unformatted(msg: object) -> str:
    """A record's message that could not be formatted with its arguments, as text; a
    logging call never fails its task (with ``logging`` alone it does not either)."""
    try:
        return str(msg)
    except Exception:
        return f"<log message of type {type(msg).__name__}: str() failed>"


def _unfinished(line: str) -> str:
    """A printed line not ended yet, as it is kept: what follows its last carriage return
    (a progress bar redraws itself so; a trailing one may start a CRLF), and at most one
    character over ``MAX_LOG_MESSAGE`` (the line is cut to that anyway). Bounded, so a
    task printing without end of line neither grows its node's memory nor makes each
    print copy all it printed before."""
    redrawn = line.rfind("\r", 0, len(line) - 1)
    if redrawn >= 0:
        line = line[redrawn + 1 :]
    if len(line) > MAX_LOG_MESSAGE + 1:
        line = line[: MAX_LOG_MESSAGE + 1]
    return line


current_capture: ContextVar[LogCapture | None] = ContextVar("tickwork_log_capture", default=None)


class CaptureHandler(logging.Handler):
    """Hands each record to the capture of the run whose code emitted it."""

    def emit(self, record: logging.LogRecord) -> None:
        capture = current_capture.get()
        if capture is not None:
            capture.add(record)


class StreamRouter:
    """Stands in for ``sys.stdout`` or ``sys.stderr``: what a run's code writes goes to
    that run's capture, anything else to the stream it replaced."""

    def __init__(self, name: str, stream: TextIO) -> None:
        self.name = name
        self.stream = stream

    def write(self, text: str) -> int:
        capture = current_capture.get()
        if capture is None:
            return self.stream.write(text)
        capture.write(self.name, text)
        return len(text)

    def flush(self) -> None:
        if current_capture.get() is None:
            self.stream.flush()

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def close(self) -> None:
        """Closes the stream only outside a run: the node logs to it after the task
        (a closed stderr left its log silent, and its exit failing)."""
        if current_capture.get() is None:
            self.stream.close()

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, buffer, ...
        return getattr(self.stream, name)


def route_print_output() -> None:
    """Make ``sys.stdout``/``sys.stderr`` routers, unless they are already. Called at
    every attempt's start: something (a test harness, say) may have replaced them."""
    if type(sys.stdout) is not StreamRouter and sys.stdout is not None:
        sys.stdout = StreamRouter("stdout", sys.stdout)
    if type(sys.stderr) is not StreamRouter and sys.stderr is not None:
        sys.stderr = StreamRouter("stderr", sys.stderr)


_installed = False
_install_lock = threading.Lock()


def install_log_capture() -> None:
    """Attach the capturing handler to the root logger once per process (first, so the
    records reach the process's other handlers with their run id stamped)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        root = logging.getLogger()
        root.handlers = [CaptureHandler(level=logging.DEBUG), *root.handlers]
        # Task loggers pass INFO and above even when the root logger is at WARNING.
        logging.getLogger("tickwork.task").setLevel(logging.INFO)
        _installed = True


def warn(logger: logging.Logger, message: str) -> None:
    """``logger.warning(message)``, or, when the root logger has no handler but the
    capture's (a task's own process; a task removed the node's), the line on stderr."""
    if any(type(h) is not CaptureHandler for h in logging.getLogger().handlers):
        logger.warning(message)
    elif sys.__stderr__ is not None:
        print(f"WARNING {logger.name}: {message}", file=sys.__stderr__, flush=True)


def keep_log_capture() -> list[str]:
    """Undo what a task's reconfiguration of logging did to the node's: the capturing
    handler removed from the root logger (``dictConfig``, ``basicConfig(force=True)``,
    ``root.handlers.clear()``: no run's records were stored any more), tickwork's loggers
    disabled (``dictConfig`` disables the loggers it does not name: the node's warnings
    went unsaid). What was put back, for a warning; called by the loop watch."""
    done: list[str] = []
    with _install_lock:
        if not _installed:
            return done
        root = logging.getLogger()
        if not any(type(h) is CaptureHandler for h in root.handlers):
            root.handlers = [CaptureHandler(level=logging.DEBUG), *root.handlers]
            done.append("the capture of runs' log records")
    canaries = (logging.getLogger("tickwork"), logging.getLogger("tickwork.engine"))
    if any(logger.disabled for logger in canaries):
        for name, logger in list(logging.Logger.manager.loggerDict.items()):
            if name.split(".")[0] == "tickwork" and isinstance(logger, logging.Logger):
                logger.disabled = False
        done.append("tickwork's loggers, disabled")
    return done


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
    def fence(self) -> int:
        """A fencing token: grows with every attempt of this run, and is committed to
        the database, with this node's lease on the run, before the attempt starts. A
        system the task writes to can keep the highest fence it has seen for the run
        (``run_id``) and refuse a write that brings a lower one: it comes from an
        attempt whose node was presumed dead while it still ran."""
        return self.attempt

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
