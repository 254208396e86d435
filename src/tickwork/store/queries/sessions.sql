-- The dashboard's sign-ins (see store/sql_sessions.py).

-- name: delete_expired_sessions
-- Parameters: now.
DELETE FROM dashboard_sessions WHERE expires_at <= ?

-- name: insert_session
-- Parameters: id, secret hash, user, admin, read only, via, token id, credential hash,
-- created at, expires at.
INSERT INTO dashboard_sessions (id, secret_hash, user_name, admin, read_only, via, token_id,
  credential_hash, created_at, expires_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)

-- name: session_with_secret
-- A sign-in with its secret's hash and when its API token (if any) was revoked: one
-- lookup by primary key, the token's row joined by its own. Parameters: the session id.
SELECT s.id, s.user_name, s.via, s.created_at, s.expires_at, s.admin, s.read_only,
  s.token_id, s.credential_hash, t.revoked_at, s.secret_hash
FROM dashboard_sessions s LEFT JOIN api_tokens t ON t.id = s.token_id
WHERE s.id = ?

-- name: delete_session
-- Parameters: the session id.
DELETE FROM dashboard_sessions WHERE id = ?
