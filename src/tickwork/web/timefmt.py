"""How the dashboard writes an instant: in the schedule's zone, in UTC or in the browser's,
with its distance from now, and what a DST change does to a list of fire times."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from markupsafe import Markup, escape

from tickwork.web.session import Preferences


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def display_zone(prefs: Preferences, schedule_zone: str | None) -> ZoneInfo:
    """The zone an instant is written in on the server; "browser" is rewritten by the page
    script, and until then (or without script) uses the zone the browser reported."""
    if prefs.time_mode == "utc":
        return ZoneInfo("UTC")
    if prefs.time_mode == "browser":
        return zone(prefs.browser_zone)
    return zone(schedule_zone)


def format_instant(dt: datetime, tz: ZoneInfo) -> str:
    local = dt.astimezone(tz)
    return local.strftime("%Y-%m-%d %H:%M:%S ") + (local.tzname() or tz.key)


def time_tag(dt: datetime | None, prefs: Preferences, schedule_zone: str | None = None) -> Markup:
    """``<time>`` with the UTC instant in ``datetime`` (the page script reads it)."""
    if dt is None:
        return Markup('<span class="muted">—</span>')
    iso = dt.astimezone(UTC).isoformat()
    text = format_instant(dt, display_zone(prefs, schedule_zone))
    return Markup('<time datetime="{}">{}</time>').format(iso, text)


def clock_tag(dt: datetime, prefs: Preferences, schedule_zone: str | None = None) -> Markup:
    """A time of day to the millisecond (a log line's), in the same zone as every other
    time on the page; ``data-clock`` tells the page script to write it the same way."""
    iso = dt.astimezone(UTC).isoformat()
    text = dt.astimezone(display_zone(prefs, schedule_zone)).strftime("%H:%M:%S.%f")[:-3]
    return Markup('<time datetime="{}" data-clock>{}</time>').format(iso, text)


def relative_text(dt: datetime, now: datetime) -> str:
    seconds = round((dt - now).total_seconds())
    s = abs(seconds)
    if s < 60:
        text = f"{s} s"
    elif s < 3600:
        text = f"{s // 60} min"
    elif s < 86400:
        text = f"{s // 3600} h {(s % 3600) // 60} min"
    else:
        text = f"{s // 86400} d {(s % 86400) // 3600} h"
    return f"in {text}" if seconds >= 0 else f"{text} ago"


def relative_tag(dt: datetime | None, now: datetime) -> Markup:
    """A distance from now that the page script keeps counting."""
    if dt is None:
        return Markup("")
    iso = dt.astimezone(UTC).isoformat()
    return Markup('<span class="muted small" data-rel="{}">{}</span>').format(
        iso, relative_text(dt, now)
    )


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec} s"
    return f"{minutes // 60} h {minutes % 60} min"


@dataclass(frozen=True, slots=True)
class FireTime:
    """One upcoming fire with what the zone's clock changes do to it."""

    at: datetime
    note: str | None


def dst_notes(times: Sequence[datetime], tz_name: str) -> list[FireTime]:
    """Name each DST change between fires, and a fire moved by a gap or merged by an overlap.

    A fire whose wall time differs from the schedule's usual one on a day the clocks
    change was moved by the gap; two fires sharing a wall time are an overlap's repeat.
    """
    tz = zone(tz_name)
    local = [t.astimezone(tz) for t in times]
    usual = Counter(t.strftime("%H:%M:%S") for t in local).most_common(1)
    usual_time = usual[0][0] if usual and usual[0][1] > 1 else None
    out: list[FireTime] = []
    seen: set[datetime] = set()
    for i, t in enumerate(local):
        notes: list[str] = []
        prev = local[i - 1] if i else None
        if prev is not None and prev.utcoffset() != t.utcoffset():
            change = _transition_between(prev, t, tz)
            direction = (
                "forward"
                if (t.utcoffset() or timedelta()) > (prev.utcoffset() or timedelta())
                else "back"
            )
            when = f" at {change.strftime('%Y-%m-%d %H:%M')} UTC" if change else ""
            notes.append(f"clocks go {direction}{when} ({_offset(prev)} → {_offset(t)})")
        wall = t.strftime("%H:%M:%S")
        if usual_time and wall != usual_time and _changes_on(t, tz):
            notes.append(f"moved from {usual_time} by the spring-forward gap")
        if t.replace(tzinfo=None) in seen:
            notes.append("the same wall time again: the clocks went back")
        seen.add(t.replace(tzinfo=None))
        out.append(FireTime(times[i], "; ".join(notes) or None))
    return out


def _offset(t: datetime) -> str:
    off = t.utcoffset() or timedelta()
    sign = "+" if off >= timedelta() else "-"
    minutes = abs(int(off.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _transition_between(a: datetime, b: datetime, tz: ZoneInfo) -> datetime | None:
    """The UTC instant the offset changes between a and b, to the minute (bisection)."""
    lo, hi = a.astimezone(UTC), b.astimezone(UTC)
    off = a.utcoffset()
    if hi - lo > timedelta(days=400):
        return None
    while hi - lo > timedelta(minutes=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(tz).utcoffset() == off:
            lo = mid
        else:
            hi = mid
    return hi.replace(second=0, microsecond=0)


def _changes_on(t: datetime, tz: ZoneInfo) -> bool:
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    start = day.astimezone(tz).utcoffset()
    end = (day + timedelta(days=1)).astimezone(tz).utcoffset()
    return start != end


def escape_text(value: object) -> Markup:
    return escape(str(value))
