"""``GET /api/v1/events``: the event feed as Server-Sent Events, for each caller their own.

Every event comes from the database's feed (``EventFeed``), so a run executed by any
node reaches every ``serve`` process, and a client that reconnects with
``Last-Event-ID`` (or ``?last_event_id=``) gets what it missed, from memory when the
process still holds it, else from the database (kept as long as runs); an id beyond the
newest event resumes from the newest (see ``resume_after``).

Each message::

    id: 1042
    event: run.succeeded
    data: {"id": 1042, "type": "run.succeeded", "schedule_id": "daily", "run_id": "…", …}

A comment line (``: keep-alive``) is sent every 15 seconds of silence, so proxies keep
the connection and a client notices a dead one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from tickwork.api.access import can_see_event
from tickwork.api.auth import Caller, authenticate, bearer_of, current_caller
from tickwork.api.known_query import known_query_only
from tickwork.api.live import ensure_live, resume_after
from tickwork.api.routes import STREAM_ERROR_RESPONSES
from tickwork.engine.feed import EventFeed
from tickwork.errors import StoreUnavailableError, ValidationError
from tickwork.models import FeedEvent

router = APIRouter(
    tags=["events"],
    responses=STREAM_ERROR_RESPONSES,
    dependencies=[Depends(known_query_only)],
)

#: Seconds of silence after which a keep-alive comment is sent.
KEEP_ALIVE: Final = 15.0
#: How often a stream checks that the server is not stopping and that its credential
#: still holds (seconds).
CHECK: Final = 1.0


def sse_message(event: FeedEvent) -> str:
    """One event in the text/event-stream format."""
    data = json.dumps(event.to_dict(), separators=(",", ":"))
    return f"id: {event.id}\nevent: {event.type}\ndata: {data}\n\n"


def _resume_point(header: str | None, query: str | None) -> int | None:
    """The event id to resume after: the ``Last-Event-ID`` header's, else the
    ``last_event_id`` query parameter's; a ``ValidationError`` naming the one sent."""
    from_header = header not in (None, "")
    text = header if from_header else query
    if text is None or text == "":
        return None
    field = "Last-Event-ID" if from_header else "last_event_id"
    try:
        value = int(text.strip())
    except ValueError:
        raise ValidationError(
            f"{field} must be the id of an event (an integer), not {text!r}", field=field
        ) from None
    if value < 0:
        raise ValidationError(f"{field} must not be negative, not {value}", field=field)
    return value


async def _stream(
    request: Request,
    feed: EventFeed,
    caller: Caller,
    after: int,
    era: int,
    schedule: str | None,
) -> AsyncIterator[str]:
    yield "retry: 2000\n: connected\n\n"
    stopping = getattr(request.app.state, "stopping", None)  # set by serve on SIGTERM
    silent = 0.0
    loop = asyncio.get_running_loop()
    checked = loop.time()
    while not feed.closed and not (stopping is not None and stopping.is_set()):
        if loop.time() - checked >= CHECK:
            # The credential is checked again, as every request checks it: once it is
            # revoked or expired, nothing more is sent (a reconnect is then a 401).
            checked = loop.time()
            if not await _still_valid(request):
                yield ": the credentials were revoked or expired\n\n"
                return
        after, era = feed.reposition(after, era)  # the database went back: from its newest
        events = await feed.after(after)
        if events:
            chunk: list[str] = []
            for event in events:
                after = event.id
                if schedule is not None and event.schedule_id != schedule:
                    continue
                if can_see_event(caller, event.owner):
                    chunk.append(sse_message(event))
            if chunk:
                silent = 0.0
                yield "".join(chunk)
            continue
        if await request.is_disconnected():
            return
        if await feed.wait(after, CHECK):
            continue
        silent += CHECK
        if silent >= KEEP_ALIVE:
            silent = 0.0
            yield ": keep-alive\n\n"


async def _still_valid(request: Request) -> bool:
    """Whether the stream's credential still stands for a caller; a database that
    cannot answer now does not end the stream (it is asked again at the next check)."""
    bearer = bearer_of(request)
    if bearer is None:
        return False
    try:
        caller = await authenticate(request.app.state.scheduler, request.app.state.settings, bearer)
    except StoreUnavailableError:
        return True
    return caller is not None


@router.get(
    "/events",
    summary="Live events (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_events(
    request: Request,
    caller: Annotated[Caller, Depends(current_caller)],
    schedule: Annotated[str | None, Query(description="Only this schedule's events.")] = None,
    last_event_id: Annotated[
        str | None,
        Query(description="Resume after this event id (as the Last-Event-ID header)."),
    ] = None,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """What happens to the caller's schedules and runs, as it happens: `schedule.*` and
    `run.*` events, each with an increasing `id`. Send `Last-Event-ID` (browsers do on
    reconnect) to receive what was missed since that event; an id beyond the newest
    event (the database was recreated) resumes from the newest."""
    feed = (await ensure_live(request.app)).feed
    era = feed.era
    after = await resume_after(feed, _resume_point(last_event_id_header, last_event_id))
    return StreamingResponse(
        _stream(request, feed, caller, after, era, schedule),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
