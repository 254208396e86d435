"""How the schedule commands show schedules: the expression in words, the next fire,
one schedule in full (``show``, ``create``, ``update``) and a table of many (``list``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tickwork.cli.output import Output, relative, seconds, short, when
from tickwork.errors import ScheduleError
from tickwork.models import Run, Schedule
from tickwork.schedule.parse import parse_stored


def describe(schedule: Schedule) -> str:
    """The expression in words, or the expression itself when it cannot be parsed."""
    try:
        parsed = parse_stored(
            schedule.schedule, schedule.timezone, schedule.start_at, schedule.id, schedule.anchor
        )
    except (ScheduleError, TypeError):
        return schedule.schedule
    return str(parsed.describe())


#: After a value the schedule leaves to the node that runs it (shown: this process's).
_NODE_DEFAULT = " (the executing node's default)"


def next_fire_text(s: Schedule, now: datetime, *, relative_too: bool = True) -> str:
    """The next fire for people: a time only while active; a paused schedule fires
    nothing ("paused": resuming computes its next fire from then), a finished one never."""
    if s.status == "paused":
        return "paused"
    if s.status == "finished":
        return "never (finished)"
    if s.next_fire_at is None:
        return "only when run (manual)"
    text = when(s.next_fire_at, s.timezone)
    return f"{text}  ({relative(s.next_fire_at, now)})" if relative_too else text


def show_schedule(
    out: Output,
    s: Schedule,
    *,
    upcoming: list[datetime] | None = None,
    runs: list[Run] | None = None,
    title: str | None = None,
) -> None:
    now = datetime.now(UTC)
    tz = s.timezone
    retry = s.retry
    pairs: list[tuple[str, Any]] = [
        ("id", s.id),
        ("name", s.name),
        ("description", s.description),
        ("task", s.task),
        ("schedule", f"{s.schedule}  ({describe(s)})"),
        ("timezone", tz),
        ("status", s.status),
        ("next fire", next_fire_text(s, now)),
        ("last fire", when(s.last_fire_at, tz)),
        (
            "executions",
            f"{s.execution_count}"
            + (f" of {s.max_executions}" if s.max_executions is not None else ""),
        ),
        ("data", _json(s.data)),
        ("overlap", s.overlap + (f" (max {s.max_instances})" if s.overlap == "allow" else "")),
        ("catchup", s.catchup),
        ("misfire grace", seconds(s.misfire_grace)),
        (
            "retry",
            f"{retry.max_attempts} attempt(s), delay {seconds(retry.delay)}, backoff "
            f"{retry.backoff:g}, max delay {seconds(retry.max_delay)}"
            + (", full jitter" if retry.jitter else "")
            + _NODE_DEFAULT * ("retry" in s.node_defaults),
        ),
        ("timeout", seconds(s.timeout) + _NODE_DEFAULT * ("timeout" in s.node_defaults)),
        ("priority", s.priority),
        ("start at", when(s.start_at, tz)),
        ("end at", when(s.end_at, tz)),
        ("jitter", seconds(s.jitter) if s.jitter else ""),
        ("tags", ", ".join(s.tags)),
        ("result queue", s.result_queue),
        ("error queue", s.error_queue),
        ("owner", s.owner),
        ("metadata", _json(s.metadata) if s.metadata else ""),
        ("created", when(s.created_at, tz)),
        ("updated", when(s.updated_at, tz)),
    ]
    if upcoming:
        pairs.append(("upcoming", "\n".join(when(t, tz) for t in upcoming)))
    out.fields([(k, v) for k, v in pairs if v not in (None, "")], title=title)
    if runs:
        out.table(
            ["run", "scheduled for", "trigger", "status", "attempt", "duration", "error"],
            [
                [
                    r.id,
                    when(r.scheduled_for, tz),
                    r.trigger,
                    r.status,
                    r.attempt,
                    seconds(r.duration),
                    short(r.error),
                ]
                for r in runs
            ],
            title="recent runs",
        )


def _json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def schedules_table(out: Output, schedules: list[Schedule]) -> None:
    now = datetime.now(UTC)
    out.table(
        ["id", "name", "task", "schedule", "tz", "status", "next fire", "in", "runs"],
        [
            [
                s.id,
                s.name,
                s.task,
                s.schedule,
                s.timezone,
                s.status,
                next_fire_text(s, now, relative_too=False),
                "" if s.status != "active" else relative(s.next_fire_at, now),
                s.execution_count,
            ]
            for s in schedules
        ],
    )
