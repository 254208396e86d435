"""Properties of next_after, checked with hypothesis against a brute-force search.

- nothing matches strictly between ``t`` and ``next_after(t)``: the answer is exactly
  the first match a minute-by-minute (or second-by-second) walk finds;
- results strictly increase and are stable: ``next_after(t') == next_after(t)`` for
  every ``t'`` in ``[t, next_after(t))``;
- a result is never a local time that does not exist, and is in the schedule's zone;
- intervals: fire ``k`` is ``anchor + k * step``, increasing, and calendar steps keep
  the anchor's wall time unless it falls in a gap.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from random import Random
from zoneinfo import ZoneInfo

from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.schedule.reference import brute_next, exists, wall_matches
from tests.schedule.strategies import (
    DST_ZONES,
    ZONES,
    cron_expressions,
    instants_near_transitions,
    transitions,
)
from tickwork.schedule import CronSchedule, IntervalSchedule, ScheduleError, parse_schedule


def utc(dt: datetime) -> datetime:
    return dt.astimezone(UTC)


def check_exists(dt: datetime, zone: str) -> None:
    """``dt`` is in ``zone`` and names a real instant: it survives a UTC round trip."""
    assert str(dt.tzinfo) == zone
    back = utc(dt).astimezone(ZoneInfo(zone))
    assert back.replace(tzinfo=None) == dt.replace(tzinfo=None)
    assert back.utcoffset() == dt.utcoffset()
    assert exists(dt.replace(tzinfo=None), ZoneInfo(zone))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_next_after_is_the_first_match(data: st.DataObject) -> None:
    """Four successive calls on one schedule object (so its fast paths and caches are
    used), each checked against the brute-force walk."""
    expr = data.draw(cron_expressions(frequent=True), label="expr")
    zone = data.draw(st.sampled_from(DST_ZONES), label="zone")
    after = data.draw(instants_near_transitions(zone), label="after")
    s = parse_schedule(expr, zone)
    assert isinstance(s, CronSchedule)
    tz = ZoneInfo(zone)
    horizon = timedelta(hours=3) if s.spec.six else timedelta(days=4)
    for _ in range(4):
        expected = brute_next(s.spec, tz, after, horizon)
        got = s.next_after(after)
        if expected is None:
            assert got is None or utc(got) > utc(after) + horizon - timedelta(hours=7)
            return
        assert got is not None
        assert utc(got) == utc(expected), (expr, zone, after)
        assert got.utcoffset() == expected.utcoffset()
        after = got


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_results_increase_exist_and_are_stable(data: st.DataObject) -> None:
    expr = data.draw(cron_expressions(), label="expr")
    zone = data.draw(st.sampled_from(ZONES), label="zone")
    after = data.draw(instants_near_transitions(zone), label="after")
    seed = data.draw(st.integers(0, 2**32), label="seed")
    r = Random(seed)
    try:
        s = parse_schedule(expr, zone)
    except ScheduleError:  # can never fire (e.g. '*/10' days that are a 4th Wednesday)
        return
    assert isinstance(s, CronSchedule)
    t = after
    for _ in range(8):
        n = s.next_after(t)
        if n is None:
            return
        assert utc(n) > utc(t)
        check_exists(n, zone)
        local = n.replace(tzinfo=None)
        if not s.spec.wall_clock:
            assert wall_matches(s.spec, local)
        else:
            # A wall-clock time matches, or it is the end of a gap it was moved to.
            moved = any(utc(n) == tr for tr in transitions(zone))
            assert wall_matches(s.spec, local) or moved
        # Stable: anything in [t, n) gives n again.
        gap = (utc(n) - utc(t)).total_seconds()
        probe = utc(t) + timedelta(seconds=r.uniform(0, gap))
        if probe < utc(n):
            again = s.next_after(probe.astimezone(ZoneInfo(r.choice(ZONES))))
            assert again is not None and utc(again) == utc(n)
        t = n


_UNITS = ["s", "m", "h", "d", "w", "mo"]


@st.composite
def intervals(draw: st.DrawFn) -> str:
    units = draw(st.lists(st.sampled_from(_UNITS), min_size=1, max_size=3, unique=True))
    units.sort(key=_UNITS.index, reverse=True)
    return "".join(f"{draw(st.integers(1, 40))}{u}" for u in units)


@settings(max_examples=300, deadline=None)
@given(
    intervals(),
    st.sampled_from(ZONES),
    st.datetimes(min_value=datetime(2023, 1, 1), max_value=datetime(2026, 12, 31)),
    st.integers(0, 200),
)
# Sydney's gap 2023-10-01 02:00 -> 03:00: fire 1 of a monthly 02:30 moves to 03:00.
@example("1mo", "Australia/Sydney", datetime(2023, 9, 1, 2, 30), 0)
def test_intervals_step_from_the_anchor(expr: str, zone: str, anchor: datetime, k0: int) -> None:
    s = parse_schedule(expr, zone, start_at=anchor)
    assert isinstance(s, IntervalSchedule)
    tz = ZoneInfo(zone)
    fires = [s.fire(k) for k in range(k0, k0 + 6)]
    for a, b in itertools.pairwise(fires):
        assert a is not None and b is not None and utc(a) < utc(b)
    for k, f in enumerate(fires, start=k0):
        assert f is not None
        check_exists(f, zone)
        # next_after just before fire k is fire k; at fire k it is fire k + 1. "Just
        # before" is 1 µs earlier in UTC: the same subtraction on the local wall clock
        # would land in the DST gap when fire k is the first instant after one.
        assert utc(s.next_after(utc(f) - timedelta(microseconds=1)) or f) == utc(f)
        nxt = s.next_after(f)
        assert nxt is not None and utc(nxt) == utc(s.fire(k + 1) or nxt)
        if s.step.calendar and not s.step.seconds:
            start = s.start_at.astimezone(tz)
            wall_kept = (f.hour, f.minute, f.second) == (start.hour, start.minute, start.second)
            if not wall_kept:  # only when that wall time is in a gap that day
                want = f.replace(hour=start.hour, minute=start.minute, second=start.second)
                assert not exists(want.replace(tzinfo=None), tz)
        if not s.step.calendar:
            elapsed = (utc(f) - s.start_at).total_seconds()
            assert elapsed == k * s.step.seconds
