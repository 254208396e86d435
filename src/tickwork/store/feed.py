"""Reading the event feed: the rows' decoding (each dialect's ``read_events`` in
``queries/`` reads them).

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

#: Events deleted per statement by retention.
DELETE_CHUNK: Final = 5000


def feed_event(row: Sequence[Any], dt: Callable[[Any], datetime | None]) -> FeedEvent:
    """A ``FeedEvent`` from a row of ``read_events`` (named SQL of each dialect; ``dt``
    decodes the dialect's instants)."""
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
