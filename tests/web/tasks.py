"""Tasks the dashboard tests schedule: one that succeeds and logs, one that fails."""

from __future__ import annotations

import logging
from typing import Any

from tickwork import RunContext, TaskRegistry, task

registry = TaskRegistry()


@task("reports:daily", registry=registry)
def daily(ctx: RunContext, *, region: str = "eu", rows: int = 3) -> dict[str, Any]:
    log = logging.getLogger("reports")
    log.info("building the %s report", region)
    log.warning("region %s has %d late rows", region, rows)
    return {"region": region, "rows": rows}


@task("demo:fail", registry=registry)
def fail(ctx: RunContext, *, why: str = "the disk is full") -> None:
    logging.getLogger("demo").error("about to fail: %s", why)
    raise RuntimeError(why)
