"""Schedule bodies kept serialized, by the revision of the row they were made from.

A schedule's body (``ScheduleOut``) is a function of its stored row alone, and the
row's ``revision`` changes with every write to it, by any process (fires, pauses,
edits, the engine's bookkeeping: triggers see to it). So a body made from revision
``r`` is exact for as long as the row is at ``r``: a get or a list reads only the ids
and revisions of its page (``Scheduler.schedule_revisions``) and decodes and
serializes only the rows whose revision moved. That was most of a request's time: a
page of 50 spent about 1 ms turning rows into records.

A list's whole body is kept too, by its filters, with the ids and revisions it was
made from: when the store answers a page with the same ones, every row held, the
body is the same bytes, served without a pass over its items.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from tickwork.api import paging
from tickwork.api.encode import page_json, schedule_json
from tickwork.engine.scheduler import Scheduler
from tickwork.models import Schedule
from tickwork.store.base_reads import Revised
from tickwork.store.records import ScheduleFilter

#: Bodies kept at most (about 1 kB each); past it the oldest are dropped.
MAX_BODIES: Final = 20_000
#: Whole pages kept at most (a list's body, by its filters); past it the oldest go.
MAX_PAGES: Final = 64


@dataclass(frozen=True, slots=True)
class Body:
    """A schedule's serialized body and what a route needs besides it."""

    revision: int
    owner: str | None
    #: The schedule's ``version``: its ``ETag``.
    version: int
    json: bytes


class ScheduleBodies:
    """The bodies of one process's API, by schedule id. Used from the event loop only
    (a store thread reads ``revisions``: each entry is replaced whole)."""

    def __init__(self, size: int = MAX_BODIES, pages: int = MAX_PAGES) -> None:
        self.size = size
        self.pages = pages
        self._bodies: dict[str, Body] = {}
        #: A list's body by its filters, with the store's answer it was made from
        #: (every row held): the same answer, the same body.
        self._pages: dict[ScheduleFilter, tuple[list[Revised], bytes]] = {}
        #: The revision of each body held: what the store compares with its rows.
        self.revisions: dict[str, int] = {}
        #: Bodies served as held, and made from a row read.
        self.hits = 0
        self.misses = 0
        #: Lists served as a kept body.
        self.page_hits = 0

    def _keep(self, schedule_id: str, revision: int, schedule: Schedule) -> Body:
        body = Body(revision, schedule.owner, schedule.version, schedule_json(schedule))
        self._bodies.pop(schedule_id, None)  # kept newest last, for the eviction below
        self._bodies[schedule_id] = body
        self.revisions[schedule_id] = revision
        if len(self._bodies) > self.size:
            oldest = next(iter(self._bodies))
            del self._bodies[oldest]
            del self.revisions[oldest]
        return body

    async def one(self, scheduler: Scheduler, schedule_id: str) -> Body | None:
        """The body of the schedule as stored now, or None when there is none."""
        revised = await scheduler.schedule_revisions(self.revisions, schedule_id=schedule_id)
        found = await self._bodies_of(scheduler, revised)
        return found[0][1] if found else None

    async def page(self, scheduler: Scheduler, filters: ScheduleFilter) -> list[tuple[str, Body]]:
        """``(id, body)`` of the schedules ``Scheduler.list_schedules`` gives for
        ``filters``, in its order, each as stored now."""
        revised = await scheduler.schedule_revisions(self.revisions, filters)
        return await self._bodies_of(scheduler, revised)

    async def page_json(self, scheduler: Scheduler, filters: ScheduleFilter) -> bytes:
        """The body of ``GET /schedules`` (``Page[ScheduleOut]``) for ``filters``: the
        first ``filters.limit`` schedules of ``page``, and the cursor of the next page
        when more follow."""
        limit = paging.DEFAULT_LIMIT if filters.limit is None else filters.limit
        asked = filters.replace(limit=limit + 1)  # one more: do more follow?
        revised = await scheduler.schedule_revisions(self.revisions, asked)
        kept = self._pages.get(asked)
        if kept is not None and kept[0] == revised:
            self.page_hits += 1
            return kept[1]
        found = await self._bodies_of(scheduler, revised)
        items = found[:limit]
        cursor = paging.encode("s", items[-1][0]) if len(found) > limit else None
        body = page_json([b.json for _, b in items], cursor)
        # Kept under the answer the store gives when every one of these rows is held
        # at the revision its body was made from (records None).
        self._pages.pop(asked, None)
        self._pages[asked] = ([(sid, b.revision, None) for sid, b in found], body)
        if len(self._pages) > self.pages:
            del self._pages[next(iter(self._pages))]
        return body

    async def _bodies_of(
        self, scheduler: Scheduler, revised: list[Revised]
    ) -> list[tuple[str, Body]]:
        out: list[tuple[str, Body]] = []
        held = self._bodies.get
        hits = 0
        for sid, revision, record in revised:
            if record is not None:
                self.misses += 1
                out.append((sid, self._keep(sid, revision, record)))
                continue
            body = held(sid)
            if body is None or body.revision != revision:
                # Replaced or dropped while the store read (on a store thread): read
                # this one again, with nothing held.
                body = await self._fresh(scheduler, sid)
                if body is None:
                    continue  # deleted since
            else:
                hits += 1
            out.append((sid, body))
        self.hits += hits
        return out

    async def _fresh(self, scheduler: Scheduler, schedule_id: str) -> Body | None:
        for sid, revision, record in await scheduler.schedule_revisions(
            {}, schedule_id=schedule_id
        ):
            if record is not None:
                self.misses += 1
                return self._keep(sid, revision, record)
        return None
