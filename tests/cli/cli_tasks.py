"""Tasks the CLI tests' worker imports (``tickwork worker --import tests.cli.cli_tasks``)."""

from __future__ import annotations

import asyncio
from typing import Any

from tickwork import RunContext, task


@task("cli:echo")
async def echo(ctx: RunContext, **data: Any) -> dict[str, Any]:
    ctx.logger.info("echo %s", sorted(data))
    return {"data": data, "attempt": ctx.attempt}


@task("cli:fail")
def fail(ctx: RunContext) -> None:
    raise ValueError(f"boom on attempt {ctx.attempt}")


@task("cli:sleep")
async def sleep(
    ctx: RunContext,
    *,
    seconds: float = 2.0,
    laps: dict[str, list[float]] | None = None,
    splits: tuple[float, ...] = (),
) -> str:
    """``laps`` (named lists of pauses) and ``splits`` are there for their types: the
    CLI checks them, and ``tickwork tasks`` spells them."""
    await asyncio.sleep(seconds)
    return f"slept {seconds:g} s"


@task("cli:short_timeout", timeout=1)
async def short_timeout(ctx: RunContext, *, seconds: float = 3.0) -> str:
    """Its own timeout (1 s) is shorter than its sleep: every run should time out."""
    await asyncio.sleep(seconds)
    return "should have timed out"
