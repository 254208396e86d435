"""The fields of a cron expression: names, macros, ``H`` hashing and the parsing of one
field (lists, ranges, steps, ``L``, ``LW``, ``nW``, ``nL``, ``n#k``) into the values it
allows. ``cron.py`` compiles the six fields into tables for finding fire times.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Final

from tickwork.errors import ScheduleError

MACROS: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

MONTH_NAMES: Final = {
    name: i + 1
    for i, names in enumerate(
        [
            ("JAN", "JANUARY"),
            ("FEB", "FEBRUARY"),
            ("MAR", "MARCH"),
            ("APR", "APRIL"),
            ("MAY",),
            ("JUN", "JUNE"),
            ("JUL", "JULY"),
            ("AUG", "AUGUST"),
            ("SEP", "SEPTEMBER"),
            ("OCT", "OCTOBER"),
            ("NOV", "NOVEMBER"),
            ("DEC", "DECEMBER"),
        ]
    )
    for name in names
}
DOW_NAMES: Final = {
    name: i
    for i, names in enumerate(
        [
            ("SUN", "SUNDAY"),
            ("MON", "MONDAY"),
            ("TUE", "TUESDAY"),
            ("WED", "WEDNESDAY"),
            ("THU", "THURSDAY"),
            ("FRI", "FRIDAY"),
            ("SAT", "SATURDAY"),
        ]
    )
    for name in names
}
_DIGITS: Final = re.compile(r"[0-9]{1,9}")
_HASHED: Final = re.compile(r"H(?:\(([0-9]{1,9})-([0-9]{1,9})\))?")
_NEAREST: Final = re.compile(r"([0-9]{1,9})W")


@dataclass(frozen=True)
class Field:
    name: str
    lo: int
    hi: int
    names: dict[str, int] | None = None
    #: The range ``H`` picks from (day-of-month: 1-28, so it exists in every month).
    h_lo: int = 0
    h_hi: int = 0


SECOND = Field("second", 0, 59, h_lo=0, h_hi=59)
MINUTE = Field("minute", 0, 59, h_lo=0, h_hi=59)
HOUR = Field("hour", 0, 23, h_lo=0, h_hi=23)
DOM = Field("day-of-month", 1, 31, h_lo=1, h_hi=28)
MONTH = Field("month", 1, 12, MONTH_NAMES, h_lo=1, h_hi=12)
DOW = Field("day-of-week", 0, 7, DOW_NAMES, h_lo=0, h_hi=6)


@dataclass
class FieldValues:
    values: set[int]
    last: bool = False  # dom L
    last_weekday: bool = False  # dom LW
    nearest: tuple[int, ...] = ()  # dom nW
    last_of: tuple[int, ...] = ()  # dow nL
    nth: tuple[tuple[int, int], ...] = ()  # dow n#k


def _hash(key: str, field: Field) -> int:
    digest = hashlib.sha256(f"{key}\x00{field.name}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


#: The day forms that name one day (``L``, ``LW``, ``15W``, ``5L``, ``5#2``), never a
#: bound of a range.
_SPECIAL: Final = re.compile(r"(?i)\w*[LW]|\w+#\w*")


def _value(token: str, field: Field) -> int:
    """One number or name of ``field``, range-checked."""
    upper = token.upper()
    if _DIGITS.fullmatch(token):
        v = int(token)
    elif field.names is not None and upper in field.names:
        v = field.names[upper]
    elif token.isascii() and token.isdigit():  # too many digits to be in range
        raise ScheduleError(f"{field.name} {token} out of range {field.lo}-{field.hi}")
    elif field.names is not None and token.isalpha():
        raise ScheduleError(f"unknown {field.name} name {token!r}")
    else:
        raise ScheduleError(f"invalid {field.name} value {token!r}")
    if not field.lo <= v <= field.hi:
        raise ScheduleError(f"{field.name} {v} out of range {field.lo}-{field.hi}")
    return v


def _range(a_text: str, b_text: str, field: Field) -> tuple[int, int]:
    for side in (a_text, b_text):
        if _SPECIAL.fullmatch(side) and field in (DOM, DOW):
            # 'L-3' (three days before the last) and '15W-20' are other crons' dialects.
            raise ScheduleError(
                f"{field.name} {a_text}-{b_text}: {side!r} cannot be part of a range"
            )
    a = _value(a_text, field)
    b = _value(b_text, field)
    if field is DOW and b == 0 and a > 0:
        b = 7  # FRI-SUN: Sunday as 7 ends the week
    if a > b:
        raise ScheduleError(f"{field.name} range {a_text}-{b_text} is reversed (start after end)")
    return a, b


def _hashed(m: re.Match[str], field: Field, key: str) -> tuple[int, int]:
    """The range an ``H`` term spans."""
    if m.group(1) is None:
        return field.h_lo, field.h_hi
    return _range(m.group(1), m.group(2), field)


def _item(item: str, field: Field, key: str, out: FieldValues) -> None:
    upper = item.upper()
    if not item:
        raise ScheduleError(f"empty item in {field.name} field")
    if "/" in upper:
        base, _, step_text = upper.partition("/")
        step_text = item.partition("/")[2]
        if not _DIGITS.fullmatch(step_text):
            raise ScheduleError(
                f"step {step_text!r} in {field.name} {item!r} must be a positive whole number"
            )
        step = int(step_text)
        if step < 1:
            raise ScheduleError(f"step 0 in {field.name} {item!r} must be at least 1")
        h = _HASHED.fullmatch(base)
        if base in ("*", "?"):
            if base == "?" and field not in (DOM, DOW):
                raise ScheduleError(
                    f"'?' is only allowed in day-of-month and day-of-week, not {field.name}"
                )
            start, end = field.lo, field.hi
        elif h is not None:
            lo, end = _hashed(h, field, key)
            start = lo + _hash(key, field) % min(step, end - lo + 1)
        elif "-" in base:
            a_text, _, b_text = base.partition("-")
            start, end = _range(a_text, b_text, field)
        elif base in ("L", "LW") or "#" in base or base.endswith(("W", "L")):
            raise ScheduleError(f"a step is not allowed with {base!r} in {field.name}")
        else:
            start, end = _value(base, field), field.hi
        out.values.update(range(start, end + 1, step))
        return
    if upper in ("*", "?"):
        if upper == "?" and field not in (DOM, DOW):
            raise ScheduleError(
                f"'?' is only allowed in day-of-month and day-of-week, not {field.name}"
            )
        out.values.update(range(field.lo, field.hi + 1))
        return
    h = _HASHED.fullmatch(upper)
    if h is not None:
        lo, hi = _hashed(h, field, key)
        out.values.add(lo + _hash(key, field) % (hi - lo + 1))
        return
    if field is DOM:
        if upper == "L":
            out.last = True
            return
        if upper == "LW":
            out.last_weekday = True
            return
        m = _NEAREST.fullmatch(upper)
        if m is not None:
            out.nearest += (_value(m.group(1), field),)
            return
    if field is DOW:
        if "#" in upper:
            day_text, _, nth_text = upper.partition("#")
            day = _value(day_text, field) % 7
            if not _DIGITS.fullmatch(nth_text) or not 1 <= int(nth_text) <= 5:
                raise ScheduleError(
                    f"day-of-week {item!r}: the occurrence after '#' must be 1-5, not {nth_text!r}"
                )
            out.nth += ((day, int(nth_text)),)
            return
        if upper == "L":
            raise ScheduleError(
                "'L' in day-of-week needs a weekday before it, e.g. '5L' (the last Friday)"
            )
        if upper.endswith("L"):
            out.last_of += (_value(item[:-1], field) % 7,)
            return
    if "-" in upper[1:]:
        a_text, _, b_text = item.partition("-")
        a, b = _range(a_text, b_text, field)
        out.values.update(range(a, b + 1))
        return
    out.values.add(_value(item, field))


def parse_field(text: str, field: Field, key: str) -> FieldValues:
    out = FieldValues(set())
    for item in text.split(","):
        _item(item, field, key, out)
    return out
