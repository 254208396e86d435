-- Claiming: which waiting runs a node takes. The room of each schedule and the queue
-- head are the rules of tickwork.policy (running_limit, room, is_queue_head), applied
-- here in bulk; tests/store/test_overlap_rule.py checks that they agree.

-- name: claim_candidates
-- Waiting runs due by now, best first (priority, due time, id), at most LIMIT; under
-- overlap "queue" only the oldest unfinished run of its schedule (the queue head; its
-- statuses as runs_active states them, migration 0014).
-- Rows: (id, schedule_id, task, overlap, max_instances).
-- Parameters: now, the tasks (a JSON list), limit.
SELECT w.id, w.schedule_id, w.task, ws.overlap, ws.max_instances
FROM runs w LEFT JOIN schedules ws ON ws.id = w.schedule_id
WHERE w.status IN ('pending', 'retrying') AND w.due_at <= ?
  AND w.task IN (SELECT value FROM json_each(?))
  AND (ws.overlap IS NULL OR ws.overlap <> 'queue' OR NOT EXISTS (
    SELECT 1 FROM runs e WHERE e.schedule_id = w.schedule_id
      AND (e.status IN ('pending', 'running') OR e.status = 'retrying')
      AND (e.scheduled_for < w.scheduled_for
        OR (e.scheduled_for = w.scheduled_for AND e.id < w.id))))
ORDER BY w.priority DESC, w.due_at, w.id LIMIT ?

-- name: claim_candidates@postgres
-- The same, the tasks an array; the rows are locked, skipping those another claimer
-- holds, so concurrent claimers take different runs.
SELECT w.id, w.schedule_id, w.task, ws.overlap, ws.max_instances
FROM runs w LEFT JOIN schedules ws ON ws.id = w.schedule_id
WHERE w.status IN ('pending', 'retrying') AND w.due_at <= ?
  AND w.task = ANY(?::text[])
  AND (ws.overlap IS NULL OR ws.overlap <> 'queue' OR NOT EXISTS (
    SELECT 1 FROM runs e WHERE e.schedule_id = w.schedule_id
      AND e.status IN ('pending', 'running', 'retrying')
      AND (e.scheduled_for < w.scheduled_for
        OR (e.scheduled_for = w.scheduled_for AND e.id < w.id))))
ORDER BY w.priority DESC, w.due_at, w.id LIMIT ?
FOR UPDATE OF w SKIP LOCKED

-- name: claim_candidates_ranked
-- claim_candidates, each schedule's waiting runs also cut to the room it has: the
-- running runs it may have (policy.running_limit: "allow" max_instances, "replace" no
-- limit, the others 1) minus those running. A window over every waiting run: the
-- second look, when the first met full schedules.
-- Parameters: now, the tasks (a JSON list), limit.
SELECT c.id, c.schedule_id, c.task, c.overlap, c.max_instances FROM (
  SELECT w.id, w.schedule_id, w.task, w.priority, w.due_at, ws.overlap, ws.max_instances,
    CASE WHEN ws.id IS NULL OR ws.overlap = 'replace' THEN NULL
      ELSE (CASE WHEN ws.overlap = 'allow' THEN ws.max_instances ELSE 1 END)
        - (SELECT COUNT(*) FROM runs x
           WHERE x.status = 'running' AND x.schedule_id = w.schedule_id) END AS room,
    ROW_NUMBER() OVER (PARTITION BY w.schedule_id
      ORDER BY w.priority DESC, w.due_at, w.id) AS rn
  FROM runs w LEFT JOIN schedules ws ON ws.id = w.schedule_id
  WHERE w.status IN ('pending', 'retrying') AND w.due_at <= ?
    AND w.task IN (SELECT value FROM json_each(?))
    AND (ws.overlap IS NULL OR ws.overlap <> 'queue' OR NOT EXISTS (
      SELECT 1 FROM runs e WHERE e.schedule_id = w.schedule_id
        AND (e.status IN ('pending', 'running') OR e.status = 'retrying')
        AND (e.scheduled_for < w.scheduled_for
          OR (e.scheduled_for = w.scheduled_for AND e.id < w.id))))
) c WHERE c.room IS NULL OR c.rn <= c.room
ORDER BY c.priority DESC, c.due_at, c.id LIMIT ?

