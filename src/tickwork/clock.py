"""Where "now" comes from.

Everything above the pure schedule layer asks a ``Clock`` for the time, so tests can
drive the engine through hours of schedule in milliseconds without patching the world.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol


class Clock(Protocol):
    """A source of the current instant and a way to wait for a later one."""

    def now(self) -> datetime:
        """The current instant, aware, in UTC."""
        ...

    async def sleep_until(self, when: datetime, wake: asyncio.Event) -> None:
        """Return at ``when`` or as soon as ``wake`` is set, whichever is first."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime, wake: asyncio.Event) -> None:
        delay = (when - self.now()).total_seconds()
        if delay <= 0 or wake.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=delay)


class ManualClock:
    """A clock that moves only when told; for tests and simulations.

    ``sleep_until`` returns once ``advance``/``set`` has moved the time past ``when``.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = _aware(start or datetime(2026, 1, 1, tzinfo=UTC))
        self._waiters: list[tuple[datetime, asyncio.Future[Any]]] = []

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        self._now = _aware(when)
        self._release()

    def advance(self, seconds: float | timedelta = 0, **kwargs: float) -> datetime:
        """Move the time forward by ``seconds`` (a number or a ``timedelta``) plus any
        ``timedelta`` keyword (``minutes=5``); returns the new time."""
        step = seconds if isinstance(seconds, timedelta) else timedelta(seconds=seconds)
        self._now = self._now + step + timedelta(**kwargs)
        self._release()
        return self._now

    def _release(self) -> None:
        keep: list[tuple[datetime, asyncio.Future[Any]]] = []
        for when, fut in self._waiters:
            if when <= self._now:
                if not fut.done():
                    fut.get_loop().call_soon_threadsafe(_resolve, fut)
            else:
                keep.append((when, fut))
        self._waiters = keep

    async def sleep_until(self, when: datetime, wake: asyncio.Event) -> None:
        if when <= self._now or wake.is_set():
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.append((when, fut))
        try:
            await first_of(fut, wake)
        finally:
            if not fut.done():
                fut.cancel()
            self._waiters = [(w, f) for (w, f) in self._waiters if f is not fut]


async def first_of(fut: asyncio.Future[Any], event: asyncio.Event) -> None:
    """Return when ``fut`` is done or ``event`` is set, whichever is first (``fut`` is
    left as it is)."""
    setting = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait((fut, setting), return_when=asyncio.FIRST_COMPLETED)
    finally:
        setting.cancel()


def _resolve(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_result(None)


def _aware(when: object) -> datetime:
    """``when`` in UTC; a ``ValueError`` for anything but an aware datetime."""
    if not isinstance(when, datetime) or when.tzinfo is None:
        raise ValueError(f"ManualClock needs an aware datetime, not {when!r}")
    return when.astimezone(UTC)
