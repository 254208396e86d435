"""Tasks a new tickwork user can start with.

Run a node that knows them, from the project's root::

    tickwork worker --import examples.tasks

then schedule them from another shell (see the README's Tour)::

    tickwork create --task examples:heartbeat --schedule "every 10s" --id heartbeat

Each shows one thing:

- ``examples:heartbeat`` — an async task that logs; its log lines are stored with the run.
- ``examples:cleanup`` — a sync task (thread executor) taking schedule data as keyword
  arguments: prunes old files from a directory, and only reports unless ``dry_run`` is false.
- ``examples:report`` — returns a JSON value, stored as the run's result (and put on the
  schedule's ``result_queue`` if it has one).
- ``examples:flaky`` — fails now and then, to watch retries (``attempt`` 1, 2, ...).
- ``examples:slow`` — a sync task on the process executor: a timeout kills its process.

Execution is at-least-once: a task may run again for the same ``ctx.scheduled_for``
after a crash, so real tasks key their side effects on ``ctx.run_id`` or
``ctx.scheduled_for``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from pathlib import Path
from typing import Any

from tickwork import RunContext, task

log = logging.getLogger(__name__)


@task("examples:heartbeat", timeout=30)
async def heartbeat(ctx: RunContext, *, message: str = "alive") -> None:
    """Log one line; the record is captured with the run (``tickwork history --run ID``)."""
    await asyncio.sleep(0)
    ctx.logger.info(
        "heartbeat %s: scheduled for %s, attempt %d", message, ctx.scheduled_for, ctx.attempt
    )


@task("examples:cleanup", timeout=120)
def cleanup(
    ctx: RunContext,
    *,
    directory: str,
    older_than_days: float = 7,
    pattern: str = "*",
    dry_run: bool = True,
) -> dict[str, Any]:
    """Delete files matching ``pattern`` in ``directory`` not modified for
    ``older_than_days``. With ``dry_run`` (the default) it only counts them."""
    root = Path(directory).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"no such directory: {root}")
    cutoff = time.time() - older_than_days * 86400
    matched = [p for p in root.glob(pattern) if p.is_file() and p.stat().st_mtime < cutoff]
    deleted = 0
    for path in matched:
        if ctx.cancelled.is_set():  # timed out or node stopping: stop cleanly
            break
        if not dry_run:
            path.unlink(missing_ok=True)
            deleted += 1
    ctx.logger.info(
        "%s: %d file(s) older than %g day(s), %d deleted",
        root,
        len(matched),
        older_than_days,
        deleted,
    )
    return {"directory": str(root), "matched": len(matched), "deleted": deleted}


@task("examples:report", timeout=60)
async def report(ctx: RunContext, *, region: str = "eu", top: int = 3) -> dict[str, Any]:
    """Build a small report; the returned dict is the run's ``result``.

    The figures are derived from the region and the scheduled time, so a retry of the
    same run produces the same report.
    """
    seed = hashlib.sha256(f"{region}:{ctx.scheduled_for.isoformat()}".encode()).digest()
    rng = random.Random(seed)
    products = ["tea", "coffee", "cocoa", "mate", "chai", "rooibos"]
    sales = {p: rng.randint(10, 500) for p in products}
    best = sorted(sales, key=lambda p: sales[p], reverse=True)[:top]
    ctx.logger.info("report for %s: %d orders", region, sum(sales.values()))
    return {
        "region": region,
        "period_end": ctx.scheduled_for.isoformat(),
        "orders": sum(sales.values()),
        "top_products": [{"product": p, "orders": sales[p]} for p in best],
    }


class FlakyError(RuntimeError):
    """What ``examples:flaky`` raises when it decides to fail."""


@task("examples:flaky", retries=3)
def flaky(ctx: RunContext, *, failure_rate: float = 0.5) -> str:
    """Fail with probability ``failure_rate``; each failure is retried with backoff, as
    many times as the schedule's ``--retries`` says (all attempts stay in one run)."""
    if random.random() < failure_rate:
        raise FlakyError(f"attempt {ctx.attempt} failed (failure_rate={failure_rate})")
    return f"succeeded on attempt {ctx.attempt}"


@task("examples:slow", executor="process", timeout=10)
def slow(ctx: RunContext, *, seconds: float = 3) -> str:
    """Sleep in a child process. Longer than the timeout (10 s unless the schedule sets
    ``--timeout``), the process is killed and the run ends ``timed_out``."""
    step = 0.5
    waited = 0.0
    while waited < seconds:
        time.sleep(min(step, seconds - waited))
        waited += step
        log.info("slow: %.1f of %g s", min(waited, seconds), seconds)
    return f"slept {seconds:g} s"
