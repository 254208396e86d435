"""DST: one class per zone, the gap and the overlap each, transition instants in comments.

tickwork's rule: a 5-field expression whose minute and hour both do not start with
``*`` follows the wall clock (a gap time fires once at the first instant after the gap,
an overlap time once at its first occurrence); every other expression fires at each
real instant whose local time matches (nothing in a gap, twice in an overlap).
"""

from __future__ import annotations

from datetime import datetime

import pytest

from tickwork.schedule import parse_schedule


def fires(expr: str, tz: str, after: str, count: int) -> list[str]:
    """The next ``count`` fire times after the ISO instant ``after``, as ISO strings."""
    s = parse_schedule(expr, tz)
    t: datetime | None = datetime.fromisoformat(after)
    out: list[str] = []
    for _ in range(count):
        assert t is not None
        t = s.next_after(t)
        assert t is not None
        assert str(t.tzinfo) == tz
        out.append(t.isoformat())
    return out


class TestNewYork:
    # Gap:     2024-03-10T07:00Z  02:00 EST (-05) -> 03:00 EDT (-04); walls 02:00-02:59 missing
    # Overlap: 2024-11-03T06:00Z  02:00 EDT (-04) -> 01:00 EST (-05); walls 01:00-01:59 twice
    tz = "America/New_York"

    def test_gap_wall_clock_time_fires_at_end_of_gap(self) -> None:
        assert fires("30 2 * * *", self.tz, "2024-03-09T12:00:00-05:00", 3) == [
            "2024-03-10T03:00:00-04:00",
            "2024-03-11T02:30:00-04:00",
            "2024-03-12T02:30:00-04:00",
        ]

    def test_gap_times_fire_once_together(self) -> None:
        # 02:00 and 02:30 are both in the gap, 03:00 is its end: one fire for the three.
        assert fires("0,30 2,3 * * *", self.tz, "2024-03-10T00:00:00-05:00", 3) == [
            "2024-03-10T03:00:00-04:00",
            "2024-03-10T03:30:00-04:00",
            "2024-03-11T02:00:00-04:00",
        ]

    def test_gap_real_instants_skip_missing_walls(self) -> None:
        assert fires("*/30 * * * *", self.tz, "2024-03-10T01:00:00-05:00", 3) == [
            "2024-03-10T01:30:00-05:00",
            "2024-03-10T03:00:00-04:00",
            "2024-03-10T03:30:00-04:00",
        ]

    def test_gap_six_fields_skip_the_day(self) -> None:
        assert fires("0 30 2 * * *", self.tz, "2024-03-09T12:00:00-05:00", 1) == [
            "2024-03-11T02:30:00-04:00"
        ]

    def test_overlap_wall_clock_time_fires_once_at_first_occurrence(self) -> None:
        assert fires("30 1 * * *", self.tz, "2024-11-02T12:00:00-04:00", 2) == [
            "2024-11-03T01:30:00-04:00",
            "2024-11-04T01:30:00-05:00",
        ]

    def test_overlap_real_instants_fire_twice(self) -> None:
        assert fires("*/30 * * * *", self.tz, "2024-11-03T00:45:00-04:00", 5) == [
            "2024-11-03T01:00:00-04:00",
            "2024-11-03T01:30:00-04:00",
            "2024-11-03T01:00:00-05:00",
            "2024-11-03T01:30:00-05:00",
            "2024-11-03T02:00:00-05:00",
        ]

    def test_overlap_hourly_fires_every_real_hour(self) -> None:
        assert fires("0 * * * *", self.tz, "2024-11-03T00:30:00-04:00", 3) == [
            "2024-11-03T01:00:00-04:00",
            "2024-11-03T01:00:00-05:00",
            "2024-11-03T02:00:00-05:00",
        ]

    def test_overlap_six_fields_fire_at_both_occurrences(self) -> None:
        assert fires("0 30 1 * * *", self.tz, "2024-11-03T00:00:00-04:00", 3) == [
            "2024-11-03T01:30:00-04:00",
            "2024-11-03T01:30:00-05:00",
            "2024-11-04T01:30:00-05:00",
        ]

    def test_start_in_second_pass_of_overlap_does_not_fire_again(self) -> None:
        # 01:45 EDT already happened before 01:10 EST: the wall-clock time waits a day.
        assert fires("45 1 * * *", self.tz, "2024-11-03T01:10:00-05:00", 1) == [
            "2024-11-04T01:45:00-05:00"
        ]


