"""Tasks and job functions shared by the benchmarks (importable by child processes)."""

from __future__ import annotations

import asyncio
import time

from tickwork import TaskRegistry, task

registry = TaskRegistry()

#: (scheduled_for epoch, started epoch) per execution, filled in this process.
starts: list[tuple[float, float]] = []
running_now = 0
max_running = 0


@task("bench:noop", registry=registry)
async def noop(ctx) -> None:  # type: ignore[no-untyped-def]
    starts.append((ctx.scheduled_for.timestamp(), time.time()))


@task("bench:sleep1", registry=registry)
async def sleep1(ctx) -> None:  # type: ignore[no-untyped-def]
    global running_now, max_running
    starts.append((ctx.scheduled_for.timestamp(), time.time()))
    running_now += 1
    max_running = max(max_running, running_now)
    await asyncio.sleep(1)
    running_now -= 1


# APScheduler job functions: referenced by module path in its job store.
aps_starts: list[tuple[float, float]] = []


async def aps_noop(scheduled: float) -> None:
    aps_starts.append((scheduled, time.time()))


async def aps_tick(name: str) -> None:
    aps_starts.append((0.0, time.time()))
