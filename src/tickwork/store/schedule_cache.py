"""The schedule cache (read-ahead): schedules decoded before their fire, kept
by the revision they were read at, so a fire decodes only the rows that changed."""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Sequence
from datetime import datetime
from itertools import islice
from typing import Any

from tickwork.models import Schedule
from tickwork.store.codec import ScheduleAt, _aware
from tickwork.store.dialect import SqlCore, Tx

log = logging.getLogger("tickwork.store")


#: A schedule as the fire loop keeps it: (revision, record, data and retry as stored).
_Known = tuple[int, Schedule, str, str]


class ScheduleCache(SqlCore):
    """Decoded schedules the fire loop reuses; only a cache: a fire checks every
    revision in its own transaction."""

    #: Schedules kept decoded for the fire loop at most (see ``read_ahead``).
    schedule_cache_size: int = 20_000

    def __init__(self) -> None:
        #: Schedules decoded before their fire, by id, with the ``revision`` they were
        #: read at. Only a cache: the fire reads the stored revisions in its own
        #: transaction and decodes the row again when they differ.
        self._known: dict[str, _Known] = {}
        self._known_lock = threading.Lock()
        #: Fired schedules taken from the cache, and read from their rows.
        self.cache_hits = 0
        self.cache_misses = 0

    def _due_revisions(
        self, tx: Tx, t_now: Any, limit: int, *, lock: bool
    ) -> Sequence[Sequence[Any]]:
        """``(id, revision)`` of the active schedules due at ``t_now``, earliest first;
        with ``lock``, locked for this transaction."""
        return tx.execute(
            self._sql("due_schedules_locked" if lock else "due_schedules"), (t_now, limit)
        )

    def _schedule_rows(self, tx: Tx, ids: Collection[str]) -> Sequence[Sequence[Any]]:
        """Rows (``SCHEDULE_COLUMNS``, then ``revision``) of these schedules, in any order."""
        return tx.execute(self._sql("schedule_rows_with_revision"), (self._list(ids),))

    def read_ahead(self, until: datetime, limit: int) -> int:
        """Decode now the active schedules due by ``until`` (earliest first, at most
        ``limit`` and ``schedule_cache_size``) that the cache does not hold as stored;
        returns how many. Reads without locking: the fire checks every revision again."""
        limit = min(max(0, int(limit)), self.schedule_cache_size)
        if limit == 0:
            return 0
        with self._read() as tx:
            due = self._due_revisions(tx, self._ts(_aware(until)), limit, lock=False)
            stale = [sid for sid, revision in due if not self._holds(sid, revision)]
            rows = self._schedule_rows(tx, stale) if stale else []
        entries: list[tuple[str, _Known | None]] = []
        for row in rows:
            try:
                entries.append((row[0], self._known_row(row)))
            except Exception:
                continue  # the fire pauses it and says why
        self._remember(entries)
        return len(entries)

    def _holds(self, schedule_id: str, revision: int) -> bool:
        entry = self._known.get(schedule_id)
        return entry is not None and entry[0] == revision

    def _known_due(self, tx: Tx, due: Sequence[Sequence[Any]]) -> list[_Known]:
        """The due schedules, in ``due`` order: from the cache when it holds the stored
        revision, else decoded from their rows (read in this transaction)."""
        known = self._known
        found = [known.get(sid) for sid, _ in due]
        stale = [sid for (sid, rev), k in zip(due, found, strict=True) if k is None or k[0] != rev]
        self.cache_hits += len(due) - len(stale)
        self.cache_misses += len(stale)
        if not stale:
            return found  # type: ignore[return-value]  # none is None
        read: dict[str, _Known] = {}
        unreadable: list[str] = []
        for row in self._schedule_rows(tx, stale):
            try:
                read[row[0]] = self._known_row(row)
            except Exception as exc:  # a row edited by hand into something invalid
                log.error(
                    "schedule %s cannot be read (%s): paused; fix its row and resume it",
                    row[0],
                    exc,
                )
                unreadable.append(row[0])
        if unreadable:
            # One bad row must not hold up every other fire: it stops being due.
            tx.execute(self._sql("pause_unreadable_schedules"), (self._list(unreadable),))
        return [
            k if k is not None and k[0] == rev else read[sid]
            for (sid, rev), k in zip(due, found, strict=True)
            if sid in read or (k is not None and k[0] == rev)
        ]

    def _known_row(self, row: Sequence[Any]) -> _Known:
        return (
            int(row[ScheduleAt.revision]),
            self._schedule(row),
            row[ScheduleAt.data],
            row[ScheduleAt.retry],
        )

    def _remember(self, entries: Sequence[tuple[str, _Known | None]]) -> None:
        """Store (``None``: drop) cache entries; beyond ``schedule_cache_size`` the
        oldest go."""
        with self._known_lock:
            known = self._known
            for sid, entry in entries:
                known.pop(sid, None)  # put back last: the newest
                if entry is not None:
                    known[sid] = entry
            excess = len(known) - self.schedule_cache_size
            if excess > 0:
                for sid in list(islice(known, excess)):
                    del known[sid]