class TestLondon:
    # Gap:     2024-03-31T01:00Z  01:00 GMT (+00) -> 02:00 BST (+01); walls 01:00-01:59 missing
    # Overlap: 2024-10-27T01:00Z  02:00 BST (+01) -> 01:00 GMT (+00); walls 01:00-01:59 twice
    tz = "Europe/London"

    def test_gap(self) -> None:
        assert fires("30 1 * * *", self.tz, "2024-03-30T12:00:00+00:00", 2) == [
            "2024-03-31T02:00:00+01:00",
            "2024-04-01T01:30:00+01:00",
        ]
        assert fires("*/20 * * * *", self.tz, "2024-03-31T00:30:00+00:00", 3) == [
            "2024-03-31T00:40:00+00:00",
            "2024-03-31T02:00:00+01:00",
            "2024-03-31T02:20:00+01:00",
        ]

    def test_overlap(self) -> None:
        assert fires("30 1 * * *", self.tz, "2024-10-26T12:00:00+01:00", 2) == [
            "2024-10-27T01:30:00+01:00",
            "2024-10-28T01:30:00+00:00",
        ]
        assert fires("*/30 1 * * *", self.tz, "2024-10-27T00:50:00+01:00", 5) == [
            "2024-10-27T01:00:00+01:00",
            "2024-10-27T01:30:00+01:00",
            "2024-10-27T01:00:00+00:00",
            "2024-10-27T01:30:00+00:00",
            "2024-10-28T01:00:00+00:00",
        ]


class TestSydney:
    # Overlap: 2024-04-06T16:00Z  03:00 AEDT (+11) -> 02:00 AEST (+10); walls 02:00-02:59 twice
    # Gap:     2024-10-05T16:00Z  02:00 AEST (+10) -> 03:00 AEDT (+11); walls 02:00-02:59 missing
    tz = "Australia/Sydney"

    def test_overlap(self) -> None:
        assert fires("30 2 * * *", self.tz, "2024-04-06T12:00:00+11:00", 2) == [
            "2024-04-07T02:30:00+11:00",
            "2024-04-08T02:30:00+10:00",
        ]
        assert fires("0 30 2 * * *", self.tz, "2024-04-06T12:00:00+11:00", 2) == [
            "2024-04-07T02:30:00+11:00",
            "2024-04-07T02:30:00+10:00",
        ]

    def test_gap(self) -> None:
        assert fires("30 2 * * *", self.tz, "2024-10-05T12:00:00+10:00", 2) == [
            "2024-10-06T03:00:00+11:00",
            "2024-10-07T02:30:00+11:00",
        ]
        assert fires("0 30 2 * * *", self.tz, "2024-10-05T12:00:00+10:00", 1) == [
            "2024-10-07T02:30:00+11:00"
        ]


