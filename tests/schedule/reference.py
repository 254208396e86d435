"""A slow, obviously-correct cron matcher to check the fast one against.

It takes the field values from the parser (checked by the table tests) but matches
days with ``calendar`` and walks time one minute (or second) at a time, converting
each instant with ``zoneinfo``: no offset windows, no day tables, no jumps.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from tickwork.schedule import CronSpec


def _last_weekday(year: int, month: int) -> int:
    last = calendar.monthrange(year, month)[1]
    while date(year, month, last).weekday() >= 5:
        last -= 1
    return last


def _nearest_weekday(year: int, month: int, n: int) -> int | None:
    last = calendar.monthrange(year, month)[1]
    if n > last:
        return None
    wd = date(year, month, n).weekday()  # Monday = 0
    if wd == 5:  # Saturday
        return n - 1 if n > 1 else n + 2
    if wd == 6:  # Sunday
        return n + 1 if n < last else n - 2
    return n


def day_matches(spec: CronSpec, d: date) -> bool:
    last = calendar.monthrange(d.year, d.month)[1]
    dom = (
        d.day in spec.dom_values
        or (spec.dom_last and d.day == last)
        or (spec.dom_last_weekday and d.day == _last_weekday(d.year, d.month))
        or any(_nearest_weekday(d.year, d.month, n) == d.day for n in spec.dom_nearest)
    )
    cron_dow = (d.weekday() + 1) % 7
    dow = (
        cron_dow in spec.dow_values
        or any(cron_dow == wd and d.day + 7 > last for wd in spec.dow_last)
        or any(cron_dow == wd and (d.day - 1) // 7 + 1 == k for wd, k in spec.dow_nth)
    )
    return (dom and dow) if spec.day_and else (dom or dow)


def wall_matches(spec: CronSpec, w: datetime) -> bool:
    """Whether a naive local date-time matches every field."""
    return (
        w.second in spec.seconds
        and w.minute in spec.minutes
        and w.hour in spec.hours
        and w.month in spec.months
        and day_matches(spec, w.date())
    )


def exists(w: datetime, tz: ZoneInfo) -> bool:
    """Whether the naive wall time ``w`` is read by the clock of ``tz`` at some instant."""
    aware = w.replace(tzinfo=tz)
    return aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == w


def brute_next(
    spec: CronSpec, tz: ZoneInfo, after: datetime, horizon: timedelta
) -> datetime | None:
    """The first fire strictly after ``after`` within ``horizon``, or None."""
    step = timedelta(seconds=1) if spec.six else timedelta(minutes=1)
    after_utc = after.astimezone(UTC)
    if spec.wall_clock:
        # Walls from well before ``after`` (an overlap can hold earlier walls) onward;
        # the first matching wall whose first instant is after ``after`` wins.
        w = after.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0)
        w -= timedelta(hours=3)
        end = w + horizon + timedelta(hours=6)
        while w <= end:
            if wall_matches(spec, w):
                at = _first_instant_exact(w, tz)
                if at > after_utc:
                    return at.astimezone(tz)
            w += step
        return None
    u = after_utc.replace(microsecond=0)
    if not spec.six:
        u = u.replace(second=0)
    end = after_utc + horizon
    u += step
    while u <= end:
        if u > after_utc:
            local = u.astimezone(tz)
            if wall_matches(spec, local.replace(tzinfo=None)):
                return local
        u += step
    return None


def _first_instant_exact(w: datetime, tz: ZoneInfo) -> datetime:
    """``first_instant`` for a wall in a gap: the transition instant itself (found by
    bisecting real instants, independent of how the schedule layer finds it)."""
    if exists(w, tz):
        return w.replace(tzinfo=tz, fold=0).astimezone(UTC)
    # The instant the clock jumps over ``w``: the first instant whose wall is > w.
    lo = w.replace(tzinfo=tz, fold=0).astimezone(UTC) - timedelta(days=1)
    hi = lo + timedelta(days=2)
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        mid = mid.replace(microsecond=0)
        if mid.astimezone(tz).replace(tzinfo=None) > w:
            hi = mid
        else:
            lo = mid
    return hi
