-- Firing: what a fire reads besides the schedules (see store/firing.py).

-- name: unfinished_runs
-- The runs of the fired schedules that are not over (pending, running, retrying),
-- oldest first: what the overlap policy counts. Parameters: the schedule ids (a JSON list).
SELECT {runs} FROM runs
WHERE schedule_id IN (SELECT value FROM json_each(?))
  AND status IN ('pending', 'running', 'retrying')
ORDER BY scheduled_for, id

-- name: unfinished_runs@postgres
SELECT {runs} FROM runs
WHERE schedule_id = ANY(?::text[]) AND status IN ('pending', 'running', 'retrying')
ORDER BY scheduled_for, id
