"""Tasks and job functions shared by the benchmarks (importable by child processes)."""

from __future__ import annotations

import asyncio
import os
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


# The worker scenario: a line per start appended to ``$TICKWORK_BENCH_FILE`` (one write
# of a short line in append mode: atomic between threads and processes).


def _append_start(scheduled: float) -> None:
    with open(os.environ["TICKWORK_BENCH_FILE"], "a") as f:
        f.write(f"{scheduled} {time.time()}\n")


@task("bench:append_sync", registry=registry)
def append_sync(ctx) -> None:  # type: ignore[no-untyped-def]
    _append_start(ctx.scheduled_for.timestamp())


@task("bench:append_async", registry=registry)
async def append_async(ctx) -> None:  # type: ignore[no-untyped-def]
    _append_start(ctx.scheduled_for.timestamp())


def aps_append(scheduled: float) -> None:
    _append_start(scheduled)