class TestLordHowe:
    # A 30-minute shift.
    # Overlap: 2024-04-06T15:00Z  02:00 (+11) -> 01:30 (+10:30); walls 01:30-01:59 twice
    # Gap:     2024-10-05T15:30Z  02:00 (+10:30) -> 02:30 (+11); walls 02:00-02:29 missing
    tz = "Australia/Lord_Howe"

    def test_overlap(self) -> None:
        assert fires("45 1 * * *", self.tz, "2024-04-06T12:00:00+11:00", 2) == [
            "2024-04-07T01:45:00+11:00",
            "2024-04-08T01:45:00+10:30",
        ]
        assert fires("*/15 * * * *", self.tz, "2024-04-07T01:10:00+11:00", 6) == [
            "2024-04-07T01:15:00+11:00",
            "2024-04-07T01:30:00+11:00",
            "2024-04-07T01:45:00+11:00",
            "2024-04-07T01:30:00+10:30",
            "2024-04-07T01:45:00+10:30",
            "2024-04-07T02:00:00+10:30",
        ]

    def test_gap(self) -> None:
        assert fires("15 2 * * *", self.tz, "2024-10-05T12:00:00+10:30", 2) == [
            "2024-10-06T02:30:00+11:00",
            "2024-10-07T02:15:00+11:00",
        ]
        assert fires("*/15 * * * *", self.tz, "2024-10-06T01:40:00+10:30", 3) == [
            "2024-10-06T01:45:00+10:30",
            "2024-10-06T02:30:00+11:00",
            "2024-10-06T02:45:00+11:00",
        ]
        # Hourly: 02:00 does not exist that day, so the 3 o'clock hour comes next.
        assert fires("0 * * * *", self.tz, "2024-10-06T01:30:00+10:30", 2) == [
            "2024-10-06T03:00:00+11:00",
            "2024-10-06T04:00:00+11:00",
        ]
        assert fires("0 15 2 * * *", self.tz, "2024-10-05T12:00:00+10:30", 1) == [
            "2024-10-07T02:15:00+11:00"
        ]


class TestChatham:
    # +12:45 / +13:45, transitions at 02:45 local standard time.
    # Overlap: 2024-04-06T14:00Z  03:45 (+13:45) -> 02:45 (+12:45); walls 02:45-03:44 twice
    # Gap:     2024-09-28T14:00Z  02:45 (+12:45) -> 03:45 (+13:45); walls 02:45-03:44 missing
    tz = "Pacific/Chatham"

    def test_overlap(self) -> None:
        assert fires("0 3 * * *", self.tz, "2024-04-06T12:00:00+13:45", 2) == [
            "2024-04-07T03:00:00+13:45",
            "2024-04-08T03:00:00+12:45",
        ]
        assert fires("0 * * * *", self.tz, "2024-04-07T01:30:00+13:45", 4) == [
            "2024-04-07T02:00:00+13:45",
            "2024-04-07T03:00:00+13:45",
            "2024-04-07T03:00:00+12:45",
            "2024-04-07T04:00:00+12:45",
        ]

    def test_gap(self) -> None:
        assert fires("0 3 * * *", self.tz, "2024-09-28T12:00:00+12:45", 2) == [
            "2024-09-29T03:45:00+13:45",
            "2024-09-30T03:00:00+13:45",
        ]
        assert fires("30 2,3 * * *", self.tz, "2024-09-29T00:00:00+12:45", 3) == [
            "2024-09-29T02:30:00+12:45",
            "2024-09-29T03:45:00+13:45",
            "2024-09-30T02:30:00+13:45",
        ]
        assert fires("0 * * * *", self.tz, "2024-09-29T01:30:00+12:45", 2) == [
            "2024-09-29T02:00:00+12:45",
            "2024-09-29T04:00:00+13:45",
        ]


