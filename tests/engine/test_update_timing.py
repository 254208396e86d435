"""Timing an added or changed schedule: a relative one-time expression (``now``, ``in 1h``)
counts from the change, as it would from an add; a one-time instant long past, or an
``end_at`` before the first fire of a new schedule, is refused instead of leaving a
schedule that never fires."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.engine import tasks
from tests.engine.conftest import T0, eventually
from tickwork import ManualClock, Scheduler, ValidationError


async def test_in_counts_from_the_change(scheduler: Scheduler, clock: ManualClock) -> None:
    await scheduler.add_schedule("noop", "in 10m", id="later")
    clock.advance(minutes=3)
    s = await scheduler.update_schedule("later", schedule="in 1h")
    assert s.next_fire_at == T0 + timedelta(minutes=63)
    assert s.status == "active"


async def test_a_fired_one_time_schedule_changed_to_now_fires_again(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    await scheduler.add_schedule("noop", "in 1m", id="again")
    clock.advance(minutes=2)

    async def fired() -> bool:
        return (await scheduler.get_schedule("again")).status == "finished"

    await eventually(fired, what="the first fire")
    clock.advance(minutes=5)
    s = await scheduler.update_schedule("again", schedule="now")
    assert (s.status, s.next_fire_at) == ("active", clock.now())

    async def ran_twice() -> bool:
        runs = await scheduler.list_runs(schedule_id="again")
        return sorted(r.status for r in runs) == ["succeeded", "succeeded"]

    await eventually(ran_twice, what="the second run")


async def test_an_unchanged_relative_expression_keeps_its_time(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    # A form that sends every field again must not move the fire.
    await scheduler.add_schedule("noop", "in 10m", id="kept")
    clock.advance(minutes=3)
    s = await scheduler.update_schedule("kept", schedule="in 10m", name="renamed")
    assert s.next_fire_at == T0 + timedelta(minutes=10)


async def test_a_one_time_instant_long_past_is_refused(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    await scheduler.add_schedule("noop", "in 10m", id="past")
    before = await scheduler.get_schedule("past")
    with pytest.raises(ValidationError, match="in the past") as info:
        await scheduler.update_schedule("past", schedule="2026-03-01T09:00")
    assert info.value.field == "schedule"
    after = await scheduler.get_schedule("past")
    assert (after.schedule, after.next_fire_at, after.version) == (
        before.schedule,
        before.next_fire_at,
        before.version,
    )


@pytest.mark.parametrize(
    ("expression", "end"),
    [
        ("*/5 * * * *", T0 - timedelta(days=1)),  # ended before it was added
        ("0 12 * * *", T0 + timedelta(hours=1)),  # ends before its first fire
        ("in 1h", T0 + timedelta(minutes=10)),  # not "in the past": past its end
    ],
)
async def test_an_add_that_could_never_fire_names_end_at(
    scheduler: Scheduler, expression: str, end: datetime
) -> None:
    with pytest.raises(ValidationError, match="would never fire: end_at") as info:
        await scheduler.add_schedule("noop", expression, id="never", end_at=end)
    assert info.value.field == "end_at"
    assert await scheduler.list_schedules() == []


async def test_end_at_may_still_be_moved_into_the_past_to_end_a_schedule(
    scheduler: Scheduler,
) -> None:
    await scheduler.add_schedule("noop", "*/5 * * * *", id="ending")
    s = await scheduler.update_schedule("ending", end_at=T0 - timedelta(minutes=1))
    assert (s.status, s.next_fire_at) == ("finished", None)


async def test_a_schedule_resumed_with_no_fire_left_is_finished(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    await scheduler.add_schedule("noop", "in 10m", id="gone")
    await scheduler.add_schedule("noop", "manual", id="by-hand")
    await scheduler.pause()
    clock.advance(hours=1)  # the one-time instant passes while paused: not caught up
    await scheduler.resume()
    gone = await scheduler.get_schedule("gone")
    assert (gone.status, gone.next_fire_at) == ("finished", None)
    by_hand = await scheduler.get_schedule("by-hand")  # a manual one can always be run
    assert (by_hand.status, by_hand.next_fire_at) == ("active", None)


async def test_fire_times_after_a_time_count_the_fires_before_it(scheduler: Scheduler) -> None:
    # Three fires in all (10:00, 11:00, 12:00): after 11:30 only 12:00 is left.
    hours = [T0 + timedelta(hours=h) for h in (1, 2, 3)]
    await scheduler.add_schedule("noop", "1h", id="three", max_executions=3, start_at=hours[0])
    assert await scheduler.next_fire_times("three", 10) == hours
    later = await scheduler.next_fire_times("three", 10, after=hours[1] + timedelta(minutes=30))
    assert later == hours[2:]
    assert await scheduler.next_fire_times("three", 10, after=hours[2]) == []


async def test_an_update_that_changes_nothing_writes_nothing(
    db_url: str, clock: ManualClock
) -> None:
    """Settings given again as they are (a deploy applying its schedules, an edit form
    saved unchanged) are no change: no new version, no audit entry, and an interval
    whose ``start_at`` is given again keeps its fire instead of restarting from now.
    Through a client with no engine, so that nothing fires meanwhile."""
    async with Scheduler(db_url, engine=False, registry=tasks.registry, clock=clock) as client:
        added = await client.add_schedule(
            "noop", "every 1h", id="steady", priority=5, start_at=T0, tags=["a"]
        )
        audited = len(await client.audit_log())
        clock.advance(minutes=20)  # the fire at T0 is due, not made yet
        same = await client.update_schedule(
            "steady", priority=5, start_at=T0.isoformat(), tags=["a"], schedule="every 1h"
        )
        assert same.version == added.version and same.updated_at == added.updated_at
        assert same.next_fire_at == added.next_fire_at == T0
        assert len(await client.audit_log()) == audited
        # The field that differs is the change, and only it: the start given again
        # with it does not restart the interval.
        changed = await client.update_schedule("steady", priority=6, start_at=T0)
        assert (changed.version, changed.priority) == (added.version + 1, 6)
        assert changed.next_fire_at == T0
        assert len(await client.audit_log()) == audited + 1


async def test_a_one_time_instant_before_start_at_is_refused_naming_start_at(
    scheduler: Scheduler,
) -> None:
    """It was refused as "in the past", though it was months ahead."""
    with pytest.raises(ValidationError) as caught:
        await scheduler.add_schedule(
            "noop", "2026-12-25T09:00", id="xmas", start_at="2027-01-01T00:00"
        )
    assert caught.value.field == "start_at"
    assert "is before start_at 2027-01-01T00:00:00+00:00" in str(caught.value)
    assert "in the past" not in str(caught.value)


@pytest.mark.parametrize("change", [{"end_at": T0 + timedelta(days=30)}, {"max_executions": 9}])
async def test_moving_the_end_keeps_the_fires_due_while_no_node_ran(
    db_url: str, clock: ManualClock, change: dict[str, object]
) -> None:
    """Before: the change timed the schedule from now, so the fires due while the nodes
    were down were neither caught up nor recorded missed."""
    async with Scheduler(db_url, registry=tasks.registry, clock=clock, engine=False) as client:
        await client.add_schedule(
            "noop", "0 * * * *", id="hourly", catchup="all", overlap="allow", max_instances=9
        )
        clock.advance(hours=3, minutes=30)  # 9:00 to 12:00 due; no node runs
        s = await client.update_schedule("hourly", **change)
        assert s.next_fire_at == T0
    async with Scheduler(db_url, registry=tasks.registry, clock=clock) as node:

        async def caught_up() -> bool:
            runs = await node.list_runs(schedule_id="hourly", status="succeeded")
            return len(runs) == 4

        await eventually(caught_up, what="the four fires caught up")
        runs = await node.list_runs(schedule_id="hourly")
        assert sorted(r.scheduled_for.hour for r in runs) == [9, 10, 11, 12]


async def test_a_finished_schedule_given_a_later_end_fires_from_now(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    await scheduler.add_schedule("noop", "0 * * * *", id="ended", end_at=T0 + timedelta(hours=1))

    async def finished() -> bool:
        return (await scheduler.get_schedule("ended")).status == "finished"

    clock.advance(hours=1)
    await eventually(finished, what="the last fire")
    clock.advance(hours=5)  # the fires it no longer had are not caught up
    s = await scheduler.update_schedule("ended", end_at=T0 + timedelta(days=1))
    assert (s.status, s.next_fire_at) == ("active", T0 + timedelta(hours=7))
