"""What the dashboard's pages read and change, each through the API's access rules.

Every function takes the scheduler and the signed-in caller and goes through
``tickwork.api.access``, the one place that decides what a caller may see and do: a
user sees their own schedules, an admin all, and a read-only caller's write is refused.
This module only shapes the answers for pages (paging, sorting, counts).
"""

from __future__ import annotations

import logging
import zoneinfo
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Final

from tickwork.api import access
from tickwork.api.auth import Caller
from tickwork.engine.scheduler import Scheduler
from tickwork.errors import NotFoundError
from tickwork.models import LogRecord, Run, RunStatus, Schedule, ScheduleStatus
from tickwork.schedule import ScheduleError
from tickwork.schedule.parse import parse_stored

PAGE_SIZES: Final = (25, 50, 100, 200)
SORTS: Final = ("name", "next", "task", "created", "status")
OUTCOMES: Final = ("succeeded", "failed", "skipped", "missed")
FAILED: Final[tuple[RunStatus, ...]] = ("failed", "timed_out", "lost")
#: Each outcome of the overview's chart, and the run statuses it counts.
OUTCOME_OF: Final = {
    "succeeded": "succeeded",
    "failed": "failed",
    "timed_out": "failed",
    "lost": "failed",
    "skipped": "skipped",
    "missed": "missed",
    "cancelled": "skipped",
}
STRIP: Final = 20


@dataclass(frozen=True, slots=True)
class SchedulePage:
    items: list[Schedule]
    total: int
    page: int
    pages: int


def _status(value: str | None) -> ScheduleStatus | None:
    return value if value in ("active", "paused", "finished") else None  # type: ignore[return-value]


