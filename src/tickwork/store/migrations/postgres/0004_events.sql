-- The event feed: what happened to schedules and runs, in commit order, for every
-- process that follows the database (`tickwork serve` streams it as Server-Sent
-- Events). Triggers write it inside the transaction that makes the change, so an
-- event exists exactly when its change committed, whichever process or tool wrote it,
-- and the engine's own statements do no extra work for it. The details a reader shows
-- (task, times, node, error) are read from the run's row when the event is read.
--
-- Positions in commit order: a sequence value is taken when a row is written, not
-- when it commits, so a follower reading "ids above the last one seen" would skip a
-- slow transaction's events. Instead each writing transaction gets one row in
-- event_txns, and a deferred trigger, at commit, takes the next block of positions
-- from the one-row event_clock: the row lock on event_clock is held from there to the
-- end of the commit, so blocks are handed out in the order the transactions become
-- visible. Position of an event = its transaction's block start + its rank in the
-- transaction. The wait is only the commit itself, never the transaction's work.
CREATE TABLE events (
    xid         xid8 NOT NULL DEFAULT pg_current_xact_id(),
    seq         bigint GENERATED ALWAYS AS IDENTITY,
    at          timestamptz NOT NULL DEFAULT statement_timestamp(),
    type        text NOT NULL,
    schedule_id text,
    run_id      text,
    status      text,
    attempt     integer,
    owner       text,
    PRIMARY KEY (xid, seq)
);

CREATE TABLE event_txns (
    xid  xid8 PRIMARY KEY,
    -- Positions last - n + 1 .. last; set at commit (NULL is never visible).
    last bigint,
    n    integer,
    at   timestamptz NOT NULL DEFAULT statement_timestamp()
);
CREATE INDEX event_txns_last ON event_txns (last);
CREATE INDEX event_txns_at ON event_txns (at);

CREATE TABLE event_clock (
    id   integer PRIMARY KEY CHECK (id = 1),
    last bigint NOT NULL
);
INSERT INTO event_clock (id, last) VALUES (1, 0);

CREATE FUNCTION tickwork_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind text;
    row_owner text;
BEGIN
    IF TG_TABLE_NAME = 'runs' THEN
        kind := 'run.' || CASE NEW.status WHEN 'running' THEN 'started' ELSE NEW.status END;
        SELECT s.owner INTO row_owner FROM schedules s WHERE s.id = NEW.schedule_id;
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

CREATE FUNCTION tickwork_event_commit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    count_ integer;
    last_ bigint;
BEGIN
    SELECT count(*) INTO count_ FROM events WHERE xid = NEW.xid;
    UPDATE event_clock SET last = last + count_ WHERE id = 1 RETURNING last INTO last_;
    UPDATE event_txns SET last = last_, n = count_ WHERE xid = NEW.xid;
    PERFORM pg_notify('tickwork_events', last_::text);
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER event_txns_commit AFTER INSERT ON event_txns
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION tickwork_event_commit();

CREATE TRIGGER events_run_insert AFTER INSERT ON runs
    FOR EACH ROW EXECUTE FUNCTION tickwork_event();
CREATE TRIGGER events_run_update AFTER UPDATE OF status, attempt ON runs
    FOR EACH ROW
    WHEN (NEW.status IS DISTINCT FROM OLD.status OR NEW.attempt IS DISTINCT FROM OLD.attempt)
    EXECUTE FUNCTION tickwork_event();
CREATE TRIGGER events_schedule_insert AFTER INSERT ON schedules
    FOR EACH ROW EXECUTE FUNCTION tickwork_event();
CREATE TRIGGER events_schedule_delete AFTER DELETE ON schedules
    FOR EACH ROW EXECUTE FUNCTION tickwork_event();
-- A fire advances next_fire_at without touching updated_at: no event for that.
CREATE TRIGGER events_schedule_update AFTER UPDATE ON schedules
    FOR EACH ROW
    WHEN (NEW.paused IS DISTINCT FROM OLD.paused OR NEW.updated_at IS DISTINCT FROM OLD.updated_at
          OR (NEW.status IS DISTINCT FROM OLD.status AND NEW.status IN ('paused', 'finished')))
    EXECUTE FUNCTION tickwork_event();
