"""``tickwork tasks``: the tasks schedules may name, with the arguments they take.

A task is known when this process registered it or a node published it (nodes publish
their tasks, with their arguments and defaults, when they start).
"""

from __future__ import annotations

import json
from typing import Any

import typer

from tickwork.cli.client import globals_of, with_client
from tickwork.cli.main import app
from tickwork.cli.output import seconds
from tickwork.engine.scheduler import Scheduler
from tickwork.models import Node, TaskSpec


def arguments(spec: TaskSpec) -> str:
    """``region: str = "eu", dry_run: bool = false, pattern = …, **data``: each with the
    type its values are checked against, if any; optional ones with their default as
    JSON (as ``--data`` takes it), or ``…`` when the node did not publish it."""
    parts = []
    for a in spec.arguments:
        accepted = spec.types.get(a)
        typed = f"{a}: {accepted.annotation()}" if accepted is not None else a
        if a not in spec.required:
            shown = a in spec.defaults
            default = json.dumps(spec.defaults[a], ensure_ascii=False) if shown else "…"
            typed += f" = {default}" if accepted is not None else f"={default}"
        parts.append(typed)
    if spec.accepts_any:
        parts.append("**data")
    return ", ".join(parts)


def _json(spec: TaskSpec) -> dict[str, Any]:
    """The spec as the REST API gives it: a timeout is a number of seconds (``1.0``) however
    the task declared it (``timeout=1``), so the output is the same through a server."""
    d = spec.to_dict()
    if d["timeout"] is not None:
        d["timeout"] = float(d["timeout"])
    return d


@app.command("tasks", help="Known tasks: their arguments, executor, defaults and nodes.")
def tasks(ctx: typer.Context) -> None:
    out = globals_of(ctx).out

    async def action(scheduler: Scheduler) -> tuple[list[TaskSpec], list[Node]]:
        specs = [await scheduler.task_spec(name) for name in await scheduler.known_tasks()]
        return specs, await scheduler.nodes()

    specs, nodes = with_client(ctx, action)
    running = {spec.name: [n.id for n in nodes if spec.name in n.tasks] for spec in specs}
    if out.json:
        out.emit_json([_json(spec) | {"nodes": running[spec.name]} for spec in specs])
        return
    if not specs:
        out.line(
            "no task is known: a node publishes its tasks when it starts "
            "(tickwork worker --import MODULE)"
        )
        return
    out.table(
        ["task", "arguments", "executor", "timeout", "retries", "concurrency", "running on"],
        [
            [
                spec.name,
                arguments(spec),
                spec.executor,
                seconds(spec.timeout),
                spec.retries,
                spec.concurrency,
                ", ".join(running[spec.name]) or "no node now",
            ]
            for spec in specs
        ],
    )
