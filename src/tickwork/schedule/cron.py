"""Cron expressions: parsing into a ``CronSpec`` and finding the next fire time fast.

Semantics: 5 fields ``min hour dom mon dow`` or 6 with seconds first; ``*``, lists,
ranges, steps, names, ``?``, ``L``, ``LW``, ``nW``, ``nL``, ``n#k``, macros and
Jenkins-style hashed ``H`` values (each field is parsed in ``cron_fields.py``); the
Vixie/Debian day rule (when dom or dow starts with ``*`` or ``?`` both must match, else
either); DST handled per ``CronSchedule.next_after``.

Speed: a spec holds, per time-of-day field, a table ``next[v]`` = the first allowed
value ``>= v``; per *month shape* (its length and the weekday of its 1st, 28 shapes in
all) a table of the first matching day ``>= d``; and, for expressions that match in few
months (``0 0 * 2 1#5``), the matching months of the 400-year Gregorian cycle. So
finding the next match jumps field by field and never loops over minutes or days, and
its cost does not grow with the distance to the next fire.
"""

from __future__ import annotations

import functools
from array import array
from bisect import bisect_left
from datetime import date, datetime
from typing import Final
from zoneinfo import ZoneInfo

from tickwork.errors import ScheduleError
from tickwork.schedule.base import ParsedSchedule, not_aware
from tickwork.schedule.cron_fields import (
    DOM,
    DOW,
    HOUR,
    MACROS,
    MINUTE,
    MONTH,
    SECOND,
    parse_field,
)
from tickwork.schedule.zones import DAY, MAX_INSTANT, UNIX_EPOCH, Table, instant_of, to_datetime

#: Longest search, in steps over DST windows, before answering "never" (a 6-field time
#: that exists only inside a zone's yearly gap, say).
_MAX_WINDOW_STEPS: Final = 1000
#: Months scanned one by one before using the 400-year index of matching months.
_SPARSE_AFTER: Final = 1
_CYCLE_MONTHS: Final = 4800  # 400 Gregorian years repeat exactly, weekdays included
_CYCLE_BASE: Final = 2000 * 12
_DAYS_IN_MONTH: Final = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _month_info(index: int) -> tuple[int, int]:
    """``(ordinal of the 1st, shape)`` of the month ``year * 12 + month - 1``; the shape
    is ``length * 8 + weekday of the 1st`` (0 = Sunday)."""
    info = _MONTHS.get(index)
    if info is None:
        year, m0 = divmod(index, 12)
        first = date(year, m0 + 1, 1).toordinal()
        length = _DAYS_IN_MONTH[m0 + 1]
        if m0 == 1 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
            length = 29
        info = (first, length * 8 + first % 7)
        _MONTHS[index] = info
    return info


_MONTHS: dict[int, tuple[int, int]] = {}


def _next_table(allowed: set[int], size: int) -> list[int]:
    """``t[v]`` = smallest allowed value ``>= v`` for ``v`` in ``0..size``, or -1."""
    table = [-1] * (size + 1)
    nxt = -1
    for v in range(size, -1, -1):
        if v in allowed:
            nxt = v
        table[v] = nxt
    return table


