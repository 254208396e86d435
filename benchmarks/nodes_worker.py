"""The task of the worker processes ``benchmarks/nodes.py`` starts.

``nodes:noop`` remembers (run id, scheduled_for, wall clock at start) in memory; at exit
the process writes them to ``$TICKWORK_BENCH_OUT/<pid>.json``, so the benchmark can
count executions (duplicates) and measure lag without slowing the task down.
"""

from __future__ import annotations

import atexit
import json
import os
import time

from tickwork import RunContext, task

_seen: list[tuple[str, float, float]] = []


@task("nodes:noop")
async def noop(ctx: RunContext) -> None:
    _seen.append((ctx.run_id, ctx.scheduled_for.timestamp(), time.time()))


def _dump() -> None:
    out = os.environ.get("TICKWORK_BENCH_OUT")
    if out:
        with open(os.path.join(out, f"{os.getpid()}.json"), "w") as f:
            json.dump(_seen, f)


atexit.register(_dump)
