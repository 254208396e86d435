-- The dashboard's sign-ins. The session cookie holds a secret of its own, not the
-- credential the user signed in with, so signing out can end the sign-in for every
-- node: its row is deleted. A row is found by its id, then its secret's hash is
-- compared; it ends at expires_at at the latest (the credential's own expiry when
-- that comes first), and expired rows are deleted when a new sign-in is stored.
-- via: 'token' (token_id, refused once that token is revoked), 'admin'
-- (TICKWORK_ADMIN_TOKEN, credential_hash its SHA-256, refused once it changes) or
-- 'jwt' (refused once the server takes no JWT).
CREATE TABLE dashboard_sessions (
    id              text PRIMARY KEY,
    secret_hash     text NOT NULL,
    user_name       text NOT NULL,
    admin           boolean NOT NULL DEFAULT false,
    read_only       boolean NOT NULL DEFAULT false,
    via             text NOT NULL,
    token_id        text,
    credential_hash text,
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL
);
CREATE INDEX dashboard_sessions_expires ON dashboard_sessions (expires_at);
