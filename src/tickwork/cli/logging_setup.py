"""Where a node's log goes: stderr, as text for people or JSON lines for log collectors.

One function, ``configure_logging``, called once by the commands that run a node. The
engine logs each failed, timed-out, lost or retried attempt at WARNING with the run's
ids as record attributes (``run_id``, ``schedule_id``, ``task``, ``attempt``,
``status``, ``error``); the JSON format puts them in fields of their own.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from types import TracebackType
from typing import Final, TextIO

LOG_LEVELS: Final = ("debug", "info", "warning", "error")
LOG_FORMATS: Final = ("text", "json")

#: Record attributes a JSON line carries as fields of their own when a record has them.
RUN_FIELDS: Final = ("run_id", "schedule_id", "task", "attempt", "status", "error", "retry_at")

_TEXT_FORMAT: Final = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message``, and ``(run ID)`` after a record a task emitted."""

    def __init__(self) -> None:
        super().__init__(_TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        run_id = record.__dict__.get("run_id")
        if run_id is not None and record.name != "tickwork.runs":
            first, newline, rest = text.partition("\n")
            text = f"{first} (run {run_id}){newline}{rest}"
        return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``at`` (UTC, ISO-8601), ``level``, ``logger``,
    ``message``, the run fields the record has, and ``traceback`` for an exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in RUN_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value if isinstance(value, str | int | float) else str(value)
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        elif record.stack_info:
            line["traceback"] = self.formatStack(record.stack_info)
        # No newline inside the object: json.dumps escapes those in strings.
        return json.dumps(line, ensure_ascii=False)


def configure_logging(level: str, fmt: str, stream: TextIO | None = None) -> logging.Handler:
    """Send every record at ``level`` or above to ``stream`` (stderr) as ``fmt``.

    ``level``: debug, info, warning or error; ``fmt``: text or json. Replaces a handler
    an earlier call installed (not others'), so calling it again changes the format.
    Raises ``ValueError`` naming a bad value. Python warnings and uncaught exceptions
    (in any thread) are logged too, so with JSON every line on the stream is a JSON
    object.
    """
    if level.lower() not in LOG_LEVELS:
        raise ValueError(f"log level {level!r} is not one of {', '.join(LOG_LEVELS)}")
    if fmt.lower() not in LOG_FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.set_name("tickwork-edge")
    if fmt.lower() == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "tickwork-edge"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    return handler


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """An exception nothing caught is logged (one JSON line in that format), not printed."""
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    logging.getLogger("tickwork").critical("uncaught exception", exc_info=(kind, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or issubclass(args.exc_type, SystemExit):
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("tickwork").critical(
        "uncaught exception in thread %s",
        name,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )
