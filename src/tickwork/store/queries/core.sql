-- Statements several parts of the SQL store share (see store/dialect.py).
-- A list parameter is a JSON list on SQLite (json_each) and an array on PostgreSQL
-- (= ANY): each statement that takes one has a @postgres variant.

-- name: insert_runs
-- Run rows (RUN_COLUMNS order); a run whose (schedule_id, scheduled_for) is taken is
-- dropped. Parameters: one row's values.
INSERT INTO runs ({runs}) VALUES ({run_values}) ON CONFLICT DO NOTHING

-- name: runs_present
-- Which of these run ids are in the table. Parameters: the ids (a list).
SELECT id FROM runs WHERE id IN (SELECT value FROM json_each(?))

-- name: runs_present@postgres
SELECT id FROM runs WHERE id = ANY(?::text[])

-- name: insert_first_attempt
-- Attempt 1 of a run claimed as it is created. Parameters: run id, started at, node.
INSERT INTO attempts (run_id, number, status, started_at, node)
VALUES (?, 1, 'running', ?, ?)

-- name: attempts_of_runs
-- The attempts of these runs, by run and number. Parameters: the run ids (a list).
SELECT {attempts} FROM attempts WHERE run_id IN (SELECT value FROM json_each(?))
ORDER BY run_id, number

-- name: attempts_of_runs@postgres
SELECT {attempts} FROM attempts WHERE run_id = ANY(?::text[]) ORDER BY run_id, number

-- name: cancel_waiting_runs
-- Waiting runs among these cancelled. Parameters: finished at, error, the ids (a list).
UPDATE runs SET status = 'cancelled', finished_at = ?, lease_until = NULL,
  cancel_requested = TRUE, error = ?
WHERE id IN (SELECT value FROM json_each(?)) AND status IN ('pending', 'retrying')

-- name: cancel_waiting_runs@postgres
UPDATE runs SET status = 'cancelled', finished_at = ?, lease_until = NULL,
  cancel_requested = TRUE, error = ?
WHERE id = ANY(?::text[]) AND status IN ('pending', 'retrying')

-- name: ask_running_runs_to_cancel
-- Running runs among these asked to stop (their node cancels them). Parameters: the
-- ids (a list).
UPDATE runs SET cancel_requested = TRUE
WHERE id IN (SELECT value FROM json_each(?)) AND status = 'running'

-- name: ask_running_runs_to_cancel@postgres
UPDATE runs SET cancel_requested = TRUE WHERE id = ANY(?::text[]) AND status = 'running'

-- name: running_per_task
-- Running runs of each of these tasks. Parameters: the tasks (a list).
SELECT task, COUNT(*) AS n FROM runs
WHERE status = 'running' AND task IN (SELECT value FROM json_each(?)) GROUP BY task

-- name: running_per_task@postgres
SELECT task, COUNT(*) AS n FROM runs
WHERE status = 'running' AND task = ANY(?::text[]) GROUP BY task

-- name: running_per_schedule
-- Running runs of each of these schedules. Parameters: the schedule ids (a list).
SELECT schedule_id, COUNT(*) AS n FROM runs
WHERE status = 'running' AND schedule_id IN (SELECT value FROM json_each(?))
GROUP BY schedule_id

-- name: running_per_schedule@postgres
SELECT schedule_id, COUNT(*) AS n FROM runs
WHERE status = 'running' AND schedule_id = ANY(?::text[]) GROUP BY schedule_id

-- name: store_run_ends
-- A run's outcome written (the columns of _FINISHED_RUN_COLUMNS), its lease let go.
-- Parameters: those columns' values, the run id.
UPDATE runs SET {finished_run_sets}, lease_until = NULL WHERE id = ?

-- name: store_run_ends@sqlite
-- The same for many runs in one statement: the slot {values} holds n rows of the same
-- parameters.
UPDATE runs SET {u.finished_run_sets}, lease_until = NULL
FROM (VALUES {values}) AS u WHERE runs.id = {u.finished_run_key}

-- name: store_attempt_ends
-- An attempt's outcome. Parameters: status, finished at, error, traceback, run id,
-- number.
UPDATE attempts SET status = ?, finished_at = ?, error = ?, traceback = ?
WHERE run_id = ? AND number = ?

-- name: store_attempt_ends@sqlite
-- The same for many attempts in one statement (slot {values}: n rows).
UPDATE attempts SET status = u.column1, finished_at = u.column2, error = u.column3,
  traceback = u.column4
FROM (VALUES {values}) AS u WHERE attempts.run_id = u.column5 AND attempts.number = u.column6

-- name: store_fired
-- A fired schedule advanced. Parameters: next fire, last fire, execution count, status,
-- id.
UPDATE schedules SET next_fire_at = ?, last_fire_at = ?, execution_count = ?, status = ?,
  revision = revision + 1
WHERE id = ?

-- name: store_fired@sqlite
-- The same for many schedules in one statement (slot {values}: n rows).
UPDATE schedules SET next_fire_at = u.column1, last_fire_at = u.column2,
  execution_count = u.column3, status = u.column4, revision = revision + 1
FROM (VALUES {values}) AS u WHERE schedules.id = u.column5