class CronSpec:
    """A compiled cron expression, shared by every schedule with the same text (and
    the same key when it has ``H``). Immutable but for caches that only fill."""

    def __init__(self, text: str, key: str) -> None:
        self.text = text
        fields = text.split()
        if len(fields) not in (5, 6):
            raise ScheduleError(
                f"a cron expression has 5 fields (minute hour day-of-month month "
                f"day-of-week) or 6 (seconds first), {text!r} has {len(fields)}"
            )
        self.six = len(fields) == 6
        if not self.six:
            fields.insert(0, "0")
        self.fields = tuple(fields)
        sec_t, min_t, hour_t, dom_t, mon_t, dow_t = fields
        sec = parse_field(sec_t, SECOND, key)
        minute = parse_field(min_t, MINUTE, key)
        hour = parse_field(hour_t, HOUR, key)
        dom = parse_field(dom_t, DOM, key)
        month = parse_field(mon_t, MONTH, key)
        dow = parse_field(dow_t, DOW, key)
        self.seconds = tuple(sorted(sec.values))
        self.minutes = tuple(sorted(minute.values))
        self.hours = tuple(sorted(hour.values))
        self.months = tuple(sorted(month.values))
        self.dom_values = frozenset(dom.values)
        self.dom_last = dom.last
        self.dom_last_weekday = dom.last_weekday
        self.dom_nearest = tuple(sorted(set(dom.nearest)))
        self.dow_values = frozenset(v % 7 for v in dow.values)
        self.dow_last = tuple(sorted(set(dow.last_of)))
        self.dow_nth = tuple(sorted(set(dow.nth)))
        self.dom_star = dom_t[0] in "*?"
        self.dow_star = dow_t[0] in "*?"
        #: Vixie/Debian: both must match when either field starts with '*' (or '?').
        self.day_and = self.dom_star or self.dow_star
        #: 5-field times with fixed minute and hour follow the wall clock across DST.
        self.wall_clock = not self.six and min_t[0] != "*" and hour_t[0] != "*"

        self.sec_next = _next_table(sec.values, 60)
        self.min_next = _next_table(minute.values, 60)
        self.hour_next = _next_table(hour.values, 24)
        months = _next_table(month.values, 13)
        self.month_next = [0 if v < 0 else v for v in months]
        self.first_month = self.months[0]
        self.first_minute_second = self.minutes[0] * 60 + self.seconds[0]
        self.first_time = self.hours[0] * 3600 + self.first_minute_second
        #: (first ordinal, end ordinal, day table) of the month of the last answer.
        self._month: tuple[int, int, list[int]] = (0, 0, [])
        #: 5 fields: ``t[m]`` = second of the day of the first matching minute >= minute
        #: ``m`` of the day (m = 0..1440), or -1. Built by the first search (parsing many
        #: schedules stays cheap).
        self._minutes_of_day: array[int] | None = None
        self._shapes: dict[int, list[int]] = {}
        self._cycle: array[int] | None = None
        if not self._ever_matches_a_day():
            raise ScheduleError(f"{text!r} never fires")

    # -- days ------------------------------------------------------------------------

    def days_of_shape(self, length: int, first_dow: int) -> list[int]:
        """Matching days of a month with ``length`` days whose 1st is ``first_dow``."""
        dom: set[int] = {d for d in self.dom_values if d <= length}
        if self.dom_last:
            dom.add(length)
        if self.dom_last_weekday:
            last_dow = (first_dow + length - 1) % 7
            dom.add(length - 1 if last_dow == 6 else length - 2 if last_dow == 0 else length)
        for n in self.dom_nearest:
            if n > length:
                continue
            wd = (first_dow + n - 1) % 7
            if wd == 6:  # Saturday: the Friday before, or Monday if n is the 1st
                n = n - 1 if n > 1 else n + 2
            elif wd == 0:  # Sunday: the Monday after, or Friday if n is the last day
                n = n + 1 if n < length else n - 2
            dom.add(n)
        dow: set[int] = {
            d for d in range(1, length + 1) if (first_dow + d - 1) % 7 in self.dow_values
        }
        for wd in self.dow_last:
            first = 1 + (wd - first_dow) % 7
            dow.add(first + 7 * ((length - first) // 7))
        for wd, k in self.dow_nth:
            d = 1 + (wd - first_dow) % 7 + 7 * (k - 1)
            if d <= length:
                dow.add(d)
        days = dom & dow if self.day_and else dom | dow
        return sorted(days)

    def _shape_table(self, shape: int) -> list[int]:
        """``t[d]`` = first matching day ``>= d`` (0 when none) for ``d`` in 0..32."""
        table = self._shapes.get(shape)
        if table is None:
            days = set(self.days_of_shape(shape >> 3, shape & 7))
            table = [0] * 33
            nxt = 0
            for d in range(32, -1, -1):
                if d in days:
                    nxt = d
                table[d] = nxt
            self._shapes[shape] = table
        return table

    def _ever_matches_a_day(self) -> bool:
        for month in self.months:
            lengths = (28, 29) if month == 2 else (_DAYS_IN_MONTH[month],)
            for length in lengths:
                for first_dow in range(7):
                    if self._shape_table(length * 8 + first_dow)[1]:
                        return True
        return False

    def _next_matching_month(self, index: int) -> int:
        """The first month index ``>= index`` with a matching day (400-year index)."""
        cycle = self._cycle
        if cycle is None:
            # Built only for expressions with two empty months in a row (leap days,
            # fifth weekdays of February...): 2 bytes per matching month.
            cycle = array("H")
            allowed = set(self.months)
            for p in range(_CYCLE_MONTHS):
                idx = _CYCLE_BASE + p
                if idx % 12 + 1 in allowed and self._shape_table(_month_info(idx)[1])[1]:
                    cycle.append(p)
            self._cycle = cycle
        p = (index - _CYCLE_BASE) % _CYCLE_MONTHS
        i = bisect_left(cycle, p)
        if i < len(cycle):
            return index + cycle[i] - p
        return index + _CYCLE_MONTHS - p + cycle[0]

    # -- the search --------------------------------------------------------------------

    def next_wall(self, lo: int) -> int | None:
        """The first matching wall time ``>= lo`` (seconds since 0001-01-01), or None
        when it would be past the year 9999."""
        days, sod = divmod(lo, DAY)
        first, end, table = self._month
        if first <= days < end:  # the month of the last answer: no calendar math
            d = days - first + 1
            nd = table[d]
            if nd == d:
                minutes = self._minutes_of_day  # 5 fields: whole minutes, one lookup
                tod = minutes[(sod + 59) // 60] if minutes is not None else self._time_of_day(sod)
                if tod >= 0:
                    return lo - sod + tod
                nd = table[d + 1]
            if nd:
                return (first + nd - 1) * DAY + self.first_time
            return self._search(end * DAY)
        return self._search(lo)

    def _time_of_day(self, sod: int) -> int:
        """The first matching second of a day ``>= sod``, or -1."""
        h, rem = divmod(sod, 3600)
        mi, s = divmod(rem, 60)
        nh = self.hour_next[h]
        if nh != h:
            return -1 if nh < 0 else nh * 3600 + self.first_minute_second
        min_next = self.min_next
        nmi = min_next[mi]
        if nmi == mi:
            ns = self.sec_next[s]
            if ns >= 0:
                return sod - s + ns
            nmi = min_next[mi + 1]
        if nmi >= 0:
            return h * 3600 + nmi * 60 + self.seconds[0]
        nh = self.hour_next[h + 1]
        return -1 if nh < 0 else nh * 3600 + self.first_minute_second

    def _build_minutes_of_day(self) -> None:
        allowed = {h * 60 + m for h in self.hours for m in self.minutes}
        table = [-1] * 1441
        nxt = -1
        for m in range(1439, -1, -1):
            if m in allowed:
                nxt = m * 60
            table[m] = nxt
        self._minutes_of_day = array("i", table)  # 6 KB: specs are cached by the thousand

    def _search(self, lo: int) -> int | None:
        """``next_wall`` the long way: month, day, hour, minute, second."""
        if self._minutes_of_day is None and not self.six:
            self._build_minutes_of_day()
        days, sod = divmod(lo, DAY)
        if days < 1:
            days, sod = 1, 0
        if days > 3652059:  # date.max
            return None
        h, rem = divmod(sod, 3600)
        mi, s = divmod(rem, 60)
        d0 = date.fromordinal(days)
        y, mo, d = d0.year, d0.month, d0.day
        month_next = self.month_next
        hour_next = self.hour_next
        min_next = self.min_next
        sec_next = self.sec_next
        shapes = self._shapes
        empty_months = 0
        while True:
            nm = month_next[mo]
            if nm != mo:
                if nm == 0:
                    y += 1
                    mo = self.first_month
                else:
                    mo = nm
                d = 1
                h = mi = s = 0
            if y > 9999:
                return None
            index = y * 12 + mo - 1
            info = _MONTHS.get(index) or _month_info(index)
            shape = info[1]
            table = shapes.get(shape) or self._shape_table(shape)
            nd = table[d]
            if nd == 0:
                empty_months += 1
                if empty_months > _SPARSE_AFTER:
                    y, m0 = divmod(self._next_matching_month(index + 1), 12)
                    mo = m0 + 1
                else:
                    mo += 1
                    if mo == 13:
                        y += 1
                        mo = self.first_month
                d = 1
                h = mi = s = 0
                continue
            if nd != d:
                d = nd
                h = mi = s = 0
            nh = hour_next[h]
            if nh < 0:
                d += 1
                h = mi = s = 0
                continue
            if nh != h:
                h = nh
                mi = s = 0
            nmi = min_next[mi]
            if nmi < 0:
                h += 1
                mi = s = 0
                continue
            if nmi != mi:
                mi = nmi
                s = 0
            ns = sec_next[s]
            if ns < 0:
                mi += 1
                s = 0
                continue
            self._month = (info[0], info[0] + (shape >> 3), table)
            return (info[0] + d - 1) * DAY + h * 3600 + mi * 60 + ns

    def matches_wall(self, wall: int) -> bool:
        """Whether a wall time matches every field (for tests and tools)."""
        return self.next_wall(wall) == wall


@functools.lru_cache(maxsize=4096)
def _compile(text: str, key: str) -> CronSpec:
    return CronSpec(text, key)


def compile_cron(expression: str, key: str | None) -> CronSpec:
    """The compiled spec of a cron expression or macro (cached)."""
    text = " ".join(expression.split())
    if text.startswith("@"):
        macro = MACROS.get(text.lower())
        if macro is None:
            names = ", ".join(MACROS)
            raise ScheduleError(f"unknown cron macro {text!r}; use one of {names}")
        text = macro
    # The key matters only for H: leave it out of the cache key otherwise.
    return _compile(text, (key or "") if "H" in text.upper() else "")


class CronSchedule(ParsedSchedule):
    """A cron expression in a time zone.

    DST: when the spec follows the wall clock (5 fields, minute and hour not starting
    with ``*``), a matching wall time in a gap fires once at the first instant after the
    gap, and one in an overlap fires once at its first occurrence. Otherwise the
    schedule fires at each real instant whose local time matches.
    """

    kind = "cron"

    def __init__(
        self,
        expression: str,
        timezone: str,
        tz: ZoneInfo,
        start_at: datetime | None,
        key: str | None,
        spec: CronSpec,
    ) -> None:
        super().__init__(expression, timezone, tz, start_at, key)
        self.spec = spec
        self._not_before = -1  # fires are > this instant
        if start_at is not None:
            s, us = instant_of(start_at)
            self._not_before = s - (0 if us else 1)
        #: (first instant, end instant, offset) of the fast path's window.
        self._window = (0, 0, 0, 0)

    def next_after(self, dt: datetime) -> datetime | None:
        off = dt.utcoffset() if isinstance(dt, datetime) else None
        if off is None:
            raise not_aware(dt)
        if off.microseconds:
            after = instant_of(dt)[0]
        else:
            after = (
                dt.toordinal() * DAY
                + dt.hour * 3600
                + dt.minute * 60
                + dt.second
                - off.days * DAY
                - off.seconds
            )
        if after < self._not_before:
            after = self._not_before
        # Fast paths: ``after`` in the offset window of the last answer.
        lo, hi, offset, far = self._window
        known: tuple[int, int | None] | None = None
        if lo <= after < hi:
            lo_wall = after + offset + 1
            w = self.spec.next_wall(lo_wall)
            if w is not None:
                if w - offset < hi:  # the answer is in the same window
                    return datetime.fromtimestamp(w - offset - UNIX_EPOCH, self.tz)
                if after < far:
                    # No overlap right after this window repeats walls below ``lo_wall``,
                    # so the answer is ``w`` in the first window holding it.
                    t = self._zone.table_for(w)
                    j = t.holding_wall(w)
                    if w >= t.wall_starts[j]:
                        found = w - t.offsets[j]
                    elif self.spec.wall_clock:
                        found = t.starts[j]  # in a gap: the first instant after it
                    else:
                        found = -1  # real instants: search on after the gap, below
                    if 0 <= found <= MAX_INSTANT:
                        self._remember_window(t, t.window(found))
                        return datetime.fromtimestamp(found - UNIX_EPOCH, self.tz)
            known = (lo_wall, w)
        slow = self.next_instant(after, known)
        if slow is None or slow > MAX_INSTANT:
            return None
        t = self._zone.table_for(slow)
        self._remember_window(t, t.window(slow))
        return to_datetime(slow, self.tz)

    def _remember_window(self, t: Table, k: int) -> None:
        """Cache window ``k`` for the fast paths of the next call: ``(lo, hi, offset,
        far)``. For ``after`` in ``[lo, hi)`` the answer is the first matching wall after
        ``local(after)``, in this window if before ``hi``; for ``after`` before ``far``
        no overlap right after the window repeats walls already passed."""
        lo = t.starts[k]
        offset = t.offsets[k]
        if self.spec.wall_clock and k > 0:
            # Not in the second pass of an overlap (the clock read those walls already).
            lo = max(lo, t.wall_ends[k - 1] - offset)
        last = k + 1 >= len(t.starts)
        hi = min(t.safe_hi if last else t.starts[k + 1], t.safe_hi, MAX_INSTANT + 1)
        lo = max(lo, t.safe_lo)
        far = hi
        if not self.spec.wall_clock and not last:
            far = hi + min(0, t.offsets[k + 1] - offset)
        self._window = (lo, hi, offset, far)

    def next_instant(self, after: int, known: tuple[int, int | None] | None = None) -> int | None:
        """The first fire instant strictly after the instant ``after``. ``known`` is an
        already computed ``(lo, next_wall(lo))``."""
        if after >= MAX_INSTANT:
            return None
        if self.spec.wall_clock:
            return self._next_wall_clock(after, known)
        return self._next_real(after, known)

    def _wall_from(self, lo: int, known: tuple[int, int | None] | None) -> int | None:
        if known is not None and known[0] == lo:
            return known[1]
        return self.spec.next_wall(lo)

    def _next_real(self, after: int, known: tuple[int, int | None] | None) -> int | None:
        """Every real instant whose local time matches: walls in a gap never happen,
        walls in an overlap happen twice."""
        zone = self._zone
        t = zone.table_for(after)
        k = t.window(after)
        lo = after + t.offsets[k] + 1
        for _ in range(_MAX_WINDOW_STEPS):
            w = self._wall_from(lo, known)
            if w is None:
                return None
            if w < t.wall_ends[k] and w < t.safe_hi:
                return w - t.offsets[k]
            # Past window k. An overlap right after it repeats walls below ``lo``.
            if k + 1 < len(t.starts) and t.wall_starts[k + 1] < lo:
                k += 1
                lo = t.wall_starts[k]
                continue
            if w < t.safe_hi - 2 * DAY:
                j = t.window_ending_after(w, k + 1)
            else:  # far ahead: the windows in between hold no match
                t = zone.table_for(w)
                j = t.holding_wall(w)
            if w >= t.wall_starts[j]:
                return w - t.offsets[j]
            k = j  # ``w`` is in a gap: look again from its end
            lo = t.wall_starts[j]
        return None

    def _next_wall_clock(self, after: int, known: tuple[int, int | None] | None) -> int | None:
        """Each matching wall time once, at the first instant the clock reads it or,
        for a wall in a gap, at the first instant after the gap."""
        zone = self._zone
        t = zone.table_for(after)
        k = t.window(after)
        local = after + t.offsets[k]
        lo = local + 1
        # In the second pass of an overlap the clock has already read the walls up to
        # the end of the previous window.
        if k > 0 and local < t.wall_ends[k - 1]:
            lo = t.wall_ends[k - 1]
        w = self._wall_from(lo, known)
        if w is None:
            return None
        if w < t.wall_ends[k] and w < t.safe_hi:
            return w - t.offsets[k]
        if w < t.safe_hi - 2 * DAY:
            j = t.window_ending_after(w, k + 1)
        else:
            t = zone.table_for(w)
            j = t.holding_wall(w)
        if w >= t.wall_starts[j]:
            return w - t.offsets[j]
        return t.starts[j]

    def describe(self) -> str:
        from tickwork.schedule.describe import describe_cron

        text = describe_cron(self.spec)
        return text if self.timezone == "UTC" else f"{text} ({self.timezone})"
