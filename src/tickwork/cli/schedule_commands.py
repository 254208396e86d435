"""Schedules from the command line: create, update, delete, show, list, pause, resume.

``create`` and ``update`` share their options (``schedule_options.py``); schedules are
shown by ``schedule_views.py``.
"""

from __future__ import annotations

import sys
from datetime import datetime

import typer

from tickwork.cli.client import globals_of, with_client
from tickwork.cli.main import app
from tickwork.cli.output import Output
from tickwork.cli.schedule_options import (
    GIVEN,
    ScheduleOptions,
    schedule_fields,
    with_schedule_options,
)
from tickwork.cli.schedule_views import schedules_table, show_schedule
from tickwork.engine.scheduler import Scheduler
from tickwork.models import Run, Schedule

SCHEDULE_STATUSES = ("active", "paused", "finished")


def refuse_empty(out: Output, *, task: str | None, schedule: str | None) -> None:
    """An empty ``--task`` or ``--schedule`` is refused here, in the same words on the
    database and through a server (whose schema would answer in its own)."""
    if task is not None and not task.strip():
        out.fail("--task is empty: give a task's name ('tickwork tasks' lists them)", code=2)
    if schedule is not None and not schedule.strip():
        out.fail(
            "--schedule is empty: give an expression such as '0 2 * * *', '5m' or 'manual' "
            "('tickwork validate EXPR' checks one)",
            code=2,
        )


@app.command("create", help="Create a schedule for a task (known to a node or to this process).")
@with_schedule_options(for_update=False)
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
    options: ScheduleOptions = GIVEN,
    paused: bool = typer.Option(False, "--paused", help="Create it paused."),
) -> None:
    out = globals_of(ctx).out
    refuse_empty(out, task=task, schedule=schedule)
    fields = schedule_fields(out, **options)
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


@app.command(
    "update",
    help="Change a schedule: only the options given change; every other setting stays as it is.",
)
@with_schedule_options(for_update=True)
def update(
    ctx: typer.Context,
    id: str = typer.Option(..., "--id", help="The schedule to change."),
    task: str | None = typer.Option(None, "--task", help="Run another task."),
    schedule: str | None = typer.Option(None, "--schedule", help="A new expression."),
    options: ScheduleOptions = GIVEN,
    paused: bool | None = typer.Option(
        None, "--paused/--active", help="Pause it, or make it active again."
    ),
    clear_tags: bool = typer.Option(False, "--clear-tags", help="Remove all its tags."),
    clear_max_executions: bool = typer.Option(
        False,
        "--clear-max-executions",
        help="Remove its limit of fires (set by --max-executions or --once): it fires on.",
    ),
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
    refuse_empty(out, task=task, schedule=schedule)
    if clear_tags and options["tags"]:
        out.fail("give --clear-tags or --tag, not both (--tag already replaces all tags)", code=2)
    if clear_max_executions and (options["max_executions"] is not None or options["once"]):
        given = "--once" if options["once"] else "--max-executions"
        out.fail(f"give {given} or --clear-max-executions, not both", code=2)
    if node_timeout and options["timeout"] is not None:
        out.fail("give --timeout or --node-timeout, not both", code=2)
    if node_retry and (options["retries"] is not None or options["retry_delay"] is not None):
        out.fail("give --retries/--retry-delay or --node-retry, not both", code=2)
    fields = schedule_fields(out, **options)
    if task is not None:
        fields["task"] = task
    if schedule is not None:
        fields["schedule"] = schedule
    if paused is not None:
        fields["paused"] = paused
    if clear_tags:
        fields["tags"] = []
    if clear_max_executions:
        fields["max_executions"] = None
    if node_timeout:
        fields["timeout"] = None
    if node_retry:
        fields["retry"] = None
    if not fields:
        out.fail("nothing to change: give at least one option (see 'tickwork update --help')")

    async def action(scheduler: Scheduler) -> tuple[Schedule, list[datetime], bool]:
        # Read first only to say whether anything changed: an update that gives every
        # setting as it is writes nothing (no new version, no audit entry).
        before = await scheduler.get_schedule(id)
        updated = await scheduler.update_schedule(id, **fields)
        changed = updated.version != before.version
        return updated, await scheduler.next_fire_times(updated.id, 3), changed

    updated, upcoming, changed = with_client(ctx, action)
    if out.json:
        out.emit_json(updated.to_dict())
        return
    title = (
        f"updated schedule {updated.id}"
        if changed
        else f"schedule {updated.id} unchanged: every option given is as it was"
    )
    show_schedule(out, updated, upcoming=upcoming, title=title)


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
#: The most ``--limit`` may ask for: more are read a page at a time with ``--after``.
LIST_MAX = 100_000


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
        LIST_PAGE, "--limit", help=f"At most this many (1 to {LIST_MAX}), in id order."
    ),
    after: str | None = typer.Option(
        None, "--after", metavar="ID", help="Those whose id comes after ID (the next page)."
    ),
) -> None:
    out = globals_of(ctx).out
    out.refuse_blank(("--task", task), ("--tag", tag))
    if fmt not in ("table", "json"):
        out.fail(f"--format {fmt!r} is not one of table, json", code=2)
    source = ctx.get_parameter_source("fmt")
    if out.json and fmt == "table" and source is not None and source.name == "COMMANDLINE":
        out.fail("give --json or --format table, not both: they ask for two formats", code=2)
    if status is not None and status not in SCHEDULE_STATUSES:
        out.fail(f"--status {status!r} is not one of {', '.join(SCHEDULE_STATUSES)}", code=2)
    if not 1 <= limit <= LIST_MAX:
        out.fail(f"--limit must be between 1 and {LIST_MAX}, not {limit}", code=2)

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


def _pause_or_resume(ctx: typer.Context, id: str | None, paused: bool, reason: str | None) -> None:
    out = globals_of(ctx).out

    async def action(scheduler: Scheduler) -> list[Schedule]:
        return await (scheduler.pause(id) if paused else scheduler.resume(id))

    changed = with_client(ctx, action, reason=reason)
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
    reason: str | None = typer.Option(
        None, "--reason", help="Why, recorded in the audit log ('tickwork audit')."
    ),
) -> None:
    _pause_or_resume(ctx, id, True, reason)


@app.command(
    "resume",
    help="Resume one schedule, or all without --id. Fires passed while paused are not caught up.",
)
def resume(
    ctx: typer.Context,
    id: str | None = typer.Option(None, "--id", help="The schedule (default: all)."),
    reason: str | None = typer.Option(
        None, "--reason", help="Why, recorded in the audit log ('tickwork audit')."
    ),
) -> None:
    _pause_or_resume(ctx, id, False, reason)
