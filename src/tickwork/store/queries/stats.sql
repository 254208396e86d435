-- Statistics read from the partial indexes of finished runs (see store/sql_stats.py).
-- The conditions repeat the indexes' WHERE terms word for word: that is how SQLite
-- sees that a partial index applies. runs_final: the final statuses; runs_duration:
-- the statuses whose run executed, keyed by (task, finished_at - started_at). On SQLite
-- (migration 0015) runs_final names its statuses by comparisons joined by OR and
-- runs_duration by a list of two and a comparison (an IN list of three or more costs
-- SQLite a temporary b-tree at each run a claim or an end changes); PostgreSQL's indexes
-- keep their IN lists, and so do its variants (@postgres).

-- name: task_status_counts
-- Runs per task and status, but skipped and missed, in task order (runs_final,
-- runs_waiting, runs_running). No parameters.
SELECT task, status, n FROM (
  SELECT r.task, r.status, COUNT(*) AS n FROM runs r
  WHERE (r.status = 'succeeded' OR r.status = 'failed' OR r.status = 'timed_out'
    OR r.status = 'lost' OR r.status = 'cancelled' OR r.status = 'skipped'
    OR r.status = 'missed')
    AND r.status NOT IN ('skipped', 'missed')
  GROUP BY r.status, r.task
  UNION ALL SELECT r.task, r.status, COUNT(*) AS n FROM runs r
  WHERE r.status IN ('pending', 'retrying') GROUP BY r.status, r.task
  UNION ALL SELECT r.task, r.status, COUNT(*) AS n FROM runs r
  WHERE r.status = 'running' GROUP BY r.status, r.task
) c ORDER BY task

-- name: task_status_counts@postgres
-- The statuses as PostgreSQL's index states them: an IN list.
SELECT task, status, n FROM (
  SELECT r.task, r.status, COUNT(*) AS n FROM runs r
  WHERE r.status IN ('succeeded', 'failed', 'timed_out', 'lost', 'cancelled', 'skipped', 'missed')
    AND r.status NOT IN ('skipped', 'missed')
  GROUP BY r.status, r.task
  UNION ALL SELECT r.task, r.status, COUNT(*) AS n FROM runs r
  WHERE r.status IN ('pending', 'retrying') GROUP BY r.status, r.task
  UNION ALL SELECT r.task, r.status, COUNT(*) AS n FROM runs r
  WHERE r.status = 'running' GROUP BY r.status, r.task
) c ORDER BY task

-- name: every_task_status_count
-- task_status_counts with skipped and missed. No parameters.
SELECT task, status, n FROM (
  SELECT r.task, r.status, COUNT(*) AS n FROM runs r
  WHERE (r.status = 'succeeded' OR r.status = 'failed' OR r.status = 'timed_out'
    OR r.status = 'lost' OR r.status = 'cancelled' OR r.status = 'skipped'
    OR r.status = 'missed')
  GROUP BY r.status, r.task
  UNION ALL SELECT r.task, r.status, COUNT(*) AS n FROM runs r
  WHERE r.status IN ('pending', 'retrying') GROUP BY r.status, r.task
  UNION ALL SELECT r.task, r.status, COUNT(*) AS n FROM runs r
  WHERE r.status = 'running' GROUP BY r.status, r.task
) c ORDER BY task

-- name: every_task_status_count@postgres
-- The statuses as PostgreSQL's index states them: an IN list.
SELECT task, status, n FROM (
  SELECT r.task, r.status, COUNT(*) AS n FROM runs r
  WHERE r.status IN ('succeeded', 'failed', 'timed_out', 'lost', 'cancelled', 'skipped', 'missed')
  GROUP BY r.status, r.task
  UNION ALL SELECT r.task, r.status, COUNT(*) AS n FROM runs r
  WHERE r.status IN ('pending', 'retrying') GROUP BY r.status, r.task
  UNION ALL SELECT r.task, r.status, COUNT(*) AS n FROM runs r
  WHERE r.status = 'running' GROUP BY r.status, r.task
) c ORDER BY task

