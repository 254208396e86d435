"""A schedule's ``start_at`` and ``end_at`` written as wall times at a DST change.

America/New_York springs forward on 2026-03-08 at 02:00 EST (07:00 UTC) to 03:00 EDT:
walls 02:00-02:59 never happen. It falls back on 2026-11-01 at 02:00 EDT (06:00 UTC) to
01:00 EST: walls 01:00-01:59 happen twice (05:00-05:59 and 06:00-06:59 UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from tests.engine.conftest import eventually
from tickwork import ManualClock, Scheduler

NY = "America/New_York"


@pytest.mark.parametrize("start", ["2026-03-08T02:30", datetime(2026, 3, 8, 2, 30)])
async def test_a_start_at_in_the_gap_is_the_first_instant_after_it(
    scheduler: Scheduler, start: object
) -> None:
    """Read as ``parse_schedule`` reads it; it was read with the offset before the gap
    (03:30 EDT), so the schedule fired half an hour after the first instant it could."""
    s = await scheduler.add_schedule(
        "noop", "every 1h", id="gap", timezone=NY, start_at=start, end_at="2026-03-08T02:45"
    )
    first = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT
    assert (s.start_at, s.end_at) == (first, first)


async def test_a_start_at_in_the_overlap_is_its_first_occurrence(scheduler: Scheduler) -> None:
    s = await scheduler.add_schedule(
        "noop", "0 4 * * *", id="overlap", timezone=NY, start_at="2026-11-01T01:30"
    )
    assert s.start_at == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT


async def test_a_naive_start_at_with_fold_1_is_the_second_occurrence(
    scheduler: Scheduler,
) -> None:
    """PEP 495's ``fold=1`` names the second 01:30; it was read as the first."""
    s = await scheduler.add_schedule(
        "noop",
        "every 1 day",
        id="second",
        timezone=NY,
        start_at=datetime(2026, 11, 1, 1, 30, fold=1),
    )
    assert s.start_at == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 EST
    # Outside an overlap fold changes nothing: a gap time is still the end of the gap.
    gap = await scheduler.add_schedule(
        "noop", "every 1 day", id="gap", timezone=NY, start_at=datetime(2026, 3, 8, 2, 30, fold=1)
    )
    assert gap.start_at == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT


async def test_a_daily_interval_from_a_gap_start_returns_to_its_wall_time(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    """It kept the shifted wall time (03:00) for every later fire: the instant stored
    for start_at is the first one after the gap, and steps counted from its wall time."""
    clock.set(datetime(2026, 3, 7, 12, tzinfo=UTC))
    await scheduler.add_schedule(
        "noop", "every 1 day", id="daily", timezone=NY, start_at="2026-03-08T02:30"
    )
    expected = ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]
    shown = await scheduler.next_fire_times("daily", 2)
    assert [t.astimezone(ZoneInfo(NY)).isoformat() for t in shown] == expected
    for at in shown:  # the node fires them
        clock.set(at)

        async def fired(at: datetime = at) -> bool:
            runs = await scheduler.list_runs("daily", status="succeeded")
            return any(r.scheduled_for == at for r in runs)

        await eventually(fired, what=f"the fire at {at}")
    s = await scheduler.get_schedule("daily")
    assert s.next_fire_at == datetime(2026, 3, 10, 6, 30, tzinfo=UTC)  # 02:30 EDT


async def test_start_at_given_again_changes_only_when_its_wall_time_does(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    clock.set(datetime(2026, 3, 1, tzinfo=UTC))
    s = await scheduler.add_schedule(
        "noop", "every 1 day", id="daily", timezone=NY, start_at="2026-03-08T02:30"
    )
    again = await scheduler.update_schedule("daily", start_at="2026-03-08T02:30")
    assert again.version == s.version
    # As read back (an instant, with its offset): the same start, as an edit form sends it.
    assert s.start_at is not None
    for instant in (s.start_at, s.start_at.astimezone(ZoneInfo(NY)).isoformat()):
        again = await scheduler.update_schedule("daily", start_at=instant, name="renamed")
        assert again.anchor == s.anchor
    assert (await scheduler.next_fire_times("daily", 2))[1] == datetime(
        2026, 3, 9, 6, 30, tzinfo=UTC
    )
    s = again
    # 03:00 is the same instant, another wall time: the steps now keep 03:00.
    moved = await scheduler.update_schedule("daily", start_at="2026-03-08T03:00")
    assert moved.version == s.version + 1 and moved.start_at == s.start_at
    shown = await scheduler.next_fire_times("daily", 2)
    assert shown[1] == datetime(2026, 3, 9, 7, 0, tzinfo=UTC)  # 03:00 EDT
    back = await scheduler.update_schedule("daily", start_at="2026-03-08T02:30")
    assert back.version == s.version + 2
    shown = await scheduler.next_fire_times("daily", 2)
    assert shown[1] == datetime(2026, 3, 9, 6, 30, tzinfo=UTC)  # 02:30 EDT
