"""Schedules from the command line: create, update, delete, show, list, pause, resume.

``create`` and ``update`` share their options; an option not given is not sent, so
``update`` changes only what it is told and ``create`` leaves tickwork's defaults.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from tickwork.cli.client import globals_of, parse_data, with_client
from tickwork.cli.main import app
from tickwork.cli.output import Output, relative, seconds, short, when
from tickwork.engine.scheduler import Scheduler
from tickwork.errors import ScheduleError
from tickwork.models import CATCHUP_POLICIES, OVERLAP_POLICIES, Run, Schedule
from tickwork.schedule import parse_schedule

SCHEDULE_STATUSES = ("active", "paused", "finished")

# -- options shared by create and update ---------------------------------------------------

Name = Annotated[str | None, typer.Option("--name", help="A human name.")]
Description = Annotated[str | None, typer.Option("--description", help="What it is for.")]
Data = Annotated[
    str | None,
    typer.Option(
        "--data",
        metavar="JSON",
        help='A JSON object passed to the task as keyword arguments, e.g. \'{"region": "eu"}\'.',
    ),
]
Tz = Annotated[
    str | None,
    typer.Option(
        "--tz", help="IANA time zone of the expression and of naive times (default: UTC)."
    ),
]
Once = Annotated[
    bool,
    typer.Option(
        "--once",
        help="Fire only once: sets max_executions=1, so '--schedule \"0 9 * * *\" --once' "
        "fires at the next 09:00 and is then finished. One-time expressions "
        "('2026-12-25 09:00', 'in 10m', 'now') fire once anyway.",
    ),
]
Overlap = Annotated[
    str | None,
    typer.Option(
        "--overlap",
        help=f"When the previous run still runs: {', '.join(OVERLAP_POLICIES)} (default: skip).",
    ),
]
MaxInstances = Annotated[
    int | None,
    typer.Option("--max-instances", help="Runs at once with --overlap allow (default: 1)."),
]
Catchup = Annotated[
    str | None,
    typer.Option(
        "--catchup",
        help=f"Fires missed while no node ran: {', '.join(CATCHUP_POLICIES)} (default: latest).",
    ),
]
MisfireGrace = Annotated[
    float | None,
    typer.Option(
        "--misfire-grace",
        metavar="SECONDS",
        help="A fire late by at most this much is on time (default: 30).",
    ),
]
Retries = Annotated[
    int | None,
    typer.Option(
        "--retries",
        metavar="N",
        help="Retries after a failed first attempt (retry.max_attempts = N + 1) (default: the "
        "task's, else the executing node's retry policy, 2 retries unless set).",
    ),
]
RetryDelay = Annotated[
    float | None,
    typer.Option(
        "--retry-delay",
        metavar="SECONDS",
        help="Delay before the first retry, doubled each time, with full jitter (default: 5).",
    ),
]
Timeout = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        metavar="SECONDS",
        help="Stop an attempt after this long (default: the task's, else the executing "
        "node's --default-timeout, 300 unless set).",
    ),
]
MaxExecutions = Annotated[
    int | None,
    typer.Option("--max-executions", metavar="N", help="Finished after N fires."),
]
StartAt = Annotated[
    str | None,
    typer.Option(
        "--start-at", metavar="ISO", help="First possible fire (inclusive); naive = in --tz."
    ),
]
EndAt = Annotated[
    str | None,
    typer.Option("--end-at", metavar="ISO", help="No fire after this; naive = in --tz."),
]
Jitter = Annotated[
    float | None,
    typer.Option(
        "--jitter",
        metavar="SECONDS",
        help="Delay each fire by up to this much (stable per schedule and fire time).",
    ),
]
Priority = Annotated[
    int | None,
    typer.Option("--priority", help="Higher runs first when more are due than slots (default: 0)."),
]
Tags = Annotated[
    list[str] | None,
    typer.Option("--tag", metavar="TAG", help="A tag (repeatable); update replaces them all."),
]
ResultQueue = Annotated[
    str | None,
    typer.Option("--result-queue", metavar="QUEUE", help="Queue that receives results."),
]
ErrorQueue = Annotated[
    str | None,
    typer.Option("--error-queue", metavar="QUEUE", help="Queue that receives final errors."),
]


def _fields(
    out: Output,
    *,
    name: str | None,
    description: str | None,
    data: str | None,
    tz: str | None,
    once: bool,
    overlap: str | None,
    max_instances: int | None,
    catchup: str | None,
    misfire_grace: float | None,
    retries: int | None,
    retry_delay: float | None,
    timeout: float | None,
    max_executions: int | None,
    start_at: str | None,
    end_at: str | None,
    jitter: float | None,
    priority: int | None,
    tags: list[str] | None,
    result_queue: str | None,
    error_queue: str | None,
) -> dict[str, Any]:
    """The schedule fields the options ask for; options not given are left out."""
    fields: dict[str, Any] = {}
    plain = {
        "name": name,
        "description": description,
        "timezone": tz,
        "overlap": overlap,
        "max_instances": max_instances,
        "catchup": catchup,
        "misfire_grace": misfire_grace,
        "timeout": timeout,
        "max_executions": max_executions,
        "start_at": start_at,
        "end_at": end_at,
        "jitter": jitter,
        "priority": priority,
        "result_queue": result_queue,
        "error_queue": error_queue,
    }
    fields.update({k: v for k, v in plain.items() if v is not None})
    parsed = parse_data(out, data)
    if parsed is not None:
        fields["data"] = parsed
    if once:
        if max_executions not in (None, 1):
            out.fail(f"--once means --max-executions 1; it conflicts with {max_executions}")
        fields["max_executions"] = 1
    retry: dict[str, Any] = {}
    if retries is not None:
        if retries < 0:
            out.fail(f"--retries must be >= 0, not {retries}")
        retry["max_attempts"] = retries + 1
    if retry_delay is not None:
        retry["delay"] = retry_delay
    if retry:
        fields["retry"] = retry
    if tags is not None:
        fields["tags"] = list(tags)
    return fields


# -- rendering -------------------------------------------------------------------------------


def describe(schedule: Schedule) -> str:
    """The expression in words, or the expression itself when it cannot be parsed."""
    try:
        parsed = parse_schedule(
            schedule.schedule,
            timezone=schedule.timezone,
            start_at=schedule.start_at,
            key=schedule.id,
            now=schedule.anchor,
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


# -- commands --------------------------------------------------------------------------------


@app.command("create", help="Create a schedule for a task (known to a node or to this process).")
def create(
    ctx: typer.Context,
    task: str = typer.Option(..., "--task", help="Task name, e.g. 'reports:daily'."),
    schedule: str = typer.Option(
        ...,
        "--schedule",
        help="When: cron ('0 2 * * *'), interval ('every 5m'), once ('2026-12-25 09:00', "
        "'in 10m') or 'manual'.",
    ),
    id: str | None = typer.Option(None, "--id", help="Schedule id (default: generated)."),
    name: Name = None,
    description: Description = None,
    data: Data = None,
    tz: Tz = None,
    once: Once = False,
    overlap: Overlap = None,
    max_instances: MaxInstances = None,
    catchup: Catchup = None,
    misfire_grace: MisfireGrace = None,
    retries: Retries = None,
    retry_delay: RetryDelay = None,
    timeout: Timeout = None,
    max_executions: MaxExecutions = None,
    start_at: StartAt = None,
    end_at: EndAt = None,
    jitter: Jitter = None,
    priority: Priority = None,
    tags: Tags = None,
    result_queue: ResultQueue = None,
    error_queue: ErrorQueue = None,
    paused: bool = typer.Option(False, "--paused", help="Create it paused."),
) -> None:
    out = globals_of(ctx).out
    fields = _fields(
        out,
        name=name,
        description=description,
        data=data,
        tz=tz,
        once=once,
        overlap=overlap,
        max_instances=max_instances,
        catchup=catchup,
        misfire_grace=misfire_grace,
        retries=retries,
        retry_delay=retry_delay,
        timeout=timeout,
        max_executions=max_executions,
        start_at=start_at,
        end_at=end_at,
        jitter=jitter,
        priority=priority,
        tags=tags,
        result_queue=result_queue,
        error_queue=error_queue,
    )
    if paused:
        fields["paused"] = True

    async def action(scheduler: Scheduler) -> tuple[Schedule, list[datetime]]:
        created = await scheduler.add_schedule(task, schedule, id=id, **fields)
        return created, await scheduler.next_fire_times(created.id, 3)

    created, upcoming = with_client(ctx, action, creates=True)
    if out.json:
        out.emit_json(created.to_dict())
        return
    show_schedule(out, created, upcoming=upcoming, title=f"created schedule {created.id}")


@app.command("update", help="Change a schedule: only the options given change.")
def update(
    ctx: typer.Context,
    id: str = typer.Option(..., "--id", help="The schedule to change."),
    task: str | None = typer.Option(None, "--task", help="Run another task."),
    schedule: str | None = typer.Option(None, "--schedule", help="A new expression."),
    name: Name = None,
    description: Description = None,
    data: Data = None,
    tz: Tz = None,
    once: Once = False,
    overlap: Overlap = None,
    max_instances: MaxInstances = None,
    catchup: Catchup = None,
    misfire_grace: MisfireGrace = None,
    retries: Retries = None,
    retry_delay: RetryDelay = None,
    timeout: Timeout = None,
    max_executions: MaxExecutions = None,
    start_at: StartAt = None,
    end_at: EndAt = None,
    jitter: Jitter = None,
    priority: Priority = None,
    tags: Tags = None,
    result_queue: ResultQueue = None,
    error_queue: ErrorQueue = None,
    paused: bool | None = typer.Option(
        None, "--paused/--active", help="Pause it, or make it active again."
    ),
    clear_tags: bool = typer.Option(False, "--clear-tags", help="Remove all its tags."),
    node_timeout: bool = typer.Option(
        False,
        "--node-timeout",
        help="Leave the timeout to the node that runs each run (its --default-timeout).",
    ),
    node_retry: bool = typer.Option(
        False,
        "--node-retry",
        help="Leave the retry policy to the node that runs each run (its --default-retries...).",
    ),
) -> None:
    out = globals_of(ctx).out
    if clear_tags and tags:
        out.fail("give --clear-tags or --tag, not both (--tag already replaces all tags)")
    if node_timeout and timeout is not None:
        out.fail("give --timeout or --node-timeout, not both")
    if node_retry and (retries is not None or retry_delay is not None):
        out.fail("give --retries/--retry-delay or --node-retry, not both")
    fields = _fields(
        out,
        name=name,
        description=description,
        data=data,
        tz=tz,
        once=once,
        overlap=overlap,
        max_instances=max_instances,
        catchup=catchup,
        misfire_grace=misfire_grace,
        retries=retries,
        retry_delay=retry_delay,
        timeout=timeout,
        max_executions=max_executions,
        start_at=start_at,
        end_at=end_at,
        jitter=jitter,
        priority=priority,
        tags=tags,
        result_queue=result_queue,
        error_queue=error_queue,
    )
    if task is not None:
        fields["task"] = task
    if schedule is not None:
        fields["schedule"] = schedule
    if paused is not None:
        fields["paused"] = paused
    if clear_tags:
        fields["tags"] = []
    if node_timeout:
        fields["timeout"] = None
    if node_retry:
        fields["retry"] = None
    if not fields:
        out.fail("nothing to change: give at least one option (see 'tickwork update --help')")

    async def action(scheduler: Scheduler) -> tuple[Schedule, list[datetime]]:
        updated = await scheduler.update_schedule(id, **fields)
        return updated, await scheduler.next_fire_times(updated.id, 3)

    updated, upcoming = with_client(ctx, action)
    if out.json:
        out.emit_json(updated.to_dict())
        return
    show_schedule(out, updated, upcoming=upcoming, title=f"updated schedule {updated.id}")


@app.command(
    "delete",
    help="Delete a schedule; its waiting runs are cancelled, its history is kept. "
    "Asks for confirmation unless --confirm is given.",
)
def delete(
    ctx: typer.Context,
    id: str = typer.Option(..., "--id", help="The schedule to delete."),
    confirm: bool = typer.Option(False, "--confirm", "--yes", "-y", help="Do not ask."),
) -> None:
    out = globals_of(ctx).out
    target = with_client(ctx, lambda scheduler: scheduler.get_schedule(id))
    if not confirm:
        if not sys.stdin.isatty():
            out.fail(
                f"refusing to delete schedule {id!r} without confirmation: stdin is not a "
                "terminal, pass --confirm"
            )
        label = f"{target.id} ({target.task}, {target.schedule!r})"
        if not typer.confirm(f"Delete schedule {label}? Its run history is kept", default=False):
            out.fail("not deleted")

    async def action(scheduler: Scheduler) -> None:
        await scheduler.delete_schedule(id)

    with_client(ctx, action)
    if out.json:
        out.emit_json({"id": id, "deleted": True})
        return
    out.line(f"deleted schedule {id}")


@app.command("show", help="Show a schedule: every setting, the next fire times, recent runs.")
def show(
    ctx: typer.Context,
    id: str = typer.Option(..., "--id", help="The schedule to show."),
) -> None:
    out = globals_of(ctx).out

    async def action(scheduler: Scheduler) -> tuple[Schedule, list[datetime], list[Run]]:
        found = await scheduler.get_schedule(id)
        upcoming = await scheduler.next_fire_times(id, 5)
        runs = await scheduler.list_runs(schedule_id=id, limit=5)
        return found, upcoming, runs

    found, upcoming, runs = with_client(ctx, action)
    if out.json:
        # What the table shows: the schedule's fields, its next fire times, recent runs.
        out.emit_json(
            found.to_dict()
            | {
                "upcoming": [t.isoformat() for t in upcoming],
                "recent_runs": [r.to_dict() for r in runs],
            }
        )
        return
    show_schedule(out, found, upcoming=upcoming, runs=runs)


#: Schedules ``list`` shows at most, unless ``--limit`` says otherwise.
LIST_PAGE = 1000


@app.command("list", help="List schedules, a page at a time (--limit, --after).")
def list_(
    ctx: typer.Context,
    status: str | None = typer.Option(
        None, "--status", help=f"Only those {', '.join(SCHEDULE_STATUSES)}."
    ),
    task: str | None = typer.Option(None, "--task", help="Only those of this task."),
    tag: str | None = typer.Option(None, "--tag", help="Only those with this tag."),
    fmt: str = typer.Option("table", "--format", help="table or json (same as --json)."),
    limit: int = typer.Option(
        LIST_PAGE, "--limit", help=f"At most this many, in id order (default {LIST_PAGE})."
    ),
    after: str | None = typer.Option(
        None, "--after", metavar="ID", help="Those whose id comes after ID (the next page)."
    ),
) -> None:
    out = globals_of(ctx).out
    if fmt not in ("table", "json"):
        out.fail(f"--format {fmt!r} is not one of table, json")
    if status is not None and status not in SCHEDULE_STATUSES:
        out.fail(f"--status {status!r} is not one of {', '.join(SCHEDULE_STATUSES)}")
    if limit < 1:
        out.fail(f"--limit must be at least 1, not {limit}")

    async def action(scheduler: Scheduler) -> list[Schedule]:
        return await scheduler.list_schedules(
            status=status,  # type: ignore[arg-type]  # checked above
            task=task,
            tag=tag,
            after_id=after,
            limit=limit + 1,  # one more: is there a next page?
        )

    schedules = with_client(ctx, action)
    more = len(schedules) > limit
    del schedules[limit:]
    if more:
        print(
            f"more schedules follow: tickwork list --after {schedules[-1].id}",
            file=sys.stderr,
        )
    if out.json or fmt == "json":
        out.emit_json([s.to_dict() for s in schedules])
        return
    if not schedules:
        out.line("no schedules" + (" matching" if status or task or tag else ""))
        return
    schedules_table(out, schedules)


def _pause_or_resume(ctx: typer.Context, id: str | None, paused: bool) -> None:
    out = globals_of(ctx).out

    async def action(scheduler: Scheduler) -> list[Schedule]:
        return await (scheduler.pause(id) if paused else scheduler.resume(id))

    changed = with_client(ctx, action)
    if out.json:
        out.emit_json([s.to_dict() for s in changed])
        return
    verb = "paused" if paused else "resumed"
    if id is not None and not changed:
        out.line(f"schedule {id} was already {'paused' if paused else 'not paused'}")
        return
    if id is None and not changed:
        out.line(f"no schedule to {'pause' if paused else 'resume'}")
        return
    out.line(f"{verb} {len(changed)} schedule(s): {', '.join(s.id for s in changed)}")


@app.command(
    "pause",
    help="Pause one schedule, or all without --id. Runs already waiting or running go on.",
)
def pause(
    ctx: typer.Context,
    id: str | None = typer.Option(None, "--id", help="The schedule (default: all)."),
) -> None:
    _pause_or_resume(ctx, id, True)


@app.command(
    "resume",
    help="Resume one schedule, or all without --id. Fires passed while paused are not caught up.",
)
def resume(
    ctx: typer.Context,
    id: str | None = typer.Option(None, "--id", help="The schedule (default: all)."),
) -> None:
    _pause_or_resume(ctx, id, False)
