-- A change of a schedule's settings made together with a pause or a resume (one
-- update with `paused` and `description`, say) was only a schedule.paused (or
-- schedule.resumed) event: subscribers never heard of the change. Such an update is
-- now schedule.updated, then schedule.paused (or schedule.resumed). A write that only
-- pauses or resumes is that event alone, as before. The settings compared are the
-- columns a user sets; paused_at, status, the fire times, updated_at, version and
-- revision move with a pause by themselves.
DROP TRIGGER events_schedule_update;
CREATE TRIGGER events_schedule_update AFTER UPDATE ON schedules
WHEN NEW.paused IS NOT OLD.paused OR NEW.updated_at IS NOT OLD.updated_at
    OR (NEW.status IS NOT OLD.status AND NEW.status IN ('paused', 'finished'))
BEGIN
    INSERT INTO events (at, type, schedule_id, status, owner)
    SELECT
        CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER),
        'schedule.updated', NEW.id, NEW.status, NEW.owner
    WHERE NEW.paused IS NOT OLD.paused AND (
        NEW.task, NEW.schedule, NEW.name, NEW.description, NEW.timezone, NEW.data,
        NEW.start_at, NEW.end_at, NEW.jitter, NEW.overlap, NEW.catchup,
        NEW.catchup_spread, NEW.misfire_grace, NEW.max_instances, NEW.max_executions,
        NEW.retry, NEW.timeout, NEW.priority, NEW.result_queue, NEW.error_queue,
        NEW.tags, NEW.metadata, NEW.owner, NEW.node_defaults
    ) IS NOT (
        OLD.task, OLD.schedule, OLD.name, OLD.description, OLD.timezone, OLD.data,
        OLD.start_at, OLD.end_at, OLD.jitter, OLD.overlap, OLD.catchup,
        OLD.catchup_spread, OLD.misfire_grace, OLD.max_instances, OLD.max_executions,
        OLD.retry, OLD.timeout, OLD.priority, OLD.result_queue, OLD.error_queue,
        OLD.tags, OLD.metadata, OLD.owner, OLD.node_defaults
    );
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
