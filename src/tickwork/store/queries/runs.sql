-- Runs as users see them (see store/runs.py).

-- name: run_to_cancel
-- The run a cancel changes, locked on PostgreSQL. Parameters: the run id.
SELECT {runs} FROM runs WHERE id = ?

-- name: run_to_cancel@postgres
SELECT {runs} FROM runs WHERE id = ? FOR UPDATE

-- name: run_by_id
-- One run. Parameters: the run id.
SELECT {runs} FROM runs WHERE id = ?

-- name: owned_run_by_id
-- One run if it is one user's (see owned_runs). Parameters: the run id,
-- owned_params(user).
SELECT {r.runs} FROM runs r WHERE r.id = ? AND {r.owned}

-- name: final_log_lines
-- A run's log lines stored with its attempts' ends, in the order written.
-- Parameters: the run id.
SELECT at, level, logger, message, attempt FROM run_logs WHERE run_id = ? ORDER BY id

-- name: list_runs
-- Runs newest first: the filters' conditions (alias r) fill the slot {where}.
-- Parameters: those of the conditions, then the limit.
SELECT {r.runs} FROM runs r{where} ORDER BY r.scheduled_for DESC, r.id DESC LIMIT ?

-- name: list_runs_after_run
-- list_runs after a given run (alias b) in that order. Parameters: that run's id, those
-- of the conditions, then the limit.
SELECT {r.runs} FROM runs r JOIN runs b ON b.id = ?{where}
ORDER BY r.scheduled_for DESC, r.id DESC LIMIT ?

-- name: waiting_run_counts
-- Waiting runs per status, and how many of them are due (partial index runs_waiting).
-- Parameters: now.
SELECT status, COUNT(*), SUM(CASE WHEN due_at <= ? THEN 1 ELSE 0 END) FROM runs
WHERE status IN ('pending', 'retrying') GROUP BY status

-- name: running_runs_by_node
-- Every running run and its node (partial index runs_running). No parameters.
SELECT node, id FROM runs WHERE status = 'running'

-- name: owned_run_counts
-- Runs per status of one user's (see owned_runs). Parameters: owned_params(user).
SELECT status, COUNT(*) FROM runs r
WHERE {r.owned} GROUP BY status

-- name: backlog
-- Waiting runs due by now. Parameters: now.
SELECT COUNT(*) FROM runs r WHERE r.status IN ('pending', 'retrying') AND r.due_at <= ?

-- name: owned_backlog
-- The backlog of one user's runs. Parameters: now, owned_params(user).
SELECT COUNT(*) FROM runs r WHERE r.status IN ('pending', 'retrying') AND r.due_at <= ?
  AND {r.owned}

-- name: scanned_task_counts
-- Runs per task and status (but skipped and missed) read from the runs matching the
-- slot {where} (alias r). Parameters: those of the condition.
SELECT r.task, r.status, COUNT(*) FROM runs r
WHERE {where} AND r.status NOT IN ('skipped', 'missed')
GROUP BY r.task, r.status ORDER BY r.task

-- name: scanned_durations
-- Start and end of the runs that executed among those matching the slot {where}
-- (alias r); the statuses as SQLite's runs_duration states them (migration 0015: over
-- every run, the index serves). PostgreSQL runs scanned_duration_percentiles instead.
-- Parameters: those of the condition.
SELECT r.task, r.started_at, r.finished_at FROM runs r
WHERE {where} AND (r.status IN ('succeeded', 'failed') OR r.status = 'timed_out')
  AND r.started_at IS NOT NULL AND r.finished_at IS NOT NULL

-- name: consume_queue
-- Take (delete and return) the oldest messages of a queue after an id. Parameters: the
-- queue, the id (0: from the first), the limit.
DELETE FROM queue_messages WHERE id IN (
  SELECT id FROM queue_messages WHERE queue = ? AND id > ? ORDER BY id LIMIT ?)
RETURNING {queue_messages}

-- name: consume_queue@postgres
-- The same; messages another reader is taking are skipped, not waited for.
DELETE FROM queue_messages WHERE id IN (
  SELECT id FROM queue_messages WHERE queue = ? AND id > ? ORDER BY id LIMIT ?
  FOR UPDATE SKIP LOCKED)
RETURNING {queue_messages}

-- name: consume_owned_queue
-- consume_queue over one user's messages: a message is whose its schedule was when it
-- was written, as a run is whose its schedule was when it was made (owned_runs,
-- owned_messages; the message aliased r). Parameters: the queue, the id,
-- owned_message_params(user), the limit.
DELETE FROM queue_messages WHERE id IN (
  SELECT r.id FROM queue_messages r WHERE r.queue = ? AND r.id > ?
    AND {r.owned_message} ORDER BY r.id LIMIT ?)
RETURNING {queue_messages}

-- name: consume_owned_queue@postgres
DELETE FROM queue_messages WHERE id IN (
  SELECT r.id FROM queue_messages r WHERE r.queue = ? AND r.id > ?
    AND {r.owned_message} ORDER BY r.id LIMIT ?
  FOR UPDATE OF r SKIP LOCKED)
RETURNING {queue_messages}

-- name: peek_queue
-- The oldest messages of a queue after an id, left in it. Parameters: the queue, the id
-- (0: from the first), the limit.
SELECT {queue_messages} FROM queue_messages WHERE queue = ? AND id > ? ORDER BY id LIMIT ?

