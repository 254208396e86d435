"""``tickwork next [--count N] [--schedule ID]``: upcoming fires of stored schedules.

``next EXPR`` (an expression not stored) lives in ``expression_commands``; without an
expression it calls ``next_for_stored_schedules``. With ``--schedule`` it lists that
schedule's next ``count`` fire times; without, the next ``count`` fires over every
active schedule, merged in time order (each schedule may appear several times).
"""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from tickwork.cli.client import globals_of, with_client
from tickwork.cli.output import relative, when
from tickwork.engine.scheduler import Scheduler
from tickwork.models import Schedule

MAX_COUNT = 1000

Fire = tuple[Schedule, datetime]


async def upcoming_fires(
    scheduler: Scheduler, schedule_id: str | None, count: int, after: str | None = None
) -> list[Fire]:
    """The next ``count`` fires of one schedule, or of all active ones merged; with
    ``after``, those strictly after it (naive: in each schedule's zone)."""
    if schedule_id is not None:
        schedule = await scheduler.get_schedule(schedule_id)
        times = await scheduler.next_fire_times(schedule_id, count, after=after)
        return [(schedule, t) for t in times]
    fires: list[Fire] = []
    # Schedules come from the index of next fire times, a page at a time: once one
    # starts after the count-th fire found so far, no later one can contribute (without
    # --after, which needs every schedule's fires after that time).
    cursor: tuple[datetime, str] | None = None
    while True:
        page = await scheduler.upcoming_schedules(max(count, 100), cursor)
        for schedule in page:
            assert schedule.next_fire_at is not None
            if after is None and len(fires) >= count and schedule.next_fire_at > fires[-1][1]:
                return fires
            times = await scheduler.next_fire_times(schedule.id, count, after=after)
            fires.extend((schedule, t) for t in times)
            fires.sort(key=lambda fire: (fire[1], fire[0].id))
            del fires[count:]
        if len(page) < max(count, 100):
            return fires
        last = page[-1]
        assert last.next_fire_at is not None
        cursor = (last.next_fire_at, last.id)


def next_for_stored_schedules(
    ctx: typer.Context, schedule_id: str | None, count: int, after: str | None = None
) -> None:
    """Print the next fire times of stored active schedules (``next`` without EXPR)."""
    out = globals_of(ctx).out
    if count < 1 or count > MAX_COUNT:
        out.fail(f"--count must be between 1 and {MAX_COUNT}, not {count}", code=2)

    async def action(scheduler: Scheduler) -> list[Fire]:
        return await upcoming_fires(scheduler, schedule_id, count, after)

    fires = with_client(ctx, action)
    if out.json:
        out.emit_json(
            [
                {
                    "schedule_id": s.id,
                    "name": s.name,
                    "task": s.task,
                    "schedule": s.schedule,
                    "timezone": s.timezone,
                    "fire_at": t.isoformat(),
                }
                for s, t in fires
            ]
        )
        return
    if not fires:
        if schedule_id is not None:
            out.line(f"schedule {schedule_id} has no upcoming fire (paused, finished or manual)")
        elif after is not None:
            out.line("no fire after that time: no active schedule fires then")
        else:
            out.line("no upcoming fire: no active schedule")
        return
    now = datetime.now(UTC)
    out.table(
        ["fire at", "in", "schedule", "task", "expression"],
        [[when(t, s.timezone), relative(t, now), s.id, s.task, s.schedule] for s, t in fires],
    )
