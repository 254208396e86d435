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
from tickwork.models import Run
from tickwork.web.signin import current_caller, scheduler_of

router = APIRouter()
KEEPALIVE: Final = 15.0
#: How often a quiet stream checks that its client is still there and the server is
#: not stopping, and a running run's page looks for new log lines.
TICK: Final = 1.0
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
    # The run's state the page was rendered with ("running:3": status and log lines), so
    # a change between the render and this stream's start is not missed.
    rendered_state = request.query_params.get("state") or None
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
        last_seen: str | None = rendered_state
        quiet = 0.0
        try:
            yield b"retry: 2000\n\n"
            first = True
            while True:
                if first and run_filter:
                    first = False
                    seen = await _run_state(scheduler, caller, run_filter)
                    if seen is not None and last_seen is not None and seen != last_seen:
                        counter += 1
                        yield _frame(counter, {"type": "run.changed", "run_id": run_filter})
                    last_seen = seen
                    continue
                try:
                    event = await asyncio.wait_for(queue.get(), TICK)
                except TimeoutError:
                    if await request.is_disconnected() or _stopping(request):
                        return
                    quiet += TICK
                    if run_filter:
                        seen = await _run_state(scheduler, caller, run_filter)
                        if seen is None:
                            return
                        if last_seen is not None and seen != last_seen:
                            counter += 1
                            yield _frame(counter, {"type": "run.changed", "run_id": run_filter})
                        last_seen = seen
                    elif quiet >= KEEPALIVE:
                        quiet = 0.0
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


def _stopping(request: Request) -> bool:
    """``tickwork serve`` sets ``app.state.stopping`` on shutdown: long streams end."""
    stopping = getattr(request.app.state, "stopping", None)
    return isinstance(stopping, asyncio.Event) and stopping.is_set()


async def _run_state(scheduler: Scheduler, caller: Caller, run_id: str) -> str | None:
    """A run's status and number of log lines, to notice a change."""
    try:
        run = await access.get_run(scheduler, caller, run_id)
    except NotFoundError:
        return None
    return run_state(run)


def run_state(run: Run) -> str:
    return f"{run.status}:{len(run.logs)}:{run.attempt}"
