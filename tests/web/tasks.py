"""Tasks the dashboard tests schedule: one that succeeds and logs, one that fails.

Registered in the default registry, so ``tickwork serve --import tests.web.tasks`` runs
them as the in-process app of the HTML tests does."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from tickwork import RunContext, task


@task("reports:daily")
def daily(
    ctx: RunContext,
    *,
    region: str = "eu",
    rows: int = 3,
    limits: dict[str, list[int]] | None = None,
) -> dict[str, Any]:
    """``limits`` (late rows allowed, by region) is there for its type, which is shown
    and checked."""
    log = logging.getLogger("reports")
    # WARNING and ERROR: stored whatever the node's log level (INFO lines follow it).
    log.warning("building the %s report", region)
    log.error("region %s has %d late rows", region, rows)
    return {"region": region, "rows": rows}


@task("demo:fail")
def fail(ctx: RunContext, *, why: str = "the disk is full") -> None:
    logging.getLogger("demo").error("about to fail: %s", why)
    raise RuntimeError(why)


@task("demo:steps")
def steps(ctx: RunContext, *, gate: str) -> str:
    """Logs a line, then another each time a file ``gate``.1, .2 appears, and ends when
    ``gate``.3 does: a run that is still going while its lines are watched."""
    log = logging.getLogger("steps")
    log.warning("first step done")
    for n in (1, 2, 3):
        deadline = time.monotonic() + 60
        while not Path(f"{gate}.{n}").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        if n == 1:
            print("second step done")
        elif n == 2:
            log.warning("third step done")
    return "done"


@task("demo:fail-first")
def fail_first(ctx: RunContext) -> str:
    """Fails its first attempt and succeeds on the next: a run seen while it retries."""
    if ctx.attempt == 1:
        raise RuntimeError("the first attempt always fails")
    return f"succeeded on attempt {ctx.attempt}"
