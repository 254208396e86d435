"""Runs from the command line: ``run`` (trigger now, optionally wait) and ``history``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import typer

from tickwork.cli.client import globals_of, parse_data, with_client
from tickwork.cli.main import app
from tickwork.cli.output import Output, seconds, short, when
from tickwork.engine.scheduler import Scheduler
from tickwork.errors import RunTimeoutError
from tickwork.models import RUN_STATUSES, Run


def show_run(out: Output, run: Run, title: str | None = None) -> None:
    """One run: its fields, attempts and captured logs."""
    pairs: list[tuple[str, Any]] = [
        ("id", run.id),
        ("schedule", run.schedule_id),
        ("task", run.task),
        ("scheduled for", when(run.scheduled_for)),
        ("trigger", run.trigger),
        ("status", run.status),
        ("attempt", run.attempt),
        ("data", json.dumps(run.data, ensure_ascii=False, sort_keys=True)),
        ("started", when(run.started_at)),
        ("finished", when(run.finished_at)),
        ("duration", seconds(run.duration)),
        ("node", run.node),
        (
            "result",
            json.dumps(run.result, ensure_ascii=False) if run.status == "succeeded" else None,
        ),
        ("error", run.error),
    ]
    out.fields([(k, v) for k, v in pairs if v not in (None, "")], title=title)
    if run.attempts:
        out.table(
            ["attempt", "status", "started", "duration", "node", "error"],
            [
                [a.number, a.status, when(a.started_at), seconds(a.duration), a.node, a.error]
                for a in run.attempts
            ],
            title="attempts",
        )
    if run.logs:
        out.table(
            ["at", "attempt", "level", "logger", "message"],
            [[when(r.at), r.attempt, r.level, r.logger, r.message] for r in run.logs],
            title="logs",
        )
    if run.traceback and run.status != "succeeded":
        out.line(run.traceback.rstrip())


def runs_table(out: Output, runs: list[Run]) -> None:
    out.table(
        [
            "run",
            "schedule",
            "task",
            "scheduled for",
            "trigger",
            "status",
            "attempt",
            "duration",
            "error",
        ],
        [
            [
                r.id,
                r.schedule_id,
                r.task,
                when(r.scheduled_for),
                r.trigger,
                r.status,
                r.attempt,
                seconds(r.duration),
                short(r.error),
            ]
            for r in runs
        ],
    )


@app.command(
    "run",
    help="Run a schedule's task now, outside its schedule. With --wait, wait until a node "
    "has run it, print the finished run, and exit 1 unless it succeeded.",
)
def run(
    ctx: typer.Context,
    id: str = typer.Option(..., "--id", help="The schedule to run."),
    data: str | None = typer.Option(
        None, "--data", metavar="JSON", help="A JSON object merged over the schedule's data."
    ),
    wait: bool = typer.Option(False, "--wait", help="Wait until the run is over."),
    timeout: float | None = typer.Option(
        None,
        "--timeout",
        metavar="SECONDS",
        min=0,
        help="With --wait: give up waiting after this long (exit 1; the run goes on).",
    ),
) -> None:
    out = globals_of(ctx).out
    extra = parse_data(out, data)
    if timeout is not None and not wait:
        out.fail("--timeout only makes sense with --wait", code=2)

    async def action(scheduler: Scheduler) -> Run:
        schedule = await scheduler.get_schedule(id)
        if wait:
            nodes = await scheduler.nodes()
            if not any(schedule.task in node.tasks for node in nodes):
                out.warn(
                    f"no running node has task {schedule.task!r}: the run waits until a worker "
                    "with it starts (tickwork worker --import MODULE)"
                )
        created = await scheduler.run_now(id, data=extra)
        if not wait:
            return created
        try:
            return await scheduler.wait_for_run(created.id, timeout=timeout)
        except asyncio.CancelledError:  # Ctrl-C: only the waiting stops
            out.fail(
                f"interrupted: stopped waiting for run {created.id}, which goes on "
                f"(tickwork history --run {created.id})",
                code=130,
            )
        except RunTimeoutError:
            current = await scheduler.get_run(created.id)
            if out.json:
                out.emit_json(current.to_dict())
            out.fail(
                f"run {created.id} is still {current.status} after {timeout:g} s "
                "(it goes on; see 'tickwork history')"
            )

    result = with_client(ctx, action)
    if out.json:
        out.emit_json(result.to_dict())
    elif not wait:
        out.line(f"run {result.id} of schedule {id} is {result.status} (due now)")
    else:
        show_run(out, result, title=f"run {result.id}")
    if wait and result.status != "succeeded":
        out.fail(f"run {result.id} {result.status}" + (f": {result.error}" if result.error else ""))


@app.command(
    "history",
    help="Past and current runs, newest first; --run ID shows one run with its attempts and logs.",
)
def history(
    ctx: typer.Context,
    schedule: str | None = typer.Option(None, "--schedule", help="Only runs of this schedule."),
    task: str | None = typer.Option(None, "--task", help="Only runs of this task."),
    status: str | None = typer.Option(
        None, "--status", help=f"Only runs in this status: {', '.join(RUN_STATUSES)}."
    ),
    limit: int = typer.Option(20, "--limit", min=1, max=10_000, help="At most this many."),
    run_id: str | None = typer.Option(
        None, "--run", metavar="RUN_ID", help="Show this run in full instead."
    ),
) -> None:
    out = globals_of(ctx).out
    out.refuse_blank(("--task", task))
    if status is not None and status not in RUN_STATUSES:
        out.fail(f"--status {status!r} is not one of {', '.join(RUN_STATUSES)}", code=2)
    if run_id is not None:
        # One run in full: the list's filters would be silently ignored.
        given = [
            f"--{name}"
            for name in ("schedule", "task", "status", "limit")
            if getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"
        ]
        if given:
            out.fail(
                f"give --run or {', '.join(given)}, not both: --run shows one run in full, "
                f"{given[0]} filters the list of runs",
                code=2,
            )
        found = with_client(ctx, lambda scheduler: scheduler.get_run(run_id))
        if out.json:
            out.emit_json(found.to_dict())
        else:
            show_run(out, found, title=f"run {found.id}")
        return

    async def action(scheduler: Scheduler) -> list[Run]:
        runs = await scheduler.list_runs(
            schedule_id=schedule,
            status=status,  # checked above
            limit=limit,
            task=task,
        )
        if not runs and schedule is not None:
            # A deleted schedule keeps its history; only an id never seen is an error.
            await scheduler.get_schedule(schedule)
        return runs

    runs = with_client(ctx, action)
    if out.json:
        out.emit_json([r.to_dict() for r in runs])
        return
    if not runs:
        out.line("no runs" + (" matching" if schedule or task or status else " yet"))
        return
    runs_table(out, runs)


@app.command(
    "cancel",
    help="Cancel a run: a waiting one ends cancelled at once; a running one is stopped by "
    "the node running it. A run already over is an error.",
)
def cancel(
    ctx: typer.Context,
    run_id: str = typer.Option(..., "--run", metavar="RUN_ID", help="The run to cancel."),
) -> None:
    out = globals_of(ctx).out
    cancelled = with_client(ctx, lambda scheduler: scheduler.cancel_run(run_id))
    if out.json:
        out.emit_json(cancelled.to_dict())
        return
    if cancelled.status == "running":
        out.line(f"run {cancelled.id} is running: its node was asked to stop it")
    else:
        out.line(f"run {cancelled.id} {cancelled.status}")


@app.command(
    "backfill",
    help="Create a run for every past fire time of a schedule in [--start, --end] that has none "
    "yet (trigger 'backfill'); nodes run them. Naive times are in the schedule's zone.",
)
def backfill(
    ctx: typer.Context,
    id: str = typer.Option(..., "--id", help="The schedule."),
    start: str = typer.Option(..., "--start", metavar="ISO", help="First fire time (inclusive)."),
    end: str = typer.Option(..., "--end", metavar="ISO", help="Last fire time (inclusive)."),
) -> None:
    out = globals_of(ctx).out
    runs = with_client(ctx, lambda scheduler: scheduler.backfill(id, start, end))
    if out.json:
        out.emit_json([r.to_dict() for r in runs])
        return
    if not runs:
        out.line(f"no run to create: every fire time of {id} in that range has one already")
        return
    out.line(f"created {len(runs)} backfill run(s) for schedule {id}")
    runs_table(out, runs)
