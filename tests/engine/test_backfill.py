"""Backfill runs past fire times: the range is cut at the present, so a fire time still
to come is left to the schedule (a backfill run for it would run it early and take its
place: one run per scheduled time)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.engine.conftest import T0
from tickwork import ConflictError, ManualClock, Scheduler, ValidationError

HOUR = timedelta(hours=1)


async def test_a_range_reaching_the_future_backfills_only_the_past(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    await scheduler.add_schedule("noop", "0 * * * *", id="hourly", paused=True)
    runs = await scheduler.backfill("hourly", T0 - 2 * HOUR, T0 + 3 * HOUR)
    # T0 is on the hour: T0 - 2h, T0 - 1h and T0 itself; none for T0 + 1h .. T0 + 3h.
    assert sorted(r.scheduled_for for r in runs) == [T0 - 2 * HOUR, T0 - HOUR, T0]
    await scheduler.resume("hourly")
    s = await scheduler.get_schedule("hourly")
    assert s.next_fire_at == T0 + HOUR  # still the schedule's own fire


async def test_a_range_wholly_to_come_is_refused(scheduler: Scheduler) -> None:
    await scheduler.add_schedule("noop", "0 * * * *", id="hourly")
    with pytest.raises(ValidationError) as info:
        await scheduler.backfill("hourly", T0 + HOUR, T0 + 3 * HOUR)
    message = str(info.value)
    assert "past fire times" in message and "run_now" in message
    assert await scheduler.list_runs(schedule_id="hourly", status="pending") == []


async def test_a_manual_schedule_is_told_to_use_run_now(scheduler: Scheduler) -> None:
    """Nothing wrong with the range: the schedule's kind rules a backfill out, as a run
    already over rules out its cancel (a conflict, not a field to fix)."""
    await scheduler.add_schedule("noop", "manual", id="by-hand")
    with pytest.raises(ConflictError) as info:
        await scheduler.backfill("by-hand", T0 - 3 * HOUR, T0)
    assert str(info.value) == (
        "schedule 'by-hand' is manual: it has no fire times to backfill (run it now instead)"
    )


async def test_no_run_is_made_after_the_schedules_end(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    await scheduler.add_schedule("noop", "0 * * * *", id="ends", end_at=T0 + 2 * HOUR, paused=True)
    clock.advance(5 * HOUR)
    runs = await scheduler.backfill("ends", T0 - HOUR, T0 + 5 * HOUR)
    # end_at is inclusive, as for the schedule's own fires: nothing after T0 + 2h.
    assert sorted(r.scheduled_for for r in runs) == [T0 - HOUR, T0, T0 + HOUR, T0 + 2 * HOUR]
    with pytest.raises(ValidationError) as info:
        await scheduler.backfill("ends", T0 + 3 * HOUR, T0 + 5 * HOUR)
    assert info.value.field == "start"
    assert "end_at" in str(info.value)
