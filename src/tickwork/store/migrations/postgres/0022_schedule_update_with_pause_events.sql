-- A change of a schedule's settings made together with a pause or a resume (one
-- update with `paused` and `description`, say) was only a schedule.paused (or
-- schedule.resumed) event: subscribers never heard of the change. Such an update is
-- now schedule.updated, then schedule.paused (or schedule.resumed). A write that only
-- pauses or resumes is that event alone, as before. The settings compared are the
-- columns a user sets; paused_at, status, the fire times, updated_at, version and
-- revision move with a pause by themselves. (The runs' part is that of version 21.)
CREATE OR REPLACE FUNCTION tickwork_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind text;
    row_owner text;
    changed_too boolean := false;
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
        changed_too := (
            NEW.task, NEW.schedule, NEW.name, NEW.description, NEW.timezone, NEW.data,
            NEW.start_at, NEW.end_at, NEW.jitter, NEW.overlap, NEW.catchup,
            NEW.catchup_spread, NEW.misfire_grace, NEW.max_instances, NEW.max_executions,
            NEW.retry, NEW.timeout, NEW.priority, NEW.result_queue, NEW.error_queue,
            NEW.tags, NEW.metadata, NEW.owner, NEW.node_defaults
        ) IS DISTINCT FROM (
            OLD.task, OLD.schedule, OLD.name, OLD.description, OLD.timezone, OLD.data,
            OLD.start_at, OLD.end_at, OLD.jitter, OLD.overlap, OLD.catchup,
            OLD.catchup_spread, OLD.misfire_grace, OLD.max_instances, OLD.max_executions,
            OLD.retry, OLD.timeout, OLD.priority, OLD.result_queue, OLD.error_queue,
            OLD.tags, OLD.metadata, OLD.owner, OLD.node_defaults
        );
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
        IF changed_too THEN
            INSERT INTO events (type, schedule_id, status, owner)
            VALUES ('schedule.updated', NEW.id, NEW.status, NEW.owner);
        END IF;
        INSERT INTO events (type, schedule_id, status, owner)
        VALUES (kind, NEW.id, NEW.status, NEW.owner);
    END IF;
    RETURN NULL;
END
$$;
