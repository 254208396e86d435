"""Schedules as stored: adding, changing (with optimistic versions), reading,
listing, deleting and pausing them, each in one transaction."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from tickwork.errors import ConflictError, NotFoundError, PreconditionFailedError
from tickwork.models import AuditEntry, Run, Schedule, ScheduleStatus
from tickwork.store.base import NextFire
from tickwork.store.base_reads import Revised
from tickwork.store.codec import (
    _SCHEDULE_KEPT_ON_UPDATE,
    _SEARCHED,
    SCHEDULE_COLUMNS,
    ScheduleAt,
    _aware,
    like_escaped,
    utc,
    utc_schedule,
)
from tickwork.store.dialect import SqlCore, Tx, shared_statement
from tickwork.store.named_sql import fill
from tickwork.store.records import ALL_SCHEDULES, ScheduleFilter

#: A new schedule row, with its first revision (see ``new_revision``); the same text on
#: both databases, also run by a dialect's own add (``insert_schedule``).
INSERT_SCHEDULE: Final = shared_statement("insert_schedule")
#: The columns an update writes, in ``SCHEDULE_COLUMNS`` order, and its ``SET`` list.
_UPDATED: Final = tuple(c for c in SCHEDULE_COLUMNS if c not in _SCHEDULE_KEPT_ON_UPDATE)
_UPDATE_SCHEDULE: Final = fill(
    shared_statement("update_schedule"), assignments=", ".join(f"{c} = ?" for c in _UPDATED)
)


def new_revision() -> int:
    """A schedule row's first ``revision``: random (62 bits, never 0), so a schedule
    deleted and added again under the same id does not take up a revision that a
    node's cache may still hold for the old row. Every later write adds 1."""
    return random.getrandbits(62) | 1