-- name: peek_owned_queue
-- peek_queue over one user's messages (see consume_owned_queue). Parameters: the
-- queue, the id, owned_message_params(user), the limit.
SELECT {queue_messages} FROM queue_messages r WHERE r.queue = ? AND r.id > ?
  AND {r.owned_message} ORDER BY r.id LIMIT ?

-- name: gauge_schedules
-- Schedules per status. No parameters.
SELECT status, COUNT(*) FROM schedules GROUP BY status

-- name: gauge_running
-- Running runs (partial index runs_running). No parameters.
SELECT COUNT(*) FROM runs WHERE status = 'running'

-- name: gauge_waiting
-- Waiting runs per status (partial index runs_waiting). No parameters.
SELECT status, COUNT(*) FROM runs WHERE status IN ('pending', 'retrying') GROUP BY status

-- name: gauge_oldest_due
-- The due time of the oldest waiting run due by now. Parameters: now.
SELECT MIN(due_at) FROM runs WHERE status IN ('pending', 'retrying') AND due_at <= ?

-- name: gauge_oldest_due_fire
-- The oldest fire time of an active schedule not fired by now (index on next_fire_at):
-- fires no node made. Parameters: now.
SELECT MIN(next_fire_at) FROM schedules WHERE status = 'active' AND next_fire_at <= ?

-- name: overdue_fires
-- Active schedules whose next fire is at or before a time, and the oldest such fire
-- (index on next_fire_at). Parameters: the time.
SELECT COUNT(*), MIN(next_fire_at) FROM schedules WHERE status = 'active' AND next_fire_at <= ?

-- name: gauge_nodes
-- Nodes alive (a heartbeat within their own lease: see silent_nodes), their stuck
-- threads and stuck coroutines. Parameters: now, the lease (seconds) of a node
-- registered without one.
SELECT COUNT(*), COALESCE(SUM(stuck_threads), 0), COALESCE(SUM(stuck_coroutines), 0)
FROM nodes WHERE stopped_at IS NULL
  AND heartbeat_at >= ? - CAST(COALESCE(lease_ttl, ?) * 1000000 AS INTEGER)

-- name: gauge_nodes@postgres
-- As gauge_nodes, less the nodes whose session lock no session holds (see
-- list_running_nodes@postgres): a killed node is not counted once its session ended.
-- Parameters: now, the lease (seconds) of a node registered without one.
SELECT COUNT(*), COALESCE(SUM(stuck_threads), 0), COALESCE(SUM(stuck_coroutines), 0)
FROM nodes WHERE stopped_at IS NULL
  AND heartbeat_at >= ?::timestamptz - COALESCE(lease_ttl, ?::double precision) * interval '1 second'
  AND NOT (lock_key IS NOT NULL AND lock_at > pg_postmaster_start_time() AND NOT EXISTS (
    SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.classid = ((nodes.lock_key >> 32) & 4294967295)::oid
      AND l.objid = (nodes.lock_key & 4294967295)::oid))

-- name: runs_past_retention
-- Up to LIMIT finished runs scheduled and finished before the cutoff. Parameters: the
-- cutoff twice, the limit.
SELECT id FROM runs WHERE scheduled_for < ? AND finished_at < ?
  AND status NOT IN ('pending', 'running', 'retrying') LIMIT ?

-- name: delete_log_lines_of_runs
-- Parameters: the run ids (a list).
DELETE FROM run_logs WHERE run_id IN (SELECT value FROM json_each(?))

-- name: delete_log_lines_of_runs@postgres
DELETE FROM run_logs WHERE run_id = ANY(?::text[])

-- name: delete_attempts_of_runs
-- Parameters: the run ids (a list).
DELETE FROM attempts WHERE run_id IN (SELECT value FROM json_each(?))

-- name: delete_attempts_of_runs@postgres
DELETE FROM attempts WHERE run_id = ANY(?::text[])

-- name: forget_deleted_schedules_left_nothing
-- The owners of deleted schedules no run and no unread queue message of whose id is
-- left (see owned_runs): nothing is theirs to read any more. Retention never removes a
-- message, so a deletion is remembered until its messages are read. No parameters.
-- (Messages have no index by schedule, which would cost their write: the subquery is
-- one scan, made once.)
DELETE FROM deleted_schedules
WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.schedule_id = deleted_schedules.schedule_id)
  AND schedule_id NOT IN (
    SELECT q.schedule_id FROM queue_messages q WHERE q.schedule_id IS NOT NULL)

-- name: forget_deleted_schedules_left_nothing@postgres
-- The same; the ids with messages found in one scan first (as an anti-join, the
-- planner may scan the messages once per deletion).
WITH queued AS MATERIALIZED (
  SELECT DISTINCT schedule_id FROM queue_messages WHERE schedule_id IS NOT NULL)
DELETE FROM deleted_schedules
WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.schedule_id = deleted_schedules.schedule_id)
  AND NOT EXISTS (SELECT 1 FROM queued q WHERE q.schedule_id = deleted_schedules.schedule_id)

-- name: delete_runs
-- Parameters: the run ids (a list).
DELETE FROM runs WHERE id IN (SELECT value FROM json_each(?))

-- name: delete_runs@postgres
DELETE FROM runs WHERE id = ANY(?::text[])
