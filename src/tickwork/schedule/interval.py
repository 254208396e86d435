"""Interval schedules: ``30s``, ``1h30m``, ``every 2 days``, ``PT15M``, ``P1M``.

Fire times are ``anchor + k * step`` for k >= 0, each computed from the anchor (never
from the previous fire, so month clamping cannot drift: Jan 31 -> Feb 28 -> Mar 31).
Seconds, minutes and hours are exact elapsed time. Days, weeks and months step the
wall clock of the schedule's zone: the wall time is kept across DST, a wall time in a
gap fires at the first instant after the gap, one in an overlap at its first
occurrence. A step mixing both applies the calendar part to the wall clock first, then
adds the exact part.

A ``start_at`` written as a wall time in a DST gap (02:30 on a spring-forward day)
first fires at the first instant after the gap, and its calendar steps keep the wall
time written (02:30 the next day), not the shifted one. A stored schedule keeps only
instants, so that wall time travels in its anchor (``anchor_for_wall``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from tickwork.errors import ScheduleError
from tickwork.schedule.base import ParsedSchedule, not_aware, parse_iso_datetime
from tickwork.schedule.zones import (
    DAY,
    MAX_INSTANT,
    Zone,
    instant_of,
    local_wall,
    resolve_wall,
    to_datetime,
    wall_of_naive,
)

_US: Final = 1_000_000
_UNITS: Final = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), "s"),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), "m"),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "h"),
    **dict.fromkeys(("d", "day", "days"), "d"),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), "w"),
    **dict.fromkeys(("mo", "mos", "mon", "mons", "month", "months"), "mo"),
    **dict.fromkeys(("y", "yr", "yrs", "year", "years"), "y"),
}
_ORDER: Final = ("y", "mo", "w", "d", "h", "m", "s")
_NAMES: Final = {
    "y": "year",
    "mo": "month",
    "w": "week",
    "d": "day",
    "h": "hour",
    "m": "minute",
    "s": "second",
}
_ISO: Final = re.compile(
    r"p(?:(\d{1,9})y)?(?:(\d{1,9})m)?(?:(\d{1,9})w)?(?:(\d{1,9})d)?"
    r"(?:t(?:(\d{1,9})h)?(?:(\d{1,9})m)?(?:(\d{1,9})s)?)?"
)
_TERM: Final = re.compile(r"(\d{1,12})\s*([a-z]+)")
_SEPARATOR: Final = re.compile(r"\s*(?:,|\band\b|\s)\s*")
#: Past these a step could not fire twice before the year 9999.
_MAX_MONTHS: Final = 12 * 9999
_MAX_DAYS: Final = 3_652_059
_MAX_SECONDS: Final = _MAX_DAYS * DAY
_AVG_MONTH: Final = 2_629_746  # seconds in 1/4800 of 400 Gregorian years


@dataclass(frozen=True)
class Step:
    """One step of an interval: calendar months and days, then exact seconds."""

    months: int
    days: int
    seconds: int
    #: ``(count, unit)`` as written, units from ``_ORDER``, for descriptions.
    terms: tuple[tuple[int, str], ...]

    @property
    def calendar(self) -> bool:
        return bool(self.months or self.days)

    def text(self) -> str:
        """E.g. "5 minutes", "1 hour and 30 minutes", "month"."""
        words = [(f"{n} {_NAMES[u]}" if n == 1 else f"{n} {_NAMES[u]}s") for n, u in self.terms]
        if len(words) == 1 and self.terms[0][0] == 1:
            return _NAMES[self.terms[0][1]]
        return ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else words[0]


def _step(counts: dict[str, int], text: str) -> Step:
    months = counts.get("mo", 0) + 12 * counts.get("y", 0)
    days = counts.get("d", 0) + 7 * counts.get("w", 0)
    seconds = counts.get("s", 0) + 60 * counts.get("m", 0) + 3600 * counts.get("h", 0)
    if months == days == seconds == 0:
        raise ScheduleError(f"interval {text!r} must be longer than zero")
    if months > _MAX_MONTHS or days > _MAX_DAYS or seconds > _MAX_SECONDS:
        raise ScheduleError(f"interval {text!r} is too long (more than 9999 years)")
    terms = tuple((counts[u], u) for u in _ORDER if counts.get(u))
    return Step(months, days, seconds, terms)


def parse_interval(text: str) -> Step:
    """The step of an interval expression (``ScheduleError`` naming the bad part)."""
    low = " ".join(text.lower().split())
    every = False
    if low == "every" or low.startswith("every "):
        every = True
        low = low[5:].strip()
        if not low:
            raise ScheduleError("'every' needs an interval after it, e.g. 'every 5 minutes'")
    if low.startswith("-"):
        raise ScheduleError(f"interval {text.strip()!r} must be positive")
    if low.startswith("p"):
        return _parse_iso(low, text)
    if every and low in _UNITS:  # "every hour"
        return _step({_UNITS[low]: 1}, text)
    counts: dict[str, int] = {}
    pos = 0
    while pos < len(low):
        m = _TERM.match(low, pos)
        if m is None:
            rest = low[pos:]
            if re.match(r"\d+[.,]\d", rest):
                raise ScheduleError(
                    f"interval {text.strip()!r}: fractions are not supported; "
                    "use a smaller unit (90m, not 1.5h)"
                )
            if re.match(r"[a-z]", rest):
                raise ScheduleError(
                    f"interval {text.strip()!r}: a number must come before {rest.split()[0]!r}"
                )
            raise ScheduleError(f"interval {text.strip()!r}: cannot read {rest!r}")
        count, unit_text = int(m.group(1)), m.group(2)
        unit = _UNITS.get(unit_text)
        if unit is None:
            raise ScheduleError(
                f"unknown unit {unit_text!r} in interval {text.strip()!r} "
                "(use s, m, h, d, w, mo, y or their long forms)"
            )
        if unit in counts:
            raise ScheduleError(f"interval {text.strip()!r} gives {_NAMES[unit]}s twice")
        counts[unit] = count
        pos = m.end()
        sep = _SEPARATOR.match(low, pos)
        if sep is not None and sep.end() < len(low):
            pos = sep.end()
        elif sep is not None:
            raise ScheduleError(f"interval {text.strip()!r} ends with a separator")
    if not counts:
        raise ScheduleError(f"interval {text.strip()!r} is empty")
    return _step(counts, text.strip())


def _parse_iso(low: str, text: str) -> Step:
    m = _ISO.fullmatch(low)
    if m is None or low in ("p", "pt") or low.endswith("t"):
        raise ScheduleError(f"{text.strip()!r} is not an ISO-8601 duration like PT15M or P1D")
    y, mo, w, d, h, mi, s = (int(g) if g else 0 for g in m.groups())
    counts = {"y": y, "mo": mo, "w": w, "d": d, "h": h, "m": mi, "s": s}
    return _step({u: n for u, n in counts.items() if n}, text.strip())


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return (31, 0, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[month - 1]


def add_steps(
    zone: Zone, anchor_us: int, step: Step, k: int, wall_us: int | None = None
) -> int | None:
    """The instant (in microseconds) ``anchor + k * step``; None past the year 9999.
    ``wall_us``: the anchor's wall time when it is not the anchor's own (a wall in a
    gap, whose instant is the first one after it)."""
    if k == 0:
        return anchor_us
    if not step.calendar:
        result = anchor_us + k * step.seconds * _US
        return result if result <= MAX_INSTANT * _US else None
    if wall_us is None:
        secs, us = divmod(anchor_us, _US)
        wall = local_wall(zone, secs)
    else:
        wall, us = divmod(wall_us, _US)
    days, sod = divmod(wall, DAY)
    start = date.fromordinal(days)
    months = start.year * 12 + start.month - 1 + k * step.months
    year, m0 = divmod(months, 12)
    if year > 9999:
        return None
    day = min(start.day, _days_in_month(year, m0 + 1))
    ordinal = date(year, m0 + 1, day).toordinal() + k * step.days
    target = ordinal * DAY + sod
    if target > MAX_INSTANT:
        return None
    instant = resolve_wall(zone, target)
    if local_wall(zone, instant) != target:
        us = 0  # the wall time is in a gap: the first instant after it, exactly
    result = (instant + k * step.seconds) * _US + us
    return result if result <= MAX_INSTANT * _US else None


def _naive_us(wall: datetime) -> int:
    secs, us = wall_of_naive(wall)
    return secs * _US + us


def start_wall(value: object, zone: Zone) -> datetime | None:
    """The wall time a ``start_at`` names when it is one in a DST gap of ``zone`` (a
    naive datetime, or ISO text without an offset), as a naive datetime; None for an
    instant or a wall time that happens."""
    if isinstance(value, str):
        value = parse_iso_datetime(value, "start_at")
    if not isinstance(value, datetime) or value.utcoffset() is not None:
        return None
    wall, _ = wall_of_naive(value)
    if local_wall(zone, resolve_wall(zone, wall)) == wall:
        return None
    return value.replace(tzinfo=None, fold=0)


def anchor_for_wall(wall: datetime, zone: Zone) -> datetime:
    """The anchor that carries a gap wall time ``wall`` (from ``start_wall``): the wall
    read with the offset after the gap, an instant less than the gap's length before the
    first instant after it, which the start then is. ``wall_of_anchor`` reads it back."""
    w, us = wall_of_naive(wall)
    after = resolve_wall(zone, w)
    return to_datetime(w - (local_wall(zone, after) - after), UTC, us)


def wall_of_anchor(start: datetime, anchor: datetime, zone: Zone) -> datetime | None:
    """The gap wall time ``anchor_for_wall`` put in ``anchor`` for the start instant
    ``start``, as a naive datetime; None when the anchor carries none (``start`` is not
    the first instant after a gap, or the anchor is not within the gap's length before
    it)."""
    s, s_us = instant_of(start)
    a, a_us = instant_of(anchor)
    if s_us or a >= s:
        return None
    after = local_wall(zone, s) - s
    before = local_wall(zone, s - 1) - (s - 1)
    if after <= before or a < s - (after - before):
        return None
    wall = a + after
    if resolve_wall(zone, wall) != s:
        return None
    days, sod = divmod(wall, DAY)
    return datetime.fromordinal(days) + timedelta(seconds=sod, microseconds=a_us)


class IntervalSchedule(ParsedSchedule):
    """Every ``step`` from the anchor ``start_at`` (inclusive)."""

    kind = "interval"
    start_at: datetime

    def __init__(
        self,
        expression: str,
        timezone: str,
        tz: ZoneInfo,
        start_at: datetime,
        key: str | None,
        step: Step,
        wall: datetime | None = None,
    ) -> None:
        super().__init__(expression, timezone, tz, start_at, key)
        self.step = step
        #: The wall time of ``start_at`` as written, when that is in a DST gap (naive);
        #: calendar steps keep it.
        self.wall = wall
        s, us = instant_of(start_at)
        self._anchor_us = s * _US + us
        self._wall_us = None if wall is None else _naive_us(wall)
        self._approx_us = (step.months * _AVG_MONTH + step.days * DAY + step.seconds) * _US

    def fire(self, k: int) -> datetime | None:
        """The k-th fire time (k = 0 is the anchor)."""
        at = add_steps(self._zone, self._anchor_us, self.step, k, self._wall_us)
        return None if at is None else self._out(at)

    def _out(self, at_us: int) -> datetime | None:
        secs, us = divmod(at_us, _US)
        try:
            return to_datetime(secs, self.tz, us)
        except (OverflowError, ValueError):
            return None

    def next_after(self, dt: datetime) -> datetime | None:
        if not isinstance(dt, datetime) or dt.utcoffset() is None:
            raise not_aware(dt)
        s, us = instant_of(dt)
        t = s * _US + us
        a = self._anchor_us
        if t < a:
            return self._out(a)
        if not self.step.calendar:
            k = (t - a) // (self.step.seconds * _US) + 1
            return self._out(a + k * self.step.seconds * _US)
        zone, step, wall = self._zone, self.step, self._wall_us
        # Estimate k from the average step, then walk to the first fire after t
        # (fire times strictly increase with k; the estimate is off by at most one).
        k = max(1, (t - a) // self._approx_us)
        at = add_steps(zone, a, step, k, wall)
        if at is None:
            while k > 1:  # near the end of time: back off until representable
                k = max(1, k // 2)
                at = add_steps(zone, a, step, k, wall)
                if at is not None:
                    break
            if at is None:
                return None
        while at > t and k > 1:
            prev = add_steps(zone, a, step, k - 1, wall)
            if prev is None or prev <= t:
                break
            k -= 1
            at = prev
        while at <= t:
            k += 1
            nxt = add_steps(zone, a, step, k, wall)
            if nxt is None:
                return None
            at = nxt
        return self._out(at)

    def describe(self) -> str:
        text = f"Every {self.step.text()}"
        if not self.step.calendar:
            return text
        local = self.wall or self.start_at.astimezone(self.tz)
        when = f"{local:%H:%M}" if local.second == 0 else f"{local:%H:%M:%S}"
        if self.step.seconds:  # an exact part moves the time of day at each step
            return f"{text}, from {local:%Y-%m-%d} {when} ({self.timezone})"
        if self.step.months and not self.step.days:  # days would move the day too
            text += f" on day {local.day}" + (
                " (or the month's last day)" if local.day > 28 else ""
            )
        return f"{text} at {when}, from {local:%Y-%m-%d} ({self.timezone})"

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        if self.wall is not None:  # as written: parse_schedule reads it back the same
            d["start_at"] = self.wall.isoformat()
        return d
