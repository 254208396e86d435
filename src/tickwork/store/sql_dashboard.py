"""The SQL of the dashboard's summaries (both dialects): counts and activity computed in
the database, so a page over a million runs reads a few hundred rows, not the runs.

``SqlStore`` inherits this. Instants differ by dialect (SQLite: integer microseconds;
PostgreSQL: ``timestamptz``): the named statement ``run_activity`` has a variant per
dialect, and the ``_bucket_unit`` and ``_duration_unit`` attributes say in what units
each cuts time into buckets and measures a duration (SQLite's in integer arithmetic,
which it does several times faster than floating point).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from tickwork.models import RUN_STATUSES, Schedule
from tickwork.store.named_sql import fill, union_all
from tickwork.store.owned_runs import owned_params
from tickwork.store.records import ALL_SCHEDULES, ScheduleFilter
from tickwork.store.sql_hooks import SqlHooks
from tickwork.store.sql_stats import indexed_schedule_counts

if TYPE_CHECKING:
    pass

#: At most this many schedules per ``recent_runs`` call (a page of the list).
MAX_RECENT_SCHEDULES: Final = 200
#: What a page of schedules can be sorted by, as SQL (ties broken by id).
SCHEDULE_ORDER: Final = {
    "name": "LOWER(CASE WHEN name = '' THEN id ELSE name END)",
    "next": "CASE WHEN next_fire_at IS NULL THEN 1 ELSE 0 END, next_fire_at",
    "task": "task",
    "created": "created_at",
    "status": "status",
}


class DashboardSql(SqlHooks):
    """Counts, activity buckets and the newest runs of many schedules at once."""

    #: How ``run_activity`` (named SQL) measures: its bucket width in ``_bucket_unit``
    #: per second, its durations in ``_duration_unit`` seconds. PostgreSQL overrides these.
    _bucket_unit: int = 1_000_000
    _duration_unit: float = 1e-6

    @abstractmethod
    def _schedule(self, row: Sequence[Any]) -> Schedule: ...

    @abstractmethod
    def _filter_where(self, filters: ScheduleFilter) -> tuple[str, list[Any]]:
        """The WHERE clause (``""`` for none) and parameters of ``filters``."""

    def schedule_page(
        self,
        filters: ScheduleFilter = ALL_SCHEDULES,
        *,
        sort: str = "name",
        descending: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[Schedule], int]:
        """One page of the schedules matching the filters, in ``sort`` order, and how many
        match in all: the database sorts and counts, so a page reads only its rows."""
        where, params = self._filter_where(filters)
        order = SCHEDULE_ORDER.get(sort, SCHEDULE_ORDER["name"])
        direction = " DESC" if descending else ""
        order_sql = ", ".join(f"{part.strip()}{direction}" for part in order.split(","))
        count = fill(self._sql("count_schedules_where"), where=where)
        page = fill(self._sql("schedule_page"), where=where, order=f"{order_sql}, id{direction}")
        with self._read(snapshot=True) as tx:
            total = int(tx.execute(count, params)[0][0])
            rows = tx.execute(page, [*params, max(0, int(limit)), max(0, int(offset))])
        return [self._schedule(r) for r in rows], total

    def schedule_ids(self, filters: ScheduleFilter = ALL_SCHEDULES) -> list[str]:
        """The ids of every schedule matching the filters (a bulk action's targets)."""
        where, params = self._filter_where(filters)
        with self._read(snapshot=True) as tx:
            rows = tx.execute(fill(self._sql("schedule_ids_where"), where=where), params)
        return [str(r[0]) for r in rows]

    def count_schedules(self, owner: str | None = None) -> dict[str, int]:
        """Schedules per status (``active``, ``paused``, ``finished``), of ``owner`` if given."""
        if owner is None:
            with self._read(snapshot=True) as tx:
                return indexed_schedule_counts(tx)
        with self._read(snapshot=True) as tx:
            rows = tx.execute(self._sql("owned_schedule_counts"), (owner,))
        counts = {"active": 0, "paused": 0, "finished": 0}
        counts.update({str(status): int(n) for status, n in rows})
        return counts

    def run_activity(
        self, since: datetime, bucket_seconds: int, owner: str | None = None
    ) -> list[tuple[int, str, int, float | None, float | None]]:
        """Runs scheduled at or after ``since``, grouped in buckets of ``bucket_seconds``
        and by status: ``(bucket, status, count, mean duration, max duration)``, where
        bucket k holds ``since + k * bucket_seconds`` to the next. Durations in seconds,
        of runs that started and finished."""
        start = self._ts(since)
        params: list[Any] = [start, int(bucket_seconds) * self._bucket_unit, start]
        sql = self._sql("run_activity")
        if owner is not None:
            sql = self._sql("owned_run_activity")
            params.extend(owned_params(owner, self.dialect))
        with self._read(snapshot=True) as tx:
            rows = tx.execute(sql, params)
        unit = self._duration_unit
        return [
            (
                int(bucket),
                str(status),
                int(n),
                None if mean is None else float(mean) * unit,
                None if top is None else float(top) * unit,
            )
            for bucket, status, n, mean, top in rows
            if status in RUN_STATUSES
        ]

    def recent_runs(
        self, schedule_ids: Sequence[str], per_schedule: int, owner: str | None = None
    ) -> dict[str, list[tuple[str, str, datetime]]]:
        """The newest ``per_schedule`` runs of each schedule (of ``owner``'s, if given:
        another's has none), oldest first, as ``(run id, status, scheduled_for)``: the
        strip of a list row."""
        ids = list(dict.fromkeys(schedule_ids))[:MAX_RECENT_SCHEDULES]
        out: dict[str, list[tuple[str, str, datetime]]] = {sid: [] for sid in ids}
        if not ids:
            return out
        # One index seek per schedule (runs_schedule), however long its history.
        one = self._sql(
            "recent_runs_of_schedule" if owner is None else "recent_owned_runs_of_schedule"
        )
        sql = union_all(one, len(ids))
        params: list[Any] = []
        for sid in ids:
            mine = () if owner is None else owned_params(owner, self.dialect)
            params += [sid, *mine, max(1, int(per_schedule))]
        with self._read(snapshot=True) as tx:
            rows = tx.execute(sql, params)
        for schedule_id, run_id, status, at in sorted(rows, key=lambda r: (r[3], r[1])):
            when = self._dt(at)
            assert when is not None
            out[str(schedule_id)].append((str(run_id), str(status), when))
        return out
