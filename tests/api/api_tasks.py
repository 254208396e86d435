"""Tasks the API tests' server imports (``tickwork serve --import tests.api.api_tasks``)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tickwork import RunContext, task


@task("api:echo")
async def echo(ctx: RunContext, **data: Any) -> dict[str, Any]:
    ctx.logger.info("echo %s", sorted(data))
    return {"data": data, "attempt": ctx.attempt}


@task("api:sleep")
async def sleep(ctx: RunContext, *, seconds: float = 5.0) -> str:
    await asyncio.sleep(seconds)
    return f"slept {seconds:g} s"


@task("api:report")
def report(
    ctx: RunContext, *, region: str, rows: int = 10, filters: dict[str, list[int]] | None = None
) -> dict[str, Any]:
    """Its data has a required argument: the API refuses a schedule without it."""
    return {"region": region, "rows": rows}


@task("api:slow_to_stop")
async def slow_to_stop(ctx: RunContext, *, seconds: float = 3.0) -> str:
    """Takes ``seconds`` to clean up once cancelled: a cancel leaves it running that long."""
    try:
        await asyncio.sleep(300)
    except asyncio.CancelledError:
        await asyncio.sleep(seconds)
        raise
    return "never cancelled"


@task("api:fail_once")
async def fail_once(ctx: RunContext) -> int:
    """Fails its first attempt, succeeds the next."""
    if ctx.attempt == 1:
        raise RuntimeError("first attempt fails")
    return ctx.attempt


@task("api:block_loop")
async def block_loop(ctx: RunContext, *, seconds: float = 3.0) -> str:
    """Blocks its node's event loop (a sync sleep in an async task): the node neither
    fires nor renews its heartbeat meanwhile."""
    time.sleep(seconds)  # noqa: ASYNC251 - blocking the loop is the point
    return "unblocked"


@task("api:careful", timeout=45, retries=4)
async def careful(ctx: RunContext) -> str:
    """Declares its own timeout and retries: a schedule left without them takes them."""
    return "done"
