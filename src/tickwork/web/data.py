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
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Final

from tickwork.api import access
from tickwork.api.auth import Caller
from tickwork.engine.scheduler import Scheduler
from tickwork.errors import NotFoundError
from tickwork.models import LogRecord, Run, RunStatus, Schedule
from tickwork.schedule import ScheduleError, parse_schedule

PAGE_SIZES: Final = (25, 50, 100, 200)
#: "No limit" for the lists the dashboard sorts and counts itself.
ALL: Final = 10**9
SORTS: Final = {
    "name": lambda s: ((s.name or s.id).lower(), s.id),
    "next": lambda s: (s.next_fire_at is None, s.next_fire_at or datetime.max.replace(tzinfo=UTC)),
    "task": lambda s: (s.task, s.id),
    "created": lambda s: (s.created_at or datetime.min.replace(tzinfo=UTC), s.id),
    "status": lambda s: (s.status, s.id),
}
OUTCOMES: Final = ("succeeded", "failed", "skipped", "missed")
FAILED: Final[tuple[RunStatus, ...]] = ("failed", "timed_out", "lost")


@dataclass(frozen=True, slots=True)
class SchedulePage:
    items: list[Schedule]
    total: int
    page: int
    pages: int
    matching_ids: list[str]


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
    """One page of the caller's schedules matching the filters, and how many match."""
    found = await access.list_schedules(
        scheduler,
        caller,
        status=status or None,  # type: ignore[arg-type]
        task=task or None,
        tag=tag or None,
        q=q or None,
        limit=ALL,
    )
    found.sort(key=SORTS.get(sort, SORTS["name"]), reverse=descending)
    total = len(found)
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    start = (page - 1) * per_page
    return SchedulePage(found[start : start + per_page], total, page, pages, [s.id for s in found])


async def last_runs(
    scheduler: Scheduler, caller: Caller, schedule_ids: Sequence[str], count: int = 20
) -> dict[str, list[Run]]:
    """The newest ``count`` runs of each schedule, oldest first (the list's strip)."""
    out: dict[str, list[Run]] = {}
    for sid in schedule_ids:
        runs = await access.list_runs(scheduler, caller, schedule_id=sid, limit=count)
        out[sid] = list(reversed(runs))
    return out


async def task_names(scheduler: Scheduler, caller: Caller) -> list[str]:
    return sorted({t.name for t in await access.list_tasks(scheduler, caller)})


async def tags_of(scheduler: Scheduler, caller: Caller) -> list[str]:
    found = await access.list_schedules(scheduler, caller, limit=ALL)
    return sorted({t for s in found for t in s.tags})


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
    """Counts, the last 24 hours of runs by outcome and hour, what fires next, what failed."""
    found = await access.list_schedules(scheduler, caller, limit=ALL)
    by_status: Counter[str] = Counter(s.status for s in found)
    since = now - timedelta(hours=24)
    runs = await access.list_runs(scheduler, caller, since=since, limit=10_000)
    outcomes: Counter[str] = Counter()
    hours = [
        since.replace(minute=0, second=0, microsecond=0) + timedelta(hours=i) for i in range(25)
    ]
    buckets = {o: [0] * len(hours) for o in OUTCOMES}
    p50: list[float | None] = [None] * len(hours)
    p95: list[float | None] = [None] * len(hours)
    per_hour: list[list[float]] = [[] for _ in hours]
    running = 0
    for r in runs:
        status = "failed" if r.status in FAILED else r.status
        if r.status in ("running", "retrying", "pending"):
            running += r.status == "running"
            continue
        outcomes[status] += 1
        at = r.finished_at or r.scheduled_for
        i = int((at - hours[0]).total_seconds() // 3600)
        if 0 <= i < len(hours) and status in buckets:
            buckets[status][i] += 1
            if r.duration is not None:
                per_hour[i].append(r.duration)
    for i, ds in enumerate(per_hour):
        if ds:
            ds.sort()
            p50[i] = ds[len(ds) // 2]
            p95[i] = ds[min(len(ds) - 1, int(len(ds) * 0.95))]
    xs = [int(h.timestamp()) for h in hours]
    series = {"series": list(OUTCOMES), "data": [xs, *(buckets[o] for o in OUTCOMES)]}
    durations = {"series": ["p50", "p95"], "data": [xs, p50, p95]}
    due = sorted(
        (s for s in found if s.next_fire_at is not None and s.status == "active"),
        key=lambda s: s.next_fire_at or now,
    )[:10]
    failures: list[Run] = []
    for status in FAILED:
        failures += await access.list_runs(scheduler, caller, status=status, limit=10)
    failures.sort(key=lambda r: r.finished_at or r.scheduled_for, reverse=True)
    failures = failures[:10]
    return Overview(dict(by_status), dict(outcomes), running, series, durations, due, failures)


async def schedule_or_none(
    scheduler: Scheduler, caller: Caller, schedule_id: str
) -> Schedule | None:
    try:
        return await access.get_schedule(scheduler, caller, schedule_id)
    except NotFoundError:
        return None


def describe(s: Schedule) -> str:
    """The schedule in plain English, or why it cannot be read."""
    try:
        return parse_schedule(s.schedule, timezone=s.timezone).describe()
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
