"""What each dashboard user chose to see (the time display, ...), saved for the user in
the database so that it follows them to every browser (``Store.user_settings``)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from tickwork.engine.scheduler import Scheduler


async def user_settings(scheduler: Scheduler, user: str) -> dict[str, str]:
    """The settings ``user`` saved; empty when none."""
    return await asyncio.to_thread(scheduler.store.user_settings, user)


async def save_user_settings(scheduler: Scheduler, user: str, values: Mapping[str, str]) -> None:
    """Save ``values`` for ``user``, replacing those of the same names."""
    now = scheduler.clock.now()
    await asyncio.to_thread(scheduler.store.set_user_settings, user, dict(values), now)
