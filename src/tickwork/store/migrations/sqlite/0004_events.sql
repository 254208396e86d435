-- The event feed: what happened to schedules and runs, in commit order, for every
-- process that follows the database (`tickwork serve` streams it as Server-Sent
-- Events). Triggers write it inside the transaction that makes the change, so an
-- event exists exactly when its change committed, whichever process or tool wrote it,
-- and the engine's own statements do no extra work for it. Write transactions on a
-- SQLite file are serial, so the rowid (`id`) is the commit order. The details a
-- reader shows (task, times, node, error) are read from the run's row when the event
-- is read; the row keeps only what the row may not say later.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    type        TEXT NOT NULL,
    schedule_id TEXT,
    run_id      TEXT,
    status      TEXT,
    attempt     INTEGER,
    owner       TEXT
);
CREATE INDEX events_at ON events (at);

CREATE TRIGGER events_run_insert AFTER INSERT ON runs
BEGIN
    INSERT INTO events (at, type, schedule_id, run_id, status, attempt, owner)
    VALUES (
        CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER),
        'run.' || CASE NEW.status WHEN 'running' THEN 'started' ELSE NEW.status END,
        NEW.schedule_id, NEW.id, NEW.status, NEW.attempt,
        (SELECT owner FROM schedules WHERE id = NEW.schedule_id)
    );
END;

CREATE TRIGGER events_run_update AFTER UPDATE OF status, attempt ON runs
WHEN NEW.status IS NOT OLD.status OR NEW.attempt IS NOT OLD.attempt
BEGIN
    INSERT INTO events (at, type, schedule_id, run_id, status, attempt, owner)
    VALUES (
        CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER),
        'run.' || CASE NEW.status WHEN 'running' THEN 'started' ELSE NEW.status END,
        NEW.schedule_id, NEW.id, NEW.status, NEW.attempt,
        (SELECT owner FROM schedules WHERE id = NEW.schedule_id)
    );
END;

CREATE TRIGGER events_schedule_insert AFTER INSERT ON schedules
BEGIN
    INSERT INTO events (at, type, schedule_id, status, owner)
    VALUES (
        CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER),
        'schedule.created', NEW.id, NEW.status, NEW.owner
    );
END;

CREATE TRIGGER events_schedule_delete AFTER DELETE ON schedules
BEGIN
    INSERT INTO events (at, type, schedule_id, status, owner)
    VALUES (
        CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER),
        'schedule.deleted', OLD.id, OLD.status, OLD.owner
    );
END;

-- A fire advances next_fire_at without touching updated_at: no event for that.
CREATE TRIGGER events_schedule_update AFTER UPDATE ON schedules
WHEN NEW.paused IS NOT OLD.paused OR NEW.updated_at IS NOT OLD.updated_at
    OR (NEW.status IS NOT OLD.status AND NEW.status IN ('paused', 'finished'))
BEGIN
    INSERT INTO events (at, type, schedule_id, status, owner)
    VALUES (
        CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER),
        CASE
            WHEN NEW.paused IS NOT OLD.paused
                THEN CASE WHEN NEW.paused THEN 'schedule.paused' ELSE 'schedule.resumed' END
            WHEN NEW.updated_at IS NOT OLD.updated_at THEN 'schedule.updated'
            ELSE 'schedule.' || NEW.status
        END,
        NEW.id, NEW.status, NEW.owner
    );
END;
