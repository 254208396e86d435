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

-- name: schedule_revised
-- A schedule's row, then its revision. Parameters: the schedule id.
SELECT {schedules}, revision FROM schedules WHERE id = ?
