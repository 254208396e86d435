-- The dashboard's sign-ins. The session cookie holds a secret of its own, not the
-- credential the user signed in with, so signing out can end the sign-in for every
-- node: its row is deleted. A row is found by its id, then its secret's hash is
-- compared; it ends at expires_at at the latest (the credential's own expiry when
-- that comes first), and expired rows are deleted when a new sign-in is stored.
-- via: 'token' (token_id, refused once that token is revoked), 'admin'
-- (TICKWORK_ADMIN_TOKEN, credential_hash its SHA-256, refused once it changes) or
-- 'jwt' (refused once the server takes no JWT).
CREATE TABLE dashboard_sessions (
    id              TEXT PRIMARY KEY,
    secret_hash     TEXT NOT NULL,
    user_name       TEXT NOT NULL,
    admin           INTEGER NOT NULL DEFAULT 0,
    read_only       INTEGER NOT NULL DEFAULT 0,
    via             TEXT NOT NULL,
    token_id        TEXT,
    credential_hash TEXT,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
);
CREATE INDEX dashboard_sessions_expires ON dashboard_sessions (expires_at);