async def schedules(
    scheduler: Scheduler,
    caller: Caller,
    *,
    q: str = "",
    status: str | None = None,
    task: str | None = None,
    tag: str | None = None,
    sort: str = "name",
    descending: bool = False,
    page: int = 1,
    per_page: int = 50,
) -> SchedulePage:
    """One page of the caller's schedules matching the filters, and how many match
    (sorted, counted and cut in the database)."""
    filters: dict[str, Any] = {
        "status": _status(status),
        "task": task or None,
        "tag": tag or None,
        "q": q or None,
    }
    sort = sort if sort in SORTS else "name"
    items, total = await access.schedule_page(
        scheduler,
        caller,
        **filters,
        sort=sort,
        descending=descending,
        offset=(max(1, page) - 1) * per_page,
        limit=per_page,
    )
    pages = max(1, -(-total // per_page))
    if page > pages:  # past the end (rows deleted meanwhile): show the last page
        return await schedules(
            scheduler,
            caller,
            q=q,
            status=status,
            task=task,
            tag=tag,
            sort=sort,
            descending=descending,
            page=pages,
            per_page=per_page,
        )
    return SchedulePage(items, total, max(1, page), pages)


async def matching_ids(
    scheduler: Scheduler,
    caller: Caller,
    *,
    q: str = "",
    status: str | None = None,
    task: str | None = None,
    tag: str | None = None,
) -> list[str]:
    """Every schedule the filters match: the targets of "all matching the filter"."""
    return await access.schedule_ids(
        scheduler, caller, status=_status(status), task=task or None, tag=tag or None, q=q or None
    )


@dataclass(frozen=True, slots=True)
class StripRun:
    """One mark of a list row's strip of last runs."""

    id: str
    status: str
    scheduled_for: datetime


async def last_runs(
    scheduler: Scheduler, caller: Caller, schedule_ids: Sequence[str], count: int = STRIP
) -> dict[str, list[StripRun]]:
    """The newest ``count`` runs of each schedule, oldest first (the list's strip)."""
    found = await access.recent_runs(scheduler, caller, schedule_ids, count)
    return {sid: [StripRun(*r) for r in runs] for sid, runs in found.items()}


async def task_names(scheduler: Scheduler, caller: Caller) -> list[str]:
    return sorted({t.name for t in await access.list_tasks(scheduler, caller)})


@dataclass(frozen=True, slots=True)
class Overview:
    schedules_by_status: dict[str, int]
    runs_by_outcome: dict[str, int]
    running: int
    series: dict[str, Any]
    durations: dict[str, Any]
    next_due: list[Schedule]
    failures: list[Run]


async def overview(scheduler: Scheduler, caller: Caller, now: datetime) -> Overview:
    """Counts, the last 24 hours of runs by outcome and hour, what fires next, what failed:
    each a query that the database answers with a few rows."""
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=24)
    hours = 25
    activity = await access.run_activity(scheduler, caller, start, 3600)
    buckets = {o: [0] * hours for o in OUTCOMES}
    mean: list[float | None] = [None] * hours
    top: list[float | None] = [None] * hours
    weights = [0] * hours
    outcomes: Counter[str] = Counter()
    running = 0
    for bucket, status, n, avg, most in activity:
        if not 0 <= bucket < hours:
            continue
        if status == "running":
            running += n
        outcome = OUTCOME_OF.get(status)
        if outcome is None:
            continue
        buckets[outcome][bucket] += n
        outcomes[outcome] += n
        if avg is not None:
            total = (mean[bucket] or 0.0) * weights[bucket] + avg * n
            weights[bucket] += n
            mean[bucket] = total / weights[bucket]
        if most is not None:
            top[bucket] = max(top[bucket] or 0.0, most)
    xs = [int((start + timedelta(hours=i)).timestamp()) for i in range(hours)]
    series = {"series": list(OUTCOMES), "data": [xs, *(buckets[o] for o in OUTCOMES)]}
    durations = {"series": ["mean", "max"], "data": [xs, mean, top]}
    due, _ = await access.schedule_page(scheduler, caller, status="active", sort="next", limit=10)
    failures = await latest_failures(scheduler, caller, start, buckets["failed"])
    return Overview(
        await access.count_schedules(scheduler, caller),
        dict(outcomes),
        running,
        series,
        durations,
        [s for s in due if s.next_fire_at is not None],
        failures,
    )


async def latest_failures(
    scheduler: Scheduler, caller: Caller, start: datetime, per_hour: Sequence[int], count: int = 10
) -> list[Run]:
    """The newest failed runs of the window: read only from the newest hours that hold
    ``count`` of them, so the database never walks a history without failures."""
    needed, first = 0, None
    for hour in range(len(per_hour) - 1, -1, -1):
        if per_hour[hour]:
            needed += per_hour[hour]
            first = hour
            if needed >= count:
                break
    if first is None:
        return []
    return await access.list_runs(
        scheduler, caller, status=FAILED, since=start + timedelta(hours=first), limit=count
    )


async def schedule_or_none(
    scheduler: Scheduler, caller: Caller, schedule_id: str
) -> Schedule | None:
    try:
        return await access.get_schedule(scheduler, caller, schedule_id)
    except NotFoundError:
        return None


async def run_zones(scheduler: Scheduler, caller: Caller, runs: Sequence[Run]) -> dict[str, str]:
    """The time zone of each run's schedule, so a list of runs of many schedules shows
    each run's times in its schedule's zone, as the run's own page does (a deleted
    schedule's runs: UTC)."""
    zones: dict[str, str] = {}
    for schedule_id in dict.fromkeys(r.schedule_id for r in runs if r.schedule_id):
        s = await schedule_or_none(scheduler, caller, schedule_id)
        if s is not None:
            zones[schedule_id] = s.timezone
    return zones


def describe(s: Schedule) -> str:
    """The schedule in plain English, or why it cannot be read."""
    try:
        return parse_stored(s.schedule, s.timezone, s.start_at, s.id, s.anchor).describe()
    except ScheduleError as e:
        return f"cannot be read: {e}"


async def history(scheduler: Scheduler, caller: Caller, schedule_id: str) -> list[Any]:
    """The schedule's changes from the audit log, newest first (empty when the caller may
    not read the audit log of others: a user reads the entries about their own schedule)."""
    entries: list[Any] = await access.schedule_history(scheduler, caller, schedule_id, limit=50)
    return entries


def pause_reason(entries: Sequence[Any]) -> Any | None:
    """The newest pause entry: who paused, when, and the reason given."""
    for e in entries:
        if e.action == "schedule.paused":
            return e
        if e.action == "schedule.resumed":
            return None
    return None


def filter_logs(logs: Sequence[LogRecord], level: str, q: str) -> list[LogRecord]:
    """Lines at ``level`` or above, containing ``q`` (any case)."""
    floor = logging.getLevelName(level.upper()) if level else 0
    if not isinstance(floor, int):
        floor = 0
    q = q.lower()
    out = []
    for r in logs:
        lv = logging.getLevelName(r.level.upper())
        if isinstance(lv, int) and lv < floor:
            continue
        if q and q not in r.message.lower() and q not in r.logger.lower():
            continue
        out.append(r)
    return out


@cache
def zone_names() -> list[str]:
    return sorted(z for z in zoneinfo.available_timezones() if "/" in z or z == "UTC")