class TestApia:
    # A whole day skipped, westward to eastward of the date line.
    # Gap: 2011-12-30T10:00Z  2011-12-30 00:00 (-10) -> 2011-12-31 00:00 (+14); every wall
    #      of 2011-12-30 is missing (a 24-hour gap).
    tz = "Pacific/Apia"

    def test_a_daily_time_on_the_skipped_day_fires_once_at_the_gap_end(self) -> None:
        assert fires("0 9 * * *", self.tz, "2011-12-29T00:00:00-10:00", 3) == [
            "2011-12-29T09:00:00-10:00",
            "2011-12-31T00:00:00+14:00",
            "2011-12-31T09:00:00+14:00",
        ]
        # Two times of the skipped day make one fire, not two at the same instant.
        assert fires("0 9,18 * * *", self.tz, "2011-12-29T12:00:00-10:00", 3) == [
            "2011-12-29T18:00:00-10:00",
            "2011-12-31T00:00:00+14:00",
            "2011-12-31T09:00:00+14:00",
        ]

    def test_real_instant_mode_skips_no_real_time(self) -> None:
        assert fires("0 * * * *", self.tz, "2011-12-29T22:30:00-10:00", 3) == [
            "2011-12-29T23:00:00-10:00",
            "2011-12-31T00:00:00+14:00",
            "2011-12-31T01:00:00+14:00",
        ]

    def test_a_friday_time_on_the_skipped_friday_fires_once_after_the_gap(self) -> None:
        # 2011-12-30 was a Friday: with wall-clock rules it fires once, after the gap.
        assert fires("0 12 * * FRI", self.tz, "2011-12-29T00:00:00-10:00", 2) == [
            "2011-12-31T00:00:00+14:00",
            "2012-01-06T12:00:00+14:00",
        ]


class TestSantiago:
    # Transitions at midnight.
    # Overlap: 2024-04-07T03:00Z  00:00 Apr 7 (-03) -> 23:00 Apr 6 (-04); walls 23:00-23:59 twice
    # Gap:     2024-09-08T04:00Z  00:00 Sep 8 (-04) -> 01:00 (-03); walls 00:00-00:59 missing
    tz = "America/Santiago"

    def test_gap_midnight(self) -> None:
        assert fires("0 0 * * *", self.tz, "2024-09-07T12:00:00-04:00", 2) == [
            "2024-09-08T01:00:00-03:00",
            "2024-09-09T00:00:00-03:00",
        ]
        assert fires("30 0 * * *", self.tz, "2024-09-07T12:00:00-04:00", 1) == [
            "2024-09-08T01:00:00-03:00"
        ]
        # Real instants: midnight did not happen on the 8th.
        assert fires("0 0 0 * * *", self.tz, "2024-09-07T12:00:00-04:00", 1) == [
            "2024-09-09T00:00:00-03:00"
        ]
        assert fires("0 * * * *", self.tz, "2024-09-07T22:30:00-04:00", 2) == [
            "2024-09-07T23:00:00-04:00",
            "2024-09-08T01:00:00-03:00",
        ]

    def test_overlap_before_midnight(self) -> None:
        assert fires("30 23 * * *", self.tz, "2024-04-06T12:00:00-03:00", 2) == [
            "2024-04-06T23:30:00-03:00",
            "2024-04-07T23:30:00-04:00",
        ]
        assert fires("0 0 * * *", self.tz, "2024-04-05T12:00:00-03:00", 2) == [
            "2024-04-06T00:00:00-03:00",
            "2024-04-07T00:00:00-04:00",
        ]
        assert fires("0 30 23 * * *", self.tz, "2024-04-06T12:00:00-03:00", 2) == [
            "2024-04-06T23:30:00-03:00",
            "2024-04-06T23:30:00-04:00",
        ]


@pytest.mark.parametrize(
    "tz",
    [
        "America/New_York",
        "Europe/London",
        "Australia/Sydney",
        "Australia/Lord_Howe",
        "Pacific/Chatham",
        "America/Santiago",
    ],
)
def test_every_minute_covers_real_time_through_a_year(tz: str) -> None:
    """Real-instant mode neither skips nor doubles real time: consecutive fires of a
    ``*/15`` schedule are exactly 15 real minutes apart, transitions included (all these
    zones shift by a multiple of 15 minutes)."""
    s = parse_schedule("*/15 * * * *", tz)
    t = s.next_after(datetime.fromisoformat("2024-01-01T00:00:00+00:00"))
    assert t is not None
    for _ in range(366 * 96):
        n = s.next_after(t)
        assert n is not None
        assert n.timestamp() - t.timestamp() == 900, (t, n)
        t = n
