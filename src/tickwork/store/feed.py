"""Reading the event feed: the SQL both databases share and the rows' decoding.

The feed itself is written by triggers (migration 0004): this module only reads it.
A feed row carries what may change later (status and attempt at the time, the
schedule's owner then); the run's details come from its row, joined as the event is
read, so the engine writes nothing more than the change itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Final

from tickwork.models import FeedEvent

#: Joins a feed relation aliased ``e`` (with ``id`` the event's position) to the run's
#: and, for schedule events, the schedule's row. Columns in ``feed_event``'s order.
FEED_SELECT: Final = (
    "SELECT e.id, e.at, e.type, e.schedule_id, e.run_id, e.status, e.attempt, e.owner,"
    " COALESCE(r.task, s.task), r.trigger, r.scheduled_for, r.started_at, r.finished_at,"
    " r.node, r.error"
)
FEED_JOINS: Final = (
    " LEFT JOIN runs r ON r.id = e.run_id"
    " LEFT JOIN schedules s ON e.run_id IS NULL AND s.id = e.schedule_id"
)
#: Events deleted per statement by retention.
DELETE_CHUNK: Final = 5000


def feed_event(row: Sequence[Any], dt: Callable[[Any], datetime | None]) -> FeedEvent:
    """A ``FeedEvent`` from a row of ``FEED_SELECT`` (``dt`` decodes the dialect's instants)."""
    at = dt(row[1])
    assert at is not None
    return FeedEvent(
        id=int(row[0]),
        type=row[2],
        at=at,
        schedule_id=row[3],
        run_id=row[4],
        status=row[5],
        attempt=row[6],
        owner=row[7],
        task=row[8],
        trigger=row[9],
        scheduled_for=dt(row[10]),
        started_at=dt(row[11]),
        finished_at=dt(row[12]),
        node=row[13],
        error=row[14],
    )
