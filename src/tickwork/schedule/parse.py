"""``parse_schedule``: read any schedule expression (cron, interval, once, manual).

The kind is recognised from the text: ``manual``; ``now``, ``in <interval>`` or an
ISO-8601 date-time (once); an interval (``5m``, ``every 2 hours``, ``PT15M``); else a
cron expression or ``@macro``. This is the only place in ``tickwork.schedule`` that may
read the clock: when an interval or relative time needs an anchor and neither
``start_at`` nor ``now`` was given.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Final

from tickwork.errors import ScheduleError
from tickwork.limits import echo
from tickwork.schedule.base import ParsedSchedule, coerce_instant, validate_timezone
from tickwork.schedule.cron import CronSchedule, compile_cron
from tickwork.schedule.interval import (
    IntervalSchedule,
    parse_interval,
    start_wall,
    wall_of_anchor,
)
from tickwork.schedule.once import ManualSchedule, OnceSchedule, is_relative, parse_once
from tickwork.schedule.zones import zone_for

KINDS: Final = ("cron", "interval", "once", "manual")
_ISO_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_INTERVAL_START: Final = re.compile(r"(every\b|-?pt?(\d|$)|-?\d+([.,]\d+)?\s*[a-z])")
_CRON_CHARS: Final = re.compile(r"[0-9*?/,\-#a-z() ]+")
_MAX_LENGTH: Final = 1000


def parse_schedule(
    expr: str,
    timezone: str = "UTC",
    start_at: datetime | str | None = None,
    key: str | None = None,
    *,
    now: datetime | None = None,
    kind: str | None = None,
) -> ParsedSchedule:
    """Parse a schedule expression read in the IANA zone ``timezone``.

    ``start_at`` (a datetime or ISO-8601 string; naive = in ``timezone``) is the
    inclusive first instant a fire may have, and an interval's anchor. ``key`` (the
    schedule id) seeds hashed cron values ``H``. ``now`` is the anchor of an interval
    without ``start_at`` and the base of ``now`` / ``in 10m``; the current time when
    None. ``kind`` forces one kind instead of recognising it from the text.

    Raises ``ScheduleError`` (a ``ValueError``) naming the bad part for any invalid input.
    """
    try:
        return _parse(expr, timezone, start_at, key, now, kind)
    except ScheduleError:
        raise
    except (ValueError, OverflowError, ArithmeticError, LookupError, TypeError) as exc:
        # A safety net: every expected failure above raises ScheduleError itself.
        raise ScheduleError(f"invalid schedule {echo(expr)}: {exc}") from None


#: Expressions whose parse depends on neither the schedule id (hashed ``H`` values) nor
#: the anchor (intervals, ``in 10m``): an absolute date-time, and cron written in digits
#: and symbols only. Schedules sharing one of them share its cache entry, so a burst of
#: one-time schedules for the same instant parses it once and keeps one entry.
_KEYLESS: Final = re.compile(r"\d{4}-\d\d-\d\dT[0-9:.+\-Z]*|[0-9*/,?#\- ]+")


def parse_stored(
    expr: str, timezone: str, start_at: datetime | None, key: str, anchor: datetime | None
) -> ParsedSchedule:
    """``parse_schedule`` of a stored schedule's fields (``key``: its id, ``anchor``: its
    anchor), cached: a schedule is parsed when it is added and again at its fires, and
    both find the same entry."""
    if _KEYLESS.fullmatch(expr):
        return _parse_cached(expr, timezone, start_at, "", None)
    start: datetime | None = start_at
    if start_at is not None and anchor is not None and anchor < start_at:
        # A start_at written as a wall time in a DST gap: its anchor carries that wall
        # time (``anchor_for_wall``), which an interval's calendar steps keep.
        wall = wall_of_anchor(start_at, anchor, zone_for(validate_timezone(timezone)))
        if wall is not None:
            start = wall
    return _parse_cached(expr, timezone, start, key, anchor)


@lru_cache(maxsize=16384)
def _parse_cached(
    expr: str, timezone: str, start_at: datetime | None, key: str, anchor: datetime | None
) -> ParsedSchedule:
    return parse_schedule(expr, timezone=timezone, start_at=start_at, key=key, now=anchor)


def _parse(
    expr: object,
    timezone: object,
    start_at: object,
    key: object,
    now: object,
    kind: object,
) -> ParsedSchedule:
    if not isinstance(expr, str):
        raise ScheduleError(f"a schedule expression must be a string, not {type(expr).__name__}")
    tz = validate_timezone(timezone)
    assert isinstance(timezone, str)
    zone = zone_for(tz)
    if key is not None and not isinstance(key, str):
        raise ScheduleError(f"key must be a string, not {type(key).__name__}")
    if kind is not None and kind not in KINDS:
        raise ScheduleError(f"unknown schedule kind {kind!r}; use one of {', '.join(KINDS)}")
    if now is not None and (not isinstance(now, datetime) or now.utcoffset() is None):
        raise ScheduleError("now must be an aware datetime")
    start = (
        None if start_at is None or start_at == "" else coerce_instant(start_at, "start_at", zone)
    )
    text = expr.strip()
    if not text:
        raise ScheduleError("the schedule expression is empty")
    if len(text) > _MAX_LENGTH:
        raise ScheduleError(f"the schedule expression is too long ({len(text)} characters)")
    low = " ".join(text.lower().split())

    read: list[datetime] = []

    def base() -> datetime:
        if start is not None:
            return start
        if now is not None:
            assert isinstance(now, datetime)
            return now.astimezone(UTC)
        # The one clock read of the schedule layer, read once: "now" is both the
        # instant and the earliest fire, so two reads microseconds apart never fire.
        if not read:
            read.append(datetime.now(UTC))
        return read[0]

    if kind is None:
        kind = _recognise(low, text)
    if kind == "manual":
        if low != "manual":
            raise ScheduleError(f"a manual schedule is written 'manual', not {text!r}")
        return ManualSchedule(expr, timezone, tz, start, key)
    if kind == "once":
        relative = is_relative(low)
        at, _ = parse_once(text, zone, base() if relative else None)
        try:
            at.astimezone(tz)  # its wall time is what describe() and next_after() give
        except OverflowError:
            raise ScheduleError(
                f"one-time schedule {text!r} is out of range in time zone {timezone}"
            ) from None
        anchor = start if start is not None or not relative else base()
        return OnceSchedule(expr, timezone, tz, anchor, key, at)
    if kind == "interval":
        step = parse_interval(text)
        wall = None if start is None else start_wall(start_at, zone)
        return IntervalSchedule(expr, timezone, tz, base(), key, step, wall)
    spec = compile_cron(text, key)
    return CronSchedule(expr, timezone, tz, start, key, spec)


def _recognise(low: str, text: str) -> str:
    """The kind an expression is written in (its own parser gives the errors)."""
    if low == "manual":
        return "manual"
    if low in ("now", "in") or low.startswith("in ") or _ISO_DATE.match(low):
        return "once"
    if low.startswith("@"):
        return "cron"
    if _INTERVAL_START.match(low):
        try:
            parse_interval(text)
        except ScheduleError:
            if len(low.split()) in (5, 6):
                return "cron"  # e.g. '5 h * * *': a cron expression with a hashed hour
            raise
        return "interval"
    fields = len(low.split())
    if fields in (5, 6) or low.startswith("*") or (fields > 1 and _CRON_CHARS.fullmatch(low)):
        return "cron"
    raise ScheduleError(
        f"cannot read schedule {low!r}: expected a cron expression (5 or 6 fields), "
        "an interval ('5m', 'every 2 hours', 'PT15M'), a date-time, 'now', "
        "'in 10m' or 'manual'"
    )
