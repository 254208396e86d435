-- Attempt ends (see store/attempt_ends.py).

-- name: runs_to_end
-- The runs a batch of ends names, read (and on PostgreSQL locked) before the ends are
-- written where each still holds its attempt. Parameters: the run ids (a JSON list).
SELECT {runs} FROM runs WHERE id IN (SELECT value FROM json_each(?))

-- name: runs_to_end@postgres
SELECT {runs} FROM runs WHERE id = ANY(?::text[]) FOR UPDATE

-- name: runs_to_end_brief
-- runs_to_end for brief results (see AttemptEnds._finish_batch): only what an end reads
-- and writes back, with the result and error queues of the run's schedule (NULL when
-- it has none), so no lookup of them follows.
-- Rows: (id, schedule_id, task, scheduled_for, status, attempt, due_at, started_at,
-- node, result_queue, error_queue). Parameters: the run ids (a JSON list).
SELECT r.id, r.schedule_id, r.task, r.scheduled_for, r.status, r.attempt, r.due_at,
  r.started_at, r.node, s.result_queue, s.error_queue
FROM runs r LEFT JOIN schedules s ON s.id = r.schedule_id
WHERE r.id IN (SELECT value FROM json_each(?))

-- name: runs_to_end_brief@postgres
-- The same, the runs locked (not their schedules).
SELECT r.id, r.schedule_id, r.task, r.scheduled_for, r.status, r.attempt, r.due_at,
  r.started_at, r.node, s.result_queue, s.error_queue
FROM runs r LEFT JOIN schedules s ON s.id = r.schedule_id
WHERE r.id = ANY(?::text[]) FOR UPDATE OF r

-- name: node_beats
-- A node's heartbeat; a node taken for dead that beats again is back.
-- Parameters: heartbeat at, stuck threads, stuck coroutines, node id.
UPDATE nodes SET heartbeat_at = ?, stopped_at = NULL, stuck_threads = ?, stuck_coroutines = ?
WHERE id = ?

-- name: renew_leases
-- The leases of these runs the node still holds, renewed. Rows: (id, cancel_requested).
-- Parameters: lease until, the run ids (a list), node id.
UPDATE runs SET lease_until = ?
WHERE id IN (SELECT value FROM json_each(?)) AND status = 'running' AND node = ?
RETURNING id, cancel_requested

-- name: renew_leases@postgres
UPDATE runs SET lease_until = ? WHERE id = ANY(?::text[]) AND status = 'running' AND node = ?
RETURNING id, cancel_requested

-- name: insert_final_log_line
-- Parameters: run id, attempt, at, level, logger, message.
INSERT INTO run_logs (run_id, attempt, at, level, logger, message) VALUES (?, ?, ?, ?, ?, ?)

-- name: outcome_queues
-- The result and error queues of these schedules, those that have one.
-- Parameters: the schedule ids (a list).
SELECT id, result_queue, error_queue FROM schedules
WHERE id IN (SELECT value FROM json_each(?))
  AND (result_queue IS NOT NULL OR error_queue IS NOT NULL)

-- name: outcome_queues@postgres
SELECT id, result_queue, error_queue FROM schedules
WHERE id = ANY(?::text[]) AND (result_queue IS NOT NULL OR error_queue IS NOT NULL)

-- name: insert_queue_message
-- Parameters: queue, run id, schedule id, kind, payload, created at.
INSERT INTO queue_messages (queue, run_id, schedule_id, kind, payload, created_at)
VALUES (?, ?, ?, ?, ?, ?)

-- name: stop_dead_nodes
-- Dead nodes leave the list of nodes (one that beats again comes back).
-- Parameters: stopped at, the node ids (a list).
UPDATE nodes SET stopped_at = ? WHERE id IN (SELECT value FROM json_each(?))
  AND stopped_at IS NULL

-- name: stop_dead_nodes@postgres
UPDATE nodes SET stopped_at = ? WHERE id = ANY(?::text[]) AND stopped_at IS NULL

-- name: lapsed_runs
-- Running runs whose lease lapsed. Parameters: now.
SELECT {runs} FROM runs WHERE status = 'running' AND lease_until < ? ORDER BY id

-- name: lapsed_runs@postgres
-- The same, locked; runs another leader is recovering are skipped.
SELECT {runs} FROM runs WHERE status = 'running' AND lease_until < ? ORDER BY id
FOR UPDATE SKIP LOCKED

-- name: lapsed_or_orphaned_runs
-- Running runs whose lease lapsed or whose node died. Parameters: now, the dead nodes
-- (a list).
SELECT {runs} FROM runs WHERE status = 'running'
  AND (lease_until < ? OR node IN (SELECT value FROM json_each(?))) ORDER BY id

-- name: lapsed_or_orphaned_runs@postgres
SELECT {runs} FROM runs WHERE status = 'running'
  AND (lease_until < ? OR node = ANY(?::text[])) ORDER BY id
FOR UPDATE SKIP LOCKED

-- name: lose_run
-- A run whose attempt was lost: retried, lost or cancelled. Parameters: status, due at
-- (NULL: unchanged), finished at, error, run id.
UPDATE runs SET status = ?, due_at = COALESCE(?, due_at), finished_at = ?, error = ?,
  lease_until = NULL
WHERE id = ?

-- name: lose_attempt
-- Parameters: finished at, error, run id, attempt number.
UPDATE attempts SET status = 'lost', finished_at = ?, error = ?
WHERE run_id = ? AND number = ? AND status = 'running'

-- name: runs_by_ids
-- These runs in id order. Parameters: the ids (a list).
SELECT {runs} FROM runs WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id

-- name: runs_by_ids@postgres
SELECT {runs} FROM runs WHERE id = ANY(?::text[]) ORDER BY id
