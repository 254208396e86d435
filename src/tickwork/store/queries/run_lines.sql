-- A running attempt's log lines (see store/sql_run_lines.py).

-- name: insert_live_line
-- Parameters: run id, attempt, at, level, logger, message.
INSERT INTO run_live_logs (run_id, attempt, at, level, logger, message)
VALUES (?, ?, ?, ?, ?, ?)

-- name: delete_live_lines_stored
-- An ended attempt's live lines, once its final lines are stored. Parameters: run id,
-- attempt, run id, attempt.
DELETE FROM run_live_logs WHERE run_id = ? AND attempt = ? AND EXISTS
  (SELECT 1 FROM run_logs l WHERE l.run_id = ? AND l.attempt = ?)

-- name: attempts_over
-- The attempts of these runs that are no longer running. Parameters: run ids (a list).
SELECT run_id, number FROM attempts
WHERE run_id IN (SELECT value FROM json_each(?)) AND status <> 'running'

-- name: attempts_over@postgres
SELECT run_id, number FROM attempts WHERE run_id = ANY(?::text[]) AND status <> 'running'

-- name: delete_live_lines_of_deleted_runs
-- Live lines written before the cutoff whose run is gone. Parameters: the cutoff.
DELETE FROM run_live_logs WHERE at < ? AND NOT EXISTS
  (SELECT 1 FROM runs r WHERE r.id = run_live_logs.run_id)

-- name: live_lines
-- A run's live lines by attempt, in the order written. Parameters: the run id.
SELECT at, level, logger, message, attempt FROM run_live_logs
WHERE run_id = ? ORDER BY attempt, id
