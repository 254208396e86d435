-- A run event takes its owner from the run's schedule. A running run of a schedule
-- being deleted is only asked to stop, and ends after the schedule's row is gone: its
-- run.cancelled (or whatever it ends as) had no owner, and its owner's event stream
-- never heard how it ended. Such an event now takes the owner the schedule had when it
-- was deleted, from its schedule.deleted event (a small index of those events alone;
-- looked up only when the schedule's row is gone).
CREATE INDEX events_schedule_deleted ON events (schedule_id) WHERE type = 'schedule.deleted';

DROP TRIGGER events_run_insert;
CREATE TRIGGER events_run_insert AFTER INSERT ON runs
BEGIN
    INSERT INTO events (at, type, schedule_id, run_id, status, attempt, owner)
    VALUES (
        CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER),
        'run.' || CASE NEW.status WHEN 'running' THEN 'started' ELSE NEW.status END,
        NEW.schedule_id, NEW.id, NEW.status, NEW.attempt,
        CASE WHEN NEW.schedule_id IS NOT NULL THEN COALESCE(
            (SELECT owner FROM schedules WHERE id = NEW.schedule_id),
            (SELECT owner FROM events WHERE type = 'schedule.deleted'
                AND schedule_id = NEW.schedule_id ORDER BY id DESC LIMIT 1)
        ) END
    );
END;

DROP TRIGGER events_run_update;
CREATE TRIGGER events_run_update AFTER UPDATE OF status, attempt ON runs
WHEN NEW.status IS NOT OLD.status OR NEW.attempt IS NOT OLD.attempt
BEGIN
    INSERT INTO events (at, type, schedule_id, run_id, status, attempt, owner)
    VALUES (
        CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER),
        'run.' || CASE NEW.status WHEN 'running' THEN 'started' ELSE NEW.status END,
        NEW.schedule_id, NEW.id, NEW.status, NEW.attempt,
        CASE WHEN NEW.schedule_id IS NOT NULL THEN COALESCE(
            (SELECT owner FROM schedules WHERE id = NEW.schedule_id),
            (SELECT owner FROM events WHERE type = 'schedule.deleted'
                AND schedule_id = NEW.schedule_id ORDER BY id DESC LIMIT 1)
        ) END
    );
END;
