"""The dashboard's one live stream per page: Server-Sent Events under the session cookie.

Each event only says "something you see changed" (``event: change``, with the event's
type and ids); the page then fetches its live regions again through the same access
rules as any read, so the stream never carries data the caller may not see. Events of
schedules the caller cannot see are not sent at all. A running run's page also gets a
change when its log grows, so its lines appear as they are written.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from tickwork.api import access
from tickwork.api.auth import Caller
from tickwork.engine.events import Event
from tickwork.engine.scheduler import Scheduler
from tickwork.errors import NotFoundError
from tickwork.web.signin import current_caller, scheduler_of

router = APIRouter()
KEEPALIVE: Final = 15.0
RUN_POLL: Final = 1.0
QUEUE_SIZE: Final = 1000


class Visibility:
    """Which schedules the caller may see, asked once per schedule per stream."""

    def __init__(self, scheduler: Scheduler, caller: Caller) -> None:
        self.scheduler = scheduler
        self.caller = caller
        self.known: dict[str, bool] = {}

    async def sees(self, schedule_id: str | None) -> bool:
        if self.caller.admin:
            return True
        if schedule_id is None:
            return False
        if schedule_id not in self.known:
            try:
                await access.get_schedule(self.scheduler, self.caller, schedule_id)
                self.known[schedule_id] = True
            except NotFoundError:
                return False  # not cached: it may be created a moment later
        return self.known[schedule_id]


def _frame(event_id: int, payload: dict[str, Any]) -> bytes:
    return f"id: {event_id}\nevent: change\ndata: {json.dumps(payload)}\n\n".encode()


@router.get("/ui/events", include_in_schema=False)
async def events(request: Request) -> Response:
    caller = await current_caller(request)
    if caller is None:
        return Response("sign in first\n", status_code=401, media_type="text/plain")
    scheduler = scheduler_of(request)
    schedule_filter = request.query_params.get("schedule") or None
    run_filter = request.query_params.get("run") or None
    queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE_SIZE)

    def on_event(event: Event) -> None:
        if schedule_filter and event.schedule_id != schedule_filter:
            return
        if run_filter and event.run_id != run_filter:
            return
        with contextlib.suppress(asyncio.QueueFull):  # the page refreshes on the next one
            queue.put_nowait(event)

    visibility = Visibility(scheduler, caller)

    async def stream() -> AsyncIterator[bytes]:
        unsubscribe = scheduler.subscribe(on_event)
        counter = 0
        last_seen: tuple[str, int] | None = None
        try:
            yield b"retry: 2000\n\n"
            while True:
                timeout = RUN_POLL if run_filter else KEEPALIVE
                try:
                    event = await asyncio.wait_for(queue.get(), timeout)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    if run_filter:
                        seen = await _run_state(scheduler, caller, run_filter)
                        if seen is None:
                            return
                        if last_seen is not None and seen != last_seen:
                            counter += 1
                            yield _frame(counter, {"type": "run.log", "run_id": run_filter})
                        last_seen = seen
                    else:
                        yield b": keep-alive\n\n"
                    continue
                if not await visibility.sees(event.schedule_id):
                    continue
                counter += 1
                yield _frame(
                    counter,
                    {"type": event.type, "schedule_id": event.schedule_id, "run_id": event.run_id},
                )
        finally:
            unsubscribe()

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _run_state(scheduler: Scheduler, caller: Caller, run_id: str) -> tuple[str, int] | None:
    """A running run's status and log length, to notice new lines."""
    try:
        run = await access.get_run(scheduler, caller, run_id)
    except NotFoundError:
        return None
    return run.status, len(run.logs)
