"""Tasks only some workers of ``test_pg_nodes`` import, to choose which node runs what.

A worker started with ``--import tests.e2e.pg_tasks`` can run ``pg:hold``; one without
it cannot, so it never claims those runs.
"""

from __future__ import annotations

import asyncio

from tests.e2e.e2e_tasks import _record
from tickwork import RunContext, task


@task("pg:hold")
async def hold(ctx: RunContext, *, seconds: float = 6.0) -> str:
    _record(ctx, phase="start")
    await asyncio.sleep(seconds)
    _record(ctx, phase="done")
    return "held"
