"""The dashboard's one live stream per page: Server-Sent Events under the session cookie.

It follows the database's event feed (the same one as ``GET /api/v1/events``), so a
run executed by any node reaches every page. Each message only says "something you
see changed" (``event: change``, with the event's type, ids and status); the page then
fetches its live parts again through the same access rules as any read, so the stream
carries nothing the caller may not see, and events of schedules the caller cannot see
are not sent at all. Message ids are the feed's: a reconnecting browser (or a tab shown
again) resumes after the last one it got, and a page passes the feed position it was
rendered at (``after``), so a change made between the render and the stream's start is
not missed; a position beyond the newest event resumes from the newest. A running
run's page also gets a change when its stored log grows.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from tickwork.api import access
from tickwork.api.auth import Caller
from tickwork.api.live import ensure_live, resume_after
from tickwork.engine.feed import EventFeed
from tickwork.engine.scheduler import Scheduler
from tickwork.errors import NotFoundError
from tickwork.models import FeedEvent, Run
from tickwork.web.address import DashboardRoute
from tickwork.web.session import session_token
from tickwork.web.signin import current_caller, scheduler_of, session_caller

router = APIRouter(route_class=DashboardRoute)
#: Seconds of silence after which a keep-alive comment is sent.
KEEPALIVE: Final = 15.0
#: How often a quiet stream checks that its client is still there and the server is
#: not stopping, and a running run's page looks for new log lines.
TICK: Final = 1.0


def _frame(event: FeedEvent) -> str:
    data = {
        "type": event.type,
        "schedule_id": event.schedule_id,
        "run_id": event.run_id,
        "status": event.status,
    }
    return f"id: {event.id}\nevent: change\ndata: {json.dumps(data)}\n\n"


#: Digits a feed position has at most (event ids are 64-bit integers).
_POSITION_DIGITS: Final = 18


def _position(*candidates: str | None) -> int | None:
    """The first feed position given as a non-negative integer; anything else (``²`` and
    other digits ``int`` cannot read or reads as another number, a number no event id
    reaches) is passed over, as an absent one is."""
    for text in candidates:
        digits = (text or "").strip()
        if digits.isascii() and digits.isdigit() and len(digits) <= _POSITION_DIGITS:
            return int(digits)
    return None


@router.get("/ui/events", include_in_schema=False)
async def events(request: Request) -> Response:
    caller = await current_caller(request)
    if caller is None:
        return Response("sign in first\n", status_code=401, media_type="text/plain")
    feed = (await ensure_live(request.app)).feed
    p = request.query_params
    resume = _position(request.headers.get("last-event-id"), p.get("last_event_id"), p.get("after"))
    era = feed.era
    after = await resume_after(feed, resume)
    return StreamingResponse(
        _stream(
            request,
            scheduler_of(request),
            feed,
            caller,
            after,
            era,
            schedule=p.get("schedule") or None,
            run=p.get("run") or None,
            rendered_state=p.get("state") or None,
        ),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _stream(
    request: Request,
    scheduler: Scheduler,
    feed: EventFeed,
    caller: Caller,
    after: int,
    era: int,
    *,
    schedule: str | None,
    run: str | None,
    rendered_state: str | None,
) -> AsyncIterator[str]:
    yield "retry: 2000\n\n"
    stopping = getattr(request.app.state, "stopping", None)  # set by serve on SIGTERM
    last_state = rendered_state
    silent = 0.0
    checked = time.monotonic()
    while not feed.closed and not (isinstance(stopping, asyncio.Event) and stopping.is_set()):
        if time.monotonic() - checked >= TICK:
            # The session's token is checked again, as every request checks it: once it
            # is revoked or expired, nothing more is sent, and a last change sends the
            # page to fetch its live parts, which answer with the sign-in page.
            checked = time.monotonic()
            if not await _still_signed_in(request, scheduler):
                yield f"event: change\ndata: {json.dumps({'type': 'session.ended'})}\n\n"
                return
        after, era = feed.reposition(after, era)  # the database went back: from its newest
        found = await feed.after(after)
        if found:
            chunk = []
            for event in found:
                after = event.id
                if schedule is not None and event.schedule_id != schedule:
                    continue
                if run is not None and event.run_id != run:
                    continue
                if access.can_see_event(caller, event.owner):
                    chunk.append(_frame(event))
            if chunk:
                silent = 0.0
                yield "".join(chunk)
            continue
        if run is not None:
            # Log lines are stored without an event: compare the run's state instead.
            state = await _run_state(scheduler, caller, run)
            if state is None:
                return
            if last_state is not None and state != last_state:
                silent = 0.0
                payload = {"type": "run.changed", "run_id": run}
                yield f"event: change\ndata: {json.dumps(payload)}\n\n"
            last_state = state
        if await request.is_disconnected():
            return
        if await feed.wait(after, TICK):
            continue
        silent += TICK
        if silent >= KEEPALIVE:
            silent = 0.0
            yield ": keep-alive\n\n"


async def _still_signed_in(request: Request, scheduler: Scheduler) -> bool:
    secret = session_token(request)
    return secret is not None and (
        await session_caller(scheduler, request.app.state.settings, secret) is not None
    )


async def _run_state(scheduler: Scheduler, caller: Caller, run_id: str) -> str | None:
    """A run's status, attempt and number of stored log lines, to notice a change."""
    try:
        found = await access.get_run(scheduler, caller, run_id)
    except NotFoundError:
        return None
    return run_state(found)


def run_state(run: Run) -> str:
    return f"{run.status}:{run.attempt}:{len(run.logs)}"