-- name: claim_candidates_ranked@postgres
-- The same, the tasks an array; the chosen rows are then locked, skipping those another
-- claimer holds, and a row that changed meanwhile is checked again (still waiting, due).
-- Parameters: now, the tasks (an array), limit, now.
SELECT r.id, r.schedule_id, r.task, s.overlap, s.max_instances
FROM runs r LEFT JOIN schedules s ON s.id = r.schedule_id
WHERE r.id IN (SELECT x.id FROM (
  SELECT c.id FROM (
    SELECT w.id, w.schedule_id, w.priority, w.due_at,
      CASE WHEN ws.id IS NULL OR ws.overlap = 'replace' THEN NULL
        ELSE (CASE WHEN ws.overlap = 'allow' THEN ws.max_instances ELSE 1 END)
          - (SELECT COUNT(*) FROM runs x
             WHERE x.status = 'running' AND x.schedule_id = w.schedule_id) END AS room,
      ROW_NUMBER() OVER (PARTITION BY w.schedule_id
        ORDER BY w.priority DESC, w.due_at, w.id) AS rn
    FROM runs w LEFT JOIN schedules ws ON ws.id = w.schedule_id
    WHERE w.status IN ('pending', 'retrying') AND w.due_at <= ?
      AND w.task = ANY(?::text[])
      AND (ws.overlap IS NULL OR ws.overlap <> 'queue' OR NOT EXISTS (
        SELECT 1 FROM runs e WHERE e.schedule_id = w.schedule_id
          AND e.status IN ('pending', 'running', 'retrying')
          AND (e.scheduled_for < w.scheduled_for
            OR (e.scheduled_for = w.scheduled_for AND e.id < w.id))))
  ) c WHERE c.room IS NULL OR c.rn <= c.room
  ORDER BY c.priority DESC, c.due_at, c.id LIMIT ?) x)
  AND r.status IN ('pending', 'retrying') AND r.due_at <= ?
ORDER BY r.priority DESC, r.due_at, r.id
FOR UPDATE OF r SKIP LOCKED

-- name: mark_claimed
-- Claimed runs become running their next attempt on the node, leased. On SQLite no rows
-- (read by claimed_runs in one step); on PostgreSQL the runs (RUN_COLUMNS).
-- Parameters: node, lease_until, now, the ids (a JSON list).
UPDATE runs SET status = 'running', attempt = attempt + 1, node = ?,
  lease_until = ?, started_at = COALESCE(started_at, ?), finished_at = NULL
WHERE id IN (SELECT value FROM json_each(?))

-- name: mark_claimed@postgres
UPDATE runs SET status = 'running', attempt = attempt + 1, node = ?,
  lease_until = ?, started_at = COALESCE(started_at, ?), finished_at = NULL
WHERE id = ANY(?::text[]) RETURNING {runs}

-- name: claimed_runs
-- The runs just claimed (SQLite). Parameters: the ids (a JSON list).
SELECT {runs} FROM runs WHERE id IN (SELECT value FROM json_each(?))

-- name: claimed_runs@postgres
SELECT {runs} FROM runs WHERE id = ANY(?::text[])

-- name: start_claimed_attempts
-- The running attempt of each claimed run. Parameters: now, node, the ids (a JSON list).
INSERT INTO attempts (run_id, number, status, started_at, node)
SELECT id, attempt, 'running', ?, ? FROM runs WHERE id IN (SELECT value FROM json_each(?))

-- name: start_claimed_attempts@postgres
INSERT INTO attempts (run_id, number, status, started_at, node)
SELECT id, attempt, 'running', ?, ? FROM runs WHERE id = ANY(?::text[])

-- name: waiting_due_for_tasks
-- Whether any run of these tasks waits and is due (older runs are claimed first).
-- Parameters: now, the tasks (a list).
SELECT 1 FROM runs WHERE status IN ('pending', 'retrying') AND due_at <= ?
  AND task IN (SELECT value FROM json_each(?)) LIMIT 1

-- name: waiting_due_for_tasks@postgres
SELECT 1 FROM runs WHERE status IN ('pending', 'retrying') AND due_at <= ?
  AND task = ANY(?::text[]) LIMIT 1
