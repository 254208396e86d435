"""Leases and attempt ends: heartbeats that renew leases, attempts ended in
batches (with their logs and queue messages), and runs recovered when their lease
lapsed or their node died."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from tickwork.limits import (
    MAX_ERROR_CHARS,
    MAX_TRACEBACK_CHARS,
    clean_json,
    clean_text,
    cut_end,
    cut_start,
    needs_cleaning,
)
from tickwork.models import AttemptOutcome, RetryPolicy, Run, RunStatus, record_maker
from tickwork.store.base import FinishItem, Heartbeat, RetryPlanner
from tickwork.store.codec import (
    _FAILED_STATUSES,
    _R,
    RunAt,
    _aware,
    _utc_logs,
    dumps,
    utc,
)
from tickwork.store.dialect import SqlCore, Tx

#: The result columns of ``runs_to_end_brief``.
_BRIEF: Final = (
    "id, schedule_id, task, scheduled_for, status, attempt, due_at, started_at, node,"
    " result_queue, error_queue"
)
#: A ``brief`` result of ``finish_attempts``: the run's identity and what its end
#: wrote; the other fields at their defaults (``data`` empty, ``result`` None, no
#: attempts nor logs, ``retry`` one shared default policy: records are frozen).
BRIEF_FIELDS: Final = (
    "id",
    "schedule_id",
    "task",
    "scheduled_for",
    "status",
    "attempt",
    "due_at",
    "started_at",
    "finished_at",
    "error",
    "traceback",
    "node",
    "retry",
)
_brief_run = record_maker(Run, BRIEF_FIELDS)
_DEFAULT_RETRY: Final = RetryPolicy()


class AttemptEnds(SqlCore):
    """What happens to a running run: renewed, ended, or recovered."""

    def heartbeat(
        self,
        node_id: str,
        now: datetime,
        lease_until: datetime,
        run_ids: Collection[str],
        stuck_threads: int = 0,
        stuck_coroutines: int = 0,
    ) -> Heartbeat:
        ids = list(run_ids)
        with self._write() as tx:
            # A node taken for dead (and its runs taken over) that beats again is back.
            tx.execute(
                self._sql("node_beats"),
                (self._ts(_aware(now)), stuck_threads, stuck_coroutines, node_id),
            )
            held: list[tuple[Any, ...]] = []
            if ids:
                held = tx.execute(
                    self._sql("renew_leases"),
                    (self._ts(_aware(lease_until)), self._list(ids), node_id),
                )
        kept = {rid for rid, _ in held}
        return Heartbeat(
            lost=frozenset(set(ids) - kept),
            cancel_requested=frozenset(rid for rid, flag in held if flag),
        )

    def finish_attempts(
        self,
        items: Sequence[FinishItem],
        now: datetime,
        *,
        attempts: bool = True,
        brief: bool = False,
    ) -> list[Run | None]:
        now = _aware(now)
        with self._write() as tx:
            return self._finish_batch(tx, items, now, attempts, brief)

    def _finish_batch(
        self,
        tx: Tx,
        items: Sequence[FinishItem],
        now: datetime,
        attempts: bool = True,
        brief: bool = False,
    ) -> list[Run | None]:
        """Attempt ends in a few statements for the whole batch, not a few per end; the
        runs' attempts read after them unless ``attempts`` is False or ``brief``.

        The runs are read (and, on PostgreSQL, locked) first; an end is written only
        where its run is still ``running`` with that attempt on that node, as
        ``finish_attempts`` guards each. A run named twice counts once (the first).
        ``brief``: only the columns an end reads and writes back are read, with the
        schedules' outcome queues (no lookup of them after), and the results are
        ``_brief_run`` records.
        """
        if not items:
            return []
        ids = self._list(sorted({item[0] for item in items}))
        if brief:
            found = self._rows(tx, self._sql("runs_to_end_brief"), (ids,), _BRIEF)
            at_status, at_attempt, at_due, at_started, at_node = 4, 5, 6, 7, 8
        else:
            found = self._rows(tx, self._sql("runs_to_end"), (ids,), _R)
            at_status, at_attempt, at_due = RunAt.status, RunAt.attempt, RunAt.due_at
            at_started, at_node = RunAt.started_at, RunAt.node
        current = {row[0]: row for row in found}
        ts = self._ts
        t_now = ts(now)
        held: list[tuple[int, Sequence[Any], tuple[Any, ...], AttemptOutcome, Any]] = []
        run_updates: list[tuple[Any, ...]] = []
        attempt_updates: list[tuple[Any, ...]] = []
        logs: list[tuple[Any, ...]] = []
        seen: set[str] = set()
        for index, (run_id, node_id, attempt, outcome) in enumerate(items):
            row = current.get(run_id)
            if (
                row is None
                or run_id in seen
                or row[at_status] != "running"
                or row[at_node] != node_id
                or row[at_attempt] != attempt
            ):
                continue
            seen.add(run_id)
            retrying = outcome.retry_at is not None
            t_end = t_now if outcome.finished_at is None else ts(_aware(outcome.finished_at))
            result = outcome.result
            result_text = None
            if not retrying and result is not None:
                result_text = dumps(result, "result")
                if needs_cleaning(result_text):  # stored alike on every database
                    result = clean_json(result)
                    result_text = dumps(result, "result")
            error = cut_end(outcome.error, MAX_ERROR_CHARS)
            trace = cut_start(outcome.traceback, MAX_TRACEBACK_CHARS)
            # The columns of _FINISHED_RUN_COLUMNS, then the run id.
            update = (
                "retrying" if retrying else outcome.status,
                row[at_attempt],
                ts(utc(outcome.retry_at)) if retrying else row[at_due],
                row[at_started],
                None if retrying else t_end,
                result_text,
                error,
                trace,
                run_id,
            )
            run_updates.append(update)
            attempt_updates.append((outcome.status, t_end, error, trace, run_id, attempt))
            if outcome.logs:
                logs.extend(
                    (
                        run_id,
                        log.attempt,
                        ts(_aware(log.at)),
                        log.level,
                        clean_text(log.logger),
                        clean_text(log.message),
                    )
                    for log in outcome.logs
                )
            held.append((index, row, update, outcome, result))
        results: list[Run | None] = [None] * len(items)
        if not held:
            return results
        self._update_rows(tx, "store_run_ends", run_updates)
        self._update_rows(tx, "store_attempt_ends", attempt_updates)
        if logs:
            tx.executemany(self._sql("insert_final_log_line"), logs)
        finished: list[tuple[Run, Any]] = []
        queues: dict[str, tuple[str | None, str | None]] | None = None
        if brief:
            queues = {}
            dt = self._dt
            for index, row, update, _, result in held:
                run = _brief_run(
                    (
                        row[0],
                        row[1],
                        row[2],
                        dt(row[3]),
                        update[0],
                        update[1],
                        dt(update[2]),
                        dt(update[3]),
                        dt(update[4]),
                        update[6],
                        update[7],
                        row[8],
                        _DEFAULT_RETRY,
                    )
                )
                results[index] = run
                if run.status != "retrying":
                    finished.append((run, result))
                if row[9] is not None or row[10] is not None:
                    queues[row[1]] = (row[9], row[10])
        else:
            of = self._attempts_of(tx, [row[0] for _, row, _, _, _ in held]) if attempts else {}
            for index, row, update, outcome, result in held:
                values = list(row)
                values[RunAt.status : RunAt.traceback + 1] = update[:-1]
                values[RunAt.lease_until] = None
                run = self._run(values, of.get(row[0], ()))
                if outcome.logs:
                    run = run.replace(logs=_utc_logs(outcome.logs))
                results[index] = run
                if run.status != "retrying":
                    finished.append((run, result))
        self._enqueue_outcomes(tx, finished, now, queues)
        if len(finished) < len(held):
            self._notify_tx(tx)  # retries are due later: wake whoever will claim them
        return results

    def _enqueue_outcomes(
        self,
        tx: Tx,
        finished: Sequence[tuple[Run, Any]],
        now: datetime,
        queues: Mapping[str, tuple[str | None, str | None]] | None = None,
    ) -> None:
        """Put finished runs (with their results) on their schedules' result or error
        queues, where the schedule has one: one lookup (unless ``queues``, the
        schedules that have one with their result and error queues, is given) and one
        insert for the lot."""
        if queues is not None and not queues:
            return  # no schedule of these runs has a queue
        ended = [
            (run, result)
            for run, result in finished
            if run.schedule_id is not None and run.status in ("succeeded", *_FAILED_STATUSES)
        ]
        if not ended:
            return
        if queues is None:
            ids = self._list(sorted({run.schedule_id for run, _ in ended if run.schedule_id}))
            queues = {
                sid: (result_queue, error_queue)
                for sid, result_queue, error_queue in tx.execute(
                    self._sql("outcome_queues"), (ids,)
                )
            }
        if not queues:
            return
        rows: list[tuple[Any, ...]] = []
        t_now = self._ts(now)
        for run, result in ended:
            names = queues.get(run.schedule_id or "")
            if names is None:
                continue
            success = run.status == "succeeded"
            queue = names[0] if success else names[1]
            if queue is None:
                continue
            payload: dict[str, Any] = {
                "run_id": run.id,
                "schedule_id": run.schedule_id,
                "task": run.task,
                "scheduled_for": run.scheduled_for.isoformat(),
                "status": run.status,
                "attempt": run.attempt,
                "result": result if success else None,
            }
            if not success:
                payload["error"] = run.error
            rows.append(
                (
                    queue,
                    run.id,
                    run.schedule_id,
                    "result" if success else "error",
                    dumps(payload, "result"),
                    t_now,
                )
            )
        if rows:
            tx.executemany(self._sql("insert_queue_message"), rows)

    def recover_lost(
        self, now: datetime, dead_nodes: Collection[str], retry: RetryPlanner
    ) -> list[Run]:
        now = _aware(now)
        t_now = self._ts(now)
        dead = set(dead_nodes)
        with self._write() as tx:
            if dead:
                # Dead nodes leave the list of nodes; one that beats again comes back.
                nodes = self._list(sorted(dead))
                tx.execute(self._sql("stop_dead_nodes"), (t_now, nodes))
                rows = tx.execute(self._sql("lapsed_or_orphaned_runs"), (t_now, nodes))
            else:
                rows = tx.execute(self._sql("lapsed_runs"), (t_now,))
            if not rows:
                return []
            runs = [self._run(r) for r in rows]
            run_updates: list[tuple[Any, ...]] = []
            attempt_updates: list[tuple[Any, ...]] = []
            final: list[Run] = []
            for run in runs:
                if run.node in dead:
                    why = f"attempt {run.attempt} lost: node {run.node} died"
                else:
                    lease = run.lease_until.isoformat() if run.lease_until else "?"
                    why = (
                        f"attempt {run.attempt} lost: the lease of node {run.node}"
                        f" lapsed at {lease}"
                    )
                retry_at = None
                if run.cancel_requested:
                    status: RunStatus = "cancelled"
                else:
                    retry_at = retry(run, now)
                    status = "lost" if retry_at is None else "retrying"
                run_updates.append(
                    (
                        status,
                        self._ts(utc(retry_at)),
                        None if retry_at is not None else t_now,
                        why,
                        run.id,
                    )
                )
                attempt_updates.append((t_now, why, run.id, run.attempt))
                if status == "lost":
                    final.append(run.replace(status="lost", error=why))
            tx.executemany(self._sql("lose_run"), run_updates)
            tx.executemany(self._sql("lose_attempt"), attempt_updates)
            self._enqueue_outcomes(tx, [(run, None) for run in final], now)
            self._notify_tx(tx)
            after = tx.execute(self._sql("runs_by_ids"), (self._list([r.id for r in runs]),))
            return self._runs_with_attempts(tx, after)
