-- The dashboard's summaries (see store/sql_dashboard.py). Instants differ by dialect
-- (SQLite: integer microseconds, PostgreSQL: timestamptz), so the activity buckets
-- and durations have a variant each.

-- name: count_schedules_where
-- Schedules matching the filters' conditions (slot {where}). Parameters: those of the
-- conditions.
SELECT COUNT(*) FROM schedules{where}

-- name: schedule_page
-- A page of the schedules matching the filters, in the order of the slot {order}
-- (SCHEDULE_ORDER, then id). Parameters: those of the conditions, limit, offset.
SELECT {schedules} FROM schedules{where} ORDER BY {order} LIMIT ? OFFSET ?

-- name: schedule_ids_where
-- The ids of the schedules matching the filters. Parameters: those of the conditions.
SELECT id FROM schedules{where} ORDER BY id

-- name: owned_schedule_counts
-- Parameters: the owner.
SELECT status, COUNT(*) FROM schedules WHERE owner = ? GROUP BY status

-- name: run_activity
-- Runs scheduled from the start on, per bucket (the start subtracted, over the width in
-- microseconds) and status, with the mean and longest duration (microseconds).
-- Parameters: start, width, start.
SELECT (r.scheduled_for - ?) / ? AS bucket, r.status, COUNT(*),
  AVG(r.finished_at - r.started_at), MAX(r.finished_at - r.started_at)
FROM runs r WHERE r.scheduled_for >= ?
GROUP BY bucket, r.status ORDER BY bucket

-- name: run_activity@postgres
-- The width in seconds, the durations in seconds.
SELECT CAST(FLOOR(EXTRACT(EPOCH FROM (r.scheduled_for - ?)) / ?) AS INTEGER) AS bucket,
  r.status, COUNT(*), AVG(EXTRACT(EPOCH FROM (r.finished_at - r.started_at))),
  MAX(EXTRACT(EPOCH FROM (r.finished_at - r.started_at)))
FROM runs r WHERE r.scheduled_for >= ?
GROUP BY bucket, r.status ORDER BY bucket

-- name: owned_run_activity
-- run_activity over one user's runs (see owned_runs). Parameters: start, width,
-- start, owned_params(user).
SELECT (r.scheduled_for - ?) / ? AS bucket, r.status, COUNT(*),
  AVG(r.finished_at - r.started_at), MAX(r.finished_at - r.started_at)
FROM runs r WHERE r.scheduled_for >= ?
  AND {r.owned}
GROUP BY bucket, r.status ORDER BY bucket

-- name: owned_run_activity@postgres
SELECT CAST(FLOOR(EXTRACT(EPOCH FROM (r.scheduled_for - ?)) / ?) AS INTEGER) AS bucket,
  r.status, COUNT(*), AVG(EXTRACT(EPOCH FROM (r.finished_at - r.started_at))),
  MAX(EXTRACT(EPOCH FROM (r.finished_at - r.started_at)))
FROM runs r WHERE r.scheduled_for >= ?
  AND {r.owned}
GROUP BY bucket, r.status ORDER BY bucket

-- name: recent_runs_of_schedule
-- The newest runs of one schedule (one seek of runs_schedule); a call joins one copy
-- per schedule with UNION ALL. Parameters: schedule id, limit.
SELECT * FROM (SELECT r.schedule_id, r.id, r.status, r.scheduled_for FROM runs r
  WHERE r.schedule_id = ? ORDER BY r.scheduled_for DESC, r.id DESC LIMIT ?) AS t

-- name: recent_owned_runs_of_schedule
-- The same, of one user's runs. Parameters: schedule id, owned_params(user), limit.
SELECT * FROM (SELECT r.schedule_id, r.id, r.status, r.scheduled_for FROM runs r
  WHERE r.schedule_id = ? AND {r.owned}
  ORDER BY r.scheduled_for DESC, r.id DESC LIMIT ?) AS t
