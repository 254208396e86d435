"""Intervals (exact and calendar units, clamping, DST), one-time schedules and manual."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tickwork.schedule import (
    IntervalSchedule,
    OnceSchedule,
    ParsedSchedule,
    ScheduleError,
    parse_schedule,
)
from tickwork.schedule.interval import anchor_for_wall, wall_of_anchor
from tickwork.schedule.parse import parse_stored
from tickwork.schedule.zones import zone_for

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
US = timedelta(microseconds=1)


def first(expr: str, tz: str, start: str, count: int) -> list[str]:
    """The first ``count`` fires of an interval anchored at ``start``."""
    s = parse_schedule(expr, tz, start_at=start)
    assert s.start_at is not None
    t: datetime | None = s.start_at - US
    out = []
    for _ in range(count):
        assert t is not None
        t = s.next_after(t)
        assert t is not None
        out.append(t.isoformat())
    return out


@pytest.mark.parametrize(
    ("expr", "months", "days", "seconds"),
    [
        ("30s", 0, 0, 30),
        ("5m", 0, 0, 300),
        ("2h", 0, 0, 7200),
        ("1d", 0, 1, 0),
        ("1w", 0, 7, 0),
        ("1mo", 1, 0, 0),
        ("1y", 12, 0, 0),
        ("1h30m", 0, 0, 5400),
        ("1d12h", 0, 1, 43200),
        ("2w3d", 0, 17, 0),
        ("1mo1d", 1, 1, 0),
        ("30 seconds", 0, 0, 30),
        ("5 minutes", 0, 0, 300),
        ("1 hour", 0, 0, 3600),
        ("2 days", 0, 2, 0),
        ("1 week", 0, 7, 0),
        ("3 months", 3, 0, 0),
        ("every 5 minutes", 0, 0, 300),
        ("Every 5m", 0, 0, 300),
        ("every hour", 0, 0, 3600),
        ("every day", 0, 1, 0),
        ("every month", 1, 0, 0),
        ("1 hour and 30 minutes", 0, 0, 5400),
        ("1 hour, 30 minutes", 0, 0, 5400),
        ("1 hr 30 mins 15 secs", 0, 0, 5415),
        ("PT15M", 0, 0, 900),
        ("pt1h30m", 0, 0, 5400),
        ("P1D", 0, 1, 0),
        ("P1M", 1, 0, 0),
        ("P1W", 0, 7, 0),
        ("P1Y2M3DT4H5M6S", 14, 3, 4 * 3600 + 5 * 60 + 6),
        ("every PT30S", 0, 0, 30),
    ],
)
def test_interval_grammar(expr: str, months: int, days: int, seconds: int) -> None:
    s = parse_schedule(expr, now=NOW)
    assert isinstance(s, IntervalSchedule)
    assert (s.step.months, s.step.days, s.step.seconds) == (months, days, seconds)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("0s", "interval '0s' must be longer than zero"),
        ("0 minutes", "must be longer than zero"),
        ("PT0S", "must be longer than zero"),
        ("every 0 days", "must be longer than zero"),
        ("-5m", "interval '-5m' must be positive"),
        ("every -1h", "must be positive"),
        ("5 minuets", "unknown unit 'minuets' in interval '5 minuets'"),
        ("3 fortnights", "unknown unit 'fortnights'"),
        ("3 eons", "use s, m, h, d, w, mo, y or their long forms"),  # every unit named
        ("1.5h", "fractions are not supported"),
        ("P1.5D", "'P1.5D' is not an ISO-8601 duration"),
        ("P", "is not an ISO-8601 duration"),
        ("PT", "is not an ISO-8601 duration"),
        ("P1DT", "is not an ISO-8601 duration"),
        ("1h1h", "gives hours twice"),
        ("5m,", "ends with a separator"),
        ("every", "'every' needs an interval after it"),
        ("every 5", "cannot read '5'"),
        ("99999999y", "too long"),
        ("in", "'in' needs an interval after it"),
        ("in 0s", "must be longer than zero"),
        ("in 5 parsecs", "unknown unit 'parsecs'"),
    ],
)
def test_interval_errors(expr: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message.replace("(", r"\(").replace(".", r"\.")):
        parse_schedule(expr, now=NOW)


class TestExactUnits:
    def test_from_anchor(self) -> None:
        assert first("PT15M", "UTC", "2024-01-01T00:00:07.25+00:00", 3) == [
            "2024-01-01T00:00:07.250000+00:00",
            "2024-01-01T00:15:07.250000+00:00",
            "2024-01-01T00:30:07.250000+00:00",
        ]

    def test_start_at_is_inclusive_and_next_after_strict(self) -> None:
        s = parse_schedule("5m", start_at="2024-01-01T00:00:00Z")
        anchor = datetime(2024, 1, 1, tzinfo=UTC)
        assert s.next_after(anchor - US) == anchor
        assert s.next_after(anchor) == anchor + timedelta(minutes=5)
        assert s.next_after(anchor - timedelta(days=300)) == anchor
        assert s.next_after(anchor + timedelta(minutes=12)) == anchor + timedelta(minutes=15)

    def test_hours_are_elapsed_time_across_dst(self) -> None:
        # 2024-03-10T07:00Z: New York springs forward; 2 h later is 03:30 EDT, not 02:30.
        assert first("2h", "America/New_York", "2024-03-10T00:30:00", 3) == [
            "2024-03-10T00:30:00-05:00",
            "2024-03-10T03:30:00-04:00",
            "2024-03-10T05:30:00-04:00",
        ]

    def test_far_from_anchor_is_constant_time(self) -> None:
        s = parse_schedule("7s", start_at="2000-01-01T00:00:00Z")
        t = s.next_after(datetime(2999, 1, 1, tzinfo=UTC))
        assert t is not None and 0 < (t - datetime(2999, 1, 1, tzinfo=UTC)).total_seconds() <= 7

    def test_default_anchor_is_now(self) -> None:
        s = parse_schedule("10m", now=NOW)
        assert s.start_at == NOW
        assert s.next_after(NOW - US) == NOW

    def test_default_anchor_without_now_is_the_current_time(self) -> None:
        before = datetime.now(UTC)
        s = parse_schedule("10m")
        assert s.start_at is not None and before <= s.start_at <= datetime.now(UTC)


class TestCalendarUnits:
    def test_month_clamps_without_drift(self) -> None:
        assert first("1mo", "UTC", "2024-01-31T10:00:00Z", 5) == [
            "2024-01-31T10:00:00+00:00",
            "2024-02-29T10:00:00+00:00",
            "2024-03-31T10:00:00+00:00",
            "2024-04-30T10:00:00+00:00",
            "2024-05-31T10:00:00+00:00",
        ]
        assert first("1mo", "UTC", "2023-01-31T10:00:00Z", 3)[1] == "2023-02-28T10:00:00+00:00"

    def test_leap_day_yearly(self) -> None:
        assert first("1y", "UTC", "2024-02-29T00:00:00Z", 5) == [
            "2024-02-29T00:00:00+00:00",
            "2025-02-28T00:00:00+00:00",
            "2026-02-28T00:00:00+00:00",
            "2027-02-28T00:00:00+00:00",
            "2028-02-29T00:00:00+00:00",
        ]

    def test_next_after_far_from_anchor(self) -> None:
        s = parse_schedule("1mo", "UTC", start_at="2024-01-31T10:00:00Z")
        t = s.next_after(datetime(2030, 2, 15, tzinfo=UTC))
        assert t is not None and t.isoformat() == "2030-02-28T10:00:00+00:00"
        t = s.next_after(datetime(2030, 2, 28, 10, tzinfo=UTC))
        assert t is not None and t.isoformat() == "2030-03-31T10:00:00+00:00"

    def test_days_keep_the_wall_time_across_dst(self) -> None:
        # Gap 2024-03-10T07:00Z (02:00 EST -> 03:00 EDT): 02:30 fires at 03:00 EDT.
        assert first("1d", "America/New_York", "2024-03-09T02:30:00", 3) == [
            "2024-03-09T02:30:00-05:00",
            "2024-03-10T03:00:00-04:00",
            "2024-03-11T02:30:00-04:00",
        ]
        # Overlap 2024-11-03T06:00Z (02:00 EDT -> 01:00 EST): 01:30 fires once, first.
        assert first("1d", "America/New_York", "2024-11-02T01:30:00", 3) == [
            "2024-11-02T01:30:00-04:00",
            "2024-11-03T01:30:00-04:00",
            "2024-11-04T01:30:00-05:00",
        ]
        assert first("every week", "Europe/Paris", "2024-03-25T09:00:00", 2) == [
            "2024-03-25T09:00:00+01:00",
            "2024-04-01T09:00:00+02:00",
        ]

    def test_anchor_in_second_pass_of_overlap_fires_at_itself(self) -> None:
        anchor = datetime(2024, 11, 3, 6, 30, tzinfo=UTC)  # 01:30 EST, the second 01:30
        s = parse_schedule("1d", "America/New_York", start_at=anchor)
        t = s.next_after(anchor - US)
        # PEP 495: '==' across zones is always False for an ambiguous time: compare in UTC.
        assert t is not None and t.fold == 1 and t.astimezone(UTC) == anchor
        t = s.next_after(anchor)
        assert t is not None and t.isoformat() == "2024-11-04T01:30:00-05:00"

    def test_a_naive_anchor_with_fold_1_is_the_second_occurrence(self) -> None:
        # Overlap 2024-11-03T06:00Z (02:00 EDT -> 01:00 EST): fold=1 is the second 01:30.
        s = parse_schedule("1d", "America/New_York", start_at=datetime(2024, 11, 3, 1, 30, fold=1))
        assert s.start_at == datetime(2024, 11, 3, 6, 30, tzinfo=UTC)
        first = parse_schedule("1d", "America/New_York", start_at=datetime(2024, 11, 3, 1, 30))
        assert first.start_at == datetime(2024, 11, 3, 5, 30, tzinfo=UTC)

    def test_mixed_calendar_then_exact(self) -> None:
        assert first("1d12h", "UTC", "2024-01-01T00:00:00Z", 3) == [
            "2024-01-01T00:00:00+00:00",
            "2024-01-02T12:00:00+00:00",
            "2024-01-04T00:00:00+00:00",
        ]

    def test_results_strictly_increase_and_match_k_steps(self) -> None:
        s = parse_schedule("1mo", "Australia/Lord_Howe", start_at="2024-01-31T02:15:00")
        t = s.next_after(datetime(2024, 1, 1, tzinfo=UTC))
        assert isinstance(s, IntervalSchedule)
        for k in range(1, 400):
            assert t is not None
            n = s.next_after(t)
            assert n is not None and n > t
            assert n == s.fire(k)
            t = n

    def test_past_year_9999_is_none(self) -> None:
        s = parse_schedule("1y", start_at="9998-06-01T00:00:00Z")
        assert s.next_after(datetime(9999, 7, 1, tzinfo=UTC)) is None


class TestStartInAGap:
    """A ``start_at`` written as a wall time in a DST gap fires first at the first
    instant after the gap; calendar steps then keep the wall time written."""

    def test_new_york_days_weeks_months_return_to_the_wall_time(self) -> None:
        # Gap 2026-03-08T07:00Z: 02:00 EST -> 03:00 EDT; walls 02:00-02:59 missing.
        tz = "America/New_York"
        assert first("every 1 day", tz, "2026-03-08T02:30", 3) == [
            "2026-03-08T03:00:00-04:00",
            "2026-03-09T02:30:00-04:00",
            "2026-03-10T02:30:00-04:00",
        ]
        assert first("1w", tz, "2026-03-08T02:30", 2)[1] == "2026-03-15T02:30:00-04:00"
        assert first("1mo", tz, "2026-03-08T02:00", 2)[1] == "2026-04-08T02:00:00-04:00"
        # The calendar part steps the wall time written, then the exact part is added.
        assert first("1d12h", tz, "2026-03-08T02:30", 2)[1] == "2026-03-09T14:30:00-04:00"
        # A naive datetime is a wall time too; an aware one is an instant.
        naive = parse_schedule("1d", tz, start_at=datetime(2026, 3, 8, 2, 30))
        assert naive.next_after(naive.start_at).isoformat() == "2026-03-09T02:30:00-04:00"  # type: ignore[union-attr]
        aware = parse_schedule("1d", tz, start_at=naive.start_at)
        assert aware.next_after(aware.start_at).isoformat() == "2026-03-09T03:00:00-04:00"  # type: ignore[union-attr]

    def test_lord_howe_half_hour_gap(self) -> None:
        # Gap 2024-10-05T15:30Z: 02:00 (+10:30) -> 02:30 (+11); walls 02:00-02:29 missing.
        assert first("1d", "Australia/Lord_Howe", "2024-10-06T02:15", 3) == [
            "2024-10-06T02:30:00+11:00",
            "2024-10-07T02:15:00+11:00",
            "2024-10-08T02:15:00+11:00",
        ]

    def test_apia_skipped_day(self) -> None:
        # 2011-12-30 never happened in Pacific/Apia: 2011-12-29T24:00 (-10) was followed
        # by 2011-12-31T00:00 (+14), at 2011-12-30T10:00Z.
        assert first("1d", "Pacific/Apia", "2011-12-30T09:00", 3) == [
            "2011-12-31T00:00:00+14:00",
            "2011-12-31T09:00:00+14:00",
            "2012-01-01T09:00:00+14:00",
        ]

    def test_kept_by_describe_to_dict_and_the_stored_anchor(self) -> None:
        tz = "America/New_York"
        s = parse_schedule("1d", tz, start_at="2026-03-08T02:30", key="id")
        assert s.describe() == "Every day at 02:30, from 2026-03-08 (America/New_York)"
        again = ParsedSchedule.from_dict(s.to_dict())
        assert again == s
        assert again.next_after(s.start_at) == s.next_after(s.start_at)  # type: ignore[arg-type]
        # A store keeps instants: the wall time travels in the anchor, just before start_at.
        zone = zone_for(s.tz)
        anchor = anchor_for_wall(datetime(2026, 3, 8, 2, 30), zone)
        assert s.start_at is not None and anchor < s.start_at
        assert wall_of_anchor(s.start_at, anchor, zone) == datetime(2026, 3, 8, 2, 30)
        stored = parse_stored("1d", tz, s.start_at, "id", anchor)
        assert stored == s
        # An anchor equal to start_at, or one not within the gap before it, carries none.
        assert wall_of_anchor(s.start_at, s.start_at, zone) is None
        assert wall_of_anchor(s.start_at, s.start_at - timedelta(hours=2), zone) is None
        plain = parse_stored("1d", tz, s.start_at, "id", s.start_at)
        assert plain.next_after(s.start_at).isoformat() == "2026-03-09T03:00:00-04:00"  # type: ignore[union-attr]

    def test_a_start_that_happens_is_unchanged(self) -> None:
        tz = "America/New_York"
        assert first("1d", tz, "2026-03-08T03:00", 2)[1] == "2026-03-09T03:00:00-04:00"
        assert first("1d", tz, "2026-03-08T01:59", 2)[1] == "2026-03-09T01:59:00-04:00"


class TestOnce:
    @pytest.mark.parametrize(
        ("expr", "tz", "instant"),
        [
            ("2026-12-25T09:00:00", "Europe/Paris", "2026-12-25T08:00:00+00:00"),
            ("2026-12-25 09:00", "Europe/Paris", "2026-12-25T08:00:00+00:00"),
            ("2026-12-25T09:00:00Z", "Europe/Paris", "2026-12-25T09:00:00+00:00"),
            ("2026-12-25T09:00:00+05:30", "UTC", "2026-12-25T03:30:00+00:00"),
            ("2026-12-25", "UTC", "2026-12-25T00:00:00+00:00"),
            # Gap 2024-03-10T07:00Z: 02:30 moves to the first instant after it.
            ("2024-03-10T02:30:00", "America/New_York", "2024-03-10T07:00:00+00:00"),
            # Overlap 2024-11-03T06:00Z: 01:30 is its first occurrence (EDT).
            ("2024-11-03T01:30:00", "America/New_York", "2024-11-03T05:30:00+00:00"),
        ],
    )
    def test_instants(self, expr: str, tz: str, instant: str) -> None:
        s = parse_schedule(expr, tz)
        assert isinstance(s, OnceSchedule)
        expected = datetime.fromisoformat(instant)
        assert s.at == expected
        t = s.next_after(expected - US)
        assert t is not None and t.astimezone(UTC) == expected and str(t.tzinfo) == tz
        assert s.next_after(expected) is None

    def test_now_and_in(self) -> None:
        s = parse_schedule("now", now=NOW)
        assert s.next_after(NOW - US) == NOW
        s = parse_schedule("in 10m", now=NOW)
        assert s.next_after(NOW) == NOW + timedelta(minutes=10)
        s = parse_schedule("in 1 day", "America/New_York", now=datetime(2024, 3, 9, 12, tzinfo=UTC))
        assert s.next_after(NOW - timedelta(days=365)) == datetime(2024, 3, 10, 11, tzinfo=UTC)

    def test_now_without_a_base_fires_at_the_time_it_was_read(self) -> None:
        # The clock is read once: "now" is both the instant and the earliest fire.
        before = datetime.now(UTC)
        s = parse_schedule("now")
        assert isinstance(s, OnceSchedule)
        t = s.next_after(before - US)
        assert t is not None and t == s.at and before <= t <= datetime.now(UTC)

    def test_in_is_relative_to_start_at(self) -> None:
        s = parse_schedule("in 10m", start_at="2030-01-01T00:00:00Z", now=NOW)
        assert s.next_after(NOW) == datetime(2030, 1, 1, 0, 10, tzinfo=UTC)

    def test_start_at_after_the_instant_means_never(self) -> None:
        s = parse_schedule("2026-01-01T00:00Z", start_at="2026-06-01T00:00Z")
        assert s.next_after(NOW) is None

    def test_errors(self) -> None:
        with pytest.raises(ScheduleError, match="not a valid ISO-8601"):
            parse_schedule("2026-13-01T00:00")
        with pytest.raises(ScheduleError, match="not a valid ISO-8601"):
            parse_schedule("2026-12-25T25:00")

    def test_in_every_is_refused_as_ambiguous(self) -> None:
        # Once or repeating? Neither is guessed.
        with pytest.raises(ScheduleError) as info:
            parse_schedule("in every 10m", now=NOW)
        assert str(info.value) == (
            "'in every 10m' mixes a one-time and a repeating schedule: write 'in 10m' "
            "(once) or 'every 10m' (repeating)"
        )

    def test_an_offset_out_of_range_is_named_plainly(self) -> None:
        with pytest.raises(ScheduleError) as info:
            parse_schedule("2026-12-25T09:00:00+25:00")
        message = str(info.value)
        assert "offset +25:00" in message and "timedelta" not in message

    def test_describe(self) -> None:
        assert (
            parse_schedule("2026-12-25T09:00", "Europe/Paris").describe()
            == "Once at 2026-12-25 09:00 (Europe/Paris)"
        )


def test_manual_never_fires() -> None:
    s = parse_schedule("manual")
    assert s.kind == "manual"
    assert s.next_after(NOW) is None
    assert "manual" in s.describe().lower()
