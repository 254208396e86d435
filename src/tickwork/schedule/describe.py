"""Plain-English descriptions of cron specs ("At 02:30, Monday through Friday").

Built from the expanded values, so ``0-59/5``, ``*/5`` and ``0,5,10,...,55`` all read
"Every 5 minutes". The zone is added by the caller.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tickwork.schedule.cron import CronSpec

_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_MONTHS = (
    "",
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_NTH = ("", "first", "second", "third", "fourth", "fifth")
_MAX_LISTED_TIMES = 6

Shape = tuple[str, Sequence[int]]


def _join(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _shape(values: Sequence[int], lo: int, hi: int) -> Shape:
    """Classify a set of values: all, one, a range, a step from the start, a step in a
    sub-range, or a plain list."""
    vs = sorted(values)
    if len(vs) == hi - lo + 1:
        return ("all", ())
    if len(vs) == 1:
        return ("one", vs)
    diffs = {b - a for a, b in itertools.pairwise(vs)}
    if len(diffs) == 1 and len(vs) >= 3:
        step = diffs.pop()
        if step == 1:
            return ("range", (vs[0], vs[-1]))
        if vs[0] == lo and vs[-1] + step > hi:
            return ("every", (step,))
        return ("every_from", (step, vs[0], vs[-1]))
    return ("list", vs)


def _hh(h: int) -> str:
    return f"{h:02d}:00"


def _time(h: int, m: int, s: int) -> str:
    return f"{h:02d}:{m:02d}" if s == 0 else f"{h:02d}:{m:02d}:{s:02d}"


def _unit_phrase(shape: Shape, unit: str) -> str:
    kind, v = shape
    if kind == "all":
        return f"every {unit}"
    if kind == "one":
        return f"at {unit} {v[0]}"
    if kind == "range":
        return f"every {unit} from {unit} {v[0]} through {v[1]}"
    if kind == "every":
        return f"every {_plural(v[0], unit)}"
    if kind == "every_from":
        return f"every {_plural(v[0], unit)} from {unit} {v[1]} through {v[2]}"
    return f"at {unit}s {_join([str(x) for x in v])}"


def _of_every_hour(phrase: str, hour_shape: Shape) -> str:
    """'at minutes 15 and 45' -> 'at minutes 15 and 45 of every hour'."""
    return f"{phrase} of every hour" if hour_shape[0] == "all" else phrase


def _hour_phrase(shape: Shape) -> str | None:
    kind, v = shape
    if kind == "all":
        return None
    if kind == "one":
        return f"between {_hh(v[0])} and {v[0]:02d}:59"
    if kind == "range":
        return f"between {_hh(v[0])} and {v[1]:02d}:59"
    if kind == "every":
        return f"every {_plural(v[0], 'hour')}"
    if kind == "every_from":
        return f"every {v[0]} hours from {_hh(v[1])} through {v[2]:02d}:59"
    return f"in hours {_join([str(x) for x in v])}"


def _time_of_day(spec: CronSpec) -> str:
    secs, mins, hours = spec.seconds, spec.minutes, spec.hours
    sec_shape = _shape(secs, 0, 59)
    min_shape = _shape(mins, 0, 59)
    hour_shape = _shape(hours, 0, 23)
    if (
        len(secs) == 1
        and len(mins) * len(hours) <= _MAX_LISTED_TIMES
        and hour_shape[0] != "all"
        and min_shape[0] != "all"
    ):
        times = [_time(h, m, secs[0]) for h in hours for m in mins]
        return "at " + _join(times)
    if len(secs) == 1 and len(mins) == 1:
        sec, m = secs[0], mins[0]
        at = f"at minute {m}" if sec == 0 else f"at minute {m}, second {sec}"
        kind, v = hour_shape
        if kind == "all":
            return "every hour" if m == 0 and sec == 0 else f"{at} of every hour"
        if kind == "every":
            every = f"every {_plural(v[0], 'hour')}"
            return every if m == 0 and sec == 0 else f"{every}, {at}"
        if kind == "range":
            return f"every hour from {_time(v[0], m, sec)} through {_time(v[1], m, sec)}"
        if kind == "every_from":
            return f"every {v[0]} hours from {_time(v[1], m, sec)} through {_time(v[2], m, sec)}"
        return f"{at}, in hours {_join([str(x) for x in v])}"
    parts: list[str] = []
    if spec.six and not (sec_shape[0] == "one" and secs[0] == 0):
        parts.append(_unit_phrase(sec_shape, "second"))
        if min_shape[0] != "all":
            parts.append(_unit_phrase(min_shape, "minute"))
    else:
        minute = _unit_phrase(min_shape, "minute")
        parts.append(_of_every_hour(minute, hour_shape) if minute.startswith("at") else minute)
    hour = _hour_phrase(hour_shape)
    if hour is not None:
        parts.append(hour)
    return ", ".join(parts)


def _dom_phrase(spec: CronSpec) -> str | None:
    items: list[str] = []
    values = sorted(spec.dom_values)
    if values:
        kind, v = _shape(values, 1, 31)
        if kind == "all":
            pass
        elif kind == "every":
            items.append(f"every {v[0]} days")
        elif kind == "one":
            items.append(f"on day {v[0]} of the month")
        elif kind == "range":
            items.append(f"on days {v[0]} through {v[1]} of the month")
        elif kind == "every_from":
            items.append(f"every {v[0]} days from day {v[1]} through {v[2]} of the month")
        else:
            items.append(f"on days {_join([str(x) for x in v])} of the month")
    if spec.dom_last:
        items.append("on the last day of the month")
    if spec.dom_last_weekday:
        items.append("on the last weekday of the month")
    for n in spec.dom_nearest:
        items.append(f"on the weekday nearest day {n} of the month")
    return " and ".join(items) or None


def _dow_phrase(spec: CronSpec) -> str | None:
    items: list[str] = []
    values = sorted(spec.dow_values)
    if values:
        kind, v = _shape(values, 0, 6)
        if kind == "all":
            pass
        elif kind == "range":
            items.append(f"{_DAYS[v[0]]} through {_DAYS[v[1]]}")
        else:
            items.append("on " + _join([_DAYS[x] for x in values]))
    for wd in spec.dow_last:
        items.append(f"on the last {_DAYS[wd]} of the month")
    for wd, k in spec.dow_nth:
        items.append(f"on the {_NTH[k]} {_DAYS[wd]} of the month")
    return " and ".join(items) or None


def _month_phrase(spec: CronSpec) -> str | None:
    kind, v = _shape(spec.months, 1, 12)
    if kind == "all":
        return None
    if kind == "range":
        return f"{_MONTHS[v[0]]} through {_MONTHS[v[1]]}"
    if kind == "every":
        return f"every {v[0]} months"
    return "in " + _join([_MONTHS[m] for m in spec.months])


def describe_cron(spec: CronSpec) -> str:
    """E.g. ``"At 02:30, Monday through Friday"`` or ``"Every 5 minutes"``."""
    parts = [_time_of_day(spec)]
    dom = _dom_phrase(spec)  # None for every day ('*', '?')
    dow = _dow_phrase(spec)
    if dom and dow:
        if spec.day_and:
            days = dow.removeprefix("on ")
            if ", " in days or " and " in days:  # a list of days: any of them
                head, _, tail = days.rpartition(" and ")
                days = f"{head} or {tail}"
            parts.append(f"{dom}, if the day is also {days}")
        else:
            parts.append(f"{dom} or {dow}")
    elif dom or dow:
        parts.append(dom or dow or "")
    month = _month_phrase(spec)
    if month:
        parts.append(month)
    text = ", ".join(parts)
    return text[0].upper() + text[1:]
