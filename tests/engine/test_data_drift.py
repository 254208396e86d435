"""Stored schedules whose data their task no longer accepts (its parameters' types
changed since the data was stored): a node that publishes the changed task names each
of them once in a warning; a node whose tasks did not change reads nothing."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from tickwork import RunContext, Scheduler
from tickwork.engine.data_drift import MAX_NAMED, changed_checks
from tickwork.engine.registry import TaskRegistry, make_task, task

before = TaskRegistry()
after = TaskRegistry()


@task("drift:report", registry=before)
def loose(ctx: RunContext, *, top: int | str = 0, items: list[Any] | None = None) -> None:
    """What the task took when its schedules were stored."""


@task("drift:report", registry=after)
def strict(ctx: RunContext, *, top: int = 0, items: list[int] | None = None) -> None:
    """What it takes now: ``top`` an integer, and the elements of ``items`` too."""


async def drift_checked() -> None:
    """The node's one look at its changed tasks' schedules, to its end."""
    (checking,) = [t for t in asyncio.all_tasks() if t.get_name() == "tickwork-data-drift"]
    await checking


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "tickwork.engine" and r.levelno == logging.WARNING
    ]


async def test_a_node_names_each_stored_schedule_its_changed_task_refuses(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tickwork.engine")
    async with Scheduler(db_url, registry=before, shutdown_grace=1) as s:
        await drift_checked()
        await s.add_schedule("drift:report", "manual", id="fits", data={"items": [1]})
        await s.add_schedule("drift:report", "manual", id="top", data={"top": "x"})
        await s.add_schedule("drift:report", "manual", id="items", data={"items": [1, "2"]})
    assert warnings_of(caplog) == []

    async with Scheduler(db_url, registry=after, shutdown_grace=1) as s:
        await drift_checked()
        said = warnings_of(caplog)
        assert said == [
            "schedule 'items' has data its task no longer accepts: data.items[1] must be an "
            "integer, not the string '2' (task 'drift:report' takes items: list[int] | None); "
            "its runs get it as it is until its data is changed",
            "schedule 'top' has data its task no longer accepts: data.top must be an integer, "
            "not the string 'x' (task 'drift:report' takes top: int); its runs get it as it "
            "is until its data is changed",
        ]
        assert (await s.get_schedule("top")).data == {"top": "x"}  # left as it is

    caplog.clear()
    async with Scheduler(db_url, registry=after, shutdown_grace=1):
        await drift_checked()
    assert warnings_of(caplog) == []  # the task did not change since: nothing read


async def test_past_a_few_the_others_are_counted(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tickwork.engine")
    async with Scheduler(db_url, registry=before, shutdown_grace=1) as s:
        for n in range(MAX_NAMED + 3):
            await s.add_schedule("drift:report", "manual", id=f"s{n:02}", data={"top": "x"})
    async with Scheduler(db_url, registry=after, shutdown_grace=1):
        await drift_checked()
    said = warnings_of(caplog)
    assert len(said) == MAX_NAMED + 1
    assert said[-1] == "3 more schedule(s) of task 'drift:report' have data it no longer accepts"


def test_which_tasks_changed_their_checks() -> None:
    old, new = make_task(loose, "t").spec, make_task(strict, "t").spec
    assert changed_checks({"t": old}, [new]) == [new]
    assert changed_checks({"t": new}, [new]) == []
    assert changed_checks({"t": None}, [new]) == [new]  # published with no spec: unchecked
    assert changed_checks({}, [new]) == []  # never published: no schedule was checked by it
