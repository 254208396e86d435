"""Run statistics over all runs read from two partial indexes, not from the runs.

``tickwork stats`` over every run kept (no ``since``, no owner) counts runs per task and
status and takes p50/p95 durations. Reading each run for that costs seconds at a million
runs. Instead (migration ``0008_run_stats``):

- ``runs_final (status, task)`` over runs in a final status: the counts are index-only;
  the few unfinished runs are counted through ``runs_waiting`` and ``runs_running``.
- ``runs_duration (task, finished_at - started_at)`` over runs that executed: each
  percentile is one indexed ``ORDER BY ... LIMIT 2 OFFSET k`` per task, walked from the
  nearer end, and interpolated exactly as over the sorted durations.

Both indexes take a row only when its run ends, so the engine's writes of pending and
running runs do not touch them. ``indexed_run_stats`` counts once for both the per-task
figures and the runs per status (``Store.run_stats``: what ``tickwork stats`` shows), as
counting a million index entries is most of that command's database time.

Schedules per status are counted the same way (migration ``0011_schedule_counts``):
all of them from the primary key's index, the paused and finished ones from
``schedules_inactive``, the active ones as the difference.

The statements are named SQL (``queries/stats.sql``); their texts repeat the indexes'
``WHERE`` terms word for word: that is how SQLite sees that a partial index applies. On
SQLite the indexes name their statuses by comparisons and lists of two joined by OR
(migration ``0015``: an ``IN`` list of three or more costs SQLite a temporary b-tree at
each run a claim or an end changes), on PostgreSQL by ``IN`` lists; each database runs
its own text (``sql``, the store's lookup of its dialect's statements).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from tickwork.models import RUN_STATUSES, TaskStats
from tickwork.store.named_sql import all_queries

if TYPE_CHECKING:
    from tickwork.store.sql import Tx

#: The ``WHERE`` of SQLite's ``runs_final``: every final status (as the named statements
#: write it; PostgreSQL's index and statements name them in an ``IN`` list).
FINAL: Final = (
    "(r.status = 'succeeded' OR r.status = 'failed' OR r.status = 'timed_out'"
    " OR r.status = 'lost' OR r.status = 'cancelled' OR r.status = 'skipped'"
    " OR r.status = 'missed')"
)
#: The ``WHERE`` of SQLite's ``runs_duration``: the statuses whose run executed.
EXECUTED: Final = "(r.status IN ('succeeded', 'failed') OR r.status = 'timed_out')"
#: The key of ``runs_duration``: in integer microseconds (SQLite), an interval (PostgreSQL).
DURATION: Final = "r.finished_at - r.started_at"

#: Statuses a task's figures leave out: those runs never executed.
NOT_EXECUTED: Final = ("skipped", "missed")

#: The store's lookup of a named statement in its dialect (``SqlCore._sql``).
Sql = Callable[[str], str]

_SCHEDULE_COUNTS: Final = all_queries()["schedule_counts"]


def _nth(tx: Tx, sql: Sql, task: str, offset: int, descending: bool) -> list[Any]:
    """Two durations of ``task`` from ``offset`` on, in ascending or descending order."""
    rows = tx.execute(
        sql("durations_from_longest" if descending else "durations_from"), (task, offset)
    )
    return [row[0] for row in rows]


def indexed_percentile(
    tx: Tx, sql: Sql, task: str, n: int, q: float, seconds: Callable[[Any], float]
) -> float | None:
    """The ``q`` percentile of ``task``'s ``n`` durations: the two closest ranks read
    from the index, interpolated as ``percentile`` does over the sorted list."""
    if n <= 0:
        return None
    pos = q * (n - 1)
    lo = int(pos)
    hi = min(lo + 1, n - 1)
    if lo <= n - 1 - hi:
        got = _nth(tx, sql, task, lo, descending=False)
        low, high = got[0], got[-1] if hi > lo else got[0]
    else:
        got = _nth(tx, sql, task, n - 1 - hi, descending=True)
        high, low = got[0], got[-1] if hi > lo else got[0]
    a, b = seconds(low), seconds(high)
    return a + (b - a) * (pos - lo)


Counts = dict[str, dict[str, int]]
Durations = dict[str, tuple[float | None, float | None]]


def _by_task(rows: Any) -> Counts:
    counts: Counts = {}
    for task, status, n in rows:
        counts.setdefault(task, {})[status] = int(n)
    return counts


def _durations(tx: Tx, sql: Sql, counts: Counts, seconds: Callable[[Any], float]) -> Durations:
    """p50/p95 duration per task of ``counts``, from ``runs_duration``."""
    durations: Durations = {}
    for task, by_status in counts.items():
        executed = sum(by_status.get(s, 0) for s in ("succeeded", "failed", "timed_out"))
        if not executed:
            continue
        n = executed - int(tx.execute(sql("untimed_runs"), (task,))[0][0])
        if n > 0:
            durations[task] = (
                indexed_percentile(tx, sql, task, n, 0.5, seconds),
                indexed_percentile(tx, sql, task, n, 0.95, seconds),
            )
    return durations


def indexed_task_stats(
    tx: Tx, sql: Sql, seconds: Callable[[Any], float]
) -> tuple[Counts, Durations]:
    """Counts per task and status (but skipped and missed), in task order, and p50/p95
    duration per task: over all runs, from the indexes only."""
    counts = _by_task(tx.execute(sql("task_status_counts")))
    return counts, _durations(tx, sql, counts, seconds)


def indexed_run_stats(
    tx: Tx, sql: Sql, seconds: Callable[[Any], float], now: Any
) -> tuple[list[TaskStats], dict[str, int]]:
    """``indexed_task_stats`` as ``TaskStats`` and the runs per status (with
    ``backlog``: waiting and due by ``now``, a database instant), from one count."""
    every = _by_task(tx.execute(sql("every_task_status_count")))
    runs: dict[str, int] = dict.fromkeys(RUN_STATUSES, 0)
    counts: Counts = {}
    for task, by_status in every.items():
        for status, n in by_status.items():
            runs[status] += n
        executed = {k: v for k, v in by_status.items() if k not in NOT_EXECUTED}
        if executed:
            counts[task] = executed
    runs["backlog"] = int(tx.execute(sql("backlog"), (now,))[0][0])
    return task_stats_of(counts, _durations(tx, sql, counts, seconds)), runs


def task_stats_of(counts: Counts, durations: Durations) -> list[TaskStats]:
    """The ``TaskStats`` of each task of ``counts`` (runs per status) and ``durations``."""
    return [
        TaskStats(
            task=task,
            runs=sum(by_status.values()),
            succeeded=by_status.get("succeeded", 0),
            failed=by_status.get("failed", 0),
            timed_out=by_status.get("timed_out", 0),
            lost=by_status.get("lost", 0),
            cancelled=by_status.get("cancelled", 0),
            p50_duration=durations.get(task, (None, None))[0],
            p95_duration=durations.get(task, (None, None))[1],
        )
        for task, by_status in counts.items()
    ]


def indexed_status_counts(tx: Tx, sql: Sql) -> list[tuple[str, int]]:
    """Runs per status over all runs, from ``runs_final``, ``runs_waiting`` and
    ``runs_running``."""
    rows = tx.execute(sql("status_counts"))
    return [(status, int(n)) for status, n in rows]


def indexed_schedule_counts(tx: Tx) -> dict[str, int]:
    """Schedules per status (``active``, ``paused``, ``finished``), from two indexes:
    never a read of the schedules themselves, however many there are."""
    counts = {"active": 0, "paused": 0, "finished": 0}
    total = 0
    for status, n in tx.execute(_SCHEDULE_COUNTS):
        if status == "all":
            total = int(n)
        else:
            counts[str(status)] = int(n)
    counts["active"] = total - sum(counts.values())
    return counts
