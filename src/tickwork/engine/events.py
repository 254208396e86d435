"""Events: what happened to schedules and runs, delivered to ``subscribe``d callbacks.

Delivery is in-process and best effort: a slow or failing subscriber never blocks or
breaks the engine. The database, not the event stream, is the record.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

log = logging.getLogger("tickwork.events")

EVENT_TYPES: Final = (
    "schedule.created",
    "schedule.updated",
    "schedule.deleted",
    "schedule.paused",
    "schedule.resumed",
    "run.started",
    "run.succeeded",
    "run.failed",
    "run.skipped",
    "run.missed",
    "run.retrying",
    "run.cancelled",
    "run.timed_out",
    "run.lost",
)


@dataclass(frozen=True)
class Event:
    type: str
    at: datetime
    schedule_id: str | None = None
    run_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "at": self.at.isoformat(),
            "schedule_id": self.schedule_id,
            "run_id": self.run_id,
            "data": self.data,
        }


Subscriber = Callable[[Event], Awaitable[None] | None]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` for every event; returns a function that unsubscribes."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    @property
    def has_subscribers(self) -> bool:
        return bool(self._subscribers)

    def emit(self, event: Event) -> None:
        for callback in list(self._subscribers):
            try:
                outcome = callback(event)
            except Exception:
                log.exception("event subscriber %r failed on %s", callback, event.type)
                continue
            if inspect.isawaitable(outcome):
                task = asyncio.ensure_future(_guard(outcome, callback, event.type))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)


async def _guard(awaitable: Awaitable[None], callback: Subscriber, kind: str) -> None:
    try:
        await awaitable
    except Exception:
        log.exception("event subscriber %r failed on %s", callback, kind)
