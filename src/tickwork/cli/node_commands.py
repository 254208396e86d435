"""What the cluster is doing: ``status`` (nodes, running, backlog) and ``stats`` (per task)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import typer

from tickwork.cli.client import globals_of, with_client
from tickwork.cli.main import app
from tickwork.cli.output import relative, seconds, when
from tickwork.engine.facade_admin import OVERDUE_GRACE
from tickwork.engine.scheduler import Scheduler
from tickwork.store.url import mask_password
from tickwork.validation import parse_instant


@app.command(
    "status",
    help="Nodes (leader, running runs), runs running now, the backlog, and schedules whose "
    "fire is overdue.",
)
def status(
    ctx: typer.Context,
    grace: float = typer.Option(
        OVERDUE_GRACE,
        "--grace",
        min=0,
        metavar="SECONDS",
        help="A fire not made this long after its time counts as overdue.",
    ),
) -> None:
    g = globals_of(ctx)
    out = g.out
    # Where the figures come from: the database, or the server (--url) that read them.
    source, where = ("server", g.url) if g.url is not None else ("database", g.db)
    where = mask_password(where)

    async def action(
        scheduler: Scheduler,
    ) -> tuple[list[Any], dict[str, int], dict[str, list[str]], dict[str, int], tuple[int, float]]:
        # From indexes only: fast however many finished runs the database keeps.
        runs, by_node = await scheduler.active_runs()
        nodes = await scheduler.nodes()
        counts = await scheduler.schedule_counts()
        return nodes, runs, by_node, counts, await scheduler.overdue_fires(grace)

    nodes, runs, by_node, schedule_counts, (overdue, overdue_age) = with_client(ctx, action)
    stats: dict[str, Any] = {"schedules": schedule_counts}
    leader = next((n.id for n in nodes if n.is_leader), None)
    running = runs.get("running", 0)
    backlog = runs.get("backlog", 0)
    now = datetime.now(UTC)
    # Each node by its own lease: a worker started with --lease-ttl 5 that is silent
    # for 10 s is not alive, one with --lease-ttl 120 silent for 40 s is.
    alive = [n.id for n in nodes if n.alive_at(now)]
    if out.json:
        out.emit_json(
            {
                "db" if source == "database" else "server": where,
                "nodes": [n.to_dict() | {"running_runs": by_node.get(n.id, [])} for n in nodes],
                "nodes_alive": alive,
                "leader": leader,
                "running": running,
                "backlog": backlog,
                "runs": runs,
                "schedules": stats.get("schedules", {}),
                "overdue": {
                    "schedules": overdue,
                    "oldest_seconds": round(overdue_age, 3),
                    "grace": grace,
                },
            }
        )
        return
    out.line(f"{source}: {where}")
    if nodes:
        out.table(
            ["node", "leader", "running", "runs", "started", "heartbeat", "tasks"],
            [
                [
                    n.id,
                    "yes" if n.is_leader else "",
                    n.running,
                    _ids(by_node.get(n.id, [])),
                    when(n.started_at),
                    relative(n.heartbeat_at, now),
                    ", ".join(n.tasks),
                ]
                for n in nodes
            ],
            title="nodes",
        )
    else:
        out.line("no node is running: start one with 'tickwork worker --import MODULE'")
    for n in nodes:
        if n.stuck_threads:
            out.line(
                f"node {n.id}: {n.stuck_threads} thread(s) still running a sync task whose "
                "attempt ended (timed out or cancelled); each was replaced"
            )
        if n.stuck_coroutines:
            out.line(
                f"node {n.id}: {n.stuck_coroutines} coroutine(s) still running an async task "
                "that ignored its cancellation (timeout, cancel request, takeover or shutdown); "
                "let the task return on asyncio.CancelledError"
            )
    schedules = stats.get("schedules", {})
    out.line(
        f"runs running: {running}   backlog (due, waiting): {backlog}   "
        f"retrying: {runs.get('retrying', 0)}"
    )
    out.line(
        "schedules: "
        + ", ".join(f"{schedules.get(k, 0)} {k}" for k in ("active", "paused", "finished"))
    )
    if nodes and not alive:
        out.line(
            "no node is alive: none has renewed its heartbeat within its lease_ttl "
            "(each died or is stalled)"
        )
    if overdue:
        out.line(
            f"overdue: {overdue} schedule(s) past their fire time by more than "
            f"{seconds(grace)}, the oldest by {seconds(overdue_age)}"
            + (
                "; no node is alive to fire them: start one with 'tickwork worker --import MODULE'"
                if not alive
                else "; the nodes alive are not firing them (behind, or stalled)"
            )
        )


def _ids(run_ids: list[str], shown: int = 3) -> str:
    more = len(run_ids) - shown
    return ", ".join(run_ids[:shown]) + (f" (+{more} more)" if more > 0 else "")


@app.command(
    "stats",
    help="Per task: runs in each final status (the statuses of 'history --status'), "
    "success rate among runs that executed, p50/p95 duration.",
)
def stats(
    ctx: typer.Context,
    since: str | None = typer.Option(
        None, "--since", metavar="ISO", help="Only runs scheduled since then (default: all)."
    ),
) -> None:
    g = globals_of(ctx)
    out = g.out

    async def action(scheduler: Scheduler) -> dict[str, Any]:
        return await scheduler.stats(since=parse_instant(since, "--since"))

    figures = with_client(ctx, action)
    if out.json:
        out.emit_json(figures)
        return
    tasks: list[dict[str, Any]] = figures.get("tasks", [])
    if not tasks:
        out.line("no runs yet")
    else:
        out.table(
            [
                "task",
                "runs",
                "succeeded",
                "failed",
                "timed_out",
                "lost",
                "cancelled",
                "success rate",
                "p50",
                "p95",
            ],
            [
                [
                    t["task"],
                    t["runs"],
                    t["succeeded"],
                    t["failed"],
                    t["timed_out"],
                    t["lost"],
                    t["cancelled"],
                    "" if t.get("success_rate") is None else f"{t['success_rate']:.1%}",
                    seconds(t.get("p50_duration")),
                    seconds(t.get("p95_duration")),
                ]
                for t in tasks
            ],
            title="tasks",
        )
    runs = {k: v for k, v in figures.get("runs", {}).items() if k != "backlog" and v}
    if runs:
        out.line("runs by status: " + ", ".join(f"{k} {v}" for k, v in sorted(runs.items())))
