"""What every parsed schedule is: ``ParsedSchedule``, plus zone and instant helpers.

A parsed schedule is immutable and a pure function of the instant passed in: nothing
here reads the clock (``parse_schedule`` reads it once, at the top, when it must
anchor an interval and the caller gave no ``now``).
"""

from __future__ import annotations

import difflib
import functools
import re
import zoneinfo
from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Final
from zoneinfo import ZoneInfo

from tickwork.errors import ScheduleError
from tickwork.limits import echo
from tickwork.schedule.zones import (
    Zone,
    instant_of,
    local_wall,
    resolve_wall,
    to_datetime,
    wall_of_naive,
    zone_for,
)

_ONE_US = timedelta(microseconds=1)


@functools.lru_cache(maxsize=512)
def _zoneinfo(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def validate_timezone(name: object) -> ZoneInfo:
    """The ``ZoneInfo`` for an IANA name; ``ScheduleError`` when there is none."""
    if not isinstance(name, str):
        raise ScheduleError(
            f"time zone must be a string, not {type(name).__name__}", field="timezone"
        )
    if not name.strip():
        raise ScheduleError("time zone must not be empty", field="timezone")
    try:
        return _zoneinfo(name)
    except Exception:  # ZoneInfoNotFoundError, ValueError (bad key), OSError (a directory)
        hint = suggest_timezone(name)
        raise ScheduleError(
            f"unknown time zone {echo(name)}" + (f": did you mean {hint}?" if hint else ""),
            field="timezone",
        ) from None


@functools.cache
def _zone_names() -> dict[str, str]:
    """Every IANA name known here, by its case-folded form."""
    return {n.casefold(): n for n in zoneinfo.available_timezones()}


def suggest_timezone(name: str) -> str | None:
    """The known zone ``name`` most likely means: the same name in another case
    (``europe/paris``), else a close spelling (``Europe/Pariss``); None when none is."""
    names = _zone_names()
    folded = name.strip().casefold()
    if folded in names:
        return names[folded]
    close = difflib.get_close_matches(folded, list(names), n=1, cutoff=0.85)
    return names[close[0]] if close else None


def parse_iso_datetime(text: str, what: str) -> datetime:
    """A datetime from ISO-8601 text (``T`` or a space, optional seconds, ``Z`` or an
    offset, or a bare date at midnight); naive when the text has no offset."""
    value = text.strip()
    if value[-1:] in ("z", "Z"):
        value = value[:-1] + "+00:00"
    if len(value) < 10 or not value[:4].isdigit():
        raise ScheduleError(f"{what} {text!r} is not an ISO-8601 date-time")
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        reason = str(exc)
        offset = _OFFSET.search(value)
        if reason.startswith("offset must be") and offset is not None:
            # Python's own words name a timedelta repr; the user wrote an offset.
            reason = f"offset {offset.group(0)} is out of range -23:59 to +23:59"
        raise ScheduleError(
            f"{what} {text!r} is not a valid ISO-8601 date-time ({reason})"
        ) from None


#: The UTC offset that ends an ISO-8601 date-time (``+05:30``, ``-0800``).
_OFFSET: Final = re.compile(r"[+-]\d\d:?\d\d(?::?\d\d(?:\.\d+)?)?$")


def aware_in_zone(dt: datetime, zone: Zone) -> datetime:
    """``dt`` as an aware UTC datetime; a naive ``dt`` is a wall time in ``zone``
    (a gap time moves to the first instant after the gap, an overlap time is its
    first occurrence, or its second with ``fold=1``, as PEP 495 reads it)."""
    if dt.tzinfo is not None and dt.utcoffset() is not None:
        return dt.astimezone(UTC)
    wall, us = wall_of_naive(dt)
    instant = resolve_wall(zone, wall)
    if local_wall(zone, instant) != wall:
        us = 0  # moved out of a gap: the first instant after it, exactly
    elif dt.fold:
        second, _ = instant_of(dt.replace(tzinfo=zone.tz))
        if second > instant and local_wall(zone, second) == wall:
            instant = second
    return to_datetime(instant, UTC, us)


def coerce_instant(value: object, what: str, zone: Zone) -> datetime:
    """An aware UTC datetime from a datetime or an ISO-8601 string (naive = in zone)."""
    if isinstance(value, str):
        value = parse_iso_datetime(value, what)
    if not isinstance(value, datetime):
        raise ScheduleError(
            f"{what} must be a datetime or an ISO-8601 string, not {type(value).__name__}"
        )
    try:
        return aware_in_zone(value, zone)
    except (OverflowError, ValueError) as exc:
        raise ScheduleError(f"{what} {value.isoformat()} is out of range ({exc})") from None


def not_aware(dt: object, what: str = "next_after") -> ScheduleError:
    """The error for a ``dt`` that is not an aware datetime."""
    if not isinstance(dt, datetime):
        return ScheduleError(f"{what} needs an aware datetime, not {type(dt).__name__}")
    return ScheduleError(f"{what} needs an aware datetime, got naive {dt.isoformat()}")


def to_instant(value: object, timezone: str = "UTC", what: str = "time") -> datetime:
    """An aware UTC datetime from a datetime or ISO-8601 string; a naive one is a wall
    time in ``timezone`` (gap: the first instant after it; overlap: the first one)."""
    return coerce_instant(value, what, zone_for(validate_timezone(timezone)))


def check_aware(dt: object, what: str = "next_after") -> datetime:
    """``dt`` itself when it is an aware datetime, else ``ScheduleError``."""
    if not isinstance(dt, datetime) or dt.tzinfo is None or dt.utcoffset() is None:
        raise not_aware(dt, what)
    return dt


class ParsedSchedule(ABC):
    """A parsed schedule expression: when it fires, as a pure function of time.

    Subclasses: ``CronSchedule``, ``IntervalSchedule``, ``OnceSchedule``,
    ``ManualSchedule``. Instances are immutable, hashable and compare by ``to_dict()``.
    """

    kind: ClassVar[str]
    #: The text as given.
    expression: str
    #: IANA name of the zone the expression is read in.
    timezone: str
    tz: ZoneInfo
    #: Inclusive lower bound of every fire time (aware UTC), or None. Interval and
    #: relative one-time schedules always have one: their anchor.
    start_at: datetime | None
    #: What hashed cron values (``H``) are derived from: the schedule id.
    key: str | None

    def __init__(
        self,
        expression: str,
        timezone: str,
        tz: ZoneInfo,
        start_at: datetime | None,
        key: str | None,
    ) -> None:
        self.expression = expression
        self.timezone = timezone
        self.tz = tz
        self.start_at = start_at
        self.key = key
        self._zone = zone_for(tz)

    @abstractmethod
    def next_after(self, dt: datetime) -> datetime | None:
        """The first fire time strictly after the aware datetime ``dt`` (and not before
        ``start_at``), as an aware datetime in the schedule's zone; None if there is none.
        A naive ``dt`` is a ``ScheduleError``."""

    @abstractmethod
    def describe(self) -> str:
        """Plain English, e.g. ``"At 02:30, Monday through Friday (Europe/Paris)"``."""

    def fire_times(
        self, after: datetime, until: datetime | None = None, limit: int | None = None
    ) -> Iterator[datetime]:
        """Successive fire times ``t`` with ``after < t <= until``, at most ``limit``."""
        check_aware(after, "fire_times")
        if until is not None:
            check_aware(until, "fire_times")
        count = 0
        t: datetime | None = after
        while limit is None or count < limit:
            assert t is not None
            t = self.next_after(t)
            if t is None or (until is not None and t > until):
                return
            yield t
            count += 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields that ``from_dict`` turns back into an equal schedule."""
        return {
            "kind": self.kind,
            "expression": self.expression,
            "timezone": self.timezone,
            "start_at": None if self.start_at is None else self.start_at.isoformat(),
            "key": self.key,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ParsedSchedule:
        """Parse ``to_dict()``'s output again (``ScheduleError`` when it is not one)."""
        from tickwork.schedule.parse import parse_schedule

        if not isinstance(d, dict) or not isinstance(d.get("expression"), str):
            raise ScheduleError("a schedule dict needs an 'expression' string")
        parsed = parse_schedule(
            d["expression"],
            timezone=d.get("timezone", "UTC"),
            start_at=d.get("start_at"),
            key=d.get("key"),
            kind=d.get("kind"),
        )
        if cls is not ParsedSchedule and not isinstance(parsed, cls):
            raise ScheduleError(f"{d['expression']!r} is a {parsed.kind} schedule")
        return parsed

    def _floor_instant(self, dt: datetime) -> int:
        """The whole-second instant at or before ``dt``: a fire at whole seconds is
        strictly after ``dt`` exactly when it is strictly after this."""
        check_aware(dt)
        return instant_of(dt)[0]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ParsedSchedule):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(tuple(self.to_dict().items()))

    def __repr__(self) -> str:
        extra = "" if self.start_at is None else f", start_at={self.start_at.isoformat()!r}"
        extra += "" if self.key is None else f", key={self.key!r}"
        return f"{type(self).__name__}({self.expression!r}, timezone={self.timezone!r}{extra})"