class Schedules(SqlCore):
    """The schedules' part of ``SqlStore``."""

    def add_schedule(self, schedule: Schedule, audit: AuditEntry | None = None) -> Schedule:
        row = self._schedule_row(schedule)
        try:
            with self._write() as tx:
                tx.execute(INSERT_SCHEDULE, (*row, new_revision()))
                if audit is not None:
                    self._audit_tx(tx, [audit])
                self._notify_tx(tx)
        except ConflictError:
            raise ConflictError(f"schedule {schedule.id!r} already exists") from None
        return utc_schedule(schedule)

    def update_schedule(
        self,
        schedule: Schedule,
        audit: AuditEntry | None = None,
        expected_version: int | None = None,
    ) -> Schedule:
        row = self._schedule_row(schedule)
        values = [v for c, v in zip(SCHEDULE_COLUMNS, row, strict=True) if c in _UPDATED]
        with self._write() as tx:
            self._check_version(tx, schedule.id, expected_version)
            rows = tx.execute(_UPDATE_SCHEDULE, (*values, schedule.id))
            if not rows:
                raise NotFoundError("schedule", schedule.id)
            stored = self._schedule(rows[0])
            if audit is not None:
                self._audit_tx(tx, [dataclasses.replace(audit, after=stored.to_dict())])
            self._notify_tx(tx)
        return stored

    def _check_version(self, tx: Tx, schedule_id: str, expected: int | None) -> None:
        """Lock the schedule's row and raise ``PreconditionFailedError`` unless its
        ``version`` is ``expected`` (None: no check; a missing row is left to the
        caller's statement)."""
        if expected is None:
            return
        rows = tx.execute(self._sql("schedule_version_locked"), (schedule_id,))
        if rows and int(rows[0][0]) != expected:
            raise PreconditionFailedError(
                f"schedule {schedule_id!r} is at version {rows[0][0]}, not {expected}:"
                " it changed since it was read"
            )

    def get_schedule(self, schedule_id: str) -> Schedule | None:
        with self._read() as tx:
            rows = tx.execute(self._sql("schedule_by_id"), (schedule_id,))
        return self._schedule(rows[0]) if rows else None

    def _filter_where(self, filters: ScheduleFilter) -> tuple[str, list[Any]]:
        """The WHERE clause ("" for none) and parameters of ``filters`` (their
        ``limit`` aside): the conditions, and ``id > after_id`` when a page starts
        after one."""
        where: list[str] = []
        params: list[Any] = []
        if filters.q:
            pattern = "%" + like_escaped(filters.q.lower()) + "%"
            where.append(
                "(" + " OR ".join(f"LOWER({c}) LIKE ? ESCAPE '\\'" for c in _SEARCHED) + ")"
            )
            params.extend([pattern] * len(_SEARCHED))
        for cond, value in (
            ("status = ?", filters.status),
            ("task = ?", filters.task),
            (self._tag_filter, filters.tag),
            ("owner = ?", filters.owner),
            ("id > ?", filters.after_id),
        ):
            if value is not None:
                where.append(cond)
                params.append(value)
        return (" WHERE " + " AND ".join(where) if where else ""), params

    def list_schedules(
        self,
        *,
        status: ScheduleStatus | None = None,
        task: str | None = None,
        tag: str | None = None,
        owner: str | None = None,
        q: str | None = None,
        after_id: str | None = None,
        limit: int | None = None,
    ) -> list[Schedule]:
        # The Store interface's keywords (base.py), gathered once into the record.
        filters = ScheduleFilter(status, task, tag, owner, q, after_id, limit)
        where, params = self._filter_where(filters)
        if limit is None:
            sql = fill(self._sql("list_schedules"), where=where)
        else:
            sql = fill(self._sql("list_schedules_page"), where=where)
            params.append(max(0, int(limit)))
        with self._read() as tx:
            rows = tx.execute(sql, params)
        return [self._schedule(r) for r in rows]

    def schedule_revisions(
        self,
        held: Mapping[str, int],
        filters: ScheduleFilter = ALL_SCHEDULES,
        *,
        schedule_id: str | None = None,
    ) -> list[Revised]:
        sql, params = self._revisions_query(filters, schedule_id)
        with self._read() as tx:
            page: list[tuple[str, int]] = tx.execute(sql, params)
            stale = self._stale_query(held, page)
            if stale is None:
                return [(sid, rev, None) for sid, rev in page]
            rows = tx.execute(*stale)
        return self._revised(held, page, rows)

    # The three steps of ``schedule_revisions``, apart so that a dialect that reads
    # without a thread (PostgreSQL on the event loop) runs the same statements.

    def _revisions_query(
        self, filters: ScheduleFilter, schedule_id: str | None = None
    ) -> tuple[str, list[Any]]:
        """The statement reading the ids and revisions of the page, and its parameters."""
        if schedule_id is not None:
            return self._sql("schedule_revision"), [schedule_id]
        where, params = self._filter_where(filters)
        if filters.limit is None:
            return fill(self._sql("schedule_revisions_where"), where=where), params
        params.append(max(0, int(filters.limit)))
        return fill(self._sql("schedule_revisions_page"), where=where), params

    def _stale_query(
        self, held: Mapping[str, int], page: Sequence[tuple[str, int]]
    ) -> tuple[str, Sequence[Any]] | None:
        """The statement reading the rows of the page whose revision is not the one
        held, or None when every one is held. (``page`` as the database gives it: ids
        and revisions, both integers on both databases.)"""
        get = held.get
        stale = [sid for sid, rev in page if get(sid) != rev]
        if not stale:
            return None
        if len(stale) == 1:
            return self._sql("schedule_revised"), (stale[0],)
        return self._sql("schedule_rows_with_revision"), (self._list(stale),)

    def _revised(
        self,
        held: Mapping[str, int],
        page: Sequence[tuple[str, int]],
        rows: Sequence[Sequence[Any]],
    ) -> list[Revised]:
        read = {row[0]: (int(row[ScheduleAt.revision]), self._schedule(row)) for row in rows}
        # Without one snapshot (PostgreSQL reads statement by statement), a row may have
        # changed since its revision was read: it is served as read, with its own
        # revision; one deleted in between is left out.
        return [
            (sid, *read[sid]) if sid in read else (sid, rev, None)
            for sid, rev in page
            if sid in read or held.get(sid) == rev
        ]

    def upcoming_schedules(
        self, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Schedule]:
        # Served by the index schedules_due (next_fire_at, id) WHERE status = 'active'.
        sql = self._sql("upcoming_schedules")
        params: list[Any] = []
        if after is not None:
            sql = self._sql("upcoming_schedules_after")
            t = self._ts(_aware(after[0]))
            params += [t, t, after[1]]
        params.append(max(0, int(limit)))
        with self._read() as tx:
            rows = tx.execute(sql, params)
        return [self._schedule(r) for r in rows]

    def delete_schedule(
        self,
        schedule_id: str,
        now: datetime,
        audit: AuditEntry | None = None,
        expected_version: int | None = None,
    ) -> list[Run] | None:
        t = self._ts(now)
        with self._write() as tx:
            self._check_version(tx, schedule_id, expected_version)
            # The runs first, the schedule last: the event feed takes a run event's
            # owner from its schedule's row.
            rows = tx.execute(self._sql("schedule_locked"), (schedule_id,))
            if not rows:
                return None
            if audit is not None:
                before = self._schedule(rows[0]).to_dict()
                self._audit_tx(tx, [dataclasses.replace(audit, before=before)])
            cancelled = tx.execute(self._sql("cancel_waiting_runs_of_schedule"), (t, schedule_id))
            tx.execute(self._sql("ask_running_runs_of_schedule_to_cancel"), (schedule_id,))
            # Whose it was, for its runs kept: their owner still reads them.
            tx.execute(self._sql("record_deleted_schedule"), (t, schedule_id))
            tx.execute(self._sql("delete_schedule"), (schedule_id,))
            self._notify_tx(tx)
            return self._runs_with_attempts(tx, cancelled)

    def set_paused(
        self,
        schedule_ids: Sequence[str] | None,
        paused: bool,
        now: datetime,
        next_fire: NextFire,
        audit: AuditEntry | None = None,
        expected_version: int | None = None,
    ) -> list[Schedule]:
        if schedule_ids is not None and not schedule_ids:
            return []
        if expected_version is not None and (schedule_ids is None or len(schedule_ids) != 1):
            raise ValueError("expected_version is the version of one schedule")
        now = _aware(now)
        with self._write() as tx:
            if schedule_ids is not None:
                self._check_version(tx, schedule_ids[0], expected_version)
            # Resuming also picks up a schedule paused by the engine without the flag.
            if schedule_ids is None:
                every = "schedules_to_pause" if paused else "schedules_to_resume"
                rows = tx.execute(self._sql(every))
            else:
                listed = "listed_schedules_to_pause" if paused else "listed_schedules_to_resume"
                rows = tx.execute(self._sql(listed), (self._list(schedule_ids),))
            changed: list[Schedule] = []
            entries: list[AuditEntry] = []
            for row in rows:
                s = self._schedule(row)
                before = s
                if paused:
                    status: ScheduleStatus = "paused" if s.status == "active" else s.status
                    s = s.replace(paused=True, paused_at=now, status=status, updated_at=now)
                elif s.status == "paused":
                    s = s.replace(paused=False, paused_at=None, status="active", updated_at=now)
                    s = s.replace(next_fire_at=utc(next_fire(s, now)))
                    if s.next_fire_at is None and not _is_manual(s.schedule):
                        # Its last fire time passed while paused (not caught up).
                        s = s.replace(status="finished")
                else:  # a finished schedule stays finished
                    s = s.replace(paused=False, paused_at=None, updated_at=now)
                s = s.replace(version=s.version + 1)
                changed.append(s)
                if audit is not None:
                    entries.append(
                        dataclasses.replace(
                            audit,
                            target=f"schedule:{s.id}",
                            before=before.to_dict(),
                            after=s.to_dict(),
                        )
                    )
            if changed:
                ts = self._ts
                tx.executemany(
                    self._sql("store_paused"),
                    [
                        (s.paused, ts(s.paused_at), s.status, ts(s.next_fire_at), ts(now), s.id)
                        for s in changed
                    ],
                )
                self._audit_tx(tx, entries)
                self._notify_tx(tx)
        return changed


def _is_manual(expression: str) -> bool:
    """A ``manual`` schedule never has a next fire and is still active: it can be run."""
    return expression.strip().lower() == "manual"
