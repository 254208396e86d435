-- Whose a deleted schedule was. A user reads the runs of their own schedules, found by
-- the schedules' owner; a deleted schedule's runs are kept, but its row is gone, so
-- its owner could no longer read them. Its delete now records the owner here (a row
-- per deletion, written with the delete, never on a run's way: the runs table is
-- unchanged). A run belongs to the owner its schedule had when the run was made: that
-- of the first deletion of its schedule id at or after the run's created_at, else the
-- schedule's present owner, else that of its id's last deletion. So an id deleted and
-- taken again by another user splits its history between them. Rows go with
-- retention once no run of their schedule id is left.
CREATE TABLE deleted_schedules (
    id          INTEGER PRIMARY KEY,
    schedule_id TEXT NOT NULL,
    owner       TEXT,
    deleted_at  INTEGER NOT NULL
);
CREATE INDEX deleted_schedules_id ON deleted_schedules (schedule_id, deleted_at);

-- The schedules deleted before this version, from their schedule.deleted events (the
-- owner they had then; events older than retention_days are gone with their runs).
INSERT INTO deleted_schedules (schedule_id, owner, deleted_at)
SELECT schedule_id, owner, at FROM events
WHERE type = 'schedule.deleted' AND schedule_id IS NOT NULL ORDER BY id;
