"""Runs, queues and stats: runs inserted by hand, cancelled, read and listed;
counts and task statistics; result and error queues; gauges; retention."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, Final

from tickwork.errors import ConflictError, NotFoundError, ValidationError
from tickwork.models import (
    ACTIVE_RUN_STATUSES,
    RUN_STATUSES,
    AuditEntry,
    LogRecord,
    QueueMessage,
    Run,
    RunStatus,
    TaskStats,
)
from tickwork.store.base import Gauges
from tickwork.store.codec import (
    RunAt,
    _aware,
    _utc_run,
    loads,
)
from tickwork.store.dialect import SqlCore, Tx
from tickwork.store.named_sql import all_of, fill
from tickwork.store.named_sql import where as named_where
from tickwork.store.owned_runs import owned, owned_message_params, owned_params
from tickwork.store.sql_stats import (
    indexed_run_stats,
    indexed_status_counts,
    indexed_task_stats,
    task_stats_of,
)

_DELETE_CHUNK: Final = 5000


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks, as PostgreSQL's ``percentile_cont``."""
    n = len(sorted_values)
    if n == 0:
        return None
    pos = q * (n - 1)
    lo = int(pos)
    hi = min(lo + 1, n - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


class Runs(SqlCore):
    """Runs as users and monitoring see them."""

    def insert_runs(self, runs: Sequence[Run], audit: AuditEntry | None = None) -> list[Run]:
        if not runs:
            return []
        rows = [self._run_row(r) for r in runs]
        with self._write() as tx:
            inserted = self._insert_run_rows(tx, rows)
            if audit is not None:
                ids = [r.id for r in runs if r.id in inserted]
                after = dict(audit.after) if isinstance(audit.after, dict) else {}
                self._audit_tx(tx, [dataclasses.replace(audit, after={**after, "runs": ids})])
            if inserted:
                self._notify_tx(tx)
        return [_utc_run(r) for r in runs if r.id in inserted]

    def cancel_run(self, run_id: str, now: datetime, audit: AuditEntry | None = None) -> Run:
        now = _aware(now)
        with self._write() as tx:
            rows = tx.execute(self._sql("run_to_cancel"), (run_id,))
            if not rows:
                raise NotFoundError("run", run_id)
            status = rows[0][RunAt.status]
            if status not in ACTIVE_RUN_STATUSES:
                raise ConflictError(f"run {run_id!r} is already over ({status})")
            before = self._run(rows[0])
            if before.status == "running" and before.cancel_requested:
                # Asked before and still stopping: the same answer, nothing written again
                # (no second audit entry for a cancel that changes nothing).
                return self._runs_with_attempts(tx, rows)[0]
            self._cancel_in_tx(tx, [run_id], now, "cancelled")
            self._notify_tx(tx)
            rows = tx.execute(self._sql("run_by_id"), (run_id,))
            run = self._runs_with_attempts(tx, rows)[0]
            if audit is not None:
                self._audit_tx(
                    tx,
                    [
                        dataclasses.replace(
                            audit,
                            before={"status": before.status},
                            after={"status": run.status, "cancel_requested": run.cancel_requested},
                        )
                    ],
                )
            return run

    def get_run(self, run_id: str, owner: str | None = None) -> Run | None:
        with self._read(snapshot=True) as tx:
            if owner is None:
                rows = tx.execute(self._sql("run_by_id"), (run_id,))
            else:
                rows = tx.execute(
                    self._sql("owned_run_by_id"), (run_id, *owned_params(owner, self.dialect))
                )
            if not rows:
                return None
            run = self._runs_with_attempts(tx, rows)[0]
            logs = tx.execute(self._sql("final_log_lines"), (run_id,))
            records = []
            for at, level, logger, message, attempt in logs:
                when = self._dt(at)
                assert when is not None
                records.append(LogRecord(when, level, logger, message, attempt))
            records = self._with_live_logs(tx, run_id, records)
        return run.replace(logs=tuple(records))

    def list_runs(
        self,
        *,
        schedule_id: str | None = None,
        task: str | None = None,
        status: RunStatus | Collection[RunStatus] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before_id: str | None = None,
        limit: int = 100,
        owner: str | None = None,
        before: tuple[datetime, str] | None = None,
    ) -> list[Run]:
        """Newest ``scheduled_for`` first (ties by id); ``since <= scheduled_for < until``."""
        where: list[str] = []
        params: list[Any] = []
        if owner is not None:
            where.append(owned(self.dialect))
            params.extend(owned_params(owner, self.dialect))
        if before is not None:
            where.append("(r.scheduled_for < ? OR (r.scheduled_for = ? AND r.id < ?))")
            t_before = self._ts(_aware(before[0]))
            params.extend([t_before, t_before, before[1]])
        if schedule_id is not None:
            where.append("r.schedule_id = ?")
            params.append(schedule_id)
        if task is not None:
            where.append("r.task = ?")
            params.append(task)
        if status is not None:
            statuses = [status] if isinstance(status, str) else sorted(status)
            unknown = set(statuses) - set(RUN_STATUSES)
            if unknown:
                raise ValidationError(f"unknown run status {sorted(unknown)}", field="status")
            # Inlined (they are checked above) so the partial indexes on status apply.
            where.append(f"r.status IN ({', '.join(repr(str(x)) for x in statuses)})")
        if since is not None:
            where.append("r.scheduled_for >= ?")
            params.append(self._ts(since))
        if until is not None:
            where.append("r.scheduled_for < ?")
            params.append(self._ts(until))
        if before_id is not None:
            where.append(
                "(r.scheduled_for < b.scheduled_for"
                " OR (r.scheduled_for = b.scheduled_for AND r.id < b.id))"
            )
        base = "list_runs"
        if before_id is not None:
            base = "list_runs_after_run"
            params.insert(0, before_id)
        sql = fill(self._sql(base), where=named_where(where))
        params.append(max(0, int(limit)))
        with self._read(snapshot=True) as tx:
            rows = tx.execute(sql, params)
            return self._runs_with_attempts(tx, rows)

    def active_runs(self, now: datetime) -> tuple[dict[str, int], dict[str, list[str]]]:
        # Each read is served by a partial index (runs_waiting, runs_running).
        with self._read(snapshot=True) as tx:
            waiting = tx.execute(self._sql("waiting_run_counts"), (self._ts(_aware(now)),))
            running = tx.execute(self._sql("running_runs_by_node"))
        counts = {"pending": 0, "running": len(running), "retrying": 0, "backlog": 0}
        for status, n, due in waiting:
            counts[status] = int(n)
            counts["backlog"] += int(due or 0)
        by_node: dict[str, list[str]] = {}
        for node, run_id in running:
            by_node.setdefault(node or "", []).append(run_id)
        return counts, by_node

    def count_runs(self, now: datetime, owner: str | None = None) -> dict[str, int]:
        t_now = self._ts(_aware(now))
        with self._read(snapshot=True) as tx:
            if owner is None:
                rows: Sequence[Sequence[Any]] = indexed_status_counts(tx, self._sql)
                backlog = tx.execute(self._sql("backlog"), (t_now,))
            else:
                rows = tx.execute(self._sql("owned_run_counts"), owned_params(owner, self.dialect))
                backlog = tx.execute(
                    self._sql("owned_backlog"), (t_now, *owned_params(owner, self.dialect))
                )
        counts: dict[str, int] = dict.fromkeys(RUN_STATUSES, 0)
        counts.update({status: int(n) for status, n in rows})
        counts["backlog"] = int(backlog[0][0])
        return counts

    def task_stats(
        self, since: datetime | None = None, owner: str | None = None
    ) -> list[TaskStats]:
        conditions: list[str] = []
        params: list[Any] = []
        if since is not None:
            conditions.append("r.scheduled_for >= ?")
            params.append(self._ts(since))
        if owner is not None:
            conditions.append(owned(self.dialect))
            params.extend(owned_params(owner, self.dialect))
        where = all_of(conditions)
        counts: dict[str, dict[str, int]] = {}
        with self._read(snapshot=True) as tx:
            if since is None and owner is None:
                counts, durations = indexed_task_stats(tx, self._sql, self._seconds)
            else:
                counts, durations = self._scanned_task_stats(tx, where, params)
        return task_stats_of(counts, durations)

    def run_stats(
        self, now: datetime, since: datetime | None = None, owner: str | None = None
    ) -> tuple[list[TaskStats], dict[str, int]]:
        if since is not None or owner is not None:
            return self.task_stats(since, owner), self.count_runs(now, owner)
        with self._read(snapshot=True) as tx:
            return indexed_run_stats(tx, self._sql, self._seconds, self._ts(_aware(now)))

    def _scanned_task_stats(
        self, tx: Tx, where: str, params: Sequence[Any]
    ) -> tuple[dict[str, dict[str, int]], dict[str, tuple[float | None, float | None]]]:
        """``indexed_task_stats`` over the runs matching ``where`` (alias ``r``): these
        are read (through the index on ``scheduled_for`` when ``since`` is given)."""
        counts: dict[str, dict[str, int]] = {}
        for task, status, n in tx.execute(
            fill(self._sql("scanned_task_counts"), where=where), params
        ):
            counts.setdefault(task, {})[status] = int(n)
        return counts, self._duration_percentiles(tx, where, params)

    def _duration_percentiles(
        self, tx: Tx, where: str, params: Sequence[Any]
    ) -> dict[str, tuple[float | None, float | None]]:
        """p50/p95 run duration per task over the runs matching ``where`` (alias ``r``)."""
        by_task: dict[str, list[float]] = defaultdict(list)
        rows = tx.execute(fill(self._sql("scanned_durations"), where=where), params)
        for task, started, finished in rows:
            s, f = self._dt(started), self._dt(finished)
            assert s is not None and f is not None
            by_task[task].append((f - s).total_seconds())
        out: dict[str, tuple[float | None, float | None]] = {}
        for task, values in by_task.items():
            values.sort()
            out[task] = (percentile(values, 0.5), percentile(values, 0.95))
        return out

    def read_queue(
        self,
        name: str,
        *,
        consume: bool = True,
        limit: int = 100,
        owner: str | None = None,
        after: int = 0,
    ) -> list[QueueMessage]:
        limit = max(0, int(limit))
        after = max(0, int(after))
        params: list[Any] = [name, after]
        if owner is not None:  # a message is whose its schedule was when it was written
            params.extend(owned_message_params(owner))
        params.append(limit)
        if consume:
            with self._write() as tx:
                consumed = "consume_queue" if owner is None else "consume_owned_queue"
                rows = tx.execute(self._sql(consumed), params)
        else:
            with self._read() as tx:
                peeked = "peek_queue" if owner is None else "peek_owned_queue"
                rows = tx.execute(self._sql(peeked), params)
        messages = []
        for mid, queue, run_id, schedule_id, kind, payload, created in sorted(rows):
            at = self._dt(created)
            assert at is not None
            messages.append(
                QueueMessage(int(mid), queue, run_id, schedule_id, kind, loads(payload), at)
            )
        return messages

    def gauges(self, now: datetime, alive_since: datetime) -> Gauges:
        with self._read() as tx:
            schedules = {str(k): int(n) for k, n in tx.execute(self._sql("gauge_schedules"))}
            # Each count matches a partial index's condition exactly, so it reads the index.
            running = int(tx.execute(self._sql("gauge_running"))[0][0])
            waiting = {str(k): int(n) for k, n in tx.execute(self._sql("gauge_waiting"))}
            oldest = tx.execute(self._sql("gauge_oldest_due"), (self._ts(now),))[0][0]
            fire = tx.execute(self._sql("gauge_oldest_due_fire"), (self._ts(now),))[0][0]
            fallback = (now - alive_since).total_seconds()
            nodes, threads, coroutines = self._nodes_gauge(tx, now, fallback)
        due, unfired = self._dt(oldest), self._dt(fire)
        return Gauges(
            schedules={k: schedules.get(k, 0) for k in ("active", "paused", "finished")},
            runs_active={
                "pending": waiting.get("pending", 0),
                "running": running,
                "retrying": waiting.get("retrying", 0),
            },
            oldest_due_age=max(0.0, (now - due).total_seconds()) if due is not None else 0.0,
            oldest_due_fire_age=(
                max(0.0, (now - unfired).total_seconds()) if unfired is not None else 0.0
            ),
            nodes=int(nodes),
            stuck_threads=int(threads),
            stuck_coroutines=int(coroutines),
        )

    def _nodes_gauge(self, tx: Tx, now: datetime, fallback: float) -> tuple[int, int, int]:
        """The nodes alive as of ``now`` (``fallback``: the lease of a node registered
        without one), and their stuck threads and coroutines."""
        nodes, threads, coroutines = tx.execute(
            self._sql("gauge_nodes"), (self._ts(now), fallback)
        )[0]
        return int(nodes), int(threads), int(coroutines)

    def overdue_fires(self, before: datetime) -> tuple[int, datetime | None]:
        with self._read() as tx:
            count, oldest = tx.execute(self._sql("overdue_fires"), (self._ts(_aware(before)),))[0]
        return int(count), self._dt(oldest)

    def delete_runs_before(self, cutoff: datetime) -> int:
        t_cut = self._ts(_aware(cutoff))
        total = 0
        while True:  # in chunks, so a big cleanup never holds the write lock for long
            with self._write() as tx:
                ids = [
                    r[0]
                    for r in tx.execute(
                        self._sql("runs_past_retention"), (t_cut, t_cut, _DELETE_CHUNK)
                    )
                ]
                if ids:
                    param = self._list(ids)
                    tx.execute(self._sql("delete_log_lines_of_runs"), (param,))
                    tx.execute(self._sql("delete_attempts_of_runs"), (param,))
                    tx.execute(self._sql("delete_runs"), (param,))
            total += len(ids)
            if len(ids) < _DELETE_CHUNK:
                break
        self.delete_live_logs_of_deleted_runs(t_cut)
        self.delete_events_before(cutoff)  # the event feed is kept as long as runs
        with self._write() as tx:  # and so are the audit log and idempotency keys
            self._delete_access_before(tx, t_cut)
            # and whose a deleted schedule was, while a run or an unread message of its
            # id is left
            tx.execute(self._sql("forget_deleted_schedules_left_nothing"))
        return total
