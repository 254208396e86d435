-- tickwork schema, version 1, PostgreSQL.

CREATE TABLE schedules (
    id              text PRIMARY KEY,
    task            text NOT NULL,
    schedule        text NOT NULL,
    name            text NOT NULL DEFAULT '',
    description     text NOT NULL DEFAULT '',
    timezone        text NOT NULL DEFAULT 'UTC',
    data            jsonb NOT NULL DEFAULT '{}',
    start_at        timestamptz,
    end_at          timestamptz,
    jitter          double precision NOT NULL DEFAULT 0,
    paused          boolean NOT NULL DEFAULT false,
    overlap         text NOT NULL DEFAULT 'skip',
    catchup         text NOT NULL DEFAULT 'latest',
    catchup_spread  double precision NOT NULL DEFAULT 60,
    misfire_grace   double precision NOT NULL DEFAULT 30,
    max_instances   integer NOT NULL DEFAULT 1,
    max_executions  integer,
    retry           jsonb NOT NULL DEFAULT '{}',
    timeout         double precision NOT NULL DEFAULT 300,
    priority        integer NOT NULL DEFAULT 0,
    result_queue    text,
    error_queue     text,
    tags            jsonb NOT NULL DEFAULT '[]',
    metadata        jsonb NOT NULL DEFAULT '{}',
    owner           text,
    status          text NOT NULL DEFAULT 'active',
    next_fire_at    timestamptz,
    last_fire_at    timestamptz,
    execution_count integer NOT NULL DEFAULT 0,
    created_at      timestamptz,
    updated_at      timestamptz,
    anchor          timestamptz,
    paused_at       timestamptz
);
-- The fire loop's only scan: active schedules by next fire time.
CREATE INDEX schedules_due ON schedules (next_fire_at, id) WHERE status = 'active';
CREATE INDEX schedules_owner ON schedules (owner) WHERE owner IS NOT NULL;

CREATE TABLE runs (
    id               text PRIMARY KEY,
    schedule_id      text,
    task             text NOT NULL,
    scheduled_for    timestamptz NOT NULL,
    trigger          text NOT NULL DEFAULT 'schedule',
    data             jsonb NOT NULL DEFAULT '{}',
    status           text NOT NULL DEFAULT 'pending',
    attempt          integer NOT NULL DEFAULT 0,
    due_at           timestamptz NOT NULL,
    started_at       timestamptz,
    finished_at      timestamptz,
    result           jsonb,
    error            text,
    traceback        text,
    node             text,
    trace_id         text,
    priority         integer NOT NULL DEFAULT 0,
    lease_until      timestamptz,
    cancel_requested boolean NOT NULL DEFAULT false,
    created_at       timestamptz,
    timeout          double precision NOT NULL DEFAULT 300,
    retry            jsonb NOT NULL DEFAULT '{}'
);
-- Exactly one run per (schedule, scheduled time); manual triggers never collide.
CREATE UNIQUE INDEX runs_fire_key ON runs (schedule_id, scheduled_for) WHERE trigger <> 'manual';
-- History of one schedule, newest first.
CREATE INDEX runs_schedule ON runs (schedule_id, scheduled_for);
-- History of everything, newest first; retention.
CREATE INDEX runs_scheduled_for ON runs (scheduled_for);
-- Unfinished runs of a schedule (fire planning, queue order).
CREATE INDEX runs_active ON runs (schedule_id, scheduled_for)
    WHERE status IN ('pending', 'running', 'retrying');
-- Claiming and the next wake-up: waiting runs by due time.
CREATE INDEX runs_waiting ON runs (due_at) WHERE status IN ('pending', 'retrying');
-- Leases: running runs by lease end (recovery, limits, heartbeats).
CREATE INDEX runs_running ON runs (lease_until) WHERE status = 'running';
-- Running runs of a schedule: its overlap limit.
CREATE INDEX runs_running_schedule ON runs (schedule_id) WHERE status = 'running';

CREATE TABLE attempts (
    run_id      text NOT NULL,
    number      integer NOT NULL,
    status      text NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    node        text,
    error       text,
    traceback   text,
    PRIMARY KEY (run_id, number)
);

CREATE TABLE run_logs (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id  text NOT NULL,
    attempt integer NOT NULL,
    at      timestamptz NOT NULL,
    level   text NOT NULL,
    logger  text NOT NULL,
    message text NOT NULL
);
CREATE INDEX run_logs_run ON run_logs (run_id, id);

CREATE TABLE queue_messages (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue       text NOT NULL,
    run_id      text NOT NULL,
    schedule_id text,
    kind        text NOT NULL,
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX queue_messages_queue ON queue_messages (queue, id);

CREATE TABLE nodes (
    id           text PRIMARY KEY,
    host         text NOT NULL,
    pid          integer NOT NULL,
    started_at   timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    tasks        jsonb NOT NULL DEFAULT '[]',
    stopped_at   timestamptz,
    -- The session-level advisory lock the node holds while its process lives, and
    -- when (database clock) it took it: a free lock taken since the server started
    -- means the node's session ended, i.e. the node died.
    lock_key     bigint,
    lock_at      timestamptz
);

-- Task names ever published by a node (known tasks survive their nodes).
CREATE TABLE published_tasks (
    name text PRIMARY KEY
);

-- The leadership lease: at most one row.
CREATE TABLE leader (
    id          integer PRIMARY KEY CHECK (id = 1),
    node_id     text NOT NULL,
    lease_until timestamptz NOT NULL
);
