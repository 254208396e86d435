"""Time zones as integer offset windows, so schedule math never loops over wall time.

The rest of ``tickwork.schedule`` works on integers:

* an *instant* is a count of seconds since 0001-01-01T00:00 UTC (proleptic Gregorian),
* a *wall* time is the same count for the reading of the zone's clock.

A zone is a sorted list of *windows*: spans ``[start, end)`` of instants with one UTC
offset, so ``wall = instant + offset`` inside a window. Between two windows the clock
jumps: forward (a *gap*: the walls ``[end + old, end + new)`` never happen) or backward
(an *overlap*: the walls ``[end + new, end + old)`` happen twice).

``zoneinfo`` does not expose its transitions, so they are found by probing the offset
once a day and bisecting to the second where it changes, a year at a time, lazily, and
cached per zone. Two transitions less than a day apart that cancel each other would be
missed; the IANA database has none since the nineteenth century. Tables are immutable
snapshots replaced whole when they grow, so readers never see a half-built table.
"""

from __future__ import annotations

import functools
from bisect import bisect_right
from datetime import date, datetime, timedelta, timezone, tzinfo

DAY = 86400
#: Instant of 1970-01-01T00:00 UTC.
UNIX_EPOCH = date(1970, 1, 1).toordinal() * DAY
MIN_YEAR = 1
MAX_YEAR = 9999
#: Beyond every instant a datetime can hold.
NEG_INF = -(1 << 62)
POS_INF = 1 << 62
#: First and last instants a result may have (1 day of margin for any offset).
MIN_INSTANT = date(MIN_YEAR, 1, 2).toordinal() * DAY
MAX_INSTANT = date(MAX_YEAR, 12, 30).toordinal() * DAY

_FIXED_KEYS = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/GMT", "GMT", "Etc/Zulu", "Zulu"})


def year_start(year: int) -> int:
    """The instant (or wall) of January 1st, 00:00 of ``year`` (1..10000)."""
    if year > MAX_YEAR:
        return (date(MAX_YEAR, 12, 31).toordinal() + 1) * DAY
    return date(year, 1, 1).toordinal() * DAY


def year_of(seconds: int) -> int:
    """The year of an instant or wall, clamped to 1..9999."""
    days = seconds // DAY
    if days < 1:
        return MIN_YEAR
    if days > date.max.toordinal():
        return MAX_YEAR
    return date.fromordinal(days).year


class Table:
    """An immutable view of a zone's windows, trusted for instants in ``[safe_lo, safe_hi)``.

    Window ``k`` spans instants ``[starts[k], starts[k + 1])`` with ``offsets[k]``; its
    walls are ``[wall_starts[k], wall_ends[k])``. The first window starts at ``NEG_INF``
    and the last ends at ``POS_INF``. A table covers 16 years and holds the transitions
    of one more year on each side, so the windows just before ``safe_lo`` and just after
    ``safe_hi`` are exact too.
    """

    __slots__ = ("monotone", "offsets", "safe_hi", "safe_lo", "starts", "wall_ends", "wall_starts")

    def __init__(self, safe_lo: int, safe_hi: int, starts: list[int], offsets: list[int]) -> None:
        self.safe_lo = safe_lo
        self.safe_hi = safe_hi
        self.starts = starts
        self.offsets = offsets
        n = len(starts)
        self.wall_starts = [NEG_INF] + [starts[k] + offsets[k] for k in range(1, n)]
        self.wall_ends = [starts[k + 1] + offsets[k] for k in range(n - 1)] + [POS_INF]
        ends = self.wall_ends
        #: Walls end in increasing order (true unless a window is shorter than an
        #: offset change); then the window holding a wall is found by bisection.
        self.monotone = all(ends[k] < ends[k + 1] for k in range(n - 1))

    def window(self, instant: int) -> int:
        """Index of the window holding ``instant``."""
        return bisect_right(self.starts, instant) - 1

    def window_ending_after(self, wall: int, k: int) -> int:
        """The first window at or after ``k`` whose walls end after ``wall``."""
        ends = self.wall_ends
        if self.monotone:
            return bisect_right(ends, wall, k)
        while ends[k] <= wall:
            k += 1
        return k

    def holding_wall(self, wall: int) -> int:
        """The first window whose walls end after ``wall``: the one holding it (its
        first occurrence), or the one right after the gap it is in. ``wall`` must be
        within ``[safe_lo, safe_hi)``."""
        # No window ending two days before ``wall`` can hold it: offsets are under a day.
        return self.window_ending_after(wall, self.window(wall - 2 * DAY))


def _offset(tz: tzinfo, instant: int) -> int:
    """The zone's UTC offset in whole seconds at ``instant``."""
    off = datetime.fromtimestamp(instant - UNIX_EPOCH, tz).utcoffset()
    assert off is not None
    return off.days * DAY + off.seconds


#: Probe spacing. Two transitions closer than this that cancel out would be missed;
#: the IANA database has none.
_PROBE = 7 * DAY
_MAX_TABLES = 1024
#: Years per table: most jumps (even every 4 years) stay within one table.
_BLOCK_YEARS = 16


