"""Tasks the dashboard tests schedule: one that succeeds and logs, one that fails.

Registered in the default registry, so ``tickwork serve --import tests.web.tasks`` runs
them as the in-process app of the HTML tests does."""

from __future__ import annotations

import logging
from typing import Any

from tickwork import RunContext, task


@task("reports:daily")
def daily(ctx: RunContext, *, region: str = "eu", rows: int = 3) -> dict[str, Any]:
    log = logging.getLogger("reports")
    # WARNING and ERROR: stored whatever the node's log level (INFO lines follow it).
    log.warning("building the %s report", region)
    log.error("region %s has %d late rows", region, rows)
    return {"region": region, "rows": rows}


@task("demo:fail")
def fail(ctx: RunContext, *, why: str = "the disk is full") -> None:
    logging.getLogger("demo").error("about to fail: %s", why)
    raise RuntimeError(why)
