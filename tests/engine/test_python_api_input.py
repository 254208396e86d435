"""Bad input through the Python API fails at the call, with a ``ValidationError`` (or
``ScheduleError``) naming the argument and the problem, and stores nothing: never an
``OverflowError`` from the database or a value the engine chokes on at the schedule's
first fire."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import pytest

from tickwork import ScheduleError, Scheduler, ValidationError

#: (schedule field, bad value, field named, words of the message)
BAD_FIELDS: list[tuple[str, Any, str, str]] = [
    ("timeout", "30", "timeout", "number of seconds or a timedelta, not '30'"),
    ("timeout", 0, "timeout", "must be > 0"),
    ("timeout", math.inf, "timeout", "must be > 0, not inf"),
    ("timeout", 1e308, "timeout", "at most 1000000000 seconds"),
    ("jitter", 1e300, "jitter", "at most 1000000000 seconds"),
    ("jitter", True, "jitter", "number of seconds or a timedelta, not True"),
    ("misfire_grace", 1e300, "misfire_grace", "at most 1000000000 seconds"),
    ("misfire_grace", -1, "misfire_grace", "must be >= 0"),
    ("catchup_spread", math.nan, "catchup_spread", "must be >= 0, not nan"),
    ("max_instances", 0, "max_instances", "integer from 1 to 10000, not 0"),
    ("max_instances", True, "max_instances", "integer from 1 to 10000, not True"),
    ("max_instances", 2**70, "max_instances", "integer from 1 to 10000"),
    ("max_executions", 2**31, "max_executions", "integer from 1 to 2147483647"),
    ("priority", 2**63, "priority", "integer from -1000000 to 1000000"),
    ("priority", 1.5, "priority", "integer from -1000000 to 1000000, not 1.5"),
    ("retry", {"max_attempts": 2**70}, "retry.max_attempts", "integer from 1 to 1000"),
    ("retry", {"delay": 1e300}, "retry.delay", "at most 1000000000 seconds"),
    ("retry", {"backoff": 1e300}, "retry.backoff", "a number from 1 to 100"),
    ("retry", {"backoff": 0.5}, "retry.backoff", "a number from 1 to 100"),
    ("overlap", "SKIP", "overlap", "'SKIP' is not one of allow, skip"),
    ("catchup", "sometimes", "catchup", "'sometimes' is not one of none, all"),
    ("data", {"when": datetime(2026, 1, 1)}, "data", "datetime is not JSON serializable"),
    ("data", {"ids": {1, 2}}, "data", "set is not JSON serializable"),
    ("data", {"x": math.nan}, "data", "not JSON-serializable"),
    ("data", {"x": -math.inf}, "data", "not JSON-serializable"),
    ("data", {"x": b"raw"}, "data", "bytes is not JSON serializable"),
    ("data", {"x": 2**63}, "data", "the integer 9223372036854775808, outside the signed 64-bit"),
    ("data", {"x": [-(2**63) - 1]}, "data", "outside the signed 64-bit range"),
    ("data", {1: "one"}, "data", "has a key that is not a string: 1"),
    ("data", {"x": {None: 1}}, "data", "has a key that is not a string: None"),
    ("metadata", {"n": 10**30}, "metadata", "outside the signed 64-bit range"),
    ("start_at", 1_700_000_000, "start_at", "a datetime or ISO-8601 string"),
]


@pytest.mark.parametrize(
    ("name", "value", "field", "words"),
    BAD_FIELDS,
    ids=[f"{name}={value!r}"[:60] for name, value, _, _ in BAD_FIELDS],
)
async def test_a_bad_field_is_refused_at_add_and_update_and_nothing_is_stored(
    scheduler: Scheduler, name: str, value: Any, field: str, words: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        await scheduler.add_schedule("sync_echo", "every 1h", id="bad", **{name: value})
    assert refused.value.field == field
    assert field.split(".")[-1] in str(refused.value) and words in str(refused.value)
    assert await scheduler.list_schedules() == []

    good = await scheduler.add_schedule("sync_echo", "manual", id="good")
    with pytest.raises(ValidationError) as refused:
        await scheduler.update_schedule("good", **{name: value})
    assert refused.value.field == field and words in str(refused.value)
    assert await scheduler.get_schedule("good") == good


async def test_the_largest_accepted_values_are_stored_and_fire(scheduler: Scheduler) -> None:
    """The bounds are what both databases store and the engine computes with."""
    s = await scheduler.add_schedule(
        "sync_echo",
        "manual",
        id="edge",
        timeout=1e9,
        jitter=0,
        misfire_grace=1e9,
        catchup_spread=1e9,
        max_instances=10_000,
        max_executions=2**31 - 1,
        priority=-(10**6),
        retry={"max_attempts": 1000, "delay": 1e9, "backoff": 100, "max_delay": 1e9},
        data={"big": 2**63 - 1, "small": -(2**63)},
    )
    assert await scheduler.get_schedule("edge") == s
    run = await scheduler.run_now("edge", wait=True, timeout=10)
    assert run.status == "succeeded"
    assert run.result["data"] == {"big": 2**63 - 1, "small": -(2**63)}


async def test_durations_may_be_timedeltas(scheduler: Scheduler) -> None:
    s = await scheduler.add_schedule(
        "sync_echo",
        "every 1h",
        timeout=timedelta(minutes=10),
        jitter=timedelta(seconds=1.5),
        misfire_grace=timedelta(0),
        retry={"delay": timedelta(seconds=2), "max_delay": timedelta(hours=2)},
    )
    assert (s.timeout, s.jitter, s.misfire_grace) == (600.0, 1.5, 0.0)
    assert (s.retry.delay, s.retry.max_delay) == (2.0, 7200.0)
    run = await scheduler.run_now(s.id, wait=True, timeout=10)
    assert run.status == "succeeded"


async def test_an_expression_that_is_not_text_is_named(scheduler: Scheduler) -> None:
    with pytest.raises(ScheduleError, match=r"not datetime\.timedelta\(seconds=300\)"):
        await scheduler.add_schedule("noop", timedelta(minutes=5))  # type: ignore[arg-type]
