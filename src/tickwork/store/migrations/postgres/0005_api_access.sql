-- What the REST API needs: tokens, the audit log, idempotency keys of manual runs, and
-- the revision of a schedule's settings (``version``) that each run was made from.

-- API tokens: only a hash of the secret is kept (the secret is shown once).
CREATE TABLE api_tokens (
    id           text PRIMARY KEY,
    secret_hash  text NOT NULL,
    user_name    text NOT NULL,
    admin        boolean NOT NULL DEFAULT false,
    read_only    boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz
);

-- Every change, through any door: who, what, which record, before/after, why.
-- Written in the change's own transaction, so kept lean: two indexes (retention,
-- a record's history); filtering by actor scans.
CREATE TABLE audit_log (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL,
    actor   text NOT NULL,
    action  text NOT NULL,
    target  text NOT NULL,
    before  jsonb,
    after   jsonb,
    reason  text
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_target ON audit_log (target, id);

-- A manual run asked for with an Idempotency-Key: the same key (per caller) within the
-- window returns the run made the first time.
CREATE TABLE idempotency_keys (
    scope       text NOT NULL,
    key         text NOT NULL,
    schedule_id text NOT NULL,
    run_id      text NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

ALTER TABLE schedules ADD COLUMN version integer NOT NULL DEFAULT 1;
ALTER TABLE runs ADD COLUMN schedule_version integer;
