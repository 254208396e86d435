"""Bad input through the Python API fails at the call, with a ``ValidationError`` (or
``ScheduleError``) naming the argument and the problem, and stores nothing: never a
``TypeError`` from a comparison, an ``OverflowError`` from the database or a value the
engine chokes on at the schedule's first fire."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.engine.conftest import T0
from tickwork import (
    ManualClock,
    ScheduleError,
    Scheduler,
    TaskRegistry,
    ValidationError,
    task,
)

#: (schedule field, bad value, field named, words of the message)
BAD_FIELDS: list[tuple[str, Any, str, str]] = [
    ("timeout", "30", "timeout", "number of seconds or a timedelta, not '30'"),
    ("timeout", 0, "timeout", "must be > 0"),
    ("timeout", math.inf, "timeout", "must be a finite number of seconds, not inf"),
    ("timeout", 1e308, "timeout", "at most 1000000000 seconds"),
    ("jitter", 1e300, "jitter", "at most 1000000000 seconds"),
    ("jitter", True, "jitter", "number of seconds or a timedelta, not True"),
    ("misfire_grace", 1e300, "misfire_grace", "at most 1000000000 seconds"),
    ("misfire_grace", -1, "misfire_grace", "must be >= 0"),
    ("catchup_spread", math.nan, "catchup_spread", "must be a finite number of seconds, not nan"),
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


async def test_every_bad_field_is_named_at_once(scheduler: Scheduler) -> None:
    """The error names the first field at fault as ever; ``problems`` names each, so
    all can be fixed at once (a form, a script reporting to its user)."""
    with pytest.raises(ValidationError) as refused:
        await scheduler.add_schedule(
            "add",
            "0 0 32 * *",
            id="two words",
            timezone="Mars/Base",
            data={"a": "1", "c": 2},
            retry={"delay": -1, "backoff": 0},
            start_at="2026-05-02T00:00:00Z",
            end_at="2026-05-01T00:00:00Z",
        )
    error = refused.value
    assert error.field == "id" and str(error).startswith("id 'two words' is invalid")
    assert error.problems[0] == ("id", str(error))
    assert {p.field: p.message for p in error.problems} == {
        "id": "id 'two words' is invalid: use 1-200 characters of letters, digits and "
        ". _ : @ - (starting with a letter or digit)",
        "timezone": "unknown time zone 'Mars/Base'",
        "schedule": "day-of-month 32 out of range 1-31",
        "retry.delay": "retry.delay must be >= 0, not -1",
        "retry.backoff": "retry.backoff must be a number from 1 to 100, not 0",
        "end_at": "end_at is before start_at",
        "data": "task 'add' takes no argument 'c' (it takes: a, b)",
        "data.a": "data.a must be an integer, not the string '1' (task 'add' takes a: int)",
    }
    assert await scheduler.list_schedules() == []

    good = await scheduler.add_schedule("add", "manual", id="good", data={"a": 1})
    with pytest.raises(ValidationError) as changed:
        await scheduler.update_schedule("good", timeout=0, tags=[""], data={"b": "x"})
    assert changed.value.field == "timeout"
    assert [p.field for p in changed.value.problems] == ["timeout", "tags", "data", "data.b"]
    assert await scheduler.get_schedule("good") == good
    # One field at fault: a list of one, the error itself.
    with pytest.raises(ValidationError) as one:
        await scheduler.update_schedule("good", timeout=0)
    assert one.value.problems == (("timeout", str(one.value)),)


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
    run = await scheduler.run_now(s.id, wait=True, timeout=timedelta(seconds=10))
    assert run.status == "succeeded"


async def test_an_expression_that_is_not_text_is_named(scheduler: Scheduler) -> None:
    with pytest.raises(ScheduleError, match=r"not datetime\.timedelta\(seconds=300\)"):
        await scheduler.add_schedule("noop", timedelta(minutes=5))  # type: ignore[arg-type]


#: (call on a scheduler with schedule "m" and run ``run_id``, field, words)
BAD_CALLS: list[tuple[str, str, str]] = [
    ("s.next_fire_times('m', '5')", "count", "integer from 1 to 1000, not '5'"),
    ("s.next_fire_times('m', True)", "count", "not True"),
    ("s.next_fire_times('m', 2.5)", "count", "not 2.5"),
    ("s.list_runs(limit='5')", "limit", "integer from 1 to 10000, not '5'"),
    ("s.list_runs(limit=True)", "limit", "not True"),
    ("s.list_runs(since='yesterday')", "since", "'yesterday' is not an ISO-8601 date-time"),
    ("s.list_runs(status=5)", "status", "a run status or a list of them, not 5"),
    ("s.list_runs(status='done')", "status", "'done' is not one of pending, running"),
    ("s.list_runs(status=['succeeded', 5])", "status", "5 is not one of pending"),
    ("s.list_runs(status=[['failed']])", "status", "['failed'] is not one of pending"),
    ("s.list_runs(task=['x'])", "task", "must be a string, not ['x']"),
    ("s.list_runs(schedule_id=5)", "schedule_id", "must be a string, not 5"),
    ("s.list_schedules(task=['x'])", "task", "must be a string, not ['x']"),
    ("s.list_schedules(tag=1)", "tag", "must be a string, not 1"),
    ("s.list_schedules(status='activ')", "status", "'activ' is not one of active"),
    ("s.list_schedules(limit=0)", "limit", "not 0"),
    ("s.list_schedules(limit='3')", "limit", "not '3'"),
    ("s.read_queue('q', limit=0)", "limit", "not 0"),
    ("s.read_queue(None)", "name", "the name of a queue"),
    ("s.read_queue('q', consume='no')", "consume", "True or False"),
    ("s.run_now('m', wait=True, timeout='5')", "timeout", "not '5'"),
    ("s.run_now('m', wait='yes')", "wait", "True or False"),
    ("s.wait_for_run(run_id, timeout=-1)", "timeout", "must be >= 0"),
    ("s.update_schedule('m', expected_version='1', name='x')", "expected_version", "not '1'"),
    ("s.delete_schedule('m', expected_version=1.0)", "expected_version", "not 1.0"),
    ("s.add_schedule('noop', 'manual', id='m', replace_existing='no')", "replace_existing", ""),
    ("s.audit_log(limit='3')", "limit", "not '3'"),
    ("s.audit_log(since='soon')", "since", "not an ISO-8601 date-time"),
    ("s.stats(since=5)", "since", "a datetime or ISO-8601 string"),
    ("s.cleanup('3')", "older_than_days", "not '3'"),
    ("s.cleanup(-1)", "older_than_days", "days >= 0, not -1"),
    ("s.get_schedule(None)", "schedule_id", "must be a string, not None"),
    ("s.run_now(5)", "schedule_id", "must be a string, not 5"),
    ("s.get_run(None)", "run_id", "must be a string, not None"),
    ("s.cancel_run(None)", "run_id", "must be a string, not None"),
    ("s.delete_schedule(None)", "schedule_id", "must be a string, not None"),
]


@pytest.mark.parametrize(("call", "field", "words"), BAD_CALLS, ids=[c for c, _, _ in BAD_CALLS])
async def test_a_bad_argument_is_refused_naming_it(
    scheduler: Scheduler, call: str, field: str, words: str
) -> None:
    await scheduler.add_schedule("noop", "manual", id="m")
    run = await scheduler.run_now("m", wait=True, timeout=10)
    before = await scheduler.get_schedule("m")
    with pytest.raises(ValidationError) as refused:
        await eval(call, {"s": scheduler, "run_id": run.id})
    assert refused.value.field == field
    assert words in str(refused.value)
    assert await scheduler.get_schedule("m") == before
    assert [r.id for r in await scheduler.list_runs()] == [run.id]  # no run added


async def test_a_forgotten_await_is_named(scheduler: Scheduler) -> None:
    await scheduler.add_schedule("noop", "manual", id="m")
    schedule = scheduler.get_schedule("m")  # the caller forgot to await it
    with pytest.raises(ValidationError, match="an awaitable; did you forget 'await'"):
        await scheduler.run_now(schedule)  # type: ignore[arg-type]
    assert await scheduler.list_runs() == []


async def test_instants_to_filter_on_may_be_iso_text_or_naive_utc(scheduler: Scheduler) -> None:
    await scheduler.add_schedule("noop", "manual", id="m")
    run = await scheduler.run_now("m", wait=True, timeout=10)  # scheduled for T0
    naive = T0.replace(tzinfo=None)
    assert [r.id for r in await scheduler.list_runs(since=naive)] == [run.id]
    assert await scheduler.list_runs(since=naive + timedelta(seconds=1)) == []
    assert [r.id for r in await scheduler.list_runs(until="2026-03-02T09:00:01Z")] == [run.id]
    assert await scheduler.list_runs(until="2026-03-02T09:00:00") == []  # until is excluded
    assert (await scheduler.stats(since="2026-03-02"))["runs"]["succeeded"] == 1


async def test_cleanup_with_an_age_beyond_the_calendar_deletes_nothing(
    scheduler: Scheduler,
) -> None:
    await scheduler.add_schedule("noop", "manual", id="m")
    await scheduler.run_now("m", wait=True, timeout=10)
    assert await scheduler.cleanup(10**9) == 0
    assert await scheduler.cleanup(0) == 0  # the run is not older than now
    assert len(await scheduler.list_runs()) == 1


# -- @task ------------------------------------------------------------------------------


def _fn() -> None:
    return None


BAD_TASKS: list[tuple[dict[str, Any], str, str]] = [
    ({"name": ""}, "task", "a task name must be a non-empty string, not ''"),
    ({"name": " padded "}, "task", "starts or ends with a space"),
    ({"name": "a\x00b"}, "task", "contains a control character"),
    ({"name": "line\nbreak"}, "task", "contains a control character"),
    ({"name": "x" * 201}, "task", "longer than 200 characters"),
    ({"name": "t", "timeout": "30"}, "timeout", "not '30'"),
    ({"name": "t", "timeout": math.nan}, "timeout", "must be a finite number of seconds, not nan"),
    ({"name": "t", "timeout": 1e300}, "timeout", "at most 1000000000 seconds"),
    ({"name": "t", "retries": True}, "retries", "integer from 0 to 999, not True"),
    ({"name": "t", "retries": 1.5}, "retries", "not 1.5"),
    ({"name": "t", "concurrency": 0}, "concurrency", "integer from 1 to 1000000, not 0"),
    ({"name": "t", "concurrency": 2.0}, "concurrency", "not 2.0"),
    ({"name": "t", "registry": {}}, "registry", "must be a TaskRegistry"),
]


@pytest.mark.parametrize(
    ("options", "field", "words"), BAD_TASKS, ids=[repr(o)[:50] for o, _, _ in BAD_TASKS]
)
def test_a_bad_task_option_is_refused_at_the_decorator(
    options: dict[str, Any], field: str, words: str
) -> None:
    registry = TaskRegistry()
    options = {"registry": registry, **options}
    name = options.pop("name")
    with pytest.raises(ValidationError) as refused:
        task(name, **options)(_fn)
    assert refused.value.field == field and words in str(refused.value)
    assert len(registry) == 0


def test_a_task_whose_parameter_no_run_can_pass_is_refused() -> None:
    registry = TaskRegistry()

    def positional(ctx: object, region: str, /) -> None:
        return None

    with pytest.raises(ValidationError, match="parameter 'region' is positional-only"):
        task("p", registry=registry)(positional)

    def with_default(ctx: object, region: str = "eu", /) -> None:
        return None

    task("d", timeout=timedelta(minutes=1), registry=registry)(with_default)
    assert registry.require("d").timeout == 60.0


async def test_a_unicode_task_name_works_end_to_end(sqlite_url: str) -> None:
    registry = TaskRegistry()

    @task("rapports:été", registry=registry)
    async def summer() -> str:
        return "ok"

    async with Scheduler(sqlite_url, registry=registry) as scheduler:
        await scheduler.add_schedule("rapports:été", "manual", id="summer")
        run = await scheduler.run_now("summer", wait=True, timeout=10)
        assert (run.task, run.result) == ("rapports:été", "ok")


# -- Scheduler(...) and ManualClock -------------------------------------------------------------

BAD_OPTIONS: list[tuple[dict[str, Any], str, str]] = [
    ({"max_concurrent": "5"}, "max_concurrent", "integer from 1 to 100000, not '5'"),
    ({"lease_ttl": "30"}, "lease_ttl", "number of seconds or a timedelta, not '30'"),
    ({"lease_ttl": 1e300}, "lease_ttl", "at most 1000000000 seconds"),
    ({"cleanup_interval": "1"}, "cleanup_interval", "not '1'"),
    ({"shutdown_grace": -1}, "shutdown_grace", "must be >= 0"),
    ({"retention_days": "3"}, "retention_days", "not '3'"),
    ({"retention_days": 1e300}, "retention_days", "above 0 and at most 36525"),
    ({"store_threads": 0}, "store_threads", "not 0"),
    ({"registry": {}}, "registry", "must be a TaskRegistry"),
    ({"clock": "now"}, "clock", "must be a Clock"),
    ({"engine": "no"}, "engine", "True or False"),
]


@pytest.mark.parametrize(
    ("options", "field", "words"), BAD_OPTIONS, ids=[repr(o)[:50] for o, _, _ in BAD_OPTIONS]
)
def test_a_bad_scheduler_option_is_refused_at_construction(
    sqlite_url: str, options: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        Scheduler(sqlite_url, **options)
    assert refused.value.field == field and words in str(refused.value)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("tickwork.db", "expected sqlite:///path or postgresql://user@host/db"),
        (None, "expected sqlite:///path"),
        ("mysql://u@h/db", "unknown scheme 'mysql'"),
        ("postgresql://bob:hunter2@h:notaport/db", "invalid database URL"),
    ],
)
def test_a_bad_url_is_refused_at_construction(url: Any, words: str) -> None:
    """Before: only when the scheduler started, far from the line that gave it."""
    with pytest.raises(ValidationError) as refused:
        Scheduler(url)
    assert refused.value.field == "url" and words in str(refused.value)
    assert "hunter2" not in str(refused.value)


async def test_scheduler_durations_may_be_timedeltas(sqlite_url: str) -> None:
    scheduler = Scheduler(
        sqlite_url,
        lease_ttl=timedelta(seconds=20),
        shutdown_grace=timedelta(0),
        cleanup_interval=timedelta(hours=2),
        default_timeout=timedelta(minutes=1),
    )
    async with scheduler:
        assert scheduler.engine is not None
        config = scheduler.engine.config
        assert (config.lease_ttl, config.shutdown_grace) == (20.0, 0.0)
        assert (config.cleanup_interval, config.default_timeout) == (7200.0, 60.0)


def test_manual_clock_takes_aware_datetimes_and_timedelta_steps() -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    assert clock.advance(timedelta(minutes=1)) == datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    assert clock.advance(30, minutes=1) == datetime(2026, 1, 1, 0, 2, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="aware datetime, not '2026-01-01'"):
        ManualClock("2026-01-01")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="aware datetime"):
        clock.set(datetime(2026, 1, 2))


def test_a_subscriber_that_cannot_be_called_is_refused(sqlite_url: str) -> None:
    """Not at each event later, where the error would only be logged."""
    with pytest.raises(ValidationError, match="callback must be callable") as refused:
        Scheduler(sqlite_url).subscribe(None)  # type: ignore[arg-type]
    assert refused.value.field == "callback"


async def test_an_unknown_task_name_is_quoted_cut(scheduler: Scheduler) -> None:
    # Before: the message quoted the whole name, 10,000 characters of it.
    with pytest.raises(ValidationError) as refused:
        await scheduler.add_schedule("t" * 10_000, "every 1h")
    assert refused.value.field == "task"
    message = str(refused.value)
    assert message.startswith("unknown task 'ttt") and "… (10000 characters)" in message
    assert "t" * 100 not in message
