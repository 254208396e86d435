-- Nodes and the leader's lease (see store/nodes.py).

-- name: leader_locked
-- The lease (one row at most), locked while it is taken or renewed. No parameters.
SELECT node_id, lease_until FROM leader

-- name: leader_locked@postgres
SELECT node_id, lease_until FROM leader FOR UPDATE

-- name: register_node
-- A node registered, or registered again under its id. Parameters: NODE_COLUMNS but
-- stopped_at.
INSERT INTO nodes ({nodes}) VALUES (?, ?, ?, ?, ?, ?, NULL, ?)
ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid,
  started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at,
  tasks = excluded.tasks, stopped_at = NULL, lease_ttl = excluded.lease_ttl

-- name: publish_task
-- A task name known to the database, with its spec when the node has one.
-- Parameters: name, spec (JSON or NULL).
INSERT INTO published_tasks (name, spec) VALUES (?, ?) ON CONFLICT (name)
DO UPDATE SET spec = COALESCE(excluded.spec, published_tasks.spec)

-- name: stop_node
-- Parameters: stopped at, node id.
UPDATE nodes SET stopped_at = ? WHERE id = ?

-- name: release_node_leases
-- A stopping node's running runs up for recovery from now. Parameters: now, node id.
UPDATE runs SET lease_until = ? WHERE node = ? AND status = 'running'

-- name: leave_lead
-- Parameters: node id.
DELETE FROM leader WHERE node_id = ?

-- name: list_nodes
-- Every node. No parameters.
SELECT {nodes}, stuck_threads, stuck_coroutines FROM nodes ORDER BY id

-- name: list_running_nodes
-- The nodes not stopped. No parameters.
SELECT {nodes}, stuck_threads, stuck_coroutines FROM nodes WHERE stopped_at IS NULL ORDER BY id

-- name: list_running_nodes@postgres
-- The nodes not stopped, less those whose session lock no session holds: their process
-- died (its session ended), though no node has marked them stopped yet. A lock taken
-- before the server last started means nothing (a restart frees them all): such a node
-- is listed. The lock is looked up in pg_locks, never taken. No parameters.
SELECT {nodes}, stuck_threads, stuck_coroutines FROM nodes WHERE stopped_at IS NULL
  AND NOT (lock_key IS NOT NULL AND lock_at > pg_postmaster_start_time() AND NOT EXISTS (
    SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.classid = ((nodes.lock_key >> 32) & 4294967295)::oid
      AND l.objid = (nodes.lock_key & 4294967295)::oid))
ORDER BY id

-- name: running_per_node
-- No parameters.
SELECT node, COUNT(*) FROM runs WHERE status = 'running' GROUP BY node

-- name: leader
-- No parameters.
SELECT node_id FROM leader WHERE id = 1

-- name: published_task_names
-- No parameters.
SELECT name FROM published_tasks

-- name: published_task_spec
-- Parameters: the task name.
SELECT spec FROM published_tasks WHERE name = ?

-- name: take_free_lead
-- Parameters: node id, lease until.
INSERT INTO leader (id, node_id, lease_until) VALUES (1, ?, ?)
ON CONFLICT (id) DO NOTHING RETURNING node_id

-- name: take_lead
-- Parameters: node id, lease until.
UPDATE leader SET node_id = ?, lease_until = ? WHERE id = 1

-- name: node_stopped
-- Parameters: node id.
SELECT 1 FROM nodes WHERE id = ? AND stopped_at IS NOT NULL

-- name: release_lead
-- Parameters: node id.
DELETE FROM leader WHERE node_id = ? RETURNING id

-- name: silent_nodes
-- Nodes not stopped silent for longer than their own lease: their last heartbeat is
-- before now less their lease_ttl (the fallback, in seconds, for a node registered
-- without one). Parameters: now, the fallback.
SELECT id FROM nodes WHERE stopped_at IS NULL
  AND heartbeat_at < ? - CAST(COALESCE(lease_ttl, ?) * 1000000 AS INTEGER) ORDER BY id

-- name: silent_nodes@postgres
SELECT id FROM nodes WHERE stopped_at IS NULL
  AND heartbeat_at < ?::timestamptz - COALESCE(lease_ttl, ?::double precision) * interval '1 second'
ORDER BY id
