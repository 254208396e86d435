"""What ``serve`` keeps running beside the routes for events, metrics and health.

``start_live(app)`` (``serve`` calls it once the app exists) follows the database's
event feed and counts what it sees for ``/metrics``; ``stop_live(app)`` ends it, and
with it every open event stream. A route that finds it not started starts it
(``ensure_live``), so an app built without ``serve`` works too. ``resume_after`` says
where a stream that asks to resume starts.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from tickwork.api.engine_status import engine_state
from tickwork.api.metrics import DatabaseCollector, FeedMetrics
from tickwork.engine.feed import EventFeed
from tickwork.engine.scheduler import Scheduler
from tickwork.errors import StoreError


@dataclass
class Live:
    scheduler: Scheduler
    feed: EventFeed
    registry: CollectorRegistry
    metrics: FeedMetrics
    database: DatabaseCollector
    scrape_lock: asyncio.Lock


async def start_live(app: FastAPI) -> Live:
    """Follow the feed from now on and register the metrics; idempotent."""
    async with _starting(app):
        existing = getattr(app.state, "tickwork_live", None)
        if isinstance(existing, Live):
            return existing
        return await _start(app, app.state.scheduler)


ensure_live = start_live


def _starting(app: FastAPI) -> asyncio.Lock:
    lock = getattr(app.state, "tickwork_live_lock", None)
    if not isinstance(lock, asyncio.Lock):
        lock = app.state.tickwork_live_lock = asyncio.Lock()
    return lock


async def _start(app: FastAPI, scheduler: Scheduler) -> Live:
    registry = CollectorRegistry(auto_describe=True)
    metrics = FeedMetrics(registry)
    database = DatabaseCollector(scheduler, lambda: engine_state(app, scheduler))
    registry.register(database)
    feed = EventFeed(scheduler.store)
    feed.add_listener(metrics.observe)
    await feed.start()
    live = Live(scheduler, feed, registry, metrics, database, asyncio.Lock())
    app.state.tickwork_live = live
    return live


async def stop_live(app: FastAPI) -> None:
    """Stop following the feed; open event streams end."""
    live = getattr(app.state, "tickwork_live", None)
    if isinstance(live, Live):
        await live.feed.stop()


async def resume_after(feed: EventFeed, requested: int | None) -> int:
    """The feed position a stream starts after: ``requested`` (a client's
    ``Last-Event-ID``), or the newest event when there is none.

    A position beyond the newest event in the database (the database was recreated, or
    another one answered before) is taken as the newest: waiting for the ids to catch
    up would pass over every event until then, unseen. A position this process has not
    read yet but the database holds (another process served it first) is kept. When the
    database cannot say, this process's newest is used: events may come twice, none is
    lost."""
    if requested is None:
        return feed.last_id
    if requested <= feed.last_id:
        return requested
    try:
        newest = await asyncio.to_thread(feed.store.last_event_id)
    except StoreError:
        newest = feed.last_id
    return min(requested, newest)
