-- A run event takes its owner from the run's schedule. A running run of a schedule
-- being deleted is only asked to stop, and ends after the schedule's row is gone: its
-- run.cancelled (or whatever it ends as) had no owner, and its owner's event stream
-- never heard how it ended. Such an event now takes the owner the schedule had when it
-- was deleted, from its schedule.deleted event (a small index of those events alone;
-- looked up only when the schedule's row is gone).
CREATE INDEX events_schedule_deleted ON events (schedule_id) WHERE type = 'schedule.deleted';

CREATE OR REPLACE FUNCTION tickwork_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind text;
    row_owner text;
BEGIN
    IF TG_TABLE_NAME = 'runs' THEN
        kind := 'run.' || CASE NEW.status WHEN 'running' THEN 'started' ELSE NEW.status END;
        SELECT s.owner INTO row_owner FROM schedules s WHERE s.id = NEW.schedule_id;
        -- A run of no schedule (a manual run of a task) has no owner to look for.
        IF NOT FOUND AND NEW.schedule_id IS NOT NULL THEN
            SELECT e.owner INTO row_owner FROM events e
            WHERE e.type = 'schedule.deleted' AND e.schedule_id = NEW.schedule_id
            ORDER BY e.seq DESC LIMIT 1;
        END IF;
    ELSIF TG_OP = 'INSERT' THEN
        kind := 'schedule.created';
    ELSIF TG_OP = 'DELETE' THEN
        kind := 'schedule.deleted';
    ELSIF NEW.paused IS DISTINCT FROM OLD.paused THEN
        kind := CASE WHEN NEW.paused THEN 'schedule.paused' ELSE 'schedule.resumed' END;
    ELSIF NEW.updated_at IS DISTINCT FROM OLD.updated_at THEN
        kind := 'schedule.updated';
    ELSE
        kind := 'schedule.' || NEW.status;
    END IF;
    IF current_setting('tickwork.event_txn', true) IS DISTINCT FROM pg_current_xact_id()::text
    THEN
        INSERT INTO event_txns (xid) VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING;
        PERFORM set_config('tickwork.event_txn', pg_current_xact_id()::text, true);
    END IF;
    IF TG_TABLE_NAME = 'runs' THEN
        INSERT INTO events (type, schedule_id, run_id, status, attempt, owner)
        VALUES (kind, NEW.schedule_id, NEW.id, NEW.status, NEW.attempt, row_owner);
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO events (type, schedule_id, status, owner)
        VALUES (kind, OLD.id, OLD.status, OLD.owner);
    ELSE
        INSERT INTO events (type, schedule_id, status, owner)
        VALUES (kind, NEW.id, NEW.status, NEW.owner);
    END IF;
    RETURN NULL;
END
$$;
