"""What a task logs and prints is stored with its run: from any logger, at the level the
node logs at, on every executor, never mixed with another run's."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.engine import output_tasks
from tickwork.engine.context import RunContext, StreamRouter
from tickwork.engine.executors import Executors
from tickwork.models import LogRecord


@pytest.fixture
def root_at_info() -> Iterator[None]:
    """The node logs at INFO (as ``tickwork worker`` does by default)."""
    root = logging.getLogger()
    before = root.level
    root.setLevel(logging.INFO)
    yield
    root.setLevel(before)


def ctx_for(task: str, run_id: str, **data: object) -> RunContext:
    return RunContext(
        run_id=run_id,
        schedule_id=None,
        task=task,
        scheduled_for=datetime.now(UTC),
        attempt=1,
        trigger="manual",
        node="n",
        data=dict(data),
    )


def lines(logs: tuple[LogRecord, ...]) -> list[tuple[str, str, str]]:
    return [(r.level, r.logger, r.message) for r in logs]


@pytest.mark.parametrize("name", ["talk_async", "talk_thread", "talk_process"])
@pytest.mark.usefixtures("root_at_info")
async def test_records_from_any_logger_and_printed_lines_are_stored(name: str) -> None:
    ex = Executors()
    try:
        result = await ex.run(
            output_tasks.registry.require(name), ctx_for(name, f"r-{name}", tag="T"), 30
        )
    finally:
        ex.shutdown()
    assert result.status == "succeeded", result.error
    got = lines(result.logs)
    assert ("INFO", "tests.engine.output_tasks", "info from a module logger T") in got
    assert ("INFO", "stdout", "printed T") in got
    assert ("INFO", "stdout", "half a line and the rest T") in got
    assert ("WARNING", "stderr", "to stderr T") in got
    # Below the node's level: not stored (nor emitted).
    assert not any("debug from" in message for _, _, message in got)
    if name == "talk_process":
        # A last line without a newline is kept when the attempt ends.
        assert got[-1] == ("INFO", "stdout", "no newline at the end T")


@pytest.mark.parametrize("name", ["talk_async", "talk_thread", "talk_process"])
@pytest.mark.parametrize("level", [logging.DEBUG, logging.WARNING])
async def test_records_are_stored_at_the_level_the_node_logs_at(name: str, level: int) -> None:
    """The node's level (``--log-level``, its root logger's) decides, on every executor:
    at DEBUG a module logger's debug record is stored, at WARNING its info is not."""
    root = logging.getLogger()
    before = root.level
    root.setLevel(level)
    ex = Executors()
    try:
        result = await ex.run(
            output_tasks.registry.require(name), ctx_for(name, f"r-{name}", tag="L"), 30
        )
    finally:
        ex.shutdown()
        root.setLevel(before)
    assert result.status == "succeeded", result.error
    got = lines(result.logs)
    debug = ("DEBUG", "tests.engine.output_tasks", "debug from a module logger L")
    info = ("INFO", "tests.engine.output_tasks", "info from a module logger L")
    if level == logging.DEBUG:
        assert debug in got and info in got
    else:
        assert debug not in got and info not in got
    # Printed output is the task's own, stored whatever the level.
    assert ("INFO", "stdout", "printed L") in got


@pytest.mark.parametrize("name", ["chatter_async", "chatter_thread"])
async def test_runs_executing_at_once_keep_their_own_records(name: str) -> None:
    ex = Executors(max_threads=8)
    task = output_tasks.registry.require(name)
    tags = [f"run{i}" for i in range(16)]
    try:
        results = await asyncio.gather(
            *(ex.run(task, ctx_for(name, f"r-{tag}", tag=tag), 30) for tag in tags)
        )
    finally:
        ex.shutdown()
    for tag, result in zip(tags, results, strict=True):
        assert result.status == "succeeded", result.error
        mine = [m for _, _, m in lines(result.logs)]
        assert mine == [x for i in range(5) for x in (f"{tag} says {i}", f"{tag} prints {i}")]


async def test_printing_outside_a_run_reaches_the_stream(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ex = Executors()
    try:
        result = await ex.run(
            output_tasks.registry.require("talk_async"), ctx_for("talk_async", "r", tag="in"), 30
        )
    finally:
        ex.shutdown()
    assert ("INFO", "stdout", "printed in") in lines(result.logs)
    assert type(sys.stdout) is StreamRouter
    print("not in a run")
    out = capsys.readouterr().out
    assert "not in a run" in out
    assert "printed in" not in out  # a run's output went to the run only


async def test_a_record_whose_message_cannot_be_made_is_stored_and_fails_nothing() -> None:
    """Before: a message whose ``str`` raised failed the task at its logging call
    (``RuntimeError: no text``); ``logging`` alone only reports such a record. (On the
    process executor: its process has no other handler, whose ``handleError`` pytest
    makes raise.)"""
    ex = Executors()
    try:
        name = "odd_logs_process"
        result = await ex.run(output_tasks.registry.require(name), ctx_for(name, "r-odd"), 30)
    finally:
        ex.shutdown()
    assert (result.status, result.error) == ("succeeded", None)
    assert [r.message for r in result.logs] == [
        "<log message of type _NoText: str() failed>",
        "%d apples",
    ]


async def test_a_line_redrawn_many_times_is_kept_as_it_ends() -> None:
    """A progress bar: each step rewrites the line after a carriage return, the line's
    end comes last. Before: each write joined and split all the line held so far: the
    time grew with the square of the steps (20,000 redraws of a 90-character bar took
    28 s), all of it was kept in memory, and the line stored was its first 8,000
    characters, cut."""
    ex = Executors()
    try:
        name = "progress_bar"
        ctx = ctx_for(name, "r-bar", steps=10_000)
        result = await ex.run(output_tasks.registry.require(name), ctx, 60)
    finally:
        ex.shutdown()
    assert result.status == "succeeded", result.error
    assert lines(result.logs) == [("WARNING", "stderr", "   10000/10000 |" + "#" * 60 + "|")]
