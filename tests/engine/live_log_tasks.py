"""Tasks that log a line, wait for a file, log another and wait for a second file, on
each executor (importable, so the process executor can load them)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from tickwork import TaskRegistry, task

registry = TaskRegistry()
log = logging.getLogger("tests.engine.live_log_tasks")
#: The longest a task waits for its file (a test that fails must not hang).
WAIT = 60.0


def _exists(path: str) -> bool:
    return Path(path).exists()


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + WAIT
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def _steps(gate: str) -> str:
    log.warning("first step done")
    _wait_for(Path(gate + ".1"))
    print("second step done")
    _wait_for(Path(gate + ".2"))
    return "done"


@task("steps_thread", registry=registry, executor="thread")
def steps_thread(*, gate: str) -> str:
    return _steps(gate)


@task("steps_process", registry=registry, executor="process")
def steps_process(*, gate: str) -> str:
    return _steps(gate)


@task("steps_async", registry=registry)
async def steps_async(*, gate: str) -> str:
    log.warning("first step done")
    for n in (1, 2):
        deadline = time.monotonic() + WAIT
        while not _exists(f"{gate}.{n}") and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if n == 1:
            print("second step done")
    return "done"
