-- What the REST API needs: tokens, the audit log, idempotency keys of manual runs, and
-- the revision of a schedule's settings (``version``) that each run was made from.

-- API tokens: only a hash of the secret is kept (the secret is shown once).
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    secret_hash  TEXT NOT NULL,
    user_name    TEXT NOT NULL,
    admin        INTEGER NOT NULL DEFAULT 0,
    read_only    INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER
);

-- Every change, through any door: who, what, which record, before/after, why.
-- Written in the change's own transaction, so kept lean: two indexes (retention,
-- a record's history); filtering by actor scans.
CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY,  -- max(id) + 1: increasing while the newest entry stays
    at      INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    before  TEXT,
    after   TEXT,
    reason  TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_target ON audit_log (target, id);

-- A manual run asked for with an Idempotency-Key: the same key (per caller) within the
-- window returns the run made the first time.
CREATE TABLE idempotency_keys (
    scope       TEXT NOT NULL,
    key         TEXT NOT NULL,
    schedule_id TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

ALTER TABLE schedules ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE runs ADD COLUMN schedule_version INTEGER;
