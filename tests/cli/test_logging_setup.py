"""configure_logging: a node's log on stderr as text or as one JSON object per line."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
import warnings
from collections.abc import Iterator

import pytest

from tickwork.cli.logging_setup import configure_logging


@pytest.fixture(autouse=True)
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    hooks = sys.excepthook, threading.excepthook
    yield
    root.handlers = handlers
    root.setLevel(level)
    logging.captureWarnings(False)
    sys.excepthook, threading.excepthook = hooks


def test_json_lines_carry_the_run_fields_and_the_traceback() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    log = logging.getLogger("tickwork.runs")
    log.warning(
        "run r1 attempt 2 failed: ValueError: boom",
        extra={"run_id": "r1", "schedule_id": "s1", "task": "t", "attempt": 2, "error": "boom"},
    )
    logging.getLogger("some.library").debug("below the level")
    try:
        raise RuntimeError("multi\nline")
    except RuntimeError:
        logging.getLogger("x").exception("it broke\nbadly")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("a Python warning", UserWarning, stacklevel=1)
    out = stream.getvalue().splitlines()
    assert len(out) == 3
    first, second, third = (json.loads(line) for line in out)
    assert first["level"] == "WARNING" and first["logger"] == "tickwork.runs"
    assert (first["run_id"], first["schedule_id"], first["task"], first["attempt"]) == (
        "r1",
        "s1",
        "t",
        2,
    )
    assert first["error"] == "boom" and first["at"].endswith("+00:00")
    assert second["message"] == "it broke\nbadly"
    assert "RuntimeError: multi" in second["traceback"] and "run_id" not in second
    assert "a Python warning" in third["message"]


def test_text_format_and_a_second_call_replaces_the_first() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("warning", "json", first)
    configure_logging("debug", "text", second)
    logging.getLogger("tickwork.engine").debug("hello %s", "there")
    assert first.getvalue() == ""
    assert second.getvalue().rstrip().endswith("DEBUG   tickwork.engine: hello there")


@pytest.mark.parametrize(
    ("level", "fmt", "message"),
    [
        ("loud", "text", "log level 'loud' is not one of debug, info, warning, error"),
        ("info", "xml", "log format 'xml' is not one of text, json"),
    ],
)
def test_a_bad_value_is_named(level: str, fmt: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        configure_logging(level, fmt)


def test_an_uncaught_exception_in_a_thread_is_one_json_line() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream)

    def fail() -> None:
        raise OSError("the socket went away\nfor good")

    thread = threading.Thread(target=fail, name="watcher")
    thread.start()
    thread.join()
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["level"] == "CRITICAL"
    assert record["message"] == "uncaught exception in thread watcher"
    assert "OSError: the socket went away" in record["traceback"]
