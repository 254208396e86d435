"""One-time schedules (``2026-12-25T09:00``, ``now``, ``in 10m``) and ``manual``."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from tickwork.errors import ScheduleError
from tickwork.schedule.base import ParsedSchedule, aware_in_zone, not_aware, parse_iso_datetime
from tickwork.schedule.interval import add_steps, parse_interval
from tickwork.schedule.zones import Zone, instant_of, to_datetime


def is_relative(text: str) -> bool:
    """Whether a one-time expression counts from a base time (``now``, ``in 10m``)."""
    low = " ".join(text.lower().split())
    return low in ("now", "in") or low.startswith("in ")


def parse_once(text: str, zone: Zone, base: datetime | None) -> tuple[datetime, bool]:
    """``(instant as aware UTC, relative)`` of a one-time expression. ``base`` is what
    ``now`` and ``in ...`` count from; None when the expression must be absolute."""
    low = " ".join(text.lower().split())
    if low == "in":
        raise ScheduleError("'in' needs an interval after it, e.g. 'in 10m'")
    if is_relative(low):
        if base is None:
            raise ScheduleError(f"{text.strip()!r} needs a base time")
        if low == "now":
            return base, True
        rest = low[3:]
        if rest == "every" or rest.startswith("every "):
            step_text = rest[6:] or "10m"
            raise ScheduleError(
                f"{text.strip()!r} mixes a one-time and a repeating schedule: write "
                f"'in {step_text}' (once) or 'every {step_text}' (repeating)"
            )
        step = parse_interval(rest)
        s, us = instant_of(base)
        at = add_steps(zone, s * 1_000_000 + us, step, 1)
        if at is None:
            raise ScheduleError(f"{text.strip()!r} is past the year 9999")
        secs, us = divmod(at, 1_000_000)
        return to_datetime(secs, UTC, us), True
    value = parse_iso_datetime(text, "one-time schedule")
    try:
        return aware_in_zone(value, zone), False
    except (OverflowError, ValueError):
        raise ScheduleError(f"one-time schedule {text.strip()!r} is out of range") from None


class OnceSchedule(ParsedSchedule):
    """Fires once, at ``at`` (unless that is before ``start_at``)."""

    kind = "once"

    def __init__(
        self,
        expression: str,
        timezone: str,
        tz: ZoneInfo,
        start_at: datetime | None,
        key: str | None,
        at: datetime,
    ) -> None:
        super().__init__(expression, timezone, tz, start_at, key)
        #: The fire instant, aware UTC.
        self.at = at

    def next_after(self, dt: datetime) -> datetime | None:
        if not isinstance(dt, datetime) or dt.utcoffset() is None:
            raise not_aware(dt)
        if self.at <= dt or (self.start_at is not None and self.at < self.start_at):
            return None
        return self.at.astimezone(self.tz)

    def describe(self) -> str:
        local = self.at.astimezone(self.tz)
        when = f"{local:%Y-%m-%d %H:%M}" + (f":{local:%S}" if local.second else "")
        return f"Once at {when} ({self.timezone})"


class ManualSchedule(ParsedSchedule):
    """``manual``: never fires by itself; runs only when triggered."""

    kind = "manual"

    def next_after(self, dt: datetime) -> datetime | None:
        if not isinstance(dt, datetime) or dt.utcoffset() is None:
            raise not_aware(dt)
        return None

    def describe(self) -> str:
        return "Manually triggered only (never fires by itself)"
