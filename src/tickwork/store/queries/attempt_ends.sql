-- Attempt ends (see store/attempt_ends.py).

-- name: runs_to_end
-- The runs a batch of ends names, read (and on PostgreSQL locked) before the ends are
-- written where each still holds its attempt. Parameters: the run ids (a JSON list).
SELECT {runs} FROM runs WHERE id IN (SELECT value FROM json_each(?))

-- name: runs_to_end@postgres
SELECT {runs} FROM runs WHERE id = ANY(?::text[]) FOR UPDATE
