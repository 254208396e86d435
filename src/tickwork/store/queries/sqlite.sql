-- Statements only SQLite runs (see store/sqlite.py and store/sqlite_bulk.py). Each
-- name has only a @sqlite block.

-- name: migrations_table@sqlite
-- No parameters.
SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'

-- name: table_names@sqlite
-- The file's own tables (not SQLite's), by name. No parameters.
SELECT name FROM sqlite_master
WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name

-- name: node_process@sqlite
-- Where a node runs and whether it stopped. Parameters: node id.
SELECT host, pid, stopped_at FROM nodes WHERE id = ?

-- name: running_node_processes@sqlite
-- Where each node not stopped runs (see store/sqlite_nodes.py). No parameters.
SELECT id, host, pid FROM nodes WHERE stopped_at IS NULL

-- name: gauge_node_rows@sqlite
-- The nodes gauge_nodes counts, one row each, for their lock files to be looked at.
-- Parameters: now, the lease (seconds) of a node registered without one.
SELECT id, host, pid, stuck_threads, stuck_coroutines FROM nodes WHERE stopped_at IS NULL
  AND heartbeat_at >= ? - CAST(COALESCE(lease_ttl, ?) * 1000000 AS INTEGER)

-- name: read_events@sqlite
-- Events after a position, each joined to its run's and (for schedule events) its
-- schedule's row. Parameters: after, limit.
SELECT e.id, e.at, e.type, e.schedule_id, e.run_id, e.status, e.attempt, e.owner,
  COALESCE(r.task, s.task), r.trigger, r.scheduled_for, r.started_at, r.finished_at,
  r.node, r.error
FROM events e LEFT JOIN runs r ON r.id = e.run_id
  LEFT JOIN schedules s ON e.run_id IS NULL AND s.id = e.schedule_id
WHERE e.id > ? ORDER BY e.id LIMIT ?

-- name: last_event_id@sqlite
-- No parameters.
SELECT COALESCE(MAX(id), 0) FROM events

-- name: delete_events_before@sqlite
-- Up to LIMIT of the oldest events before the cutoff, the newest event kept (the feed's
-- position). Parameters: the cutoff, limit.
DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < ?
  AND id < (SELECT MAX(id) FROM events) ORDER BY id LIMIT ?) RETURNING id

-- name: due_revisions_json@sqlite
-- (id, revision) of the active schedules due, earliest first, as one JSON array.
-- Parameters: now, limit.
SELECT json_group_array(json_array(id, revision)) FROM
  (SELECT id, revision FROM schedules WHERE status = 'active' AND next_fire_at <= ?
   ORDER BY next_fire_at, id LIMIT ?)

-- name: schedule_rows_json@sqlite
-- Rows (SCHEDULE_COLUMNS, revision) of these schedules as one JSON array.
-- Parameters: the ids (a JSON list).
SELECT json_group_array(json_array({schedules}, revision)) FROM schedules
WHERE id IN (SELECT value FROM json_each(?))

-- name: bulk_insert_runs@sqlite
-- insert_runs for n rows in one statement (slot {values}).
INSERT INTO runs ({runs}) VALUES {values} ON CONFLICT DO NOTHING

-- name: bulk_insert_claimed_runs@sqlite
-- Runs their fire claimed, n rows of CLAIMED_RUN_COLUMNS (slot {values}): each running
-- its first attempt on the node, started and created now, leased until then.
-- Parameters: now, node, lease until, then the rows' values.
INSERT INTO runs ({claimed_runs}, status, attempt, started_at, node, lease_until,
  cancel_requested, created_at)
SELECT {claimed_values}, 'running', 1, ?1, ?2, ?3, FALSE, ?1
FROM (VALUES {values}) WHERE TRUE
ON CONFLICT DO NOTHING

-- name: bulk_insert_first_attempts@sqlite
-- Attempt 1 of n runs claimed as they are created (slot {values}: one run id a row).
-- Parameters: started at, node, then the run ids.
INSERT INTO attempts (run_id, number, status, started_at, node)
SELECT column1, 1, 'running', ?, ? FROM (VALUES {values})

-- name: rows_as_json@sqlite
-- The rows of a SELECT (slot {select}) as one JSON array of arrays of its result
-- columns (slot {columns}): one step of SQLite instead of one per row.
SELECT json_group_array(json_array({columns})) FROM ({select})
