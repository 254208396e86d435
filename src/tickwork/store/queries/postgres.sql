-- Statements only PostgreSQL runs (see store/postgres.py, store/postgres_nodes.py and
-- store/postgres_listen.py): its hot paths in one autocommit statement, its locks, its
-- event feed. Each name has only a @postgres block; the channel 'tickwork' is
-- postgres_listen.CHANNEL.

-- name: add_schedule_notify@postgres
-- A new schedule and the notice to other nodes, in one statement.
-- Parameters: SCHEDULE_COLUMNS, revision, the notice's token.
WITH ins AS (INSERT INTO schedules ({schedules}, revision) VALUES ({schedule_values}, ?)
  RETURNING id)
SELECT pg_notify('tickwork', ?) FROM ins

-- name: add_audited_schedule_notify@postgres
-- The same with its audit entry. Parameters: SCHEDULE_COLUMNS, revision, at, actor,
-- action, target, before, after, reason, the notice's token.
WITH ins AS (INSERT INTO schedules ({schedules}, revision) VALUES ({schedule_values}, ?)
  RETURNING id),
aud AS (INSERT INTO audit_log (at, actor, action, target, before, after, reason)
  SELECT ?, ?, ?, ?, ?::jsonb, ?::jsonb, ? FROM ins)
SELECT pg_notify('tickwork', ?) FROM ins

-- name: notify_change@postgres
-- Work changed: other nodes wake. Parameters: this store's token (its own notices
-- are ignored).
SELECT pg_notify('tickwork', ?)

-- name: lock_claimed_schedules@postgres
-- The schedules whose running runs a claim counts, locked; those another claimer holds
-- are skipped. Parameters: the ids (an array).
SELECT id FROM schedules WHERE id = ANY(?::text[]) ORDER BY id FOR NO KEY UPDATE SKIP LOCKED

-- name: try_lock_task@postgres
-- A claimer's hold on one task's count until commit. Parameters: the lock key.
SELECT pg_try_advisory_xact_lock(?)

-- name: store_fired@postgres
-- Fired schedules advanced, from one array per column. Parameters: next fire, last
-- fire, execution count, status, id (arrays).
UPDATE schedules s SET next_fire_at = u.n, last_fire_at = u.l, execution_count = u.c,
  status = u.st, revision = s.revision + 1
FROM unnest(?::timestamptz[], ?::timestamptz[], ?::integer[], ?::text[], ?::text[])
  AS u(n, l, c, st, id)
WHERE s.id = u.id

-- name: scanned_duration_percentiles@postgres
-- p50 and p95 duration (seconds) per task of the runs that executed among those matching
-- the slot {where} (alias r). Parameters: those of the condition.
SELECT r.task,
  percentile_cont(0.5) WITHIN GROUP (
    ORDER BY EXTRACT(EPOCH FROM r.finished_at - r.started_at)::float8),
  percentile_cont(0.95) WITHIN GROUP (
    ORDER BY EXTRACT(EPOCH FROM r.finished_at - r.started_at)::float8)
FROM runs r WHERE {where} AND r.status IN ('succeeded', 'failed', 'timed_out')
  AND r.started_at IS NOT NULL AND r.finished_at IS NOT NULL
GROUP BY r.task

-- name: migrations_table@postgres
-- The table of applied migrations, NULL when there is none. No parameters.
SELECT to_regclass('schema_migrations')

-- name: lock_migrations@postgres
-- One migrator at a time, across every process starting now. Parameters: the key.
SELECT pg_advisory_xact_lock(?)

-- name: read_events@postgres
-- Events after a position: the transaction's block (handed out at commit, in commit
-- order) plus the event's rank within its transaction, each joined to its run's and
-- (for schedule events) its schedule's row. Parameters: after, limit, after, limit.
WITH t AS (SELECT xid, last - n AS base FROM event_txns WHERE last > ? ORDER BY last LIMIT ?),
e AS (SELECT t.base + row_number() OVER (PARTITION BY v.xid ORDER BY v.seq) AS id, v.at,
  v.type, v.schedule_id, v.run_id, v.status, v.attempt, v.owner
  FROM t JOIN events v ON v.xid = t.xid)
SELECT e.id, e.at, e.type, e.schedule_id, e.run_id, e.status, e.attempt, e.owner,
  COALESCE(r.task, s.task), r.trigger, r.scheduled_for, r.started_at, r.finished_at,
  r.node, r.error
FROM e LEFT JOIN runs r ON r.id = e.run_id
  LEFT JOIN schedules s ON e.run_id IS NULL AND s.id = e.schedule_id
WHERE e.id > ? ORDER BY e.id LIMIT ?

-- name: last_event_id@postgres
-- No parameters.
SELECT last FROM event_clock WHERE id = 1

-- name: delete_event_txns_before@postgres
-- Up to LIMIT of the oldest transactions of the feed before the cutoff.
-- Parameters: the cutoff, limit.
DELETE FROM event_txns WHERE xid IN (SELECT xid FROM event_txns WHERE at < ?
  ORDER BY at LIMIT ?) RETURNING xid

-- name: delete_events_of_txns@postgres
-- Parameters: the transactions (an array of xid8).
DELETE FROM events WHERE xid = ANY(?::xid8[]) RETURNING 1

-- name: try_node_lock@postgres
-- A node's session lock, held while its process lives. Parameters: the key.
SELECT pg_try_advisory_lock(?)

-- name: node_lock_retaken@postgres
-- Parameters: node id.
UPDATE nodes SET lock_at = now() WHERE id = ?

-- name: connection_alive@postgres
-- No parameters.
SELECT 1

-- name: node_lock_taken@postgres
-- Parameters: the lock key, node id.
UPDATE nodes SET lock_key = ?, lock_at = now() WHERE id = ?

-- name: node_liveness@postgres
-- Nodes not stopped: whether the node is silent for longer than its own lease (the
-- fallback, in seconds, for a node registered without one), and whether the lock is
-- free (NULL: no lock taken since the server started). Parameters: now, the fallback.
SELECT id,
  heartbeat_at < ?::timestamptz - COALESCE(lease_ttl, ?::double precision) * interval '1 second',
  CASE WHEN lock_key IS NOT NULL AND lock_at > pg_postmaster_start_time()
    THEN pg_try_advisory_xact_lock(lock_key) END
FROM nodes WHERE stopped_at IS NULL

-- name: lead_without_waiting@postgres
-- try_lead waits at most this long for the lease row another session holds (a node
-- frozen or cut off inside try_lead holds it until its session ends): past it, the
-- node is not the leader this round, and its maintenance pass goes on. No parameters.
SET LOCAL lock_timeout = '500ms'

-- name: leader_gone@postgres
-- The node stopped, or its lock is free. Parameters: node id.
SELECT 1 FROM nodes WHERE id = ? AND (stopped_at IS NOT NULL
  OR (lock_key IS NOT NULL AND lock_at > pg_postmaster_start_time()
    AND pg_try_advisory_xact_lock(lock_key)))

-- name: set_idle_in_transaction_unset@postgres
-- A new session's idle-in-transaction timeout, unless the server's configuration, the
-- role, the database or the URL's options set one. Parameters: the timeout.
SELECT set_config(name, ?, false) FROM pg_settings
  WHERE name = 'idle_in_transaction_session_timeout' AND source = 'default'
