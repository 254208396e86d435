from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest

from tests.engine import tasks
from tickwork import Scheduler
from tickwork.clock import ManualClock

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
async def scheduler(db_url: str, clock: ManualClock) -> AsyncIterator[Scheduler]:
    tasks.calls.clear()
    async with Scheduler(db_url, registry=tasks.registry, clock=clock, shutdown_grace=1) as s:
        yield s


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 5.0, what: str = "condition"
) -> None:
    """Poll an async condition (real time, short): engine work happens on other tasks."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
