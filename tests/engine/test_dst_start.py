"""A schedule's ``start_at`` and ``end_at`` written as wall times at a DST change.

America/New_York springs forward on 2026-03-08 at 02:00 EST (07:00 UTC) to 03:00 EDT:
walls 02:00-02:59 never happen. It falls back on 2026-11-01 at 02:00 EDT (06:00 UTC) to
01:00 EST: walls 01:00-01:59 happen twice (05:00-05:59 and 06:00-06:59 UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tickwork import Scheduler

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
