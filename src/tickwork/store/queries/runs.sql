-- Runs as users see them (see store/runs.py).

-- name: run_to_cancel
-- The run a cancel changes, locked on PostgreSQL. Parameters: the run id.
SELECT {runs} FROM runs WHERE id = ?

-- name: run_to_cancel@postgres
SELECT {runs} FROM runs WHERE id = ? FOR UPDATE