class Zone:
    """The windows of one time zone, probed a year at a time on demand and shared by
    every schedule in that zone."""

    __slots__ = ("_last", "_tables", "_years", "fixed", "tz")

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        key = getattr(tz, "key", None)
        fixed: int | None = None
        if isinstance(tz, timezone):
            off = tz.utcoffset(None)
            fixed = off.days * DAY + off.seconds
        elif key in _FIXED_KEYS or (isinstance(key, str) and key.startswith("Etc/")):
            fixed = _offset(tz, UNIX_EPOCH)
        self.fixed = fixed is not None
        #: year -> (offset at its start, transitions in (its start, next year's start])
        self._years: dict[int, tuple[int, list[tuple[int, int]]]] = {}
        self._tables: dict[int, Table] = {}
        if fixed is not None:
            self._last = Table(NEG_INF, POS_INF, [NEG_INF], [fixed])
        else:
            self._last = Table(POS_INF, NEG_INF, [NEG_INF], [0])

    def table_for(self, instant: int) -> Table:
        """A table trusted at ``instant`` (its block of 16 years)."""
        t = self._last
        if t.safe_lo <= instant < t.safe_hi:
            return t
        block = year_of(instant) // _BLOCK_YEARS
        t2 = self._tables.get(block)
        if t2 is None:
            t2 = self._build(block)
            if len(self._tables) >= _MAX_TABLES:
                self._tables.clear()
            self._tables[block] = t2
        self._last = t2
        return t2

    def _build(self, block: int) -> Table:
        """The table of years ``[block * 16, block * 16 + 16)``, with the transitions of
        one more year on each side."""
        lo_year = block * _BLOCK_YEARS
        hi_year = lo_year + _BLOCK_YEARS
        first = max(MIN_YEAR, lo_year - 1)
        last = min(MAX_YEAR, hi_year)
        starts = [NEG_INF]
        offsets = [self._year(first)[0]]
        for y in range(first, last + 1):
            for instant, off in self._year(y)[1]:
                starts.append(instant)
                offsets.append(off)
        safe_lo = NEG_INF if lo_year <= MIN_YEAR else year_start(lo_year)
        safe_hi = POS_INF if hi_year > MAX_YEAR else year_start(hi_year)
        return Table(safe_lo, safe_hi, starts, offsets)

    def _year(self, year: int) -> tuple[int, list[tuple[int, int]]]:
        data = self._years.get(year)
        if data is None:
            data = self._probe(year)
            self._years[year] = data
        return data

    def _probe(self, year: int) -> tuple[int, list[tuple[int, int]]]:
        t = year_start(year)
        end = year_start(year + 1)
        first = prev = self._safe_offset(t, None)
        found: list[tuple[int, int]] = []
        while t < end:
            nxt = min(t + _PROBE, end)
            off = self._safe_offset(nxt, prev)
            if off != prev:
                a, b = t, nxt  # offset(a) == prev, offset(b) != prev
                while b - a > 1:
                    mid = (a + b) // 2
                    if self._safe_offset(mid, prev) == prev:
                        a = mid
                    else:
                        b = mid
                found.append((b, self._safe_offset(b, prev)))
                prev = found[-1][1]
                # Another transition may hide between b and nxt: probe from b.
                t = b
                continue
            t = nxt
        return first, found

    def _safe_offset(self, instant: int, default: int | None) -> int:
        try:
            return _offset(self.tz, instant)
        except (OverflowError, ValueError, OSError):  # the ends of datetime's range
            return 0 if default is None else default


@functools.lru_cache(maxsize=1024)
def zone_for(tz: tzinfo) -> Zone:
    """The shared windows of ``tz`` (ZoneInfo instances are cached per key, so this is
    one table per zone)."""
    return Zone(tz)


def instant_of(dt: datetime) -> tuple[int, int]:
    """``(seconds, microseconds)`` of an aware datetime as an instant."""
    off = dt.utcoffset()
    if off is None:
        raise ValueError("naive datetime")
    secs = dt.toordinal() * DAY + dt.hour * 3600 + dt.minute * 60 + dt.second
    if off.microseconds:
        total = secs * 1_000_000 + dt.microsecond - (off // timedelta(microseconds=1))
        s, us = divmod(total, 1_000_000)
        return s, us
    return secs - off.days * DAY - off.seconds, dt.microsecond


def wall_of_naive(dt: datetime) -> tuple[int, int]:
    """``(seconds, microseconds)`` of a naive datetime as a wall time."""
    return dt.toordinal() * DAY + dt.hour * 3600 + dt.minute * 60 + dt.second, dt.microsecond


def to_datetime(instant: int, tz: tzinfo, microsecond: int = 0) -> datetime:
    """The aware datetime, in ``tz``, of an instant (raises OverflowError past 9999)."""
    if not MIN_INSTANT <= instant <= MAX_INSTANT:
        raise OverflowError("instant out of range")
    dt = datetime.fromtimestamp(instant - UNIX_EPOCH, tz)
    return dt.replace(microsecond=microsecond) if microsecond else dt


def resolve_wall(zone: Zone, wall: int) -> int:
    """The first instant whose wall time is ``wall``; for a wall in a gap, the first
    instant after the gap (the transition). Walls in an overlap resolve to their first
    occurrence."""
    t = zone.table_for(wall)
    k = t.holding_wall(wall)
    if wall >= t.wall_starts[k]:
        return wall - t.offsets[k]
    return t.starts[k]


def local_wall(zone: Zone, instant: int) -> int:
    """The wall time of an instant."""
    t = zone.table_for(instant)
    return instant + t.offsets[t.window(instant)]
