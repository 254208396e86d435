-- A schedule row's revision: changes with every write, so a node may keep schedules
-- decoded in memory (read ahead of their fire) and know at the fire, from this column
-- alone, whether its copy is still the stored row. tickwork sets it itself (a random
-- first value, then +1 per write); the triggers cover any other writer (an older
-- tickwork, an UPDATE by hand).
ALTER TABLE schedules ADD COLUMN revision bigint NOT NULL DEFAULT 0;

CREATE FUNCTION tickwork_schedule_revision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.revision := floor(random() * 4611686018427387903)::bigint + 1;
    ELSE
        NEW.revision := OLD.revision + 1;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER schedules_revision_insert BEFORE INSERT ON schedules
    FOR EACH ROW WHEN (NEW.revision = 0) EXECUTE FUNCTION tickwork_schedule_revision();

CREATE TRIGGER schedules_revision_update BEFORE UPDATE ON schedules
    FOR EACH ROW WHEN (NEW.revision = OLD.revision)
    EXECUTE FUNCTION tickwork_schedule_revision();
