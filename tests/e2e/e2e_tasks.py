"""Tasks for end-to-end tests: each execution appends one JSON line to $TICKWORK_E2E_LOG.

Appends of one short line with O_APPEND are atomic, so lines from several processes
never interleave.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time

from tickwork import RunContext, task


def _record(ctx: RunContext, **extra: object) -> None:
    line = json.dumps(
        {
            "run_id": ctx.run_id,
            "schedule_id": ctx.schedule_id,
            "scheduled_for": ctx.scheduled_for.isoformat(),
            "attempt": ctx.attempt,
            "node": ctx.node,
            "pid": os.getpid(),
            **extra,
        }
    )
    fd = os.open(os.environ["TICKWORK_E2E_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


@task("e2e:tick")
async def tick(ctx: RunContext) -> str:
    _record(ctx, phase="done")
    return ctx.scheduled_for.isoformat()


@task("e2e:slow")
async def slow(ctx: RunContext, *, seconds: float = 4.0) -> str:
    import asyncio

    _record(ctx, phase="start")
    await asyncio.sleep(seconds)
    _record(ctx, phase="done")
    return "slept"


@task("e2e:sync_slow")
def sync_slow(ctx: RunContext, *, seconds: float = 2.0) -> str:
    _record(ctx, phase="start")
    time.sleep(seconds)
    _record(ctx, phase="done")
    return "slept"


@task("e2e:exit")
def exit_now(ctx: RunContext) -> None:
    """Calls ``sys.exit`` (a script turned into a task, say): its run fails, not the node."""
    _record(ctx, phase="exit")
    sys.exit(3)


@task("e2e:deaf")
async def deaf(ctx: RunContext) -> None:
    """Ignores its cancellation for good: the node gives it up and still exits."""
    _record(ctx, phase="start")
    while True:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.05)


@task("e2e:chdir")
def chdir(ctx: RunContext, *, to: str) -> str:
    """Changes the working directory of the whole node (a script turned into a task)."""
    os.chdir(to)
    _record(ctx, phase="chdir")
    return os.getcwd()


@task("e2e:set_pg_env")
def set_pg_env(ctx: RunContext) -> str:
    """Sets libpq's variables for a connection of its own, in the node's environment."""
    os.environ["PGSSLMODE"] = "require"
    os.environ["PGOPTIONS"] = "-c default_transaction_read_only=on"
    _record(ctx, phase="set")
    return "set"


@task("e2e:close_streams")
def close_streams(ctx: RunContext) -> str:
    """Closes ``sys.stdout`` and ``sys.stderr``, as a script done with its output might."""
    print("done with my output")
    sys.stdout.close()
    sys.stderr.close()
    _record(ctx, phase="closed")
    return "closed"


@task("e2e:fail")
def fail(ctx: RunContext) -> None:
    raise RuntimeError(f"failing on purpose (attempt {ctx.attempt})")


def _wait_child(pid: int) -> int | None:
    """The exit code of child ``pid`` within 10 s, or None."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    return None


@task("e2e:fork")
def fork(ctx: RunContext) -> dict[str, int | None]:
    """Forks, and its child returns from the task as if it were the parent."""
    pid = os.fork()
    if pid == 0:
        return {"child": None}
    _record(ctx, phase="forked", child_pid=pid)
    return {"child": _wait_child(pid)}


@task("e2e:fork_async")
async def fork_async(ctx: RunContext) -> dict[str, int | None]:
    pid = os.fork()
    if pid == 0:
        raise SystemExit(4)  # out of the task, as sys.exit(4) would
    _record(ctx, phase="forked", child_pid=pid)
    return {"child": await asyncio.to_thread(_wait_child, pid)}


@task("e2e:fork_process", executor="process")
def fork_process(ctx: RunContext) -> dict[str, int | None]:
    return fork(ctx)


@task("e2e:take_signals")
async def take_signals(ctx: RunContext) -> str:
    """Replaces the handlers of SIGTERM and SIGINT (on the loop's thread, where it can)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, lambda *_: None)
    _record(ctx, phase="took")
    return "taken"


@task("e2e:configure_logging")
def configure_logging(ctx: RunContext) -> str:
    """Configures logging for itself, as a script turned into a task might: the root
    logger's handlers replaced, every logger it does not name disabled."""
    import logging.config

    logging.config.dictConfig({"version": 1, "root": {"level": "INFO", "handlers": []}})
    _record(ctx, phase="configured")
    return "configured"


@task("e2e:log_info")
def log_info(ctx: RunContext) -> str:
    ctx.logger.info("a line of mine")
    return "logged"
