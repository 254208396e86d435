-- Tokens, the audit log and the idempotency keys of manual runs (see
-- store/sql_access.py).

-- name: insert_audit
-- Parameters: at, actor, action, target, before, after, reason.
INSERT INTO audit_log (at, actor, action, target, before, after, reason)
VALUES (?, ?, ?, ?, ?, ?, ?)

-- name: list_audit
-- Entries newest first; the filters' conditions fill the slot {where}.
-- Parameters: those of the conditions, then the limit.
SELECT id, at, actor, action, target, before, after, reason FROM audit_log{where}
ORDER BY id DESC LIMIT ?

-- name: delete_audit_before
-- Parameters: the cutoff.
DELETE FROM audit_log WHERE at < ?

-- name: delete_idempotency_keys_before
-- Parameters: the cutoff.
DELETE FROM idempotency_keys WHERE created_at < ?

-- name: insert_token
-- Parameters: id, secret hash, user, admin, read only, created at, expires at.
INSERT INTO api_tokens (id, secret_hash, user_name, admin, read_only, created_at, expires_at)
VALUES (?, ?, ?, ?, ?, ?, ?)

-- name: lock_tokens
-- Two first starts at once: the lock makes one of them see the other's token. SQLite's
-- write transaction holds the whole file already: nothing more to lock.
SELECT 1

-- name: lock_tokens@postgres
LOCK TABLE api_tokens IN SHARE ROW EXCLUSIVE MODE

-- name: any_token
-- No parameters.
SELECT 1 FROM api_tokens LIMIT 1

-- name: token_with_secret
-- Parameters: the token id.
SELECT id, user_name, created_at, admin, read_only, expires_at, last_used_at, revoked_at,
  secret_hash
FROM api_tokens WHERE id = ?

-- name: touch_token
-- Parameters: last used at, the token id.
UPDATE api_tokens SET last_used_at = ? WHERE id = ?

-- name: list_tokens
-- Every token, revoked ones too. No parameters.
SELECT id, user_name, created_at, admin, read_only, expires_at, last_used_at, revoked_at
FROM api_tokens ORDER BY created_at, id

-- name: list_live_tokens
-- The tokens not revoked. No parameters.
SELECT id, user_name, created_at, admin, read_only, expires_at, last_used_at, revoked_at
FROM api_tokens WHERE revoked_at IS NULL ORDER BY created_at, id

-- name: token_locked
-- A token, locked until its revocation commits. Parameters: the token id.
SELECT id, user_name, created_at, admin, read_only, expires_at, last_used_at, revoked_at
FROM api_tokens WHERE id = ?

-- name: token_locked@postgres
SELECT id, user_name, created_at, admin, read_only, expires_at, last_used_at, revoked_at
FROM api_tokens WHERE id = ? FOR UPDATE

-- name: revoke_token
-- Parameters: revoked at, the token id.
UPDATE api_tokens SET revoked_at = ? WHERE id = ?

-- name: idempotency_key_locked
-- An idempotency key, locked until the run it names commits. Parameters: scope, key.
SELECT schedule_id, run_id, created_at FROM idempotency_keys WHERE scope = ? AND key = ?

-- name: idempotency_key_locked@postgres
SELECT schedule_id, run_id, created_at FROM idempotency_keys WHERE scope = ? AND key = ?
FOR UPDATE

-- name: delete_idempotency_key
-- Parameters: scope, key.
DELETE FROM idempotency_keys WHERE scope = ? AND key = ?

-- name: insert_idempotency_key
-- Parameters: scope, key, schedule id, run id, created at.
INSERT INTO idempotency_keys (scope, key, schedule_id, run_id, created_at)
VALUES (?, ?, ?, ?, ?)
