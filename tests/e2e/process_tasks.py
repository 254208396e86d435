"""Tasks for the end-to-end tests of task processes and failure logs. Each line they
write goes to $TICKWORK_E2E_LOG (appends of one short line are atomic)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time

from tickwork import RunContext, task

#: A child of the task: one line every 50 ms, for a minute unless killed.
BEAT = """
import json, os, sys, time
path, run_id, attempt = sys.argv[1], sys.argv[2], int(sys.argv[3])
for _ in range(1200):
    line = json.dumps({"run_id": run_id, "attempt": attempt, "phase": "child-beat",
                       "pid": os.getpid(), "at": time.time()})
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, (line + "\\n").encode())
    os.close(fd)
    time.sleep(0.05)
"""


def _record(ctx: RunContext, **extra: object) -> None:
    line = json.dumps(
        {
            "run_id": ctx.run_id,
            "schedule_id": ctx.schedule_id,
            "attempt": ctx.attempt,
            "pid": os.getpid(),
            "at": time.time(),
            **extra,
        }
    )
    fd = os.open(os.environ["TICKWORK_E2E_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


@task("e2e:family", executor="process", timeout=120)
def family(ctx: RunContext, *, seconds: float = 3.0) -> int:
    """Starts a child that beats, beats itself for ``seconds``, then stops the child."""
    child = subprocess.Popen(
        [sys.executable, "-c", BEAT, os.environ["TICKWORK_E2E_LOG"], ctx.run_id, str(ctx.attempt)]
    )
    _record(ctx, phase="start", child_pid=child.pid, fence=ctx.fence)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        _record(ctx, phase="beat")
        time.sleep(0.05)
    child.kill()
    child.wait()
    _record(ctx, phase="done")
    return ctx.fence


@task("e2e:always_fails")
async def always_fails(ctx: RunContext) -> None:
    logging.getLogger("tests.e2e.process_tasks").warning("checking the disk")
    print("the disk answered: full", file=sys.stderr)  # stored with the run, not on stderr
    raise ValueError(f"the disk is full (attempt {ctx.attempt})\nsecond line, not logged")
