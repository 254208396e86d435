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
running runs do not touch them. The query texts repeat the indexes' ``WHERE`` terms
word for word: that is how SQLite sees that a partial index applies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from tickwork.store.sql import Tx

#: The ``WHERE`` of ``runs_final``: every final status.
FINAL: Final = (
    "r.status IN ('succeeded', 'failed', 'timed_out', 'lost', 'cancelled', 'skipped', 'missed')"
)
#: The ``WHERE`` of ``runs_duration``: the statuses whose run executed.
EXECUTED: Final = "r.status IN ('succeeded', 'failed', 'timed_out')"
#: The key of ``runs_duration``: in integer microseconds (SQLite), an interval (PostgreSQL).
DURATION: Final = "r.finished_at - r.started_at"

_COUNTS: Final = (
    "SELECT task, status, n FROM ("
    f"SELECT r.task, r.status, COUNT(*) AS n FROM runs r WHERE {FINAL}"
    " AND r.status NOT IN ('skipped', 'missed') GROUP BY r.status, r.task"
    " UNION ALL SELECT r.task, r.status, COUNT(*) AS n FROM runs r"
    " WHERE r.status IN ('pending', 'retrying') GROUP BY r.status, r.task"
    " UNION ALL SELECT r.task, r.status, COUNT(*) AS n FROM runs r"
    " WHERE r.status = 'running' GROUP BY r.status, r.task"
    ") c ORDER BY task"
)
_UNTIMED: Final = (
    f"SELECT COUNT(*) FROM runs r WHERE r.task = ? AND {EXECUTED} AND ({DURATION}) IS NULL"
)


def _nth(tx: Tx, task: str, offset: int, descending: bool) -> list[Any]:
    """Two durations of ``task`` from ``offset`` on, in ascending or descending order."""
    order = "DESC" if descending else ""
    rows = tx.execute(
        f"SELECT {DURATION} FROM runs r WHERE r.task = ? AND {EXECUTED}"
        f" AND ({DURATION}) IS NOT NULL ORDER BY {DURATION} {order} LIMIT 2 OFFSET ?",
        (task, offset),
    )
    return [row[0] for row in rows]


def indexed_percentile(
    tx: Tx, task: str, n: int, q: float, seconds: Callable[[Any], float]
) -> float | None:
    """The ``q`` percentile of ``task``'s ``n`` durations: the two closest ranks read
    from the index, interpolated as ``percentile`` does over the sorted list."""
    if n <= 0:
        return None
    pos = q * (n - 1)
    lo = int(pos)
    hi = min(lo + 1, n - 1)
    if lo <= n - 1 - hi:
        got = _nth(tx, task, lo, descending=False)
        low, high = got[0], got[-1] if hi > lo else got[0]
    else:
        got = _nth(tx, task, n - 1 - hi, descending=True)
        high, low = got[0], got[-1] if hi > lo else got[0]
    a, b = seconds(low), seconds(high)
    return a + (b - a) * (pos - lo)


def indexed_task_stats(
    tx: Tx, seconds: Callable[[Any], float]
) -> tuple[dict[str, dict[str, int]], dict[str, tuple[float | None, float | None]]]:
    """Counts per task and status (but skipped and missed), in task order, and p50/p95
    duration per task: over all runs, from the indexes only."""
    counts: dict[str, dict[str, int]] = {}
    for task, status, n in tx.execute(_COUNTS):
        counts.setdefault(task, {})[status] = int(n)
    durations: dict[str, tuple[float | None, float | None]] = {}
    for task, by_status in counts.items():
        executed = sum(by_status.get(s, 0) for s in ("succeeded", "failed", "timed_out"))
        if not executed:
            continue
        n = executed - int(tx.execute(_UNTIMED, (task,))[0][0])
        if n > 0:
            durations[task] = (
                indexed_percentile(tx, task, n, 0.5, seconds),
                indexed_percentile(tx, task, n, 0.95, seconds),
            )
    return counts, durations


def indexed_status_counts(tx: Tx) -> list[tuple[str, int]]:
    """Runs per status over all runs, from ``runs_final``, ``runs_waiting`` and
    ``runs_running``."""
    rows = tx.execute(
        f"SELECT r.status, COUNT(*) FROM runs r WHERE {FINAL} GROUP BY r.status"
        " UNION ALL SELECT r.status, COUNT(*) FROM runs r"
        " WHERE r.status IN ('pending', 'retrying') GROUP BY r.status"
        " UNION ALL SELECT 'running', COUNT(*) FROM runs r WHERE r.status = 'running'"
    )
    return [(status, int(n)) for status, n in rows]
