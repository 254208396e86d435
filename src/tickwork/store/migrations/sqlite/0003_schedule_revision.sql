-- A schedule row's revision: changes with every write, so a node may keep schedules
-- decoded in memory (read ahead of their fire) and know at the fire, from this column
-- alone, whether its copy is still the stored row. tickwork sets it itself (a random
-- first value, then +1 per write); the triggers cover any other writer (an older
-- tickwork, an UPDATE by hand).
ALTER TABLE schedules ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER schedules_revision_insert AFTER INSERT ON schedules
WHEN NEW.revision = 0
BEGIN
    UPDATE schedules SET revision = (random() & 4611686018427387903) + 1 WHERE id = NEW.id;
END;

CREATE TRIGGER schedules_revision_update AFTER UPDATE ON schedules
WHEN NEW.revision = OLD.revision
BEGIN
    UPDATE schedules SET revision = OLD.revision + 1 WHERE id = NEW.id;
END;