-- name: untimed_runs
-- A task's executed runs without a duration. Parameters: the task.
SELECT COUNT(*) FROM runs r
WHERE r.task = ? AND (r.status IN ('succeeded', 'failed') OR r.status = 'timed_out')
  AND (r.finished_at - r.started_at) IS NULL

-- name: untimed_runs@postgres
-- The statuses as PostgreSQL's index states them: an IN list.
SELECT COUNT(*) FROM runs r WHERE r.task = ? AND r.status IN ('succeeded', 'failed', 'timed_out')
  AND (r.finished_at - r.started_at) IS NULL

-- name: durations_from
-- Two durations of a task from an offset on, shortest first (runs_duration).
-- Parameters: the task, the offset.
SELECT r.finished_at - r.started_at FROM runs r
WHERE r.task = ? AND (r.status IN ('succeeded', 'failed') OR r.status = 'timed_out')
  AND (r.finished_at - r.started_at) IS NOT NULL
ORDER BY r.finished_at - r.started_at LIMIT 2 OFFSET ?

-- name: durations_from@postgres
-- The statuses as PostgreSQL's index states them: an IN list.
SELECT r.finished_at - r.started_at FROM runs r
WHERE r.task = ? AND r.status IN ('succeeded', 'failed', 'timed_out')
  AND (r.finished_at - r.started_at) IS NOT NULL
ORDER BY r.finished_at - r.started_at LIMIT 2 OFFSET ?

-- name: durations_from_longest
-- durations_from, longest first.
SELECT r.finished_at - r.started_at FROM runs r
WHERE r.task = ? AND (r.status IN ('succeeded', 'failed') OR r.status = 'timed_out')
  AND (r.finished_at - r.started_at) IS NOT NULL
ORDER BY r.finished_at - r.started_at DESC LIMIT 2 OFFSET ?

-- name: durations_from_longest@postgres
-- The statuses as PostgreSQL's index states them: an IN list.
SELECT r.finished_at - r.started_at FROM runs r
WHERE r.task = ? AND r.status IN ('succeeded', 'failed', 'timed_out')
  AND (r.finished_at - r.started_at) IS NOT NULL
ORDER BY r.finished_at - r.started_at DESC LIMIT 2 OFFSET ?

-- name: status_counts
-- Runs per status (runs_final, runs_waiting, runs_running). No parameters.
SELECT r.status, COUNT(*) FROM runs r
WHERE (r.status = 'succeeded' OR r.status = 'failed' OR r.status = 'timed_out'
    OR r.status = 'lost' OR r.status = 'cancelled' OR r.status = 'skipped'
    OR r.status = 'missed')
GROUP BY r.status
UNION ALL SELECT r.status, COUNT(*) FROM runs r
WHERE r.status IN ('pending', 'retrying') GROUP BY r.status
UNION ALL SELECT 'running', COUNT(*) FROM runs r WHERE r.status = 'running'

-- name: status_counts@postgres
-- The statuses as PostgreSQL's index states them: an IN list.
SELECT r.status, COUNT(*) FROM runs r
WHERE r.status IN ('succeeded', 'failed', 'timed_out', 'lost', 'cancelled', 'skipped', 'missed')
GROUP BY r.status
UNION ALL SELECT r.status, COUNT(*) FROM runs r
WHERE r.status IN ('pending', 'retrying') GROUP BY r.status
UNION ALL SELECT 'running', COUNT(*) FROM runs r WHERE r.status = 'running'

-- name: schedule_counts
-- Every schedule (the primary key's index), then the inactive ones per status
-- (schedules_inactive). No parameters.
SELECT 'all', COUNT(*) FROM schedules
UNION ALL SELECT status, COUNT(*) FROM schedules WHERE status <> 'active' GROUP BY status
