"""The store interface, part three: reads for a caller that keeps decoded schedules
(the REST API), by the ``revision`` every write of a schedule row changes, and their
event-loop versions for a store that reads over the network (the API's hot reads).
``Store`` (``store/base.py``) inherits it; one transaction per method, no clock read."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

from tickwork.models import ApiToken, DashboardSession, Schedule
from tickwork.store.records import ALL_SCHEDULES, ScheduleFilter

#: A schedule as ``schedule_revisions`` gives it: (id, revision, record or None).
Revised = tuple[str, int, Schedule | None]


class ReadStore(ABC):
    """Schedules read by revision (SQL in store/schedules.py)."""

    #: True when small reads may run on the calling thread, the event loop's included:
    #: they never wait for a lock (SQLite in WAL mode: readers wait for nobody) and
    #: take no network round trip. A store that cannot promise it says False, and the
    #: caller reads on a store thread.
    reads_inline: bool = False

    @abstractmethod
    def schedule_revisions(
        self,
        held: Mapping[str, int],
        filters: ScheduleFilter = ALL_SCHEDULES,
        *,
        schedule_id: str | None = None,
    ) -> list[Revised]:
        """The schedules ``list_schedules`` gives for ``filters`` (or the one
        ``schedule_id``, if it exists, the filters then unused), in its order, as
        ``(id, revision, record)``.

        ``held`` maps ids to the revision the caller holds decoded: where the stored
        revision is that one, the record is None and not read; else it is decoded
        from the row, read in the same snapshot as the revisions.
        """

    def reads_async(self) -> bool:
        """True when ``schedule_revisions_async``, ``get_token_async`` and
        ``get_session_async`` read on the running event loop itself (a network round
        trip awaited, no thread): cheaper than a hop to a store thread and back. False
        by default: the caller then runs the synchronous method on a store thread."""
        return False

    async def schedule_revisions_async(
        self,
        held: Mapping[str, int],
        filters: ScheduleFilter = ALL_SCHEDULES,
        *,
        schedule_id: str | None = None,
    ) -> list[Revised]:
        """``schedule_revisions`` on the running event loop (when ``reads_async()``)."""
        raise NotImplementedError(f"{type(self).__name__} reads on a store thread: see reads_async")

    async def get_token_async(self, token_id: str) -> tuple[ApiToken, str] | None:
        """``get_token`` on the running event loop (when ``reads_async()``)."""
        raise NotImplementedError(f"{type(self).__name__} reads on a store thread: see reads_async")

    async def get_session_async(self, session_id: str) -> tuple[DashboardSession, str] | None:
        """``get_session`` on the running event loop (when ``reads_async()``)."""
        raise NotImplementedError(f"{type(self).__name__} reads on a store thread: see reads_async")
