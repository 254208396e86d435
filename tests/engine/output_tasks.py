"""Tasks that log, print and start processes, for the capture and process tests
(importable, so the process executor can load them)."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time

from tickwork import RunContext, TaskRegistry, task

registry = TaskRegistry()
log = logging.getLogger("tests.engine.output_tasks")

#: A grandchild that sleeps, to be killed with its task.
SLEEPER = "import time; time.sleep(120)"


def _talk(tag: str) -> None:
    log.info("info from a module logger %s", tag)
    log.debug("debug from a module logger %s", tag)  # below the configured level
    print("printed", tag)
    print("half a line", end=" ")
    print("and the rest", tag)
    print("to stderr", tag, file=sys.stderr)


@task("talk_async", registry=registry)
async def talk_async(*, tag: str) -> str:
    _talk(tag)
    return tag


@task("talk_thread", registry=registry, executor="thread")
def talk_thread(*, tag: str) -> str:
    _talk(tag)
    return tag


@task("talk_process", registry=registry, executor="process")
def talk_process(*, tag: str) -> str:
    _talk(tag)
    print("no newline at the end", tag, end="")
    return tag


@task("chatter_async", registry=registry)
async def chatter_async(*, tag: str, n: int = 5) -> str:
    for i in range(n):
        log.warning("%s says %d", tag, i)
        print(tag, "prints", i)
        await asyncio.sleep(0.001 * (hash(tag) % 5))
    return tag


@task("chatter_thread", registry=registry, executor="thread")
def chatter_thread(*, tag: str, n: int = 5) -> str:
    for i in range(n):
        log.warning("%s says %d", tag, i)
        print(tag, "prints", i)
        time.sleep(0.001 * (hash(tag) % 5))
    return tag


def _start_sleeper(pids: str) -> None:
    child = subprocess.Popen([sys.executable, "-c", SLEEPER])
    with open(pids, "w") as fh:
        fh.write(f"{os.getpid()} {child.pid}")


@task("family_forever", registry=registry, executor="process")
def family_forever(*, pids: str) -> None:
    """Starts a child, then never ends: killed on timeout, with the child."""
    _start_sleeper(pids)
    while True:
        time.sleep(0.01)


@task("family_leaves_child", registry=registry, executor="process")
def family_leaves_child(*, pids: str) -> str:
    """Starts a child and returns without waiting for it."""
    _start_sleeper(pids)
    return "done"


@task("fenced", registry=registry)
async def fenced(ctx: RunContext, *, fail_times: int) -> int:
    if ctx.attempt <= fail_times:
        raise RuntimeError(f"failure with fence {ctx.fence}\nsecond line of the error")
    return ctx.fence


@task("naps", registry=registry)
async def naps(*, seconds: float) -> None:
    await asyncio.sleep(seconds)


class _NoText:
    """A log message whose ``str`` fails."""

    def __str__(self) -> str:
        raise RuntimeError("no text")


@task("odd_logs_process", registry=registry, executor="process")
def odd_logs_process() -> str:
    log.warning(_NoText())
    log.warning("%d apples", "some")  # the wrong argument for its format
    return "logged"


@task("progress_bar", registry=registry, executor="thread")
def progress_bar(*, steps: int) -> int:
    """Redraws one line of stderr at every step, as progress bars do, ending it at last."""
    for i in range(1, steps + 1):
        sys.stderr.write(f"\r{i:>8}/{steps} |" + "#" * (60 * i // steps) + "|")
    sys.stderr.write("\n")
    return steps


@task("shouts", registry=registry)
async def shouts(*, size: int) -> None:
    """Fails with a message that clears a terminal, then goes on for ``size`` characters."""
    raise ValueError("\x1b[2J" + "e" * size)
