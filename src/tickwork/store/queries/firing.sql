-- Firing: what a fire reads besides the schedules (see store/firing.py).

-- name: unfinished_runs
-- The runs of the fired schedules that are not over (pending, running, retrying),
-- oldest first: what the overlap policy counts. The statuses as runs_active states them
-- (migration 0014: the index serves only that form). Parameters: the schedule ids (a JSON
-- list).
SELECT {runs} FROM runs
WHERE schedule_id IN (SELECT value FROM json_each(?))
  AND (status IN ('pending', 'running') OR status = 'retrying')
ORDER BY scheduled_for, id

-- name: unfinished_runs@postgres
SELECT {runs} FROM runs
WHERE schedule_id = ANY(?::text[]) AND status IN ('pending', 'running', 'retrying')
ORDER BY scheduled_for, id

-- name: due_schedules
-- (id, revision) of the active schedules due by now, earliest first, at most LIMIT:
-- what reading ahead decodes. Parameters: now, limit.
SELECT id, revision FROM schedules WHERE status = 'active' AND next_fire_at <= ?
ORDER BY next_fire_at, id LIMIT ?

-- name: due_schedules_locked
-- The same, for the fire: locked for its transaction. SQLite's write transaction
-- already holds the whole file.
SELECT id, revision FROM schedules WHERE status = 'active' AND next_fire_at <= ?
ORDER BY next_fire_at, id LIMIT ?

-- name: due_schedules_locked@postgres
-- Schedules another node is firing are skipped: it fires them.
SELECT id, revision FROM schedules WHERE status = 'active' AND next_fire_at <= ?
ORDER BY next_fire_at, id LIMIT ? FOR UPDATE SKIP LOCKED

-- name: next_wakeup
-- The earliest next fire of an active schedule and the earliest due time of a waiting
-- run (each one index seek). No parameters.
SELECT (SELECT next_fire_at FROM schedules WHERE status = 'active'
    AND next_fire_at IS NOT NULL ORDER BY next_fire_at LIMIT 1),
  (SELECT due_at FROM runs WHERE status IN ('pending', 'retrying') ORDER BY due_at LIMIT 1)

-- name: count_due
-- Active schedules due by a time, counted up to a limit. Parameters: the time, limit.
SELECT COUNT(*) FROM (SELECT 1 FROM schedules WHERE status = 'active'
  AND next_fire_at <= ? LIMIT ?) AS due
