"""The schedule language: pure, clock-free schedule math.

``parse_schedule(expr, timezone, start_at, key)`` returns a ``ParsedSchedule``
(``CronSchedule``, ``IntervalSchedule``, ``OnceSchedule`` or ``ManualSchedule``) whose
``next_after(dt)`` gives the next fire time strictly after ``dt``. Invalid input raises
``ScheduleError``. Only the standard library and ``zoneinfo`` are used.
"""

from tickwork.errors import ScheduleError
from tickwork.schedule.base import ParsedSchedule, to_instant, validate_timezone
from tickwork.schedule.cron import CronSchedule, CronSpec, compile_cron
from tickwork.schedule.interval import IntervalSchedule, Step, parse_interval
from tickwork.schedule.once import ManualSchedule, OnceSchedule
from tickwork.schedule.parse import KINDS, parse_schedule

__all__ = [
    "KINDS",
    "CronSchedule",
    "CronSpec",
    "IntervalSchedule",
    "ManualSchedule",
    "OnceSchedule",
    "ParsedSchedule",
    "ScheduleError",
    "Step",
    "compile_cron",
    "parse_interval",
    "parse_schedule",
    "to_instant",
    "validate_timezone",
]
