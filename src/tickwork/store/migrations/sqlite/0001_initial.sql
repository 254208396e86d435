-- tickwork schema, version 1, SQLite.
-- Instants are INTEGER microseconds since the Unix epoch, UTC (exact, sortable, compact).
-- JSON values are TEXT. Booleans are 0/1.

CREATE TABLE schedules (
    id              TEXT PRIMARY KEY,
    task            TEXT NOT NULL,
    schedule        TEXT NOT NULL,
    name            TEXT NOT NULL DEFAULT '',
    description     TEXT NOT NULL DEFAULT '',
    timezone        TEXT NOT NULL DEFAULT 'UTC',
    data            TEXT NOT NULL DEFAULT '{}',
    start_at        INTEGER,
    end_at          INTEGER,
    jitter          REAL NOT NULL DEFAULT 0,
    paused          INTEGER NOT NULL DEFAULT 0,
    overlap         TEXT NOT NULL DEFAULT 'skip',
    catchup         TEXT NOT NULL DEFAULT 'latest',
    catchup_spread  REAL NOT NULL DEFAULT 60,
    misfire_grace   REAL NOT NULL DEFAULT 30,
    max_instances   INTEGER NOT NULL DEFAULT 1,
    max_executions  INTEGER,
    retry           TEXT NOT NULL DEFAULT '{}',
    timeout         REAL NOT NULL DEFAULT 300,
    priority        INTEGER NOT NULL DEFAULT 0,
    result_queue    TEXT,
    error_queue     TEXT,
    tags            TEXT NOT NULL DEFAULT '[]',
    metadata        TEXT NOT NULL DEFAULT '{}',
    owner           TEXT,
    status          TEXT NOT NULL DEFAULT 'active',
    next_fire_at    INTEGER,
    last_fire_at    INTEGER,
    execution_count INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER,
    updated_at      INTEGER,
    anchor          INTEGER,
    paused_at       INTEGER
);
-- The fire loop's only scan: active schedules by next fire time.
CREATE INDEX schedules_due ON schedules (next_fire_at, id) WHERE status = 'active';
CREATE INDEX schedules_owner ON schedules (owner) WHERE owner IS NOT NULL;

CREATE TABLE runs (
    id               TEXT PRIMARY KEY,
    schedule_id      TEXT,
    task             TEXT NOT NULL,
    scheduled_for    INTEGER NOT NULL,
    trigger          TEXT NOT NULL DEFAULT 'schedule',
    data             TEXT NOT NULL DEFAULT '{}',
    status           TEXT NOT NULL DEFAULT 'pending',
    attempt          INTEGER NOT NULL DEFAULT 0,
    due_at           INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER,
    result           TEXT,
    error            TEXT,
    traceback        TEXT,
    node             TEXT,
    trace_id         TEXT,
    priority         INTEGER NOT NULL DEFAULT 0,
    lease_until      INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER,
    timeout          REAL NOT NULL DEFAULT 300,
    retry            TEXT NOT NULL DEFAULT '{}'
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
    run_id      TEXT NOT NULL,
    number      INTEGER NOT NULL,
    status      TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    node        TEXT,
    error       TEXT,
    traceback   TEXT,
    PRIMARY KEY (run_id, number)
) WITHOUT ROWID;

CREATE TABLE run_logs (
    id      INTEGER PRIMARY KEY,
    run_id  TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    level   TEXT NOT NULL,
    logger  TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX run_logs_run ON run_logs (run_id, id);

CREATE TABLE queue_messages (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    queue       TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    schedule_id TEXT,
    kind        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX queue_messages_queue ON queue_messages (queue, id);

CREATE TABLE nodes (
    id           TEXT PRIMARY KEY,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    tasks        TEXT NOT NULL DEFAULT '[]',
    stopped_at   INTEGER
);

-- Task names ever published by a node (known tasks survive their nodes).
CREATE TABLE published_tasks (
    name TEXT PRIMARY KEY
) WITHOUT ROWID;

-- The leadership lease: at most one row.
CREATE TABLE leader (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    node_id     TEXT NOT NULL,
    lease_until INTEGER NOT NULL
);
