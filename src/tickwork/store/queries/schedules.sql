-- Schedules as stored (see store/schedules.py).

-- name: schedule_version_locked
-- A schedule's version, its row locked until the change commits (PostgreSQL; SQLite's
-- write transaction holds the file). Parameters: the schedule id.
SELECT version FROM schedules WHERE id = ?

-- name: schedule_version_locked@postgres
SELECT version FROM schedules WHERE id = ? FOR UPDATE

-- name: schedule_locked
-- A schedule's row, locked until the change commits. Parameters: the schedule id.
SELECT {schedules} FROM schedules WHERE id = ?

-- name: schedule_locked@postgres
SELECT {schedules} FROM schedules WHERE id = ? FOR UPDATE

-- name: schedule_revision
-- A schedule's id and revision, the key of a decoded copy (see schedule_revisions).
-- Parameters: the schedule id.
SELECT id, revision FROM schedules WHERE id = ?

-- name: schedule_revisions_of
-- The ids and revisions of these schedules (the gets of one round trip, see
-- store/postgres_reads.py). Parameters: the ids (a list).
SELECT id, revision FROM schedules WHERE id IN (SELECT value FROM json_each(?))

-- name: schedule_revisions_of@postgres
SELECT id, revision FROM schedules WHERE id = ANY(?::text[])

-- name: schedule_revised
-- A schedule's row, then its revision. Parameters: the schedule id.
SELECT {schedules}, revision FROM schedules WHERE id = ?

-- name: insert_schedule
-- A new schedule row with its first revision. Parameters: SCHEDULE_COLUMNS, revision.
INSERT INTO schedules ({schedules}, revision) VALUES ({schedule_values}, ?)

-- name: update_schedule
-- A schedule's settings changed (every column but those kept on update: the slot
-- {assignments}). Parameters: the new values, the schedule id.
UPDATE schedules SET {assignments}, revision = revision + 1, version = version + 1
WHERE id = ? RETURNING {schedules}

-- name: schedule_by_id
-- Parameters: the schedule id.
SELECT {schedules} FROM schedules WHERE id = ?

-- name: list_schedules
-- Schedules matching the filters (slot {where}) in id order. Parameters: those of
-- the conditions.
SELECT {schedules} FROM schedules{where} ORDER BY id

-- name: list_schedules_page
-- list_schedules, at most LIMIT. Parameters: those of the conditions, the limit.
SELECT {schedules} FROM schedules{where} ORDER BY id LIMIT ?

-- name: upcoming_schedules
-- Active schedules by next fire (index schedules_due). Parameters: the limit.
SELECT {schedules} FROM schedules WHERE status = 'active' AND next_fire_at IS NOT NULL
ORDER BY next_fire_at, id LIMIT ?

-- name: upcoming_schedules_after
-- upcoming_schedules after a given (next fire, id). Parameters: next fire twice, id,
-- the limit.
SELECT {schedules} FROM schedules WHERE status = 'active' AND next_fire_at IS NOT NULL
  AND (next_fire_at > ? OR (next_fire_at = ? AND id > ?))
ORDER BY next_fire_at, id LIMIT ?

-- name: cancel_waiting_runs_of_schedule
-- A deleted schedule's waiting runs. Parameters: finished at, the schedule id.
UPDATE runs SET status = 'cancelled', finished_at = ?, lease_until = NULL,
  cancel_requested = TRUE, error = 'schedule deleted'
WHERE schedule_id = ? AND status IN ('pending', 'retrying') RETURNING {runs}

-- name: ask_running_runs_of_schedule_to_cancel
-- Parameters: the schedule id.
UPDATE runs SET cancel_requested = TRUE WHERE schedule_id = ? AND status = 'running'

-- name: delete_schedule
-- Parameters: the schedule id.
DELETE FROM schedules WHERE id = ?

-- name: record_deleted_schedule
-- Whose the schedule was, kept for its runs (see codec._OWNED). Parameters: the deletion
-- time, the schedule id.
INSERT INTO deleted_schedules (schedule_id, owner, deleted_at)
SELECT id, owner, ? FROM schedules WHERE id = ?

-- name: schedules_to_pause
-- Schedules not paused, locked until the pause commits. No parameters.
SELECT {schedules} FROM schedules WHERE paused = FALSE ORDER BY id

-- name: schedules_to_pause@postgres
SELECT {schedules} FROM schedules WHERE paused = FALSE ORDER BY id FOR UPDATE

-- name: schedules_to_resume
-- Paused schedules (by the flag, or by the engine without it), locked. No parameters.
SELECT {schedules} FROM schedules WHERE (paused = TRUE OR status = 'paused') ORDER BY id

-- name: schedules_to_resume@postgres
SELECT {schedules} FROM schedules WHERE (paused = TRUE OR status = 'paused') ORDER BY id
FOR UPDATE

-- name: listed_schedules_to_pause
-- schedules_to_pause among these ids. Parameters: the ids (a list).
SELECT {schedules} FROM schedules WHERE paused = FALSE
  AND id IN (SELECT value FROM json_each(?)) ORDER BY id

-- name: listed_schedules_to_pause@postgres
SELECT {schedules} FROM schedules WHERE paused = FALSE AND id = ANY(?::text[]) ORDER BY id
FOR UPDATE

-- name: listed_schedules_to_resume
-- schedules_to_resume among these ids. Parameters: the ids (a list).
SELECT {schedules} FROM schedules WHERE (paused = TRUE OR status = 'paused')
  AND id IN (SELECT value FROM json_each(?)) ORDER BY id

-- name: listed_schedules_to_resume@postgres
SELECT {schedules} FROM schedules WHERE (paused = TRUE OR status = 'paused')
  AND id = ANY(?::text[]) ORDER BY id FOR UPDATE

-- name: store_paused
-- Parameters: paused, paused at, status, next fire, updated at, the id.
UPDATE schedules SET paused = ?, paused_at = ?, status = ?, next_fire_at = ?,
  updated_at = ?, revision = revision + 1, version = version + 1
WHERE id = ?

-- name: schedule_rows_with_revision
-- Rows (SCHEDULE_COLUMNS, revision) of these schedules. Parameters: the ids (a list).
SELECT {schedules}, revision FROM schedules WHERE id IN (SELECT value FROM json_each(?))

-- name: schedule_rows_with_revision@postgres
SELECT {schedules}, revision FROM schedules WHERE id = ANY(?::text[])

-- name: pause_unreadable_schedules
-- Schedules whose row cannot be read, paused so they stop being due. Parameters: the
-- ids (a list).
UPDATE schedules SET status = 'paused', revision = revision + 1
WHERE id IN (SELECT value FROM json_each(?))

-- name: pause_unreadable_schedules@postgres
UPDATE schedules SET status = 'paused', revision = revision + 1 WHERE id = ANY(?::text[])

-- name: schedule_revisions_where
-- (id, revision) of the schedules matching the filters (slot {where}) in id order.
-- Parameters: those of the conditions.
SELECT id, revision FROM schedules{where} ORDER BY id

-- name: schedule_revisions_page
-- schedule_revisions_where, at most LIMIT. Parameters: those of the conditions, limit.
SELECT id, revision FROM schedules{where} ORDER BY id LIMIT ?
